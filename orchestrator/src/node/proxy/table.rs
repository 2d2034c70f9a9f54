//! What the node proxy should serve, computed from Services and EndpointSlices (pure, no IO):
//! one [`Frontend`] per address the proxy listens on (a cluster IP's port, or the node's
//! address at a node port), each leading to the endpoints of one Service port.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use serde_json::Value;

use crate::api::meta;

/// Which Service port a frontend serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub namespace: String,
    pub service: String,
    /// The Service port's name ("" for a single unnamed port).
    pub port_name: String,
}

impl std::fmt::Display for PortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service)?;
        if !self.port_name.is_empty() {
            write!(f, ":{}", self.port_name)?;
        }
        Ok(())
    }
}

/// One endpoint of a Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Ready for new traffic.
    pub ready: bool,
    /// Still answering, though perhaps terminating.
    pub serving: bool,
    pub terminating: bool,
}

/// How a Service port is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: PortKey,
    /// Balance each HTTP request (a port named `http`/`http-*` or with `appProtocol: http`);
    /// otherwise each TCP connection.
    pub http: bool,
    /// `sessionAffinity: ClientIP`: how long a client sticks to its endpoint.
    pub affinity: Option<Duration>,
    pub endpoints: Vec<Endpoint>,
}

impl Route {
    /// The endpoints new traffic may go to: the ready ones; when none is ready, those still
    /// serving while they terminate (upstream's terminating-endpoint fallback), so a rollout's
    /// last old pod is not cut off before its successor is ready.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        let ready: Vec<_> = self.endpoints.iter().filter(|e| e.ready).map(|e| e.addr).collect();
        if !ready.is_empty() {
            return ready;
        }
        self.endpoints.iter().filter(|e| e.serving && e.terminating).map(|e| e.addr).collect()
    }
}

/// Every frontend the proxy should listen on.
pub type Frontends = BTreeMap<SocketAddr, Arc<Route>>;

/// EndpointSlices by the Service they belong to (label `kubernetes.io/service-name`).
pub struct SliceIndex<'a> {
    by_service: HashMap<(String, String), Vec<&'a Value>>,
}

impl<'a> SliceIndex<'a> {
    pub fn new(slices: &'a [Arc<Value>]) -> Self {
        let mut by_service: HashMap<(String, String), Vec<&'a Value>> = HashMap::new();
        for slice in slices {
            if let Some(svc) = slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str() {
                by_service
                    .entry((meta::namespace(slice).to_string(), svc.to_string()))
                    .or_default()
                    .push(slice);
            }
        }
        Self { by_service }
    }

    /// The slices of `svc`.
    pub fn of(&self, svc: &Value) -> &[&'a Value] {
        let key = (meta::namespace(svc).to_string(), meta::name(svc).to_string());
        self.by_service.get(&key).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Compute the frontends from the cached Services and EndpointSlices. `node_ips` are the
/// addresses node ports are served on.
pub fn frontends(services: &[Arc<Value>], slices: &SliceIndex<'_>, node_ips: &[IpAddr]) -> Frontends {
    let mut out = Frontends::new();
    for svc in services {
        let spec = &svc["spec"];
        if spec["type"] == "ExternalName" {
            continue;
        }
        let cluster_ip = spec["clusterIP"].as_str().and_then(|ip| ip.parse::<IpAddr>().ok());
        let slices = slices.of(svc);
        for port in spec["ports"].as_array().into_iter().flatten() {
            if port["protocol"].as_str().unwrap_or("TCP") != "TCP" {
                continue;
            }
            let Some(number) = port["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else { continue };
            let route = Arc::new(route(svc, port, slices));
            if let Some(ip) = cluster_ip {
                out.insert(SocketAddr::new(ip, number), route.clone());
            }
            if let Some(node_port) = port["nodePort"].as_u64().and_then(|p| u16::try_from(p).ok()) {
                for ip in node_ips {
                    out.insert(SocketAddr::new(*ip, node_port), route.clone());
                }
            }
        }
    }
    out
}

/// The route of one Service port.
pub fn route(svc: &Value, port: &Value, slices: &[&Value]) -> Route {
    let spec = &svc["spec"];
    let port_name = port["name"].as_str().unwrap_or("").to_string();
    let app_protocol = port["appProtocol"].as_str().unwrap_or("").to_ascii_lowercase();
    let http = app_protocol == "http" || port_name == "http" || port_name.starts_with("http-");
    let affinity = (spec["sessionAffinity"] == "ClientIP").then(|| {
        let seconds = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].as_u64().unwrap_or(10800);
        Duration::from_secs(seconds)
    });
    let mut endpoints = Vec::new();
    for slice in slices {
        let Some(target) = slice["ports"].as_array().into_iter().flatten().find(|p| {
            p["name"].as_str().unwrap_or("") == port_name && p["protocol"].as_str().unwrap_or("TCP") == "TCP"
        }) else {
            continue;
        };
        let Some(target) = target["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else { continue };
        for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
            let conditions = &endpoint["conditions"];
            // Upstream: an absent `ready` means ready; `serving` defaults to `ready`.
            let ready = conditions["ready"].as_bool().unwrap_or(true);
            let serving = conditions["serving"].as_bool().unwrap_or(ready);
            let terminating = conditions["terminating"].as_bool().unwrap_or(false);
            for address in endpoint["addresses"].as_array().into_iter().flatten() {
                if let Some(ip) = address.as_str().and_then(|a| a.parse::<IpAddr>().ok()) {
                    endpoints.push(Endpoint {
                        addr: SocketAddr::new(ip, target),
                        ready,
                        serving,
                        terminating,
                    });
                }
            }
        }
    }
    endpoints.sort_by_key(|e| e.addr);
    endpoints.dedup_by_key(|e| e.addr);
    let key = PortKey {
        namespace: meta::namespace(svc).to_string(),
        service: meta::name(svc).to_string(),
        port_name,
    };
    Route { key, http, affinity, endpoints }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(spec: Value) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
    }

    fn slice(ports: Value, endpoints: Value) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": "web-abcde", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
        }))
    }

    #[test]
    fn cluster_ip_and_node_ports_lead_to_the_slice_endpoints() {
        let svc = service(json!({"type": "NodePort", "clusterIP": "127.16.0.5", "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
            {"name": "dns", "port": 53, "protocol": "UDP"}]}));
        let slices = [slice(
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            json!([
                {"addresses": ["127.64.0.3"], "conditions": {"ready": true}},
                {"addresses": ["127.64.0.2"], "conditions": {"ready": false, "serving": false}},
            ]),
        )];
        let node: IpAddr = "127.0.0.1".parse().unwrap();
        let all = frontends(&[svc], &SliceIndex::new(&slices), &[node]);
        assert_eq!(all.len(), 2, "UDP ports are not proxied: {all:?}");
        let route = &all[&"127.16.0.5:80".parse().unwrap()];
        assert!(route.http);
        assert_eq!(route.endpoints.len(), 2);
        assert_eq!(route.candidates(), vec!["127.64.0.3:8080".parse::<SocketAddr>().unwrap()]);
        assert_eq!(all[&"127.0.0.1:30080".parse().unwrap()], *route);
        assert_eq!(route.key.to_string(), "default/web:http");
    }

    #[test]
    fn terminating_endpoints_serve_only_when_nothing_is_ready() {
        let svc = service(json!({"clusterIP": "127.16.0.5", "ports": [{"port": 80, "protocol": "TCP"}]}));
        let slices = [slice(
            json!([{"port": 8080, "protocol": "TCP"}]),
            json!([{"addresses": ["127.64.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true}}]),
        )];
        let all = frontends(&[svc], &SliceIndex::new(&slices), &[]);
        let route = &all[&"127.16.0.5:80".parse().unwrap()];
        assert!(!route.http);
        assert_eq!(route.candidates(), vec!["127.64.0.2:8080".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn headless_and_external_name_services_get_no_frontend() {
        let headless = service(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
        let external = service(json!({"type": "ExternalName", "externalName": "example.com"}));
        assert!(frontends(&[headless, external], &SliceIndex::new(&[]), &[]).is_empty());
    }
}
