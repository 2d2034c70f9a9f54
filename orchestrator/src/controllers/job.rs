//! The Job controller: runs a Job's pods to completion. It keeps up to `parallelism` pods
//! running until `completions` have succeeded (in `Indexed` mode, each index once), replaces
//! failed pods after an exponential back-off, fails the Job past `backoffLimit` or
//! `activeDeadlineSeconds`, honours `suspend`, reports counts and conditions in the status, and
//! deletes a finished Job after `ttlSecondsAfterFinished`.
//!
//! Counts are recomputed from the pods in the cache on every round and never incremented, so a
//! restart or a repeated round cannot count a pod twice; status counts never go down, so a
//! finished pod deleted by someone else stays counted. Expectations (pods created or deleted
//! that the cache has not shown yet) keep a round on a stale cache from acting twice.

mod pods;
mod state;

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tracing::{info, instrument, warn};

use self::{
    pods::{completed_indexes, indexed_plan, pod_from_template},
    state::{Pods, condition, has_condition, set_condition},
};
use super::{
    events::{EventKind, emit},
    written::Written,
};
use crate::{
    api::{ResourceType, find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

const COMPONENT: &str = "job-controller";
const EXPECTATION_TTL: Duration = Duration::from_secs(30);
const COMPLETIONS_REACHED: (&str, &str) = ("CompletionsReached", "Reached expected number of succeeded pods");
const BACKOFF_EXCEEDED: (&str, &str) =
    ("BackoffLimitExceeded", "Job has reached the specified backoff limit");
const DEADLINE_EXCEEDED: (&str, &str) = ("DeadlineExceeded", "Job was active longer than specified deadline");

/// Pods this controller created or deleted that the cache has not caught up with.
struct Expectation {
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Instant,
}

impl Expectation {
    fn new() -> Self {
        Self { created: HashSet::new(), deleted: HashSet::new(), since: Instant::now() }
    }

    fn satisfied(&self, pods: &[Arc<Value>], ns: &str) -> bool {
        let present: HashSet<&str> =
            pods.iter().filter(|p| meta::namespace(p) == ns).map(|p| meta::name(p)).collect();
        self.since.elapsed() > EXPECTATION_TTL
            || (self.created.iter().all(|c| present.contains(c.as_str()))
                && self.deleted.iter().all(|d| {
                    !present.contains(d.as_str())
                        || pods.iter().any(|p| meta::name(p) == d && meta::is_terminating(p))
                }))
    }
}

struct Controller {
    client: Client,
    job_type: &'static ResourceType,
    pod_type: &'static ResourceType,
    expectations: HashMap<String, Expectation>,
    /// What this controller wrote, until the cache catches up.
    written: Written,
}

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let (Some(job_type), Some(pod_type)) = (find_by_kind("batch/v1", "Job"), find_by_kind("v1", "Pod"))
    else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let jobs = informer::spawn(client.clone(), job_type, None, changed.clone());
    let pods = informer::spawn(client.clone(), pod_type, None, changed.clone());
    jobs.wait_synced().await;
    pods.wait_synced().await;
    let mut controller =
        Controller { client, job_type, pod_type, expectations: HashMap::new(), written: Written::default() };
    loop {
        // A fresh timer per round: the rest after it is paced by this round's length.
        let mut rounds = crate::controllers::Rounds::new();
        let all_pods = pods.list();
        let mut wake: Option<Instant> = None;
        for cached in jobs.list() {
            let job = controller.written.fresher(cached);
            if let Some(at) = controller.reconcile(&job, &all_pods).await {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        let list = jobs.list();
        let live: HashSet<&str> = list.iter().map(|j| meta::uid(j)).collect();
        controller.expectations.retain(|uid, _| live.contains(uid.as_str()));
        controller.written.retain(&live);
        rounds.next_until(&changed, wake).await;
    }
}

/// What one round decided for a Job, applied after the decisions are made.
struct Round<'a> {
    job: &'a Value,
    status: Map<String, Value>,
    conditions: Vec<Value>,
    events: Vec<(EventKind, &'static str, String)>,
    now: jiff::Timestamp,
    exp: Expectation,
    wake: Option<Instant>,
}

impl<'a> Round<'a> {
    fn new(job: &'a Value) -> Self {
        let status = job["status"].as_object().cloned().unwrap_or_default();
        let conditions = status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        Self {
            job,
            status,
            conditions,
            events: Vec::new(),
            now: jiff::Timestamp::now(),
            exp: Expectation::new(),
            wake: None,
        }
    }

    fn now_str(&self) -> String {
        self.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// Set a condition True; on a real transition, record the event that goes with it.
    fn set_true(
        &mut self,
        kind: &str,
        (reason, message): (&str, &str),
        event: Option<(EventKind, &'static str)>,
    ) {
        let before = has_condition_in(&self.conditions, kind);
        let now = self.now_str();
        set_condition(&mut self.conditions, condition(kind, "True", reason, message, &now));
        if !before && let Some((k, r)) = event {
            self.events.push((k, r, message.to_string()));
        }
    }

    fn wake_at(&mut self, at: jiff::Timestamp) {
        let ms = (at.as_millisecond() - self.now.as_millisecond()).max(0) as u64;
        let at = Instant::now() + Duration::from_millis(ms);
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
}

fn has_condition_in(conditions: &[Value], kind: &str) -> bool {
    conditions.iter().any(|c| c["type"] == kind && c["status"] == "True")
}

impl Controller {
    /// One round for one Job; returns when it wants to look again without a change.
    #[instrument(skip_all, fields(job = %meta::key_of(job)))]
    async fn reconcile(&mut self, job: &Value, all: &[Arc<Value>]) -> Option<Instant> {
        let uid = meta::uid(job).to_string();
        if meta::is_terminating(job) {
            // The garbage collector deletes (or orphans) the pods, as upstream.
            return None;
        }
        if let Some(exp) = self.expectations.get(&uid) {
            if !exp.satisfied(all, meta::namespace(job)) {
                return None;
            }
            self.expectations.remove(&uid);
        }
        let pods = Pods::of(&uid, all);
        let mut round = Round::new(job);
        if has_condition(job, "Complete") || has_condition(job, "Failed") {
            self.delete_pods(&mut round, &pods.active).await;
            self.expire(&mut round).await;
        } else {
            self.progress(&mut round, &pods).await;
        }
        let wake = round.wake;
        self.finish(round).await;
        wake
    }

    /// Everything short of a finished Job: counts, suspension, success, failure, pods.
    async fn progress(&mut self, round: &mut Round<'_>, pods: &Pods<'_>) {
        let spec = &round.job["spec"];
        let indexed = spec["completionMode"] == "Indexed";
        let completions = spec["completions"].as_i64().map(|c| c.clamp(0, i64::from(u32::MAX)) as u32);
        let completed = completed_indexes(round.job, pods, completions.unwrap_or(0));
        let previous = |k: &str| round.status.get(k).and_then(Value::as_u64).unwrap_or(0) as usize;
        let succeeded =
            if indexed { completed.len() } else { previous("succeeded").max(pods.succeeded.len()) };
        let mut failed = previous("failed").max(pods.failed.len());
        if indexed {
            round.status.insert("completedIndexes".into(), json!(state::format_indexes(&completed)));
        }
        let mut active = 0;
        if self.finishing(round, pods).await {
            // Stopping: nothing new starts, nothing more is counted as a new failure.
        } else if spec["suspend"] == true {
            self.delete_pods(round, &pods.active).await;
            let suspended = ("JobSuspended", "Job suspended");
            round.set_true("Suspended", suspended, Some((EventKind::Normal, "Suspended")));
        } else {
            self.resume(round);
            let done = match completions {
                Some(c) => succeeded >= c as usize,
                None => succeeded > 0 && pods.active.is_empty(),
            };
            if done {
                round.set_true("SuccessCriteriaMet", COMPLETIONS_REACHED, None);
                self.finishing(round, pods).await;
            } else if let Some(reason) = failure(round, pods, failed) {
                round.set_true("FailureTarget", reason, None);
                // Active pods stopped for a failed Job count as failed, as upstream.
                failed += pods.active.len();
                self.finishing(round, pods).await;
            } else {
                active = self.manage_pods(round, pods, &completed, completions, succeeded).await;
            }
        }
        round.status.insert("succeeded".into(), json!(succeeded));
        round.status.insert("failed".into(), json!(failed));
        round.status.insert("active".into(), json!(active));
        round.status.insert("ready".into(), json!(pods.ready().min(active)));
        round.status.insert("terminating".into(), json!(pods.terminating.len()));
    }

    /// A Job on its way to Complete or Failed (a target condition is set): stop what runs, and
    /// once nothing does, add the terminal condition. False for a Job not finishing.
    async fn finishing(&mut self, round: &mut Round<'_>, pods: &Pods<'_>) -> bool {
        let Some(target) = ["SuccessCriteriaMet", "FailureTarget"]
            .into_iter()
            .find(|t| has_condition_in(&round.conditions, t))
        else {
            return false;
        };
        self.delete_pods(round, &pods.active).await;
        if !pods.active.is_empty() || !pods.terminating.is_empty() {
            return true;
        }
        let found = round.conditions.iter().find(|c| c["type"] == target).cloned().unwrap_or_default();
        let reason = found["reason"].as_str().unwrap_or("").to_string();
        let message = found["message"].as_str().unwrap_or("").to_string();
        if target == "SuccessCriteriaMet" {
            round.set_true("Complete", (reason.as_str(), message.as_str()), None);
            round.status.insert("completionTime".into(), json!(round.now_str()));
            round.events.push((EventKind::Normal, "Completed", "Job completed".into()));
        } else {
            // Upstream records the failure under the condition's reason.
            let event = if reason == DEADLINE_EXCEEDED.0 { DEADLINE_EXCEEDED.0 } else { BACKOFF_EXCEEDED.0 };
            round.set_true("Failed", (reason.as_str(), message.as_str()), Some((EventKind::Warning, event)));
        }
        true
    }

    /// Leave suspension (the deadline counts from the resume, as upstream) and start the clock.
    fn resume(&self, round: &mut Round<'_>) {
        if has_condition_in(&round.conditions, "Suspended") {
            let now = round.now_str();
            set_condition(
                &mut round.conditions,
                condition("Suspended", "False", "JobResumed", "Job resumed", &now),
            );
            round.events.push((EventKind::Normal, "Resumed", "Job resumed".into()));
            round.status.insert("startTime".into(), json!(now));
        }
        if round.status.get("startTime").is_none_or(Value::is_null) {
            round.status.insert("startTime".into(), json!(round.now_str()));
        }
    }

    /// Create or delete pods toward `parallelism` (bounded by what is left to complete),
    /// after the back-off since the last failure. Returns the resulting active count.
    async fn manage_pods(
        &mut self,
        round: &mut Round<'_>,
        pods: &Pods<'_>,
        completed: &BTreeSet<u32>,
        completions: Option<u32>,
        succeeded: usize,
    ) -> usize {
        let spec = &round.job["spec"];
        let parallelism = spec["parallelism"].as_i64().unwrap_or(1).clamp(0, 100_000) as usize;
        let (keep, extra, missing): (Vec<&Value>, Vec<&Value>, Vec<Option<u32>>) =
            if spec["completionMode"] == "Indexed" {
                indexed_plan(pods, completed, completions.unwrap_or(0), parallelism)
            } else {
                let want = match completions {
                    Some(c) => parallelism.min((c as usize).saturating_sub(succeeded)),
                    // A work queue: once a pod succeeded, start nothing new.
                    None if succeeded > 0 => pods.active.len().min(parallelism),
                    None => parallelism,
                };
                let mut by_age = pods.active.clone();
                by_age.sort_by_key(|p| p["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string());
                let extra = by_age.split_off(want.min(by_age.len()));
                let missing = vec![None; want.saturating_sub(by_age.len())];
                (by_age, extra, missing)
            };
        self.delete_pods(round, &extra).await;
        let mut active = keep.len();
        if missing.is_empty() {
            return active;
        }
        let (failures, last) = state::recent_failures(pods);
        if let Some(last) = last {
            let ready_at = last.as_millisecond() + state::backoff(failures).as_millis() as i64;
            if ready_at > round.now.as_millisecond() {
                round.wake_at(jiff::Timestamp::from_millisecond(ready_at).unwrap_or(round.now));
                return active;
            }
        }
        for index in missing {
            if !self.create_pod(round, index).await {
                break;
            }
            active += 1;
        }
        active
    }

    async fn create_pod(&mut self, round: &mut Round<'_>, index: Option<u32>) -> bool {
        let job = round.job;
        let pod = pod_from_template(job, index);
        match self.client.create(self.pod_type, Some(meta::namespace(job)), &pod).await {
            Ok(pod) => {
                let name = meta::name(&pod).to_string();
                info!(pod = %name, ?index, "created pod");
                round.events.push((EventKind::Normal, "SuccessfulCreate", format!("Created pod: {name}")));
                round.exp.created.insert(name);
                true
            }
            Err(e) => {
                warn!(error = %e, "creating pod failed");
                round.events.push((EventKind::Warning, "FailedCreate", format!("Error creating: {e}")));
                false
            }
        }
    }

    async fn delete_pods(&mut self, round: &mut Round<'_>, victims: &[&Value]) {
        for pod in victims {
            let name = meta::name(pod);
            match self.client.delete(self.pod_type, Some(meta::namespace(pod)), name, None).await {
                Ok(_) => {
                    round.events.push((
                        EventKind::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    ));
                    round.exp.deleted.insert(name.to_string());
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(error = %e, pod = name, "deleting pod failed"),
            }
        }
    }

    /// `ttlSecondsAfterFinished`: delete the finished Job (its pods go with it, in the
    /// background), or ask to be woken when it is due.
    async fn expire(&mut self, round: &mut Round<'_>) {
        let job = round.job;
        let (Some(ttl), Some(finished)) =
            (job["spec"]["ttlSecondsAfterFinished"].as_i64(), state::finish_time(job))
        else {
            return;
        };
        let due = finished.as_millisecond() + ttl.max(0).saturating_mul(1000);
        if due > round.now.as_millisecond() {
            round.wake_at(jiff::Timestamp::from_millisecond(due).unwrap_or(round.now));
            return;
        }
        let ns = meta::namespace(job);
        match self.client.delete_with_policy(self.job_type, Some(ns), meta::name(job), "Background").await {
            Ok(_) => info!("deleted a finished job after its ttlSecondsAfterFinished"),
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(error = %e, "deleting an expired job failed"),
        }
    }

    /// Write the status if it changed, record the round's events, keep its expectations.
    async fn finish(&mut self, mut round: Round<'_>) {
        let job = round.job;
        round.status.insert("conditions".into(), json!(round.conditions));
        round.status.entry("uncountedTerminatedPods").or_insert_with(|| json!({}));
        let status = Value::Object(round.status);
        if status != job["status"] {
            let patch = json!({"status": status});
            let (ns, name) = (meta::namespace(job), meta::name(job));
            match self
                .client
                .patch(self.job_type, Some(ns), name, Some("status"), PatchType::Merge, &patch)
                .await
            {
                Ok(updated) => {
                    self.written.remember(updated);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(error = %e, "updating job status failed"),
            }
        }
        for (kind, reason, message) in round.events {
            emit(&self.client, job, kind, reason, &message, COMPONENT);
        }
        if !round.exp.created.is_empty() || !round.exp.deleted.is_empty() {
            self.expectations.insert(meta::uid(job).to_string(), round.exp);
        }
    }
}

/// Why the Job fails now, if it does: past the back-off limit (failed pods, and container
/// restarts under `OnFailure`), or past `activeDeadlineSeconds` since it started.
fn failure(round: &mut Round<'_>, pods: &Pods<'_>, failed: usize) -> Option<(&'static str, &'static str)> {
    let spec = &round.job["spec"];
    let limit = spec["backoffLimit"].as_i64().unwrap_or(6).max(0);
    let on_failure = spec["template"]["spec"]["restartPolicy"] == "OnFailure";
    let restarts = if on_failure { pods.restarts() } else { 0 };
    // Upstream: under OnFailure, restarts alone reaching the limit fail the Job.
    let restarts_exceed = on_failure && if limit == 0 { restarts > 0 } else { restarts >= limit };
    if failed as i64 > limit || restarts_exceed {
        return Some(BACKOFF_EXCEEDED);
    }
    let deadline = spec["activeDeadlineSeconds"].as_i64()?;
    let started = round.status.get("startTime").and_then(Value::as_str).and_then(meta::parse_time)?;
    let due = started.as_millisecond() + deadline.max(0).saturating_mul(1000);
    if due <= round.now.as_millisecond() {
        return Some(DEADLINE_EXCEEDED);
    }
    round.wake_at(jiff::Timestamp::from_millisecond(due).unwrap_or(round.now));
    None
}
