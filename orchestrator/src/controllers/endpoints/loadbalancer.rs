//! Load-balancer status without a cloud, like k3s's ServiceLB: a Service of type LoadBalancer
//! is reached on every node's address (the node proxy serves its node ports there), so its
//! `status.loadBalancer.ingress` lists each Ready node's InternalIP with `ipMode: VIP`; a Service
//! that names a `loadBalancerClass` is left to that class's controller, and one that stops being
//! a LoadBalancer has the status cleared. An Ingress of our class (its IngressClass names the
//! controller `wasmkube.dev/ingress`, or it names no class and the default class is ours) gets
//! the same addresses. The `wasmkube` IngressClass, marked default, is created at start when it
//! does not exist; an existing one (edited or not) is left as it is.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, instrument, warn};

use crate::{
    api::{ResourceType, find_by_kind, meta, networking::DEFAULT_CLASS_ANNOTATION, patch::PatchType},
    client::{Client, informer},
};

/// The `spec.controller` of the IngressClasses the node proxy serves.
pub const INGRESS_CONTROLLER: &str = "wasmkube.dev/ingress";
/// The IngressClass created at start.
pub const INGRESS_CLASS: &str = "wasmkube";
/// How soon to try creating the IngressClass again after a failure.
const RETRY: Duration = Duration::from_secs(5);

struct Types {
    svc: &'static ResourceType,
    ingress: &'static ResourceType,
    class: &'static ResourceType,
}

/// Run the controller until the process ends.
pub(super) async fn run(client: Client) {
    let (Some(svc), Some(node), Some(ingress), Some(class)) = (
        find_by_kind("v1", "Service"),
        find_by_kind("v1", "Node"),
        find_by_kind("networking.k8s.io/v1", "Ingress"),
        find_by_kind("networking.k8s.io/v1", "IngressClass"),
    ) else {
        return;
    };
    let types = Types { svc, ingress, class };
    let changed = Arc::new(Notify::new());
    let services = informer::spawn(client.clone(), svc, None, changed.clone());
    let nodes = informer::spawn(client.clone(), node, None, changed.clone());
    let ingresses = informer::spawn(client.clone(), ingress, None, changed.clone());
    let classes = informer::spawn(client.clone(), class, None, changed.clone());
    for cache in [&services, &nodes, &ingresses, &classes] {
        cache.wait_synced().await;
    }
    let mut class_made = false;
    let mut rounds = crate::controllers::Rounds::new();
    loop {
        if !class_made {
            class_made = classes.get(INGRESS_CLASS).is_some() || make_class(&client, types.class).await;
        }
        let addresses = node_addresses(&nodes.list());
        let all_classes = classes.list();
        rounds
            .timed(async {
                for svc in services.list() {
                    if let Some(ingress) = service_status(&svc, &addresses) {
                        write_status(&client, types.svc, &svc, ingress).await;
                    }
                }
                for ing in ingresses.list() {
                    if is_ours(&ing, &all_classes) {
                        let wanted = Value::Array(addresses.iter().map(|ip| json!({"ip": ip})).collect());
                        if ing["status"]["loadBalancer"]["ingress"] != wanted {
                            write_status(&client, types.ingress, &ing, wanted).await;
                        }
                    }
                }
            })
            .await;
        rounds.next_until(&changed, (!class_made).then(|| Instant::now() + RETRY)).await;
    }
}

/// The InternalIPs of the Ready nodes, sorted, each once.
fn node_addresses(nodes: &[Arc<Value>]) -> Vec<String> {
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .flat_map(|n| {
            let addresses = n["status"]["addresses"].as_array().cloned().unwrap_or_default();
            addresses
                .into_iter()
                .filter(|a| a["type"] == "InternalIP")
                .filter_map(|a| a["address"].as_str().map(str::to_string))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `status.loadBalancer.ingress` a Service should have, when it differs from what it has
/// (`null` clears it).
fn service_status(svc: &Value, addresses: &[String]) -> Option<Value> {
    if meta::is_terminating(svc) {
        return None;
    }
    let spec = &svc["spec"];
    let current = &svc["status"]["loadBalancer"]["ingress"];
    let has_status = current.as_array().is_some_and(|l| !l.is_empty());
    let wanted = if spec["type"] == "LoadBalancer" {
        if spec["loadBalancerClass"].is_string() {
            return None;
        }
        Value::Array(addresses.iter().map(|ip| json!({"ip": ip, "ipMode": "VIP"})).collect())
    } else if has_status {
        Value::Null
    } else {
        return None;
    };
    let unchanged = match &wanted {
        Value::Array(list) if list.is_empty() => !has_status,
        _ => *current == wanted,
    };
    (!unchanged).then_some(wanted)
}

/// Whether the Ingress is for our controller (the node proxies serve the same ones).
fn is_ours(ing: &Value, classes: &[Arc<Value>]) -> bool {
    crate::api::networking::ingress_is_for(ing, classes.iter().map(|c| &**c), INGRESS_CONTROLLER)
}

#[instrument(skip_all, fields(kind = rt.kind, object = %meta::key_of(obj)))]
async fn write_status(client: &Client, rt: &ResourceType, obj: &Value, ingress: Value) {
    let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
    match client
        .patch(rt, Some(meta::namespace(obj)), meta::name(obj), Some("status"), PatchType::Merge, &patch)
        .await
    {
        Ok(_) => info!(addresses = %ingress, "load-balancer status updated"),
        Err(e) if e.is_not_found() => {}
        Err(e) => warn!(error = %e, "updating the load-balancer status failed"),
    }
}

/// Create the `wasmkube` IngressClass; true when it exists now.
async fn make_class(client: &Client, rt: &ResourceType) -> bool {
    let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "spec": {"controller": INGRESS_CONTROLLER}});
    match client.create(rt, None, &class).await {
        Ok(_) => {
            info!(class = INGRESS_CLASS, "created the default IngressClass");
            true
        }
        Err(e) if e.code == 409 => true,
        Err(e) => {
            warn!(error = %e, "creating the IngressClass failed; retrying");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ip: &str, ready: &str) -> Arc<Value> {
        Arc::new(json!({"status": {"conditions": [{"type": "Ready", "status": ready}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": "n"}]}}))
    }

    #[test]
    fn load_balancers_get_the_ready_nodes_addresses() {
        let addresses = node_addresses(&[
            node("192.168.1.9", "True"),
            node("192.168.1.2", "True"),
            node("10.0.0.1", "Unknown"),
        ]);
        assert_eq!(addresses, ["192.168.1.2", "192.168.1.9"]);
        let mut svc = json!({"spec": {"type": "LoadBalancer"}, "status": {}});
        let wanted = service_status(&svc, &addresses).expect("write");
        assert_eq!(
            wanted,
            json!([{"ip": "192.168.1.2", "ipMode": "VIP"}, {"ip": "192.168.1.9", "ipMode": "VIP"}])
        );
        svc["status"]["loadBalancer"]["ingress"] = wanted;
        assert_eq!(service_status(&svc, &addresses), None, "unchanged");
        svc["spec"]["type"] = json!("ClusterIP");
        assert_eq!(service_status(&svc, &addresses), Some(Value::Null), "cleared");
        let classed = json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb"}});
        assert_eq!(service_status(&classed, &addresses), None);
        let no_nodes = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(service_status(&no_nodes, &[]), None, "nothing to write yet");
    }

    #[test]
    fn ingresses_of_our_class_or_the_default_one_are_ours() {
        let class = |name: &str, controller: &str, default: bool| {
            let annotations = if default { json!({DEFAULT_CLASS_ANNOTATION: "true"}) } else { json!({}) };
            Arc::new(
                json!({"metadata": {"name": name, "annotations": annotations}, "spec": {"controller": controller}}),
            )
        };
        let classes =
            [class("wasmkube", INGRESS_CONTROLLER, true), class("nginx", "k8s.io/ingress-nginx", false)];
        assert!(is_ours(&json!({"spec": {"ingressClassName": "wasmkube"}}), &classes));
        assert!(!is_ours(&json!({"spec": {"ingressClassName": "nginx"}}), &classes));
        assert!(is_ours(&json!({"spec": {}}), &classes), "the default class is ours");
        assert!(!is_ours(
            &json!({"metadata": {"annotations": {crate::api::networking::CLASS_ANNOTATION: "nginx"}}, "spec": {}}),
            &classes
        ));
        let not_default = [class("wasmkube", INGRESS_CONTROLLER, false)];
        assert!(!is_ours(&json!({"spec": {}}), &not_default));
    }
}
