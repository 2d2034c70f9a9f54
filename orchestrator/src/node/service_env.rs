//! The Service environment variables kubelet gives every container (`enableServiceLinks`,
//! on by default): for each Service of the pod's namespace that has a cluster IP, and for the
//! `kubernetes` Service of `default`, `<NAME>_SERVICE_HOST` / `_SERVICE_PORT[_<PORT NAME>]` and
//! the Docker-link style `<NAME>_PORT[_<port>_<PROTO>[_PROTO|_PORT|_ADDR]]`. Defined variables
//! of the container win; its `$(VAR)` references may use these.

use std::sync::Arc;

use serde_json::Value;

use crate::api::meta;

/// The variables for a pod in `namespace`, from the cached Services.
pub fn for_pod(pod: &Value, services: &[Arc<Value>]) -> Vec<(String, String)> {
    let namespace = meta::namespace(pod);
    let links = pod["spec"]["enableServiceLinks"].as_bool() != Some(false);
    let mut chosen: Vec<&Value> = services
        .iter()
        .map(|s| &**s)
        .filter(|s| {
            let here = links && meta::namespace(s) == namespace;
            let master = meta::namespace(s) == "default" && meta::name(s) == "kubernetes";
            here || master
        })
        .collect();
    // Upstream sorts by name, so the order (and what a duplicate name resolves to) is stable.
    chosen.sort_by_key(|s| (meta::name(s) != "kubernetes" || meta::namespace(s) != "default", meta::name(s)));
    let mut vars = Vec::new();
    for svc in chosen {
        vars.extend(for_service(svc));
    }
    vars
}

fn for_service(svc: &Value) -> Vec<(String, String)> {
    let Some(ip) = svc["spec"]["clusterIP"].as_str().filter(|ip| !ip.is_empty() && *ip != "None") else {
        return Vec::new();
    };
    let ports = svc["spec"]["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
    let Some(first) = ports.first() else { return Vec::new() };
    let name = meta::name(svc).to_ascii_uppercase().replace('-', "_");
    let number = |p: &Value| p["port"].as_u64().unwrap_or(0).to_string();
    let mut vars = vec![
        (format!("{name}_SERVICE_HOST"), ip.to_string()),
        (format!("{name}_SERVICE_PORT"), number(first)),
    ];
    for port in ports {
        if let Some(port_name) = port["name"].as_str().filter(|n| !n.is_empty()) {
            vars.push((
                format!("{name}_SERVICE_PORT_{}", port_name.to_ascii_uppercase().replace('-', "_")),
                number(port),
            ));
        }
    }
    let protocol = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
    vars.push((format!("{name}_PORT"), format!("{}://{ip}:{}", protocol(first), number(first))));
    for port in ports {
        let prefix = format!("{name}_PORT_{}_{}", number(port), protocol(port).to_ascii_uppercase());
        vars.push((prefix.clone(), format!("{}://{ip}:{}", protocol(port), number(port))));
        vars.push((format!("{prefix}_PROTO"), protocol(port)));
        vars.push((format!("{prefix}_PORT"), number(port)));
        vars.push((format!("{prefix}_ADDR"), ip.to_string()));
    }
    vars
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn svc(ns: &str, name: &str, spec: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
    }

    #[test]
    fn kubelet_names_and_values() {
        let pod = json!({"metadata": {"namespace": "shop"}, "spec": {}});
        let services = [
            svc(
                "shop",
                "web-front",
                json!({"clusterIP": "127.16.0.5", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
            ),
            svc("shop", "headless", json!({"clusterIP": "None", "ports": [{"port": 80}]})),
            svc("other", "elsewhere", json!({"clusterIP": "127.16.0.6", "ports": [{"port": 80}]})),
        ];
        let vars = for_pod(&pod, &services);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("WEB_FRONT_SERVICE_HOST"), Some("127.16.0.5"));
        assert_eq!(get("WEB_FRONT_SERVICE_PORT"), Some("80"));
        assert_eq!(get("WEB_FRONT_SERVICE_PORT_DNS"), Some("53"));
        assert_eq!(get("WEB_FRONT_PORT"), Some("tcp://127.16.0.5:80"));
        assert_eq!(get("WEB_FRONT_PORT_53_UDP"), Some("udp://127.16.0.5:53"));
        assert_eq!(get("WEB_FRONT_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get("WEB_FRONT_PORT_80_TCP_ADDR"), Some("127.16.0.5"));
        assert!(get("HEADLESS_SERVICE_HOST").is_none() && get("ELSEWHERE_SERVICE_HOST").is_none());
        let off = json!({"metadata": {"namespace": "shop"}, "spec": {"enableServiceLinks": false}});
        assert!(for_pod(&off, &services).is_empty());
    }
}
