//! A Deployment's status as upstream computes it: counts summed over its ReplicaSets, the
//! `Available` condition (enough pods available given `maxUnavailable`) and the `Progressing`
//! condition kubectl's `rollout status` reads — progress refreshes `lastUpdateTime`, and no
//! progress for `progressDeadlineSeconds` turns it `False` with `ProgressDeadlineExceeded`.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{replicas, rolling, status_count};
use crate::api::meta;

pub const PROGRESSING: &str = "Progressing";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const PAUSED: &str = "DeploymentPaused";

/// The status to write, and when to look again if nothing else changes.
pub struct Computed {
    pub status: Value,
    pub changed: bool,
    /// Time left until the progress deadline passes (when a rollout is under way).
    pub recheck_in: Option<Duration>,
}

/// A condition as upstream's `NewDeploymentCondition` makes it, both times set to `now`.
pub fn condition(kind: &str, status: &str, reason: &str, message: String, now: Timestamp) -> Value {
    let at = time(now);
    json!({"type": kind, "status": status, "lastUpdateTime": at, "lastTransitionTime": at, "reason": reason, "message": message})
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Upstream's `SetDeploymentCondition`: the same status and reason keeps the old condition (and
/// its times); the same status keeps the transition time.
pub fn set_condition(conditions: &mut Vec<Value>, mut new: Value) {
    if let Some(old) = conditions.iter_mut().find(|c| c["type"] == new["type"]) {
        if old["status"] == new["status"] && old["reason"] == new["reason"] {
            return;
        }
        if old["status"] == new["status"] {
            new["lastTransitionTime"] = old["lastTransitionTime"].clone();
        }
        *old = new;
    } else {
        conditions.push(new);
    }
}

fn find<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| c["type"] == kind)
}

/// Compute the status of `d` from its ReplicaSets (`new_rs` among `all`). `note` is a
/// `Progressing` condition this round already decided (a new ReplicaSet was created).
pub fn compute(
    d: &Value,
    new_rs: Option<&Value>,
    all: &[&Value],
    note: Option<Value>,
    now: Timestamp,
) -> Computed {
    let desired = replicas(d);
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let sum = |field: &str| all.iter().map(|rs| status_count(rs, field)).sum::<i64>();
    let available = sum("availableReplicas");
    let spec_total: i64 = all.iter().map(|rs| replicas(rs)).sum();
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "replicas": sum("replicas"),
        "updatedReplicas": new_rs.map_or(0, |rs| status_count(rs, "replicas")),
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (spec_total - available).max(0),
    });
    let mut conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let progressing_reason = find(&conditions, PROGRESSING).map(|c| c["reason"].clone());
    if paused && progressing_reason.as_ref().is_none_or(|r| r != PAUSED) {
        set_condition(
            &mut conditions,
            condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), now),
        );
    } else if !paused && progressing_reason.as_ref().is_some_and(|r| r == PAUSED) {
        let resumed =
            condition(PROGRESSING, "Unknown", "DeploymentResumed", "Deployment is resumed".into(), now);
        set_condition(&mut conditions, resumed);
    }
    if let Some(note) = note {
        set_condition(&mut conditions, note);
    }
    let available_condition = if available >= desired - rolling::max_unavailable(d, desired) {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut conditions, available_condition);
    let deadline = d["spec"]["progressDeadlineSeconds"].as_u64().map(Duration::from_secs);
    let mut recheck_in = None;
    if let (Some(deadline), Some(new_rs), false) = (deadline, new_rs, paused) {
        recheck_in = track_progress(d, &status, new_rs, &mut conditions, deadline, now);
    }
    status["conditions"] = json!(conditions);
    let changed = status.as_object().into_iter().flatten().any(|(k, v)| d["status"][k] != *v);
    Computed { status, changed, recheck_in }
}

/// Upstream's `syncRolloutStatus` for the `Progressing` condition; returns the time left until
/// the deadline when the rollout is still under way.
fn track_progress(
    d: &Value,
    status: &Value,
    new_rs: &Value,
    conditions: &mut Vec<Value>,
    deadline: Duration,
    now: Timestamp,
) -> Option<Duration> {
    let desired = replicas(d);
    let count = |s: &Value, k: &str| s[k].as_i64().unwrap_or(0);
    let current = find(conditions, PROGRESSING).cloned();
    let already_complete = count(status, "replicas") == count(status, "updatedReplicas")
        && current.as_ref().is_some_and(|c| c["reason"] == NEW_RS_AVAILABLE);
    if already_complete {
        return None;
    }
    let complete =
        ["updatedReplicas", "replicas", "availableReplicas"].iter().all(|k| count(status, k) == desired);
    let old = &d["status"];
    let old_pods = |s: &Value| count(s, "replicas") - count(s, "updatedReplicas");
    let progressed = count(status, "updatedReplicas") > count(old, "updatedReplicas")
        || old_pods(status) < old_pods(old)
        || count(status, "readyReplicas") > count(old, "readyReplicas")
        || count(status, "availableReplicas") > count(old, "availableReplicas");
    let name = meta::name(new_rs);
    if complete {
        let done = condition(
            PROGRESSING,
            "True",
            NEW_RS_AVAILABLE,
            format!("ReplicaSet \"{name}\" has successfully progressed."),
            now,
        );
        set_condition(conditions, done);
        return None;
    }
    if progressed {
        // Progress refreshes lastUpdateTime even with the same reason (the deadline restarts).
        let mut updated = condition(
            PROGRESSING,
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}\" is progressing."),
            now,
        );
        if let Some(c) = current.as_ref().filter(|c| c["status"] == "True") {
            updated["lastTransitionTime"] = c["lastTransitionTime"].clone();
        }
        conditions.retain(|c| c["type"] != PROGRESSING);
        conditions.push(updated);
        return Some(deadline);
    }
    let current = current?;
    if current["reason"] == TIMED_OUT {
        return None;
    }
    let since = current["lastUpdateTime"].as_str().and_then(meta::parse_time)?;
    let elapsed = now.duration_since(since).unsigned_abs();
    if elapsed > deadline {
        let timed_out = condition(
            PROGRESSING,
            "False",
            TIMED_OUT,
            format!("ReplicaSet \"{name}\" has timed out progressing."),
            now,
        );
        set_condition(conditions, timed_out);
        return None;
    }
    Some(deadline - elapsed + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": 2, "progressDeadlineSeconds": 60,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}, "status": status})
    }

    fn rs(name: &str, replicas: i64, available: i64) -> Value {
        json!({"metadata": {"name": name}, "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available}})
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("valid")
    }

    #[test]
    fn a_finished_rollout_is_available_and_has_progressed() {
        let d = deployment(json!({}));
        let new = rs("web-new", 2, 2);
        let out = compute(&d, Some(&new), &[&new], None, at(0));
        assert!(out.changed);
        assert_eq!(out.status["updatedReplicas"], 2);
        let conditions = out.status["conditions"].as_array().expect("conditions");
        assert_eq!(conditions[0]["reason"], "MinimumReplicasAvailable");
        assert_eq!(conditions[1]["reason"], NEW_RS_AVAILABLE);
        assert_eq!(out.recheck_in, None);
        // Computing again from the written status changes nothing.
        let again = compute(&deployment(out.status.clone()), Some(&new), &[&new], None, at(5));
        assert!(!again.changed);
    }

    #[test]
    fn no_progress_past_the_deadline_times_out() {
        let created = condition(PROGRESSING, "True", "NewReplicaSetCreated", "Created".into(), at(0));
        let old = rs("web-old", 2, 2);
        let new = rs("web-new", 1, 0);
        let first = compute(&deployment(json!({})), Some(&new), &[&old, &new], Some(created), at(0));
        let waiting = compute(&deployment(first.status.clone()), Some(&new), &[&old, &new], None, at(30));
        assert_eq!(waiting.recheck_in, Some(Duration::from_secs(31)));
        let late = compute(&deployment(first.status), Some(&new), &[&old, &new], None, at(61));
        let progressing =
            find(late.status["conditions"].as_array().expect("conditions"), PROGRESSING).cloned();
        let progressing = progressing.expect("progressing");
        assert_eq!(
            (progressing["status"].as_str(), progressing["reason"].as_str()),
            (Some("False"), Some(TIMED_OUT))
        );
        assert_eq!(progressing["message"], "ReplicaSet \"web-new\" has timed out progressing.");
    }

    #[test]
    fn progress_moves_the_deadline() {
        let created = condition(PROGRESSING, "True", "NewReplicaSetCreated", "Created".into(), at(0));
        let old = rs("web-old", 2, 2);
        let new = rs("web-new", 1, 0);
        let first = compute(&deployment(json!({})), Some(&new), &[&old, &new], Some(created), at(0));
        let ready = rs("web-new", 1, 1);
        let later = compute(&deployment(first.status), Some(&ready), &[&old, &ready], None, at(50));
        let c = find(later.status["conditions"].as_array().expect("conditions"), PROGRESSING)
            .cloned()
            .expect("cond");
        assert_eq!(
            (c["reason"].as_str(), c["lastUpdateTime"].as_str()),
            (Some("ReplicaSetUpdated"), Some(time(at(50)).as_str()))
        );
        assert_eq!(c["lastTransitionTime"], time(at(0)));
    }

    #[test]
    fn pausing_and_resuming_are_recorded() {
        let mut d = deployment(json!({}));
        d["spec"]["paused"] = json!(true);
        let new = rs("web-new", 2, 2);
        let paused = compute(&d, Some(&new), &[&new], None, at(0));
        let c = find(paused.status["conditions"].as_array().expect("c"), PROGRESSING).cloned().expect("cond");
        assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("Unknown"), Some(PAUSED)));
        d["spec"]["paused"] = json!(false);
        d["status"] = paused.status;
        let resumed = compute(&d, Some(&new), &[&new], None, at(1));
        let c =
            find(resumed.status["conditions"].as_array().expect("c"), PROGRESSING).cloned().expect("cond");
        assert_eq!(c["reason"], NEW_RS_AVAILABLE);
    }
}
