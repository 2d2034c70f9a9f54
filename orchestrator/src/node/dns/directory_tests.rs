use serde_json::json;

use super::*;

fn service(ns: &str, name: &str, spec: Value) -> Arc<Value> {
    Arc::new(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
}

fn slice(ns: &str, svc: &str, ports: Value, endpoints: Value) -> Arc<Value> {
    Arc::new(json!({
        "metadata": {"name": format!("{svc}-abcde"), "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
    }))
}

fn ips(list: &[&str]) -> Entry {
    Entry::Addresses(list.iter().map(|ip| ip.parse().unwrap()).collect())
}

fn directory() -> Directory {
    let services = [
        service(
            "default",
            "web",
            json!({"clusterIP": "127.16.0.20", "clusterIPs": ["127.16.0.20"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        service(
            "db",
            "pg",
            json!({"clusterIP": "None", "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}),
        ),
        service("default", "ext", json!({"type": "ExternalName", "externalName": "Example.COM."})),
        service("default", "pending", json!({"ports": [{"port": 80}]})),
    ];
    let slices = [
        slice(
            "db",
            "pg",
            json!([{"name": "sql", "port": 5432, "protocol": "TCP"}]),
            json!([
                {"addresses": ["127.64.0.7"], "hostname": "pg-0", "conditions": {"ready": true}},
                {"addresses": ["127.64.0.8"], "conditions": {}},
                {"addresses": ["127.64.0.9"], "hostname": "pg-2", "conditions": {"ready": false}},
            ]),
        ),
        // A slice of another Service's name in another namespace is not pg's.
        slice("default", "pg", json!([]), json!([{"addresses": ["127.64.0.99"]}])),
    ];
    Directory::build(CLUSTER_DOMAIN, &services, &slices)
}

fn entry<'a>(dir: &'a Directory, name: &str) -> Option<&'a Entry> {
    match dir.find(name) {
        Found::Name { entry, .. } => entry,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_service_name_is_its_cluster_ip() {
    let dir = directory();
    assert_eq!(entry(&dir, "web.default.svc.cluster.local"), Some(&ips(&["127.16.0.20"])));
    let Found::Name { srv, .. } = dir.find("_http._tcp.web.default.svc.cluster.local") else {
        panic!("no SRV name")
    };
    assert_eq!(srv, [Srv { port: 80, target: "web.default.svc.cluster.local".into() }]);
    // No cluster IP yet: no name.
    assert_eq!(dir.find("pending.default.svc.cluster.local"), Found::Missing);
}

#[test]
fn a_headless_service_is_its_ready_endpoints_each_with_a_name() {
    let dir = directory();
    assert_eq!(entry(&dir, "pg.db.svc.cluster.local"), Some(&ips(&["127.64.0.7", "127.64.0.8"])));
    assert_eq!(entry(&dir, "pg-0.pg.db.svc.cluster.local"), Some(&ips(&["127.64.0.7"])));
    // Without a hostname, the endpoint is named by its address.
    assert_eq!(entry(&dir, "127-64-0-8.pg.db.svc.cluster.local"), Some(&ips(&["127.64.0.8"])));
    assert_eq!(dir.find("pg-2.pg.db.svc.cluster.local"), Found::Missing, "not ready");
    let Found::Name { srv, .. } = dir.find("_sql._tcp.pg.db.svc.cluster.local") else { panic!() };
    let targets: Vec<_> = srv.iter().map(|s| (s.target.as_str(), s.port)).collect();
    assert_eq!(
        targets,
        [("pg-0.pg.db.svc.cluster.local", 5432), ("127-64-0-8.pg.db.svc.cluster.local", 5432)]
    );
    assert_eq!(dir.find("pg.default.svc.cluster.local"), Found::Missing);
}

#[test]
fn publish_not_ready_addresses_lists_every_endpoint() {
    let services = [service("db", "pg", json!({"clusterIP": "None", "publishNotReadyAddresses": true}))];
    let slices = [slice(
        "db",
        "pg",
        json!([]),
        json!([{"addresses": ["127.64.0.9"], "conditions": {"ready": false}}]),
    )];
    let dir = Directory::build(CLUSTER_DOMAIN, &services, &slices);
    assert_eq!(entry(&dir, "pg.db.svc.cluster.local"), Some(&ips(&["127.64.0.9"])));
}

#[test]
fn external_name_is_an_alias() {
    let dir = directory();
    assert_eq!(entry(&dir, "ext.default.svc.cluster.local"), Some(&Entry::Alias("example.com".into())));
}

#[test]
fn parents_exist_unknown_names_do_not_and_outside_is_not_ours() {
    let dir = directory();
    for parent in ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"] {
        assert_eq!(dir.find(parent), Found::Name { entry: None, srv: &[] }, "{parent}");
    }
    assert_eq!(dir.find("nope.default.svc.cluster.local"), Found::Missing);
    assert_eq!(dir.find("kube-system.svc.cluster.local"), Found::Missing);
    assert_eq!(dir.find("example.com"), Found::Outside);
    assert_eq!(dir.find("notcluster.local"), Found::Outside);
    assert!(dir.in_zone("cluster.local") && dir.in_zone("a.cluster.local"));
}

#[test]
fn names_resolve_through_the_pods_search_list() {
    let dir = directory();
    let web = Some(ips(&["127.16.0.20"]));
    for name in [
        "web",
        "web.default",
        "web.default.svc",
        "web.default.svc.cluster.local",
        "web.default.svc.cluster.local.",
        "WEB.Default",
    ] {
        assert_eq!(dir.resolve("default", name), web, "{name}");
    }
    // From another namespace the short name is not found; the qualified one is.
    assert_eq!(dir.resolve("db", "web"), None);
    assert_eq!(dir.resolve("db", "web.default"), web);
    assert_eq!(dir.resolve("db", "pg"), Some(ips(&["127.64.0.7", "127.64.0.8"])));
    assert_eq!(dir.resolve("db", "pg-0.pg"), Some(ips(&["127.64.0.7"])));
    assert_eq!(dir.resolve("default", "ext"), Some(Entry::Alias("example.com".into())));
    // Unknown cluster names are known not to exist; other names go out by name.
    assert_eq!(dir.resolve("default", "nope.default.svc.cluster.local"), Some(Entry::Addresses(vec![])));
    assert_eq!(dir.resolve("default", "example.com"), None);
    assert_eq!(dir.resolve("default", "127.0.0.1"), None);
    assert_eq!(dir.resolve("default", ""), None);
}

#[test]
fn junk_objects_make_no_names() {
    let services = [
        Arc::new(
            json!({"metadata": {"name": "a.b", "namespace": "default"}, "spec": {"clusterIP": "127.16.0.9"}}),
        ),
        Arc::new(json!({"metadata": {}, "spec": null})),
        Arc::new(json!("not an object")),
        service("default", "bad-ip", json!({"clusterIP": "not-an-ip"})),
    ];
    let slices = [Arc::new(json!({"endpoints": "x"}))];
    let dir = Directory::build(CLUSTER_DOMAIN, &services, &slices);
    assert_eq!(dir.entries.len(), 0, "{dir:?}");
}
