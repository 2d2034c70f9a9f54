//! The CronJob controller: creates a Job from the template at each scheduled time, as upstream's
//! (v2) CronJob controller does. A Job is named `<cronjob>-<scheduled time in minutes since the
//! epoch>`, so a restart, a stale cache or a second round can never start the same run twice
//! (the name is taken). After downtime only the most recent missed run starts, and only within
//! `startingDeadlineSeconds`. `concurrencyPolicy` decides what happens while a run is active
//! (Allow, Forbid: skip, Replace: delete it first), finished Jobs beyond the history limits are
//! deleted, and the status lists the active Jobs and the last scheduled and successful times.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tracing::{info, instrument, warn};

use super::{
    events::{EventKind, emit},
    written::Written,
};
use crate::{
    api::{ResourceType, cron::Schedule, find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

const COMPONENT: &str = "cronjob-controller";
/// The annotation recording which scheduled time a Job runs for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Wake this long after a scheduled time, so the time has certainly passed (as upstream).
const AFTER_SCHEDULE: Duration = Duration::from_millis(100);

struct Controller {
    client: Client,
    cronjob_type: &'static ResourceType,
    job_type: &'static ResourceType,
    /// Per CronJob uid, the scheduled time whose skip was last reported (an Event per skipped
    /// run, not per round).
    reported: HashMap<String, (jiff::Timestamp, &'static str)>,
    /// Uids of finished Jobs whose `SawCompletedJob` was recorded: the CronJob cache may show
    /// the old active list for another round or two after the status write.
    saw_completed: HashSet<String>,
    /// What this controller wrote, until the cache catches up.
    written: Written,
}

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let (Some(cronjob_type), Some(job_type)) =
        (find_by_kind("batch/v1", "CronJob"), find_by_kind("batch/v1", "Job"))
    else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let cronjobs = informer::spawn(client.clone(), cronjob_type, None, changed.clone());
    let jobs = informer::spawn(client.clone(), job_type, None, changed.clone());
    cronjobs.wait_synced().await;
    jobs.wait_synced().await;
    let mut controller = Controller {
        client,
        cronjob_type,
        job_type,
        reported: HashMap::new(),
        saw_completed: HashSet::new(),
        written: Written::default(),
    };
    loop {
        // A fresh timer per round: the rest after it is paced by this round's length.
        let mut rounds = crate::controllers::Rounds::new();
        let all_jobs = jobs.list();
        let mut wake: Option<Instant> = None;
        let list = cronjobs.list();
        for cached in &list {
            let cj = controller.written.fresher(cached.clone());
            if let Some(at) = controller.reconcile(&cj, &all_jobs).await {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        let live: HashSet<&str> = list.iter().map(|c| meta::uid(c)).collect();
        controller.reported.retain(|uid, _| live.contains(uid.as_str()));
        controller.written.retain(&live);
        let job_uids: HashSet<&str> = all_jobs.iter().map(|j| meta::uid(j)).collect();
        controller.saw_completed.retain(|uid| job_uids.contains(uid.as_str()));
        rounds.next_until(&changed, wake).await;
    }
}

/// Whether a Job has finished: Complete or Failed, and which.
fn finished(job: &Value) -> Option<&'static str> {
    let conditions = job["status"]["conditions"].as_array()?;
    ["Complete", "Failed"]
        .into_iter()
        .find(|t| conditions.iter().any(|c| c["type"] == *t && c["status"] == "True"))
}

/// An `ObjectReference` to a Job, as the status's `active` list holds them.
fn job_ref(job: &Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "namespace": meta::namespace(job), "name": meta::name(job),
        "uid": meta::uid(job), "resourceVersion": job["metadata"]["resourceVersion"]})
}

fn time_of(v: &Value) -> Option<jiff::Timestamp> {
    v.as_str().and_then(meta::parse_time)
}

fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One round's view of a CronJob: its Jobs, its new status, its events.
struct Round<'a> {
    cj: &'a Value,
    owned: Vec<&'a Value>,
    active: Vec<Value>,
    status: Map<String, Value>,
    events: Vec<(EventKind, &'static str, String)>,
}

impl Controller {
    #[instrument(skip_all, fields(cronjob = %meta::key_of(cj)))]
    async fn reconcile(&mut self, cj: &Value, jobs: &[Arc<Value>]) -> Option<Instant> {
        if meta::is_terminating(cj) {
            return None;
        }
        let uid = meta::uid(cj);
        let owned: Vec<&Value> = jobs
            .iter()
            .map(|j| &**j)
            .filter(|j| meta::controller_ref(j).is_some_and(|r| r["uid"] == uid))
            .collect();
        let status = cj["status"].as_object().cloned().unwrap_or_default();
        let mut round = Round { cj, owned, active: Vec::new(), status, events: Vec::new() };
        self.track_jobs(&mut round).await;
        self.clean_up_history(&mut round).await;
        let wake = match Schedule::parse(
            cj["spec"]["schedule"].as_str().unwrap_or(""),
            cj["spec"]["timeZone"].as_str(),
        ) {
            Ok(schedule) => self.schedule(&mut round, &schedule).await,
            Err(e) => {
                self.report_once(&mut round, jiff::Timestamp::UNIX_EPOCH, "UnparseableSchedule", || {
                    format!("unparseable schedule: {:?} : {e}", cj["spec"]["schedule"])
                });
                None
            }
        };
        self.finish(round).await;
        wake
    }

    /// The active list from the Jobs themselves (a restart between creating a Job and writing
    /// the status loses nothing), `SawCompletedJob` for runs that ended, the last success.
    async fn track_jobs(&mut self, round: &mut Round<'_>) {
        let previous: Vec<Value> =
            round.status.get("active").and_then(Value::as_array).cloned().unwrap_or_default();
        let was_active = |uid: &str| previous.iter().any(|r| r["uid"] == uid);
        let mut last_success = time_of(round.status.get("lastSuccessfulTime").unwrap_or(&Value::Null));
        for job in &round.owned {
            match finished(job) {
                None => {
                    // Keep the reference as first written: a fresh resourceVersion every round
                    // would rewrite the status for nothing.
                    let kept = previous.iter().find(|r| r["uid"] == meta::uid(job)).cloned();
                    round.active.push(kept.unwrap_or_else(|| job_ref(job)));
                }
                Some(condition) => {
                    if was_active(meta::uid(job)) && self.saw_completed.insert(meta::uid(job).to_string()) {
                        let message =
                            format!("Saw completed job: {}, condition: {condition}", meta::name(job));
                        round.events.push((EventKind::Normal, "SawCompletedJob", message));
                    }
                    if condition == "Complete"
                        && let Some(done) = time_of(&job["status"]["completionTime"])
                    {
                        last_success = Some(last_success.map_or(done, |l| l.max(done)));
                    }
                }
            }
        }
        if let Some(t) = last_success {
            round.status.insert("lastSuccessfulTime".into(), json!(format_time(t)));
        }
        // A Job the status lists but the cache lacks: newer than the cache, or gone.
        for reference in previous.iter().filter(|r| !round.owned.iter().any(|j| r["uid"] == meta::uid(j))) {
            let name = reference["name"].as_str().unwrap_or("");
            match self.client.get_opt(self.job_type, Some(meta::namespace(round.cj)), name).await {
                Ok(Some(job)) if reference["uid"] == meta::uid(&job) && finished(&job).is_none() => {
                    round.active.push(reference.clone());
                }
                Ok(_) => {
                    round.events.push((
                        EventKind::Normal,
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    ));
                }
                Err(e) => {
                    warn!(error = %e, job = name, "checking an active job failed");
                    round.active.push(reference.clone());
                }
            }
        }
    }

    /// Delete the oldest finished Jobs beyond `successfulJobsHistoryLimit` and
    /// `failedJobsHistoryLimit` (their pods go with them).
    async fn clean_up_history(&mut self, round: &mut Round<'_>) {
        let spec = &round.cj["spec"];
        for (condition, field) in
            [("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")]
        {
            let Some(limit) = spec[field].as_i64() else { continue };
            let mut done: Vec<&Value> =
                round.owned.iter().copied().filter(|j| finished(j) == Some(condition)).collect();
            // Oldest first, by start time (never started: newest), then name, as upstream.
            done.sort_by_key(|j| {
                let started = time_of(&j["status"]["startTime"]).map_or(i64::MAX, |t| t.as_second());
                (started, meta::name(j).to_string())
            });
            let excess = done.len().saturating_sub(limit.max(0) as usize);
            for job in done.into_iter().take(excess) {
                self.delete_job(round, job).await;
            }
        }
    }

    async fn delete_job(&mut self, round: &mut Round<'_>, job: &Value) {
        let name = meta::name(job);
        match self
            .client
            .delete_with_policy(self.job_type, Some(meta::namespace(job)), name, "Background")
            .await
        {
            Ok(_) => {
                round.events.push((EventKind::Normal, "SuccessfulDelete", format!("Deleted job {name}")))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(error = %e, job = name, "deleting a job failed"),
        }
    }

    /// Start the run that is due, if any and if the policies allow; returns when the next run is.
    async fn schedule(&mut self, round: &mut Round<'_>, schedule: &Schedule) -> Option<Instant> {
        let spec = &round.cj["spec"];
        if spec["suspend"] == true {
            return None;
        }
        let now = jiff::Timestamp::now();
        let wake = schedule.next_after(now).map(|next| {
            let ms = (next.as_millisecond() - now.as_millisecond()).max(0) as u64;
            Instant::now() + Duration::from_millis(ms) + AFTER_SCHEDULE
        });
        let last = time_of(round.status.get("lastScheduleTime").unwrap_or(&Value::Null));
        let created = time_of(&round.cj["metadata"]["creationTimestamp"]).unwrap_or(now);
        let deadline = spec["startingDeadlineSeconds"].as_i64();
        let (due, missed) = match schedule.most_recent(last.unwrap_or(created), now) {
            Some(found) => found,
            None => return wake,
        };
        if missed > crate::api::cron::MANY_MISSED {
            self.report_once(round, due, "TooManyMissedTimes", || {
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into()
            });
        }
        if let Some(d) = deadline {
            let window_start = now.checked_sub(jiff::SignedDuration::from_secs(d.max(0))).unwrap_or(now);
            if due < window_start {
                self.report_once(round, due, "MissSchedule", || {
                    format!(
                        "Missed scheduled time to start a job: {}",
                        due.strftime("%a, %d %b %Y %H:%M:%S %z")
                    )
                });
                return wake;
            }
        }
        let name = format!("{}-{}", meta::name(round.cj), due.as_second().div_euclid(60));
        if last == Some(due) || round.owned.iter().any(|j| meta::name(j) == name) {
            return wake;
        }
        match spec["concurrencyPolicy"].as_str() {
            Some("Forbid") if !round.active.is_empty() => {
                self.report_once(round, due, "JobAlreadyActive", || {
                    "Not starting job because prior execution is running and concurrency policy is Forbid"
                        .into()
                });
                return wake;
            }
            Some("Replace") => {
                let running: Vec<&Value> =
                    round.owned.iter().copied().filter(|j| finished(j).is_none()).collect();
                for job in running {
                    self.delete_job(round, job).await;
                }
                round.active.clear();
            }
            _ => {}
        }
        self.start(round, schedule, due, &name).await;
        wake
    }

    /// Create the Job for the run at `due`; a Job of that name that already exists (a round on
    /// a stale cache) is this run, not a new one.
    async fn start(&mut self, round: &mut Round<'_>, schedule: &Schedule, due: jiff::Timestamp, name: &str) {
        let cj = round.cj;
        let job = job_from_template(cj, schedule, due, name);
        let ns = meta::namespace(cj);
        let created = match self.client.create(self.job_type, Some(ns), &job).await {
            Ok(job) => {
                info!(job = name, "created job");
                round.events.push((EventKind::Normal, "SuccessfulCreate", format!("Created job {name}")));
                job
            }
            Err(e) if e.code == 409 => match self.client.get_opt(self.job_type, Some(ns), name).await {
                Ok(Some(job)) if meta::controller_ref(&job).is_some_and(|r| r["uid"] == meta::uid(cj)) => job,
                _ => return,
            },
            Err(e) => {
                warn!(error = %e, job = name, "creating job failed");
                round.events.push((EventKind::Warning, "FailedCreate", format!("Error creating job: {e}")));
                return;
            }
        };
        if finished(&created).is_none() && !round.active.iter().any(|r| r["uid"] == meta::uid(&created)) {
            round.active.push(job_ref(&created));
        }
        round.status.insert("lastScheduleTime".into(), json!(format_time(due)));
    }

    /// Record a Warning or Normal Event about a run that was skipped, once per scheduled time.
    fn report_once(
        &mut self,
        round: &mut Round<'_>,
        due: jiff::Timestamp,
        reason: &'static str,
        message: impl FnOnce() -> String,
    ) {
        let key = meta::uid(round.cj).to_string();
        if self.reported.get(&key) == Some(&(due, reason)) {
            return;
        }
        self.reported.insert(key, (due, reason));
        let kind = if reason == "JobAlreadyActive" { EventKind::Normal } else { EventKind::Warning };
        round.events.push((kind, reason, message()));
    }

    async fn finish(&mut self, mut round: Round<'_>) {
        let cj = round.cj;
        // Upstream leaves an empty active list out.
        if round.active.is_empty() {
            round.status.remove("active");
        } else {
            round.status.insert("active".into(), Value::Array(std::mem::take(&mut round.active)));
        }
        let status = Value::Object(round.status);
        let current = if cj["status"].is_object() { cj["status"].clone() } else { json!({}) };
        if status != current {
            let mut patch = status.clone();
            if status.get("active").is_none() && current.get("active").is_some() {
                // Merge patch: only null removes a field.
                patch["active"] = Value::Null;
            }
            let (ns, name) = (meta::namespace(cj), meta::name(cj));
            let body = json!({"status": patch});
            match self
                .client
                .patch(self.cronjob_type, Some(ns), name, Some("status"), PatchType::Merge, &body)
                .await
            {
                Ok(updated) => {
                    self.written.remember(updated);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(error = %e, "updating cronjob status failed"),
            }
        }
        for (kind, reason, message) in round.events {
            emit(&self.client, cj, kind, reason, &message, COMPONENT);
        }
    }
}

/// The Job for the run at `due`, from the CronJob's template, as upstream's
/// `getJobFromTemplate2`.
fn job_from_template(cj: &Value, schedule: &Schedule, due: jiff::Timestamp, name: &str) -> Value {
    let template = &cj["spec"]["jobTemplate"];
    let labels = template["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    let mut annotations = template["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), json!(schedule.format_in_zone(due)));
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": meta::namespace(cj), "labels": labels, "annotations": annotations,
            "ownerReferences": [meta::owner_reference(cj)]},
        "spec": template["spec"],
    })
}
