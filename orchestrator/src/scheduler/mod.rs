//! The scheduler: binds each pending pod to a Ready node. Filters: node Ready, schedulable,
//! `nodeSelector` matches, no untolerated NoSchedule taint. Score: fewest pods already bound
//! (spreads replicas across nodes). Binding goes through `pods/{name}/binding`, like upstream.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{ResourceType, find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
    controllers::events::{EventKind, emit},
};

/// Run the scheduler until the process ends.
pub async fn run(client: Client) {
    let (Some(pod_type), Some(node_type)) = (find_by_kind("v1", "Pod"), find_by_kind("v1", "Node")) else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let pods = informer::spawn(client.clone(), pod_type, None, changed.clone());
    let nodes = informer::spawn(client.clone(), node_type, None, changed.clone());
    pods.wait_synced().await;
    nodes.wait_synced().await;
    let mut state = RoundState::default();
    let mut rounds = crate::controllers::Rounds::new();
    loop {
        rounds.timed(schedule_round(&client, pod_type, &pods.list(), &nodes.list(), &mut state)).await;
        rounds.next(&changed).await;
    }
}

/// What the scheduler remembers between rounds.
#[derive(Default)]
struct RoundState {
    /// Pods already reported unschedulable (one event each, not one per round).
    reported: HashSet<String>,
    /// Pods bound by us that the cache does not show as bound yet: uid → node.
    bound_here: HashMap<String, String>,
}

/// Most bindings in flight at once: they are independent writes, and the store commits
/// concurrent writes together.
const PARALLEL_BINDINGS: usize = 32;

async fn schedule_round(
    client: &Client,
    pod_type: &'static ResourceType,
    all_pods: &[Arc<Value>],
    all_nodes: &[Arc<Value>],
    state: &mut RoundState,
) {
    // Count pods per node, including bindings the cache has not shown yet.
    let mut load: HashMap<String, usize> = HashMap::new();
    for p in all_pods {
        if let Some(n) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            *load.entry(n.to_string()).or_default() += 1;
        }
    }
    state.bound_here.retain(|uid, _| {
        all_pods
            .iter()
            .any(|p| meta::uid(p) == uid && p["spec"]["nodeName"].as_str().is_none_or(str::is_empty))
    });
    for node in state.bound_here.values() {
        *load.entry(node.clone()).or_default() += 1;
    }
    let mut assignments = Vec::new();
    for pod in all_pods.iter().filter(|p| needs_scheduling(p) && !state.bound_here.contains_key(meta::uid(p)))
    {
        match pick_node(pod, all_nodes, &load) {
            Some(node) => {
                *load.entry(node.clone()).or_default() += 1;
                assignments.push((pod, node));
            }
            None if state.reported.insert(meta::uid(pod).to_string()) => {
                report_unschedulable(client, pod_type, pod, all_nodes.len()).await
            }
            None => {}
        }
    }
    // Built eagerly: a lazy `map` closure held across the await trips rustc's Send check.
    let binds: Vec<_> = assignments
        .into_iter()
        .map(|(pod, node)| async move {
            let ok = bind(client, pod_type, pod, &node).await;
            (pod, node, ok)
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(binds).buffer_unordered(PARALLEL_BINDINGS).collect().await;
    for (pod, node, ok) in results {
        if ok {
            state.bound_here.insert(meta::uid(pod).to_string(), node);
            state.reported.remove(meta::uid(pod));
        }
    }
}

/// `POST pods/{name}/binding`; true when bound.
async fn bind(client: &Client, pod_type: &ResourceType, pod: &Value, node: &str) -> bool {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta::name(pod)}, "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    let path = format!(
        "{}/binding",
        Client::path(pod_type, Some(meta::namespace(pod)), Some(meta::name(pod)), None)
    );
    match client.request(reqwest::Method::POST, &path, Some(("application/json", &binding)), None).await {
        Ok(_) => {
            info!(pod = %meta::key_of(pod), node, "bound pod");
            emit(
                client,
                pod,
                EventKind::Normal,
                "Scheduled",
                &format!("Successfully assigned {} to {node}", meta::key_of(pod)),
                "default-scheduler",
            );
            true
        }
        Err(e) => {
            warn!(pod = %meta::key_of(pod), error = %e, "binding failed");
            false
        }
    }
}

async fn report_unschedulable(client: &Client, pod_type: &ResourceType, pod: &Value, node_count: usize) {
    let message = format!(
        "0/{node_count} nodes are available: no Ready node matches the pod's node selector and tolerations."
    );
    emit(client, pod, EventKind::Warning, "FailedScheduling", &message, "default-scheduler");
    let status = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastTransitionTime": meta::now(), "lastProbeTime": null}]}});
    if let Err(e) = client
        .patch(
            pod_type,
            Some(meta::namespace(pod)),
            meta::name(pod),
            Some("status"),
            PatchType::Merge,
            &status,
        )
        .await
    {
        warn!(pod = %meta::key_of(pod), error = %e, "reporting unschedulable failed");
    }
}

fn needs_scheduling(pod: &Value) -> bool {
    pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
        && !meta::is_terminating(pod)
        && pod["spec"]["schedulerName"].as_str().is_none_or(|s| s == "default-scheduler")
}

/// Whether a node can take the pod.
pub fn fits(pod: &Value, node: &Value) -> bool {
    let ready = node["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    let schedulable = node["spec"]["unschedulable"].as_bool() != Some(true);
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .is_none_or(|sel| sel.iter().all(|(k, v)| node["metadata"]["labels"][k] == *v));
    let tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    let taints_ok = node["spec"]["taints"].as_array().is_none_or(|taints| {
        taints.iter().filter(|t| t["effect"] == "NoSchedule" || t["effect"] == "NoExecute").all(|t| {
            tolerations.iter().any(|tol| {
                let key_ok = tol["key"].is_null() && tol["operator"] == "Exists" || tol["key"] == t["key"];
                let value_ok = tol["operator"] == "Exists" || tol["value"] == t["value"];
                let effect_ok = tol["effect"].is_null() || tol["effect"] == t["effect"];
                key_ok && value_ok && effect_ok
            })
        })
    });
    ready && schedulable && selector_ok && taints_ok
}

fn pick_node(pod: &Value, nodes: &[Arc<Value>], load: &HashMap<String, usize>) -> Option<String> {
    nodes
        .iter()
        .filter(|n| fits(pod, n))
        .min_by_key(|n| (load.get(meta::name(n)).copied().unwrap_or(0), meta::name(n).to_string()))
        .map(|n| meta::name(n).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: bool, labels: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn picks_least_loaded_ready_matching_node() {
        let nodes: Vec<Arc<Value>> = [
            node("a", true, json!({"zone": "x"})),
            node("b", true, json!({"zone": "y"})),
            node("c", false, json!({"zone": "x"})),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let pod = json!({"spec": {}});
        let load = HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(pick_node(&pod, &nodes, &load).as_deref(), Some("b"));
        let pinned = json!({"spec": {"nodeSelector": {"zone": "x"}}});
        assert_eq!(pick_node(&pinned, &nodes, &load).as_deref(), Some("a"));
        let nowhere = json!({"spec": {"nodeSelector": {"zone": "z"}}});
        assert_eq!(pick_node(&nowhere, &nodes, &load), None);
    }

    #[test]
    fn taints_need_tolerations() {
        let mut tainted = node("t", true, json!({}));
        tainted["spec"] = json!({"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]});
        assert!(!fits(&json!({"spec": {}}), &tainted));
        assert!(fits(
            &json!({"spec": {"tolerations": [{"key": "k", "operator": "Equal", "value": "v"}]}}),
            &tainted
        ));
    }
}
