//! The pure part of the Job controller: what a Job's pods say (active, succeeded, failed,
//! which completion indexes are done), the `completedIndexes` range syntax, the pod-failure
//! back-off, and Job conditions. No IO, so it is unit-tested directly.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};

use crate::api::{batch::COMPLETION_INDEX, meta};

/// First delay before replacing a failed pod, as upstream's `DefaultJobPodFailureBackOff`.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Longest delay, as upstream's `MaxJobPodFailureBackOff`.
pub const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// A Job's pods, sorted by what they count for. Terminating pods are in none of the lists
/// but `terminating`: whatever they were, they were counted (or deliberately not) before.
#[derive(Debug, Default)]
pub struct Pods<'a> {
    /// Running or pending, not being deleted.
    pub active: Vec<&'a Value>,
    /// Phase Succeeded.
    pub succeeded: Vec<&'a Value>,
    /// Phase Failed.
    pub failed: Vec<&'a Value>,
    /// Being deleted.
    pub terminating: Vec<&'a Value>,
}

impl<'a> Pods<'a> {
    /// Sort the pods controlled by the Job with uid `uid`.
    pub fn of(uid: &str, pods: &'a [std::sync::Arc<Value>]) -> Self {
        let mut out = Self::default();
        for pod in pods.iter().map(|p| &**p) {
            if !meta::controller_ref(pod).is_some_and(|r| r["uid"] == uid) {
                continue;
            }
            let list = if meta::is_terminating(pod) {
                &mut out.terminating
            } else {
                match pod["status"]["phase"].as_str() {
                    Some("Succeeded") => &mut out.succeeded,
                    Some("Failed") => &mut out.failed,
                    _ => &mut out.active,
                }
            };
            list.push(pod);
        }
        out
    }

    /// Active pods whose Ready condition is True.
    pub fn ready(&self) -> usize {
        self.active.iter().filter(|p| crate::controllers::replicaset::is_ready(p)).count()
    }

    /// Container restarts of active pods (`OnFailure` counts them toward the back-off limit).
    pub fn restarts(&self) -> i64 {
        self.active
            .iter()
            .flat_map(|p| {
                let s = &p["status"];
                s["initContainerStatuses"].as_array().into_iter().chain(s["containerStatuses"].as_array())
            })
            .flatten()
            .filter_map(|c| c["restartCount"].as_i64())
            .sum()
    }
}

/// A pod's completion index, if it has a well-formed one.
pub fn index_of(pod: &Value) -> Option<u32> {
    pod["metadata"]["annotations"][COMPLETION_INDEX].as_str()?.parse().ok()
}

/// Parse `completedIndexes` ("0-2,4"); malformed parts are skipped, never trusted.
pub fn parse_indexes(s: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (part.parse(), part.parse()),
        };
        if let (Ok(first), Ok(last)) = (first, last) {
            // Bounded: a hostile "0-4000000000" must not allocate billions of entries.
            out.extend((first..=last).take(1 << 20));
        }
    }
    out
}

/// Format indexes as upstream does: ascending, consecutive runs as `a-b`, joined by commas.
pub fn format_indexes(indexes: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        parts.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
    }
    parts.join(",")
}

/// Delay before a replacement pod after `failures` failures in a row (since the last
/// success): 10 s doubling per failure, capped at 6 min; none before any failure.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    BACKOFF_BASE.checked_mul(factor).unwrap_or(BACKOFF_MAX).min(BACKOFF_MAX)
}

/// When a finished pod finished: its last container's `finishedAt`, else its creation.
pub fn finished_at(pod: &Value) -> Option<jiff::Timestamp> {
    let containers = pod["status"]["containerStatuses"].as_array().into_iter().flatten();
    containers
        .filter_map(|c| c["state"]["terminated"]["finishedAt"].as_str().and_then(meta::parse_time))
        .max()
        .or_else(|| pod["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time))
}

/// The failures since the last success, and when the latest of them happened.
pub fn recent_failures(pods: &Pods) -> (u32, Option<jiff::Timestamp>) {
    let last_success = pods.succeeded.iter().filter_map(|p| finished_at(p)).max();
    let failures: Vec<jiff::Timestamp> = pods
        .failed
        .iter()
        .filter_map(|p| finished_at(p))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    (failures.len() as u32, failures.iter().max().copied())
}

/// A Job condition as upstream writes them.
pub fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now})
}

/// Whether the Job has condition `kind` with status True.
pub fn has_condition(job: &Value, kind: &str) -> bool {
    find_condition(job, kind).is_some_and(|c| c["status"] == "True")
}

/// The Job's condition of type `kind`.
pub fn find_condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

/// Add or replace the condition of the same type; an unchanged status keeps its transition
/// time (only a real transition moves it, as upstream).
pub fn set_condition(conditions: &mut Vec<Value>, new: Value) {
    match conditions.iter_mut().find(|c| c["type"] == new["type"]) {
        Some(old) if old["status"] == new["status"] && old["reason"] == new["reason"] => {}
        Some(old) => *old = new,
        None => conditions.push(new),
    }
}

/// When a finished Job finished: its completion time, or when it was marked Failed.
pub fn finish_time(job: &Value) -> Option<jiff::Timestamp> {
    let completed = job["status"]["completionTime"].as_str().and_then(meta::parse_time);
    completed.or_else(|| {
        find_condition(job, "Failed")
            .filter(|c| c["status"] == "True")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .and_then(meta::parse_time)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn index_ranges_round_trip() {
        let set: BTreeSet<u32> = [0, 1, 2, 4, 6, 7].into_iter().collect();
        assert_eq!(format_indexes(&set), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7"), set);
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert_eq!(parse_indexes(""), BTreeSet::new());
        assert_eq!(parse_indexes("x,3,2-a, 5"), [3, 5].into_iter().collect());
        assert_eq!(parse_indexes("0-4000000000").len(), 1 << 20);
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_six_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(6), Duration::from_secs(320));
        assert_eq!(backoff(7), BACKOFF_MAX);
        assert_eq!(backoff(40), BACKOFF_MAX);
    }

    fn pod(uid: &str, phase: &str, finished: &str, terminating: bool) -> Arc<Value> {
        let mut p = json!({"metadata": {"name": format!("p-{phase}-{finished}"), "ownerReferences": [{"uid": uid, "controller": true}]},
            "status": {"phase": phase, "containerStatuses": [{"restartCount": 2, "state": {"terminated": {"finishedAt": finished}}}]}});
        if terminating {
            p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(p)
    }

    #[test]
    fn pods_are_counted_once_and_only_for_their_job() {
        let pods = vec![
            pod("j", "Running", "", false),
            pod("j", "Succeeded", "2026-01-01T00:00:10Z", false),
            pod("j", "Failed", "2026-01-01T00:00:05Z", false),
            pod("j", "Failed", "2026-01-01T00:00:20Z", false),
            pod("j", "Failed", "2026-01-01T00:00:30Z", true),
            pod("other", "Failed", "2026-01-01T00:00:40Z", false),
        ];
        let sorted = Pods::of("j", &pods);
        let counts =
            (sorted.active.len(), sorted.succeeded.len(), sorted.failed.len(), sorted.terminating.len());
        assert_eq!(counts, (1, 1, 2, 1));
        assert_eq!(sorted.restarts(), 2);
        // Only the failure after the last success counts toward the back-off.
        let (failures, last) = recent_failures(&sorted);
        assert_eq!(failures, 1);
        assert_eq!(last.map(|t| t.to_string()), Some("2026-01-01T00:00:20Z".into()));
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_it_changes() {
        let mut conditions = vec![condition("Suspended", "True", "JobSuspended", "Job suspended", "t1")];
        set_condition(&mut conditions, condition("Suspended", "True", "JobSuspended", "Job suspended", "t2"));
        assert_eq!(conditions[0]["lastTransitionTime"], "t1");
        set_condition(&mut conditions, condition("Suspended", "False", "JobResumed", "Job resumed", "t3"));
        assert_eq!((conditions.len(), conditions[0]["lastTransitionTime"].clone()), (1, json!("t3")));
    }
}
