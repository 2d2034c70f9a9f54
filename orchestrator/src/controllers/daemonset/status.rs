//! A DaemonSet's status, counted per node as upstream's `updateDaemonSetStatus` does: each
//! eligible node with a daemon counts once, judged by its oldest pod; the counts are what
//! `kubectl get ds` and `kubectl rollout status ds/x` read.

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};

use super::hash_of;
use crate::{
    api::ResourceType,
    client::Client,
    controllers::replicaset::{is_ready, until_available, write_counts},
};

const FIELDS: [&str; 8] = [
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberMisscheduled",
    "numberReady",
    "numberAvailable",
    "numberUnavailable",
    "updatedNumberScheduled",
    "observedGeneration",
];

/// The status counts, and when a Ready pod will have been Ready for `minReadySeconds`.
pub fn compute(
    ds: &Value,
    by_node: &BTreeMap<&str, Vec<&Value>>,
    eligible: &[&str],
    hash: &str,
    now: jiff::Timestamp,
) -> (Value, Option<Duration>) {
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let (mut current, mut ready, mut available, mut updated) = (0, 0, 0, 0);
    let mut next: Option<Duration> = None;
    for node in eligible {
        let Some(pod) = by_node.get(node).and_then(|pods| pods.first()) else { continue };
        current += 1;
        if is_ready(pod) {
            ready += 1;
            match until_available(pod, min_ready, now) {
                Some(wait) if wait.is_zero() => available += 1,
                Some(wait) => next = Some(next.map_or(wait, |n| n.min(wait))),
                None => {}
            }
        }
        updated += i64::from(hash_of(pod) == hash);
    }
    let misscheduled =
        by_node.iter().filter(|(node, pods)| !pods.is_empty() && !eligible.contains(node)).count();
    let desired = eligible.len() as i64;
    let status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": (desired - available).max(0),
        "updatedNumberScheduled": updated,
        "observedGeneration": ds["metadata"]["generation"].as_i64().unwrap_or(0),
    });
    // One second late rather than early: the timestamps have whole seconds.
    (status, next.map(|n| n + Duration::from_secs(1)))
}

/// Write the status when a count changed; returns when to look again.
pub async fn update(
    client: &Client,
    ds_type: &ResourceType,
    ds: &Value,
    by_node: &BTreeMap<&str, Vec<&Value>>,
    eligible: &[&str],
    hash: &str,
) -> Option<Duration> {
    let (status, next) = compute(ds, by_node, eligible, hash, jiff::Timestamp::now());
    write_counts(client, ds_type, ds, status, &FIELDS).await;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::daemonset::placement::REVISION_HASH;

    fn pod(hash: &str, ready: bool) -> Value {
        json!({"metadata": {"labels": {REVISION_HASH: hash}}, "status": {"conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2027-01-01T00:00:00Z"}]}})
    }

    #[test]
    fn counts_are_per_node() {
        let (a, b, c) = (pod("h2", true), pod("h1", false), pod("h2", true));
        let by_node = BTreeMap::from([("a", vec![&a]), ("b", vec![&b]), ("gone", vec![&c])]);
        let ds = json!({"metadata": {"generation": 4}, "spec": {}});
        let now = "2027-01-01T00:01:00Z".parse().expect("time");
        let (status, next) = compute(&ds, &by_node, &["a", "b", "new"], "h2", now);
        assert_eq!(
            status,
            json!({"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1, "numberReady": 1,
                "numberAvailable": 1, "numberUnavailable": 2, "updatedNumberScheduled": 1, "observedGeneration": 4})
        );
        assert_eq!(next, None);
        let slow = json!({"metadata": {"generation": 1}, "spec": {"minReadySeconds": 100}});
        let (status, next) = compute(&slow, &by_node, &["a"], "h2", now);
        assert_eq!(status["numberAvailable"], 0);
        assert_eq!(next, Some(Duration::from_secs(41)));
    }
}
