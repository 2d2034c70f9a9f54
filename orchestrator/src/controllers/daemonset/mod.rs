//! The DaemonSet controller: one pod per eligible node (`placement`), created bound to it;
//! pods follow nodes as they join, change labels or taints, and leave. A template change rolls
//! out by `updateStrategy`: `RollingUpdate` replaces pods within `maxUnavailable`/`maxSurge`
//! (`rolling`), `OnDelete` only gives deleted pods the new template. Each template is kept as a
//! ControllerRevision (`history`) for `kubectl rollout history|undo`; pods carry its hash.
//!
//! Every round works from the informer caches; pods it created or deleted that the cache does
//! not show yet (expectations, shared with the ReplicaSet controller) hold the DaemonSet until
//! they do, so a stale cache never makes it create a second pod for a node.

mod history;
mod placement;
mod rolling;
mod status;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::sync::Notify;
use tracing::{info, instrument, warn};

use self::placement::REVISION_HASH;
use super::{
    events::{EventKind, emit},
    replicaset::{Expectation, satisfied, until_available},
};
use crate::{
    api::{ResourceType, find_by_kind, meta},
    client::{Client, informer},
};

const COMPONENT: &str = "daemonset-controller";

struct Controller {
    client: Client,
    ds_type: &'static ResourceType,
    pod_type: &'static ResourceType,
    node_type: &'static ResourceType,
    cr_type: &'static ResourceType,
    expectations: HashMap<String, Expectation>,
}

/// The caches one round reads.
struct World {
    pods: Vec<Arc<Value>>,
    nodes: Vec<Arc<Value>>,
    revisions: Vec<Arc<Value>>,
}

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let (Some(ds_type), Some(pod_type), Some(node_type), Some(cr_type)) = (
        find_by_kind("apps/v1", "DaemonSet"),
        find_by_kind("v1", "Pod"),
        find_by_kind("v1", "Node"),
        find_by_kind("apps/v1", "ControllerRevision"),
    ) else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let daemonsets = informer::spawn(client.clone(), ds_type, None, changed.clone());
    let pods = informer::spawn(client.clone(), pod_type, None, changed.clone());
    let nodes = informer::spawn(client.clone(), node_type, None, changed.clone());
    let revisions = informer::spawn(client.clone(), cr_type, None, changed.clone());
    for cache in [&daemonsets, &pods, &nodes, &revisions] {
        cache.wait_synced().await;
    }
    let mut controller =
        Controller { client, ds_type, pod_type, node_type, cr_type, expectations: HashMap::new() };
    let mut rounds = crate::controllers::Rounds::new();
    loop {
        let world = World { pods: pods.list(), nodes: nodes.list(), revisions: revisions.list() };
        let all = daemonsets.list();
        let live: HashSet<&str> = all.iter().map(|ds| meta::uid(ds)).collect();
        controller.expectations.retain(|uid, _| live.contains(uid.as_str()));
        let wake = rounds
            .timed(async {
                let mut wake: Option<Duration> = None;
                for ds in all.iter().filter(|ds| !meta::is_terminating(ds)) {
                    if let Some(after) = controller.reconcile(ds, &world).await {
                        wake = Some(wake.map_or(after, |w| w.min(after)));
                    }
                }
                wake
            })
            .await;
        rounds.next_until(&changed, wake.map(|w| Instant::now() + w)).await;
    }
}

/// A DaemonSet's pods, split the way a round acts on them.
struct Owned<'a> {
    /// Live pods by node name, oldest first.
    by_node: BTreeMap<&'a str, Vec<&'a Value>>,
    /// Failed or Succeeded pods: a daemon should not end, so they are replaced.
    finished: Vec<&'a Value>,
}

fn owned_pods<'a>(ds: &Value, pods: &'a [Arc<Value>]) -> Owned<'a> {
    let uid = meta::uid(ds);
    let mut owned = Owned { by_node: BTreeMap::new(), finished: Vec::new() };
    for pod in pods.iter().map(|p| &**p) {
        if meta::is_terminating(pod) || meta::controller_ref(pod).is_none_or(|r| r["uid"] != uid) {
            continue;
        }
        if matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            owned.finished.push(pod);
        } else {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            owned.by_node.entry(node).or_default().push(pod);
        }
    }
    for list in owned.by_node.values_mut() {
        list.sort_by(|a, b| created_at(a).cmp(created_at(b)).then(meta::name(a).cmp(meta::name(b))));
    }
    owned
}

fn created_at(pod: &Value) -> &str {
    pod["metadata"]["creationTimestamp"].as_str().unwrap_or("")
}

fn hash_of(pod: &Value) -> &str {
    pod["metadata"]["labels"][REVISION_HASH].as_str().unwrap_or("")
}

/// The rolling-update budgets, or `None` for `OnDelete`.
fn budgets(ds: &Value, desired: i64) -> Option<(i64, i64)> {
    let strategy = &ds["spec"]["updateStrategy"];
    (strategy["type"] != "OnDelete").then(|| rolling::budgets(&strategy["rollingUpdate"], desired))
}

/// Which pods of an eligible node to keep when it has several: the oldest of the current
/// revision, and (only while surging) the oldest older one beside it.
fn extras<'a>(pods: &[&'a Value], hash: &str, surging: bool) -> Vec<&'a Value> {
    let new = pods.iter().find(|p| hash_of(p) == hash);
    let old = pods.iter().find(|p| hash_of(p) != hash);
    let keep: Vec<&Value> = match (new, old) {
        (Some(n), Some(o)) if surging => vec![n, o],
        (Some(n), _) => vec![n],
        (None, Some(o)) => vec![o],
        (None, None) => vec![],
    };
    pods.iter().copied().filter(|p| !keep.iter().any(|k| std::ptr::eq(*k, *p))).collect()
}

impl Controller {
    /// One DaemonSet toward its spec; returns when to look again at the latest.
    #[instrument(skip_all, fields(daemonset = %meta::key_of(ds)))]
    async fn reconcile(&mut self, ds: &Value, world: &World) -> Option<Duration> {
        let uid = meta::uid(ds).to_string();
        if let Some(exp) = self.expectations.get(&uid) {
            if !satisfied(exp, &world.pods, meta::namespace(ds)) {
                return None;
            }
            self.expectations.remove(&uid);
        }
        let revisions = history::owned(ds, &world.revisions);
        let hash = history::sync_current(&self.client, self.cr_type, ds, &revisions).await?;
        let owned = owned_pods(ds, &world.pods);
        let template = &ds["spec"]["template"]["spec"];
        let eligible: Vec<&str> = world
            .nodes
            .iter()
            .filter(|n| placement::should_run(template, n))
            .map(|n| meta::name(n))
            .collect();
        let known: HashSet<&str> = world.nodes.iter().map(|n| meta::name(n)).collect();
        let budgets = budgets(ds, eligible.len() as i64);
        let mut exp = Expectation::new();
        self.manage(ds, &owned, &eligible, &known, &hash, budgets, &mut exp).await;
        // Update only once the daemons are in place: the budget counts them.
        if let Some((surge, unavailable)) = budgets.filter(|_| exp.is_empty()) {
            self.roll(ds, &owned, &eligible, &hash, surge, unavailable, &mut exp).await;
        }
        let live: HashSet<&str> = owned.by_node.values().flatten().map(|p| hash_of(p)).collect();
        let limit = ds["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0) as usize;
        let doomed = history::beyond_limit(&revisions, &hash, &live, limit);
        history::truncate(&self.client, self.cr_type, ds, doomed).await;
        if !exp.is_empty() {
            self.expectations.insert(uid, exp);
        }
        status::update(&self.client, self.ds_type, ds, &owned.by_node, &eligible, &hash).await
    }

    /// Create missing daemons, remove extra and misplaced ones, replace finished ones.
    #[allow(clippy::too_many_arguments)]
    async fn manage(
        &self,
        ds: &Value,
        owned: &Owned<'_>,
        eligible: &[&str],
        known: &HashSet<&str>,
        hash: &str,
        budgets: Option<(i64, i64)>,
        exp: &mut Expectation,
    ) {
        for pod in &owned.finished {
            let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
            let message =
                format!("Found failed daemon pod {} on node {node}, will try to kill it", meta::key_of(pod));
            emit(&self.client, ds, EventKind::Warning, "FailedDaemonPod", &message, COMPONENT);
            self.delete(ds, pod, None, exp).await;
        }
        let surging = budgets.is_some_and(|(surge, _)| surge > 0);
        for (node, pods) in &owned.by_node {
            if !known.contains(node) {
                // The node is gone and no agent will stop these: remove the records at once,
                // as upstream's pod garbage collector does for pods of deleted nodes (once the
                // server, not just a cache, says the node is gone).
                if self.node_is_gone(node).await {
                    for pod in pods {
                        self.delete(ds, pod, Some(0), exp).await;
                    }
                }
            } else if !eligible.contains(node) {
                for pod in pods {
                    self.delete(ds, pod, None, exp).await;
                }
            } else {
                for pod in extras(pods, hash, surging) {
                    self.delete(ds, pod, None, exp).await;
                }
            }
        }
        for node in eligible.iter().filter(|n| !owned.by_node.contains_key(*n)) {
            if !self.create(ds, node, hash, exp).await {
                break;
            }
        }
    }

    /// One step of a rolling update toward `hash`.
    #[allow(clippy::too_many_arguments)]
    async fn roll<'a>(
        &self,
        ds: &Value,
        owned: &Owned<'a>,
        eligible: &[&str],
        hash: &str,
        surge: i64,
        unavailable: i64,
        exp: &mut Expectation,
    ) {
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let now = jiff::Timestamp::now();
        let daemon = |p: &&'a Value| -> rolling::Daemon<'a> {
            rolling::Daemon {
                name: meta::name(p),
                available: until_available(p, min_ready, now).is_some_and(|w| w.is_zero()),
            }
        };
        let slots: Vec<rolling::Slot> = eligible
            .iter()
            .map(|node| {
                let pods = owned.by_node.get(node).map(Vec::as_slice).unwrap_or_default();
                rolling::Slot {
                    node,
                    new: pods.iter().find(|p| hash_of(p) == hash).map(daemon),
                    old: pods.iter().find(|p| hash_of(p) != hash).map(daemon),
                }
            })
            .collect();
        let plan = rolling::plan(&slots, surge, unavailable);
        let all: Vec<&Value> = owned.by_node.values().flatten().copied().collect();
        for name in plan.delete {
            if let Some(pod) = all.iter().find(|p| meta::name(p) == name) {
                self.delete(ds, pod, None, exp).await;
            }
        }
        for node in plan.create {
            if !self.create(ds, node, hash, exp).await {
                break;
            }
        }
    }

    async fn node_is_gone(&self, node: &str) -> bool {
        match self.client.get_opt(self.node_type, None, node).await {
            Ok(found) => found.is_none(),
            Err(e) => {
                warn!(error = %e, node, "looking up node failed");
                false
            }
        }
    }

    /// Create the daemon of `node`; false when the create failed (stop creating this round).
    async fn create(&self, ds: &Value, node: &str, hash: &str, exp: &mut Expectation) -> bool {
        let pod = placement::pod_for_node(ds, node, hash);
        match self.client.create(self.pod_type, Some(meta::namespace(ds)), &pod).await {
            Ok(created) => {
                let name = meta::name(&created).to_string();
                info!(pod = name, node, "created daemon pod");
                emit(
                    &self.client,
                    ds,
                    EventKind::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                    COMPONENT,
                );
                exp.created.insert(name);
                true
            }
            Err(e) => {
                warn!(error = %e, node, "creating daemon pod failed");
                emit(
                    &self.client,
                    ds,
                    EventKind::Warning,
                    "FailedCreate",
                    &format!("Error creating: {e}"),
                    COMPONENT,
                );
                false
            }
        }
    }

    async fn delete(&self, ds: &Value, pod: &Value, grace: Option<i64>, exp: &mut Expectation) {
        let name = meta::name(pod);
        match self.client.delete(self.pod_type, Some(meta::namespace(pod)), name, grace).await {
            Ok(_) => {
                info!(pod = name, "deleted daemon pod");
                emit(
                    &self.client,
                    ds,
                    EventKind::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                    COMPONENT,
                );
                exp.deleted.insert(name.to_string());
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(error = %e, pod = name, "deleting daemon pod failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, hash: &str, created: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {REVISION_HASH: hash}}})
    }

    #[test]
    fn a_node_keeps_one_daemon_and_a_surge_partner_only_while_surging() {
        let (old, new, new2) = (
            pod("o", "h1", "2027-01-01T00:00:00Z"),
            pod("n", "h2", "2027-01-01T00:01:00Z"),
            pod("n2", "h2", "2027-01-01T00:02:00Z"),
        );
        let names = |v: Vec<&Value>| v.iter().map(|p| meta::name(p).to_string()).collect::<Vec<_>>();
        assert_eq!(names(extras(&[&old, &new, &new2], "h2", false)), ["o", "n2"]);
        assert_eq!(names(extras(&[&old, &new, &new2], "h2", true)), ["n2"]);
        assert!(extras(&[&old], "h2", false).is_empty(), "an old pod alone is the update's business");
    }

    #[test]
    fn on_delete_has_no_budgets() {
        assert_eq!(budgets(&json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}), 3), None);
        let rolling = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}}});
        assert_eq!(budgets(&rolling, 3), Some((0, 2)));
    }
}
