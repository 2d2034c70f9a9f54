//! Node lifecycle: a node whose agent stopped posting heartbeats is marked `Ready=Unknown`
//! (reason `NodeStatusUnknown`, as kube-controller-manager does after its grace period), so the
//! scheduler stops placing pods there. The agent's next heartbeat makes it Ready again.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

/// How long a node may go without a heartbeat (agents post one every 10 s).
pub const GRACE: Duration = Duration::from_secs(40);

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let Some(node_type) = find_by_kind("v1", "Node") else { return };
    let changed = Arc::new(Notify::new());
    let nodes = informer::spawn(client.clone(), node_type, None, changed.clone());
    nodes.wait_synced().await;
    loop {
        for node in nodes.list() {
            if let Some(silent_for) = stale(&node) {
                let message =
                    format!("wasmkube agent stopped posting node status {}s ago.", silent_for.as_secs());
                let ready = json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": message,
                    "lastHeartbeatTime": node_ready(&node)["lastHeartbeatTime"], "lastTransitionTime": meta::now()});
                let patch = json!({"status": {"conditions": [ready]}});
                match client
                    .patch(node_type, None, meta::name(&node), Some("status"), PatchType::Merge, &patch)
                    .await
                {
                    Ok(_) => info!(node = meta::name(&node), "node stopped reporting; marked Ready=Unknown"),
                    Err(e) => warn!(node = meta::name(&node), error = %e, "marking node unknown failed"),
                }
            }
        }
        // Heartbeats are changes too, so this also wakes up at least every RESYNC.
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(GRACE / 4) => {}
        }
    }
}

fn node_ready(node: &Value) -> &Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .unwrap_or(&Value::Null)
}

/// How long a Ready node has been silent, if longer than the grace period.
fn stale(node: &Value) -> Option<Duration> {
    let ready = node_ready(node);
    if ready["status"] != "True" {
        return None;
    }
    let last = ready["lastHeartbeatTime"].as_str().and_then(meta::parse_time)?;
    let silent = jiff::Timestamp::now().duration_since(last);
    let silent = Duration::try_from(silent).ok()?;
    (silent > GRACE).then_some(silent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(status: &str, heartbeat: jiff::Timestamp) -> Value {
        json!({"status": {"conditions": [{"type": "Ready", "status": status, "lastHeartbeatTime": heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}]}})
    }

    #[test]
    fn only_silent_ready_nodes_are_stale() {
        let now = jiff::Timestamp::now();
        let long_ago = now.checked_sub(jiff::SignedDuration::from_secs(120)).expect("time");
        assert!(stale(&node("True", now)).is_none());
        assert!(stale(&node("True", long_ago)).is_some());
        assert!(stale(&node("Unknown", long_ago)).is_none(), "already marked");
        assert!(stale(&json!({})).is_none());
    }
}
