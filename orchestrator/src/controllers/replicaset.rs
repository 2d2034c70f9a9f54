//! The ReplicaSet controller: keeps the number of live pods owned by each ReplicaSet at
//! `spec.replicas`, and reports counts in its status. Expectations (pods it created or deleted
//! that the cache has not shown yet) stop it from acting twice on a stale cache. A pod counts as
//! available once it has been Ready for `spec.minReadySeconds`. The same loop runs the legacy
//! ReplicationController, which differs only in its selector's shape (a plain label map) and
//! the component its events name (`Flavor`).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, instrument, warn};

use super::events::{EventKind, emit};
use crate::{
    api::{ResourceType, find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

const EXPECTATION_TTL: Duration = Duration::from_secs(30);
/// Most pod creates in flight at once (the API client's own cap is 32 requests).
const MAX_CREATES_AT_ONCE: usize = 16;

/// Pods a controller created or deleted that its cache has not shown yet.
pub(crate) struct Expectation {
    pub created: HashSet<String>,
    pub deleted: HashSet<String>,
    since: Instant,
}

impl Expectation {
    pub fn new() -> Self {
        Self { created: HashSet::new(), deleted: HashSet::new(), since: Instant::now() }
    }

    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.deleted.is_empty()
    }
}

/// What tells the two kinds this controller keeps apart.
#[derive(Clone, Copy)]
pub struct Flavor {
    api_version: &'static str,
    kind: &'static str,
    /// The `source.component` of its events, as upstream's controller manager names it.
    component: &'static str,
    /// The label map its pods must carry.
    selector: fn(&Value) -> &Value,
}

/// apps/v1 ReplicaSet: `spec.selector` is a LabelSelector.
pub const REPLICA_SET: Flavor = Flavor {
    api_version: "apps/v1",
    kind: "ReplicaSet",
    component: "replicaset-controller",
    selector: match_labels,
};

/// v1 ReplicationController: `spec.selector` is the label map itself.
pub const REPLICATION_CONTROLLER: Flavor = Flavor {
    api_version: "v1",
    kind: "ReplicationController",
    component: "replication-controller",
    selector: label_map,
};

fn match_labels(rs: &Value) -> &Value {
    &rs["spec"]["selector"]["matchLabels"]
}

fn label_map(rc: &Value) -> &Value {
    &rc["spec"]["selector"]
}

/// Run the ReplicaSet controller until the process ends.
pub async fn run(client: Client) {
    run_flavor(client, REPLICA_SET).await
}

/// Run the ReplicationController controller until the process ends.
pub async fn run_replication_controllers(client: Client) {
    run_flavor(client, REPLICATION_CONTROLLER).await
}

async fn run_flavor(client: Client, flavor: Flavor) {
    let (Some(rs_type), Some(pod_type)) =
        (find_by_kind(flavor.api_version, flavor.kind), find_by_kind("v1", "Pod"))
    else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let replicasets = informer::spawn(client.clone(), rs_type, None, changed.clone());
    let pods = informer::spawn(client.clone(), pod_type, None, changed.clone());
    replicasets.wait_synced().await;
    pods.wait_synced().await;
    let mut expectations: HashMap<String, Expectation> = HashMap::new();
    let mut rounds = crate::controllers::Rounds::new();
    loop {
        let wake = rounds
            .timed(async {
                let all_pods = pods.list();
                let mut wake: Option<Duration> = None;
                for rs in replicasets.list() {
                    let after =
                        reconcile(&client, flavor, rs_type, pod_type, &rs, &all_pods, &mut expectations)
                            .await;
                    if let Some(after) = after {
                        wake = Some(wake.map_or(after, |w| w.min(after)));
                    }
                }
                wake
            })
            .await;
        rounds.next_until(&changed, wake.map(|w| Instant::now() + w)).await;
    }
}

/// Pods that count toward a ReplicaSet: owned by it, not being deleted, not finished.
pub fn owned_pods<'a>(owner_uid: &str, pods: &'a [Arc<Value>]) -> Vec<&'a Value> {
    pods.iter()
        .map(|p| &**p)
        .filter(|p| meta::controller_ref(p).is_some_and(|r| r["uid"] == owner_uid))
        .filter(|p| {
            !meta::is_terminating(p) && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        })
        .collect()
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// How long until a Ready pod counts as available: it must have been Ready for
/// `min_ready_seconds` (zero when it already is, `None` when it is not Ready).
pub fn until_available(pod: &Value, min_ready_seconds: i64, now: jiff::Timestamp) -> Option<Duration> {
    let ready = pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")?;
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let since = ready["lastTransitionTime"].as_str().and_then(crate::api::meta::parse_time)?;
    let ready_for = now.duration_since(since).as_secs().max(0);
    Some(Duration::from_secs((min_ready_seconds - ready_for).max(0) as u64))
}

/// Whether the cache shows everything `exp` waits for (or it waited long enough).
pub(crate) fn satisfied(exp: &Expectation, pods: &[Arc<Value>], ns: &str) -> bool {
    let present: HashSet<String> = pods
        .iter()
        .filter(|p| meta::namespace(p) == ns && !meta::is_terminating(p))
        .map(|p| meta::name(p).to_string())
        .collect();
    exp.since.elapsed() > EXPECTATION_TTL
        || (exp.created.iter().all(|c| present.contains(c))
            && exp.deleted.iter().all(|d| !present.contains(d)))
}

#[instrument(skip_all, fields(kind = flavor.kind, name = %meta::key_of(rs)))]
async fn reconcile(
    client: &Client,
    flavor: Flavor,
    rs_type: &ResourceType,
    pod_type: &ResourceType,
    rs: &Value,
    pods: &[Arc<Value>],
    expectations: &mut HashMap<String, Expectation>,
) -> Option<Duration> {
    let uid = meta::uid(rs).to_string();
    let ns = meta::namespace(rs).to_string();
    if let Some(exp) = expectations.get(&uid) {
        if !satisfied(exp, pods, &ns) {
            return None;
        }
        expectations.remove(&uid);
    }
    let owned = owned_pods(&uid, pods);
    // A terminating ReplicaSet is left to the garbage collector (Foreground deletes its pods,
    // Orphan keeps them), as upstream's controller stops managing it.
    if meta::is_terminating(rs) {
        return None;
    }
    let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let mut exp = Expectation::new();
    if owned.len() < desired {
        // Upstream's slow start: batches of 1, 2, 4, ... creates at once, stopping at the first
        // batch with a failure, so a template the API refuses costs one request, not hundreds.
        let template = pod_from_template(rs);
        let mut left = desired - owned.len();
        let mut batch = 1;
        while left > 0 {
            let size = batch.min(left);
            let results =
                futures::future::join_all((0..size).map(|_| client.create(pod_type, Some(&ns), &template)))
                    .await;
            let mut failed = false;
            for result in results {
                match result {
                    Ok(pod) => {
                        info!(pod = meta::name(&pod), "created pod");
                        let message = format!("Created pod: {}", meta::name(&pod));
                        emit(client, rs, EventKind::Normal, "SuccessfulCreate", &message, flavor.component);
                        exp.created.insert(meta::name(&pod).to_string());
                    }
                    Err(e) => {
                        warn!(error = %e, "creating pod failed");
                        let message = format!("Error creating: {e}");
                        emit(client, rs, EventKind::Warning, "FailedCreate", &message, flavor.component);
                        failed = true;
                    }
                }
            }
            if failed {
                break;
            }
            left -= size;
            batch = (batch * 2).min(MAX_CREATES_AT_ONCE);
        }
    } else if owned.len() > desired {
        let mut victims = owned.clone();
        // Delete the least useful first: unscheduled, then not ready, then the newest.
        victims.sort_by_key(|p| {
            let scheduled = p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
            let created = p["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string();
            (scheduled, is_ready(p), std::cmp::Reverse(created))
        });
        for pod in victims.into_iter().take(owned.len() - desired) {
            match client.delete(pod_type, Some(&ns), meta::name(pod), None).await {
                Ok(_) => {
                    emit(
                        client,
                        rs,
                        EventKind::Normal,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {}", meta::name(pod)),
                        flavor.component,
                    );
                    exp.deleted.insert(meta::name(pod).to_string());
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(error = %e, pod = meta::name(pod), "deleting pod failed"),
            }
        }
    }
    if !exp.is_empty() {
        expectations.insert(uid, exp);
    }
    update_status(client, flavor, rs_type, rs, &owned).await
}

fn pod_from_template(rs: &Value) -> Value {
    let template = &rs["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["generateName"] = json!(format!("{}-", meta::name(rs)));
    metadata["namespace"] = json!(meta::namespace(rs));
    metadata["ownerReferences"] = json!([meta::owner_reference(rs)]);
    if let Some(m) = metadata.as_object_mut() {
        m.remove("name");
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

/// Write the counts; returns when a Ready pod will have been Ready for `minReadySeconds`, as the
/// available count changes then without any event.
async fn update_status(
    client: &Client,
    flavor: Flavor,
    rs_type: &ResourceType,
    rs: &Value,
    owned: &[&Value],
) -> Option<Duration> {
    let ready = owned.iter().filter(|p| is_ready(p)).count();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = jiff::Timestamp::now();
    let waits: Vec<Duration> = owned.iter().filter_map(|p| until_available(p, min_ready, now)).collect();
    let available = waits.iter().filter(|w| w.is_zero()).count();
    // One second late rather than early: the timestamps have whole seconds.
    let next = waits.iter().filter(|w| !w.is_zero()).min().map(|w| *w + Duration::from_secs(1));
    let selector = (flavor.selector)(rs).as_object().cloned().unwrap_or_default();
    let labeled =
        owned.iter().filter(|p| selector.iter().all(|(k, v)| p["metadata"]["labels"][k] == *v)).count();
    let status = json!({
        "replicas": owned.len(),
        "fullyLabeledReplicas": labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs["metadata"]["generation"],
    });
    let fields =
        ["replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"];
    write_counts(client, rs_type, rs, status, &fields).await;
    next
}

/// Patch `status` onto `obj` through its status subresource, unless every one of the integer
/// `fields` already has that value: controllers write counts every round, most often unchanged.
pub(crate) async fn write_counts(
    client: &Client,
    rt: &ResourceType,
    obj: &Value,
    status: Value,
    fields: &[&str],
) {
    let current = &obj["status"];
    if fields.iter().all(|k| current[*k].as_i64().unwrap_or(0) == status[*k].as_i64().unwrap_or(0)) {
        return;
    }
    let patch = json!({"status": status});
    if let Err(e) = client
        .patch(rt, Some(meta::namespace(obj)), meta::name(obj), Some("status"), PatchType::Merge, &patch)
        .await
        && !e.is_not_found()
    {
        warn!(error = %e, kind = rt.kind, "updating status failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_available_only_after_min_ready_seconds() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-15T08:00:00Z"}]}});
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        assert_eq!(until_available(&pod, 0, at("2027-01-15T08:00:00Z")), Some(Duration::ZERO));
        assert_eq!(until_available(&pod, 10, at("2027-01-15T08:00:04Z")), Some(Duration::from_secs(6)));
        assert_eq!(until_available(&pod, 10, at("2027-01-15T08:00:30Z")), Some(Duration::ZERO));
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert_eq!(until_available(&not_ready, 0, at("2027-01-15T08:00:00Z")), None);
    }
}
