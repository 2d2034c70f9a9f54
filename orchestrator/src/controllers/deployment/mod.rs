//! The Deployment controller: one ReplicaSet per pod template (named by its template hash), the
//! newest carrying the `deployment.kubernetes.io/revision`. A template change rolls out by the
//! Deployment's strategy: `RollingUpdate` grows the new set within `maxSurge` and shrinks old
//! ones only while `desired - maxUnavailable` pods stay available (`rolling`), `Recreate`
//! removes every old pod before starting new ones. A paused Deployment only scales. Status and
//! the conditions kubectl reads are computed in `status`; ReplicaSet writes live in `sets`.

mod rolling;
mod sets;
mod status;

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::sync::Notify;
use tracing::{instrument, warn};

use self::{
    rolling::{Fenceposts, SetCounts},
    sets::Writer,
};
use super::{
    events::{EventKind, record},
    template_hash,
    written::Written,
};
use crate::{
    api::{ResourceType, find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

const REVISION: &str = "deployment.kubernetes.io/revision";
/// How often a `Recreate` rollout looks whether the old pods are gone (their final removal
/// changes no ReplicaSet, so no watch event says so).
const RECREATE_POLL: Duration = Duration::from_secs(1);

struct Controller {
    client: Client,
    deploy_type: &'static ResourceType,
    rs_type: &'static ResourceType,
    pod_type: &'static ResourceType,
    /// ReplicaSets as this controller last wrote them, until the cache shows that version: a
    /// round on a stale cache would otherwise scale from outdated counts.
    written: Written,
}

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let (Some(deploy_type), Some(rs_type), Some(pod_type)) = (
        find_by_kind("apps/v1", "Deployment"),
        find_by_kind("apps/v1", "ReplicaSet"),
        find_by_kind("v1", "Pod"),
    ) else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let deployments = informer::spawn(client.clone(), deploy_type, None, changed.clone());
    let replicasets = informer::spawn(client.clone(), rs_type, None, changed.clone());
    deployments.wait_synced().await;
    replicasets.wait_synced().await;
    let mut controller = Controller { client, deploy_type, rs_type, pod_type, written: Written::default() };
    loop {
        let sets = controller.fresher(replicasets.list());
        let mut wake: Option<Duration> = None;
        for d in deployments.list().iter().filter(|d| !meta::is_terminating(d)) {
            if let Some(after) = controller.reconcile(d, &sets).await {
                wake = Some(wake.map_or(after, |w| w.min(after)));
            }
        }
        crate::controllers::wait_for_change_until(&changed, wake.map(|w| Instant::now() + w)).await;
    }
}

pub(crate) fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION].as_str().and_then(|r| r.parse().ok()).unwrap_or(0)
}

pub(crate) fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(0)
}

pub(crate) fn status_count(obj: &Value, field: &str) -> i64 {
    obj["status"][field].as_i64().unwrap_or(0)
}

fn counts(rs: &Value) -> SetCounts {
    SetCounts {
        replicas: replicas(rs),
        available: status_count(rs, "availableReplicas"),
        pods: status_count(rs, "replicas"),
    }
}

/// Where one round of a Deployment got to: its sets as now written.
struct Round {
    new_rs: Option<Value>,
    olds: Vec<Value>,
    /// A `Progressing` condition this round decided (a new ReplicaSet was created).
    note: Option<Value>,
    /// Look again after this long even if nothing changes.
    wait: Option<Duration>,
}

impl Controller {
    /// The cached ReplicaSets, each replaced by what this controller wrote if that is newer.
    fn fresher(&mut self, cached: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
        let live: HashSet<&str> = cached.iter().map(|rs| meta::uid(rs)).collect();
        self.written.retain(&live);
        cached.iter().map(|rs| self.written.fresher(rs.clone())).collect()
    }

    /// One Deployment toward its spec; returns when to look again at the latest.
    #[instrument(skip_all, fields(deployment = %meta::key_of(d)))]
    async fn reconcile(&mut self, d: &Value, all_sets: &[Arc<Value>]) -> Option<Duration> {
        let uid = meta::uid(d);
        let owned: Vec<&Value> = all_sets
            .iter()
            .map(|rs| &**rs)
            .filter(|rs| {
                meta::controller_ref(rs).is_some_and(|r| r["uid"] == uid) && !meta::is_terminating(rs)
            })
            .collect();
        let desired = replicas(d);
        let recreate = d["spec"]["strategy"]["type"] == "Recreate";
        let fence = if recreate {
            Fenceposts { surge: 0, unavailable: 0 }
        } else {
            match rolling::fenceposts(&d["spec"]["strategy"]["rollingUpdate"], desired) {
                Ok(f) => f,
                Err(e) => {
                    let message = format!("Invalid rolling update strategy: {e}");
                    record(
                        &self.client,
                        d,
                        EventKind::Warning,
                        "InvalidStrategy",
                        &message,
                        "deployment-controller",
                    )
                    .await;
                    return None;
                }
            }
        };
        let hash = template_hash(&d["spec"]["template"]);
        let (current, mut olds): (Vec<&Value>, Vec<&Value>) =
            owned.iter().partition(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        // Oldest first: old sets shrink in the order they were made.
        olds.sort_by_key(|rs| {
            (rs["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string(), revision(rs))
        });
        let newest_old_revision = olds.iter().map(|rs| revision(rs)).max().unwrap_or(0);
        let writer = Writer { client: &self.client, rs_type: self.rs_type, d, max_surge: fence.surge };
        let new_rs = match current.first() {
            Some(rs) => match writer.adopt_as_new(rs, newest_old_revision).await {
                Some(rs) => Some(rs),
                None => return Some(Duration::from_secs(5)),
            },
            None => None,
        };
        let new_rs = remember(&mut self.written, new_rs);
        let round = Round { new_rs, olds: olds.into_iter().cloned().collect(), note: None, wait: None };
        let round = if d["spec"]["paused"].as_bool().unwrap_or(false) {
            self.scale_paused(d, round).await
        } else if recreate {
            self.recreate(d, round, &hash, newest_old_revision).await
        } else {
            self.roll(d, round, &hash, newest_old_revision, fence).await
        };
        self.finish(d, round).await
    }

    /// `RollingUpdate`: grow the new set within the surge; once it cannot grow, shrink old ones
    /// within the unavailability budget (one kind of step per round, as upstream).
    async fn roll(
        &mut self,
        d: &Value,
        mut round: Round,
        hash: &str,
        newest_old: i64,
        fence: Fenceposts,
    ) -> Round {
        let desired = replicas(d);
        let writer = Writer { client: &self.client, rs_type: self.rs_type, d, max_surge: fence.surge };
        let old_counts: Vec<SetCounts> = round.olds.iter().map(counts).collect();
        match round.new_rs.clone() {
            None => {
                let target = rolling::new_set_target(
                    desired,
                    SetCounts { replicas: 0, available: 0, pods: 0 },
                    &old_counts,
                    fence.surge,
                );
                let created = writer.create(hash, newest_old + 1, target).await;
                round.note = created.as_ref().map(created_condition);
                round.new_rs = remember(&mut self.written, created);
            }
            Some(new_rs) => {
                let target = rolling::new_set_target(desired, counts(&new_rs), &old_counts, fence.surge);
                if target != replicas(&new_rs) {
                    let scaled = writer.scale(&new_rs, target).await;
                    round.new_rs = remember(&mut self.written, scaled).or(Some(new_rs));
                    return round;
                }
                let targets =
                    rolling::old_set_targets(desired, fence.unavailable, counts(&new_rs), &old_counts);
                for (old, target) in round.olds.iter_mut().zip(targets) {
                    if target != replicas(old) {
                        if let Some(scaled) = remember(&mut self.written, writer.scale(old, target).await) {
                            *old = scaled;
                        }
                    }
                }
            }
        }
        round
    }

    /// `Recreate`: every old set to zero, wait until their pods are gone, then the new set at
    /// the full count.
    async fn recreate(&mut self, d: &Value, mut round: Round, hash: &str, newest_old: i64) -> Round {
        let writer = Writer { client: &self.client, rs_type: self.rs_type, d, max_surge: 0 };
        let mut scaled_down = false;
        for old in round.olds.iter_mut().filter(|rs| replicas(rs) > 0) {
            scaled_down = true;
            if let Some(scaled) = remember(&mut self.written, writer.scale(old, 0).await) {
                *old = scaled;
            }
        }
        if scaled_down {
            return round;
        }
        let old_uids: Vec<&str> = round.olds.iter().map(meta::uid).collect();
        match self.client.list(self.pod_type, Some(meta::namespace(d)), None, None).await {
            Ok((pods, _)) => {
                let running = pods.iter().any(|p| {
                    meta::controller_ref(p).is_some_and(|r| old_uids.iter().any(|u| r["uid"] == *u))
                        && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                });
                if running {
                    round.wait = Some(RECREATE_POLL);
                    return round;
                }
            }
            Err(e) => {
                warn!(error = %e, "listing pods of old replicasets failed");
                round.wait = Some(RECREATE_POLL);
                return round;
            }
        }
        let desired = replicas(d);
        match round.new_rs.clone() {
            None => {
                let created = writer.create(hash, newest_old + 1, desired).await;
                round.note = created.as_ref().map(created_condition);
                round.new_rs = remember(&mut self.written, created);
            }
            Some(new_rs) => {
                round.new_rs =
                    remember(&mut self.written, writer.scale(&new_rs, desired).await).or(Some(new_rs))
            }
        }
        round
    }

    /// A paused Deployment rolls nothing out; it only follows `replicas` when one set is active
    /// (upstream also scales several active sets proportionally; here they are left as they are
    /// until the rollout is resumed).
    async fn scale_paused(&mut self, d: &Value, mut round: Round) -> Round {
        let writer = Writer { client: &self.client, rs_type: self.rs_type, d, max_surge: 0 };
        let active: Vec<usize> =
            round.olds.iter().enumerate().filter(|(_, rs)| replicas(rs) > 0).map(|(i, _)| i).collect();
        let new_active = round.new_rs.as_ref().is_some_and(|rs| replicas(rs) > 0);
        match (&round.new_rs, active.as_slice(), new_active) {
            (Some(new_rs), [], _) => {
                let scaled = remember(&mut self.written, writer.scale(new_rs, replicas(d)).await);
                round.new_rs = scaled.or(round.new_rs.take());
            }
            (_, [only], false) => {
                if let Some(scaled) =
                    remember(&mut self.written, writer.scale(&round.olds[*only].clone(), replicas(d)).await)
                {
                    round.olds[*only] = scaled;
                }
            }
            _ => {}
        }
        round
    }

    /// Write what the round leaves: history clean-up once complete, the revision annotation,
    /// and the status. Returns when to look again.
    async fn finish(&mut self, d: &Value, round: Round) -> Option<Duration> {
        let mut all: Vec<&Value> = round.olds.iter().collect();
        all.extend(round.new_rs.as_ref());
        let computed = status::compute(d, round.new_rs.as_ref(), &all, round.note, jiff::Timestamp::now());
        let complete = computed.recheck_in.is_none()
            && computed.status["updatedReplicas"] == replicas(d)
            && computed.status["replicas"] == replicas(d);
        if complete || d["spec"]["paused"].as_bool().unwrap_or(false) {
            let writer = Writer { client: &self.client, rs_type: self.rs_type, d, max_surge: 0 };
            writer.clean_up_history(&round.olds.iter().collect::<Vec<_>>()).await;
        }
        let ns = Some(meta::namespace(d));
        if let Some(rs) = &round.new_rs {
            let revision = &rs["metadata"]["annotations"][REVISION];
            if d["metadata"]["annotations"][REVISION] != *revision {
                let patch = serde_json::json!({"metadata": {"annotations": {REVISION: revision}}});
                if let Err(e) = self
                    .client
                    .patch(self.deploy_type, ns, meta::name(d), None, PatchType::Merge, &patch)
                    .await
                {
                    warn!(error = %e, "annotating deployment revision failed");
                }
            }
        }
        if computed.changed {
            let patch = serde_json::json!({"status": computed.status});
            let result = self
                .client
                .patch(self.deploy_type, ns, meta::name(d), Some("status"), PatchType::Merge, &patch)
                .await;
            if let Some(e) = result.as_ref().err().filter(|e| !e.is_not_found()) {
                warn!(error = %e, "updating deployment status failed");
            }
        }
        [round.wait, computed.recheck_in].into_iter().flatten().min()
    }
}

/// Note a ReplicaSet this controller wrote (see `Controller::written`); passes it through.
fn remember(written: &mut Written, rs: Option<Value>) -> Option<Value> {
    if let Some(rs) = &rs {
        written.remember(rs.clone());
    }
    rs
}

fn created_condition(rs: &Value) -> Value {
    let message = format!("Created new replica set \"{}\"", meta::name(rs));
    status::condition(status::PROGRESSING, "True", "NewReplicaSetCreated", message, jiff::Timestamp::now())
}
