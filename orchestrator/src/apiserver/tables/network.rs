//! Rows of the service-discovery kinds: Services, Endpoints, EndpointSlices, Ingresses and
//! IngressClasses, as upstream's printers write them (lists cut at three entries with
//! `+ N more...`). The server always prints wide, as kube-apiserver does; kubectl hides the
//! priority-1 columns itself.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{or_none, s, selector};

/// How many addresses or ports a cell lists before `+ N more...`.
const LIST_MAX: usize = 3;

/// The columns of a service-discovery kind, `None` for other kinds.
pub(super) fn columns(kind: &str) -> Option<Vec<(&'static str, u8)>> {
    let columns: &[(&str, u8)] = match kind {
        "Service" => &[
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
            ("Selector", 1),
        ],
        "Endpoints" => &[("Name", 0), ("Endpoints", 0), ("Age", 0)],
        "EndpointSlice" => &[("Name", 0), ("AddressType", 0), ("Ports", 0), ("Endpoints", 0), ("Age", 0)],
        "Ingress" => &[("Name", 0), ("Class", 0), ("Hosts", 0), ("Address", 0), ("Ports", 0), ("Age", 0)],
        "IngressClass" => &[("Name", 0), ("Controller", 0), ("Parameters", 0), ("Age", 0)],
        _ => return None,
    };
    Some(columns.to_vec())
}

/// The cells of a service-discovery kind's row, `None` for other kinds.
pub(super) fn cells(kind: &str, obj: &Value, name: String, age: String) -> Option<Vec<String>> {
    let spec = &obj["spec"];
    Some(match kind {
        "Service" => {
            let cluster_ip =
                spec["clusterIPs"][0].as_str().map_or_else(|| or_none(&spec["clusterIP"]), str::to_string);
            let ports = service_ports(spec);
            vec![
                name,
                s(&spec["type"]),
                cluster_ip,
                service_external_ip(obj),
                if ports.is_empty() { "<none>".into() } else { ports },
                age,
                selector(&serde_json::json!({"matchLabels": spec["selector"]})),
            ]
        }
        "Endpoints" => vec![name, endpoints_list(obj), age],
        "EndpointSlice" => {
            let ports =
                obj["ports"].as_array().into_iter().flatten().map(|p| match (&p["port"], &p["name"]) {
                    (Value::Number(n), _) => n.to_string(),
                    (_, Value::String(n)) => n.clone(),
                    _ => "*".into(),
                });
            let addresses = obj["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().into_iter().flatten().map(s));
            vec![name, s(&obj["addressType"]), cut_list(ports), cut_list(addresses), age]
        }
        "Ingress" => {
            let ports = if spec["tls"].as_array().is_some_and(|t| !t.is_empty()) { "80, 443" } else { "80" };
            vec![
                name,
                or_none(&spec["ingressClassName"]),
                ingress_hosts(spec),
                load_balancer_addresses(&obj["status"]["loadBalancer"]),
                ports.into(),
                age,
            ]
        }
        "IngressClass" => {
            let parameters = &spec["parameters"];
            let shown = if parameters.is_object() {
                let group = parameters["apiGroup"].as_str().map(|g| format!(".{g}")).unwrap_or_default();
                format!("{}{group}/{}", s(&parameters["kind"]), s(&parameters["name"]))
            } else {
                "<none>".into()
            };
            vec![name, s(&spec["controller"]), shown, age]
        }
        _ => return None,
    })
}

/// `80/TCP`, or `80:30080/TCP` with a node port, comma-separated.
fn service_ports(spec: &Value) -> String {
    let ports = spec["ports"].as_array().into_iter().flatten().map(|p| {
        let protocol = p["protocol"].as_str().unwrap_or("TCP");
        match p["nodePort"].as_i64().filter(|n| *n > 0) {
            Some(node_port) => format!("{}:{node_port}/{protocol}", s(&p["port"])),
            None => format!("{}/{protocol}", s(&p["port"])),
        }
    });
    ports.collect::<Vec<_>>().join(",")
}

/// EXTERNAL-IP by type, as upstream's `getServiceExternalIP`.
fn service_external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let external: Vec<String> = spec["externalIPs"].as_array().into_iter().flatten().map(s).collect();
    match spec["type"].as_str().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let balanced = load_balancer_addresses(&svc["status"]["loadBalancer"]);
            let all: Vec<String> =
                balanced.split(',').filter(|a| !a.is_empty()).map(str::to_string).chain(external).collect();
            if all.is_empty() { "<pending>".into() } else { all.join(",") }
        }
        "ExternalName" => s(&spec["externalName"]),
        _ => "<unknown>".into(),
    }
}

/// The IPs (or host names) of a `loadBalancer` status, sorted and without repeats.
fn load_balancer_addresses(status: &Value) -> String {
    let addresses: BTreeSet<String> = status["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let ip = i["ip"].as_str().filter(|ip| !ip.is_empty());
            ip.or_else(|| i["hostname"].as_str().filter(|h| !h.is_empty())).map(str::to_string)
        })
        .collect();
    addresses.into_iter().collect::<Vec<_>>().join(",")
}

/// The ready `ip:port` pairs of an Endpoints (just IPs for a subset without ports).
fn endpoints_list(obj: &Value) -> String {
    let subsets = obj["subsets"].as_array().map(Vec::as_slice).unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut pairs = Vec::new();
    for subset in subsets {
        let addresses: Vec<String> =
            subset["addresses"].as_array().into_iter().flatten().map(|a| s(&a["ip"])).collect();
        let ports: Vec<String> =
            subset["ports"].as_array().into_iter().flatten().map(|p| s(&p["port"])).collect();
        if ports.is_empty() {
            pairs.extend(addresses);
            continue;
        }
        for port in &ports {
            pairs.extend(addresses.iter().map(|ip| join_host_port(ip, port)));
        }
    }
    let listed = more_of(&pairs);
    if listed.is_empty() { "<none>".into() } else { listed }
}

/// `ip:port`, with brackets around an IPv6 address.
fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
}

/// The first three items joined by commas, `+ N more...` for the rest.
fn more_of(items: &[String]) -> String {
    let shown = items.iter().take(LIST_MAX).cloned().collect::<Vec<_>>().join(",");
    if items.len() > LIST_MAX { format!("{shown} + {} more...", items.len() - LIST_MAX) } else { shown }
}

/// [`more_of`], `<unset>` for nothing (EndpointSlice columns).
fn cut_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() { "<unset>".into() } else { more_of(&items) }
}

/// The rules' hosts, three at most; `*` when no rule names one.
fn ingress_hosts(spec: &Value) -> String {
    let rules = spec["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
    let hosts: Vec<String> = rules
        .iter()
        .take(LIST_MAX)
        .filter_map(|r| r["host"].as_str().filter(|h| !h.is_empty()).map(str::to_string))
        .collect();
    if hosts.is_empty() {
        return "*".into();
    }
    let shown = hosts.join(",");
    if rules.len() > LIST_MAX { format!("{shown} + {} more...", rules.len() - LIST_MAX) } else { shown }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::table;
    use crate::api::meta;

    fn row(kind: &str, obj: serde_json::Value) -> serde_json::Value {
        table(kind, &[obj], 1)["rows"][0]["cells"].clone()
    }

    #[test]
    fn service_rows_show_node_ports_and_external_addresses() {
        let svc = |ty: &str, extra: serde_json::Value| {
            let mut svc = json!({"metadata": {"name": "web", "creationTimestamp": meta::now()},
                "spec": {"type": ty, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"},
                    "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}});
            if let (Some(o), Some(e)) = (svc.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            svc
        };
        assert_eq!(
            row("Service", svc("NodePort", json!({}))),
            json!(["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "0s", "app=web"])
        );
        assert_eq!(row("Service", svc("LoadBalancer", json!({})))[3], "<pending>");
        let balanced = svc(
            "LoadBalancer",
            json!({"status": {"loadBalancer": {"ingress": [
            {"ip": "192.168.1.9", "ipMode": "VIP"}, {"ip": "192.168.1.2"}]}}}),
        );
        assert_eq!(row("Service", balanced)[3], "192.168.1.2,192.168.1.9");
        let mut named = svc("ExternalName", json!({}));
        named["spec"]["externalName"] = json!("db.example.com");
        assert_eq!(row("Service", named)[3], "db.example.com");
        let mut external = svc("ClusterIP", json!({}));
        external["spec"]["externalIPs"] = json!(["1.2.3.4"]);
        assert_eq!(row("Service", external)[3], "1.2.3.4");
    }

    #[test]
    fn endpoints_rows_list_three_ready_pairs_then_count_the_rest() {
        let ep = json!({"metadata": {"name": "web", "creationTimestamp": meta::now()}, "subsets": [
            {"addresses": [{"ip": "127.64.0.5"}, {"ip": "127.64.0.6"}, {"ip": "127.64.0.7"}, {"ip": "127.64.0.8"}],
             "notReadyAddresses": [{"ip": "127.64.0.9"}], "ports": [{"port": 8080, "protocol": "TCP"}]}]});
        assert_eq!(
            row("Endpoints", ep),
            json!(["web", "127.64.0.5:8080,127.64.0.6:8080,127.64.0.7:8080 + 1 more...", "0s"])
        );
        let not_ready = json!({"metadata": {"name": "web"}, "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}],
            "ports": [{"port": 80}]}]});
        assert_eq!(row("Endpoints", not_ready)[1], "<none>");
        assert_eq!(row("Endpoints", json!({"metadata": {"name": "x"}}))[1], "<none>");
    }

    #[test]
    fn endpointslice_rows_list_ports_and_every_address() {
        let slice = json!({"metadata": {"name": "web-abcde", "creationTimestamp": meta::now()}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.64.0.5"], "conditions": {"ready": true}},
                          {"addresses": ["127.64.0.6"], "conditions": {"ready": false}}]});
        assert_eq!(
            row("EndpointSlice", slice),
            json!(["web-abcde", "IPv4", "8080", "127.64.0.5,127.64.0.6", "0s"])
        );
        let placeholder = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4", "endpoints": []});
        let cells = row("EndpointSlice", placeholder);
        assert_eq!((&cells[2], &cells[3]), (&json!("<unset>"), &json!("<unset>")));
    }

    #[test]
    fn ingress_and_class_rows_follow_upstreams_printer() {
        let ing = json!({"metadata": {"name": "site", "creationTimestamp": meta::now()},
            "spec": {"ingressClassName": "wasmkube", "tls": [{"hosts": ["a.example.com"], "secretName": "s"}],
                "rules": [{"host": "a.example.com"}, {"http": {}}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.2"}]}}});
        assert_eq!(
            row("Ingress", ing),
            json!(["site", "wasmkube", "a.example.com", "192.168.1.2", "80, 443", "0s"])
        );
        let bare = json!({"metadata": {"name": "b"}, "spec": {"rules": [{}]}});
        let cells = row("Ingress", bare);
        assert_eq!(
            [&cells[1], &cells[2], &cells[3], &cells[4]],
            [&json!("<none>"), &json!("*"), &json!(""), &json!("80")]
        );
        let class = json!({"metadata": {"name": "wasmkube"}, "spec": {"controller": "wasmkube.dev/ingress",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p"}}});
        let cells = row("IngressClass", class);
        assert_eq!(
            (&cells[1], &cells[2]),
            (&json!("wasmkube.dev/ingress"), &json!("Params.k8s.example.com/p"))
        );
    }
}
