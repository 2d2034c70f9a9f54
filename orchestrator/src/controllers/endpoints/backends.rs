//! A Service's backends as both publications see them: which pods its selector picks in its
//! namespace (with an IP, not finished), whether each is ready, serving or terminating, and the
//! port numbers its `targetPort`s resolve to on each pod. Pure functions of the cached objects.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::{api::meta, controllers::replicaset::is_ready};

/// The annotation both publications carry: when the change they show was triggered.
pub(super) const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The label marking the publications of a headless Service.
pub(super) const HEADLESS: &str = "service.kubernetes.io/headless";

/// One pod behind a Service.
pub(super) struct Backend<'a> {
    /// The pod.
    pub pod: &'a Value,
    /// Its `status.podIP`.
    pub ip: &'a str,
    /// Its Ready condition is True.
    pub serving: bool,
    /// It has a `deletionTimestamp`.
    pub terminating: bool,
}

/// A Service port resolved against one pod: what a proxy connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResolvedPort {
    pub name: String,
    pub port: i64,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// The selector of a Service whose backends the controller publishes: not ExternalName and
/// with a non-empty selector (an empty one is "no selector", as it reads back upstream).
pub(super) fn managed_selector(svc: &Value) -> Option<&Map<String, Value>> {
    if svc["spec"]["type"] == "ExternalName" || meta::is_terminating(svc) {
        return None;
    }
    svc["spec"]["selector"].as_object().filter(|s| !s.is_empty())
}

/// The pods `selector` picks among `pods` (one namespace's), sorted by name: those with an IP
/// that have not finished. Terminating pods are included; each publication decides.
pub(super) fn backends<'a>(selector: &Map<String, Value>, pods: &'a [Arc<Value>]) -> Vec<Backend<'a>> {
    let mut out: Vec<Backend<'a>> = pods
        .iter()
        .map(|p| &**p)
        .filter(|p| selector.iter().all(|(k, v)| p["metadata"]["labels"][k] == *v))
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        .filter_map(|pod| {
            let ip = pod["status"]["podIP"].as_str().filter(|ip| !ip.is_empty())?;
            Some(Backend { pod, ip, serving: is_ready(pod), terminating: meta::is_terminating(pod) })
        })
        .collect();
    out.sort_by(|a, b| meta::name(a.pod).cmp(meta::name(b.pod)));
    out
}

/// The Service's ports resolved on `pod`, in the Service's order; a named `targetPort` the pod
/// does not declare (for that protocol) leaves that port out, as upstream's `FindPort`.
pub(super) fn resolve_ports(svc: &Value, pod: &Value) -> Vec<ResolvedPort> {
    let ports = svc["spec"]["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
    ports
        .iter()
        .filter_map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            let number = match &p["targetPort"] {
                Value::Number(n) => n.as_i64(),
                Value::String(name) => find_named_port(pod, name, protocol),
                _ => p["port"].as_i64(),
            }?;
            Some(ResolvedPort {
                name: p["name"].as_str().unwrap_or("").to_string(),
                port: number,
                protocol: protocol.to_string(),
                app_protocol: p["appProtocol"].as_str().map(str::to_string),
            })
        })
        .collect()
}

/// The number of the container port called `name` for `protocol` (sidecar init containers too).
fn find_named_port(pod: &Value, name: &str, protocol: &str) -> Option<i64> {
    let spec = &pod["spec"];
    let sidecars =
        spec["initContainers"].as_array().into_iter().flatten().filter(|c| c["restartPolicy"] == "Always");
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(sidecars)
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        .and_then(|p| p["containerPort"].as_i64())
}

/// The reference both publications keep to a backend's pod.
pub(super) fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": meta::namespace(pod), "name": meta::name(pod), "uid": meta::uid(pod)})
}

/// A pod's `spec.hostname`, when its `subdomain` names this Service (the DNS name
/// `<hostname>.<service>` then points at it).
pub(super) fn hostname<'a>(svc: &Value, pod: &'a Value) -> Option<&'a str> {
    let spec = &pod["spec"];
    let hostname = spec["hostname"].as_str().filter(|h| !h.is_empty())?;
    (spec["subdomain"] == meta::name(svc)).then_some(hostname)
}

/// Whether the Service has no cluster IP (headless).
pub(super) fn is_headless(svc: &Value) -> bool {
    svc["spec"]["clusterIP"] == "None"
}

/// The latest change the backends show: the Service's creation, a pod's creation, readiness
/// change or deletion. Derived from the objects, so an unchanged state gives the same time.
pub(super) fn trigger_time(svc: &Value, backends: &[Backend]) -> String {
    let mut times: Vec<&str> = created(svc).into_iter().collect();
    for b in backends {
        times.extend(created(b.pod));
        times.extend(ready_changed(b.pod));
        times.extend(b.pod["metadata"]["deletionTimestamp"].as_str());
    }
    let latest = times.into_iter().filter_map(|t| meta::parse_time(t).map(|p| (p, t))).max();
    latest.map(|(_, t)| t.to_string()).unwrap_or_default()
}

fn created(obj: &Value) -> Option<&str> {
    obj["metadata"]["creationTimestamp"].as_str()
}

fn ready_changed(pod: &Value) -> Option<&str> {
    let conditions = pod["status"]["conditions"].as_array()?;
    conditions.iter().find(|c| c["type"] == "Ready")?["lastTransitionTime"].as_str()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A pod of `app=web` with an IP, readiness and a named container port.
    pub fn pod(name: &str, ip: &str, ready: bool) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"},
                "creationTimestamp": "2027-01-01T00:00:00Z"},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2027-01-01T00:00:05Z"}]}
        }))
    }

    /// A Service of `app=web` on port 80 to `target`.
    pub fn service(target: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"team": "a"},
                "creationTimestamp": "2027-01-01T00:00:00Z"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.9",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": target}]}})
    }

    #[test]
    fn backends_have_an_ip_and_have_not_finished() {
        let mut done = (*pod("done", "10.0.0.3", false)).clone();
        done["status"]["phase"] = json!("Succeeded");
        let mut other = (*pod("other", "10.0.0.4", true)).clone();
        other["metadata"]["labels"]["app"] = json!("db");
        let pods = vec![
            pod("b", "10.0.0.2", false),
            pod("a", "10.0.0.1", true),
            pod("no-ip", "", true),
            Arc::new(done),
            Arc::new(other),
        ];
        let svc = service(json!(8080));
        let found = backends(managed_selector(&svc).expect("selector"), &pods);
        let names: Vec<(&str, bool)> = found.iter().map(|b| (meta::name(b.pod), b.serving)).collect();
        assert_eq!(names, [("a", true), ("b", false)]);
        assert_eq!(trigger_time(&svc, &found), "2027-01-01T00:00:05Z");
    }

    #[test]
    fn only_services_with_a_selector_are_managed() {
        let mut svc = service(json!(80));
        assert!(managed_selector(&svc).is_some());
        svc["spec"]["selector"] = json!({});
        assert!(managed_selector(&svc).is_none());
        svc["spec"]["selector"] = json!({"app": "web"});
        svc["spec"]["type"] = json!("ExternalName");
        assert!(managed_selector(&svc).is_none());
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_protocol() {
        let p = pod("a", "10.0.0.1", true);
        let ports = resolve_ports(&service(json!("http")), &p);
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[0].name, "http");
        assert!(resolve_ports(&service(json!("grpc")), &p).is_empty());
        let mut udp = service(json!("http"));
        udp["spec"]["ports"][0]["protocol"] = json!("UDP");
        assert!(resolve_ports(&udp, &p).is_empty(), "the pod's http port is TCP");
        assert_eq!(resolve_ports(&service(json!(9090)), &p)[0].port, 9090);
    }
}
