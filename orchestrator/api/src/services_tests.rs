use serde_json::json;

use super::*;

fn networks() -> ServiceNetworks {
    ServiceNetworks::parse("127.16.0.0/28", "30000-30003").unwrap()
}

fn svc(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn admit_new(spec: Value, used: &Used) -> Result<Value, String> {
    let mut s = svc(spec);
    admit(None, &mut s, used, &networks(), ("default", "web")).map(|()| s)
}

#[test]
fn allocates_an_unreserved_cluster_ip_in_the_network() {
    let nets = networks();
    for _ in 0..50 {
        let s = admit_new(json!({"ports": [{"port": 80, "targetPort": 8080}]}), &Used::default()).unwrap();
        let ip: Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(nets.contains(ip) && !nets.reserved(ip), "{ip}");
        assert_eq!(s["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        assert!(s["spec"]["ports"][0]["nodePort"].is_null());
    }
}

#[test]
fn a_full_range_is_an_error_and_taken_addresses_are_skipped() {
    let nets = networks();
    // 16 addresses: network, .1, .10 and broadcast reserved; 12 left.
    let mut used = Used::default();
    for _ in 0..12 {
        let s = admit_new(json!({"ports": [{"port": 80}]}), &used).unwrap();
        assert!(used.ips.insert(s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap()));
    }
    let err = admit_new(json!({"ports": [{"port": 80}]}), &used).unwrap_err();
    assert!(err.contains("range is full (127.16.0.0/28)"), "{err}");
    assert_eq!(nets.dns_ip(), Ipv4Addr::new(127, 16, 0, 10));
}

#[test]
fn an_asked_address_must_be_free_and_in_range() {
    let mut used = Used::default();
    used.ips.insert(Ipv4Addr::new(127, 16, 0, 5));
    let taken = admit_new(json!({"clusterIP": "127.16.0.5", "ports": [{"port": 80}]}), &used).unwrap_err();
    assert!(taken.ends_with("provided IP is already allocated"), "{taken}");
    let dns = admit_new(json!({"clusterIP": "127.16.0.10", "ports": [{"port": 80}]}), &used).unwrap_err();
    assert!(dns.ends_with("provided IP is already allocated"), "{dns}");
    let out = admit_new(json!({"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}), &used).unwrap_err();
    assert!(out.contains("The range of valid IPs is 127.16.0.0/28"), "{out}");
    let ok = admit_new(json!({"clusterIP": "127.16.0.6", "ports": [{"port": 80}]}), &used).unwrap();
    assert_eq!(ok["spec"]["clusterIP"], "127.16.0.6");
    let headless = admit_new(json!({"clusterIP": "None"}), &used).unwrap();
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
}

#[test]
fn the_cluster_ip_is_kept_on_update_and_may_not_change() {
    let first = admit_new(json!({"ports": [{"port": 80}]}), &Used::default()).unwrap();
    let ip = first["spec"]["clusterIP"].clone();
    // A PUT without the address keeps it.
    let mut next = svc(json!({"ports": [{"port": 81}]}));
    admit(Some(&first), &mut next, &Used::default(), &networks(), ("default", "web")).unwrap();
    assert_eq!(next["spec"]["clusterIP"], ip);
    let other = if ip == "127.16.0.2" { "127.16.0.3" } else { "127.16.0.2" };
    let mut moved = svc(json!({"clusterIP": other, "ports": [{"port": 80}]}));
    let err = admit(Some(&first), &mut moved, &Used::default(), &networks(), ("default", "web")).unwrap_err();
    assert!(err.contains("may not change once set"), "{err}");
}

#[test]
fn node_ports_are_allocated_kept_and_checked() {
    let s = admit_new(json!({"type": "NodePort", "ports": [{"port": 80}]}), &Used::default()).unwrap();
    let port = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=30003).contains(&port));
    assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    let mut next = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
    admit(Some(&s), &mut next, &Used::default(), &networks(), ("default", "web")).unwrap();
    assert_eq!(next["spec"]["ports"][0]["nodePort"], port);

    let mut used = Used::default();
    used.node_ports.insert(30001);
    let taken = admit_new(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}), &used);
    assert!(taken.unwrap_err().ends_with("provided port is already allocated"));
    let out = admit_new(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}), &used);
    assert!(out.unwrap_err().contains("The range of valid ports is 30000-30003"));
    let forbidden = admit_new(json!({"ports": [{"port": 80, "nodePort": 30002}]}), &used).unwrap_err();
    assert_eq!(forbidden, "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'");
    // TCP and UDP of one Service may share a node port.
    let dual = json!({"type": "NodePort", "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30002},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30002}]});
    assert!(admit_new(dual, &used).is_ok());
}

#[test]
fn changing_type_back_to_cluster_ip_sheds_untouched_node_ports() {
    let node_port =
        admit_new(json!({"type": "NodePort", "ports": [{"port": 80}]}), &Used::default()).unwrap();
    let mut spec = node_port["spec"].clone();
    spec["type"] = json!("ClusterIP");
    let mut back = svc(spec);
    admit(Some(&node_port), &mut back, &Used::default(), &networks(), ("default", "web")).unwrap();
    assert!(back["spec"]["ports"][0]["nodePort"].is_null());
    assert!(back["spec"]["externalTrafficPolicy"].is_null());
}

#[test]
fn external_name_services_get_no_address() {
    let s = admit_new(json!({"type": "ExternalName", "externalName": "db.example.com"}), &Used::default())
        .unwrap();
    assert!(s["spec"]["clusterIP"].is_null());
    let missing = admit_new(json!({"type": "ExternalName"}), &Used::default()).unwrap_err();
    assert_eq!(missing, "spec.externalName: Required value");
}

#[test]
fn ports_are_checked() {
    let none = admit_new(json!({}), &Used::default()).unwrap_err();
    assert_eq!(none, "spec.ports: Required value");
    let unnamed = admit_new(json!({"ports": [{"name": "a", "port": 80}, {"port": 81}]}), &Used::default());
    assert_eq!(unnamed.unwrap_err(), "spec.ports[1].name: Required value");
    let zero = admit_new(json!({"ports": [{"port": 0}]}), &Used::default()).unwrap_err();
    assert!(zero.contains("must be between 1 and 65535"), "{zero}");
    let bad_target =
        admit_new(json!({"ports": [{"port": 80, "targetPort": "Not_A_Name"}]}), &Used::default());
    assert!(
        bad_target
            .unwrap_err()
            .ends_with("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    );
    let bad_type = admit_new(json!({"type": "Magic", "ports": [{"port": 80}]}), &Used::default());
    assert!(bad_type.unwrap_err().starts_with("spec.type: Unsupported value: \"Magic\""));
    let affinity =
        admit_new(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}), &Used::default());
    assert_eq!(affinity.unwrap()["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
}

#[test]
fn used_leaves_out_the_service_being_written() {
    let a = json!({"metadata": {"name": "a", "namespace": "default"},
        "spec": {"clusterIP": "127.16.0.2", "ports": [{"port": 80, "nodePort": 30000}]}});
    let b = json!({"metadata": {"name": "b", "namespace": "default"}, "spec": {"clusterIP": "127.16.0.3"}});
    let used = Used::from_services([&a, &b], ("default", "a"));
    assert!(!used.ips.contains(&Ipv4Addr::new(127, 16, 0, 2)));
    assert!(used.ips.contains(&Ipv4Addr::new(127, 16, 0, 3)));
    assert!(used.node_ports.is_empty());
}

#[test]
fn parses_networks() {
    assert!(ServiceNetworks::parse("127.16.0.0/16", "30000-32767").is_ok());
    assert!(ServiceNetworks::parse("127.16.0.0/16", "32767-30000").is_err());
    assert!(ServiceNetworks::parse("127.16.0.0/30", "30000-32767").is_err());
}
