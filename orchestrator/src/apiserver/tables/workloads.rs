//! Rows of the workload kinds: Pods and what makes them (Deployments, ReplicaSets,
//! ReplicationControllers, DaemonSets and their ControllerRevisions, Jobs, CronJobs).

use serde_json::{Value, json};

use super::{age_of, containers_and_images, human_duration, or_none, s, selector};
use crate::api::meta;

/// The columns of a workload kind, `None` for other kinds.
pub(super) fn columns(kind: &str) -> Option<Vec<(&'static str, u8)>> {
    const POD_SETS: &[(&str, u8)] = &[("Containers", 1), ("Images", 1), ("Selector", 1)];
    let (main, wide): (&[(&str, u8)], &[(&str, u8)]) = match kind {
        "Pod" => (
            &[("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0)],
            &[("IP", 1), ("Node", 1)],
        ),
        "Deployment" => {
            (&[("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0)], POD_SETS)
        }
        "ReplicaSet" | "ReplicationController" => {
            (&[("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0)], POD_SETS)
        }
        "DaemonSet" => (
            &[
                ("Name", 0),
                ("Desired", 0),
                ("Current", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Node Selector", 0),
                ("Age", 0),
            ],
            POD_SETS,
        ),
        "ControllerRevision" => (&[("Name", 0), ("Controller", 0), ("Revision", 0), ("Age", 0)], &[]),
        "Job" => (&[("Name", 0), ("Status", 0), ("Completions", 0), ("Duration", 0), ("Age", 0)], POD_SETS),
        "CronJob" => (
            &[
                ("Name", 0),
                ("Schedule", 0),
                ("Timezone", 0),
                ("Suspend", 0),
                ("Active", 0),
                ("Last Schedule", 0),
                ("Age", 0),
            ],
            POD_SETS,
        ),
        _ => return None,
    };
    Some(main.iter().chain(wide).copied().collect())
}

/// The cells of a workload kind's row, `None` for other kinds.
pub(super) fn cells(kind: &str, obj: &Value, name: String, age: String) -> Option<Vec<String>> {
    let spec = &obj["spec"];
    let status = &obj["status"];
    Some(match kind {
        "Pod" => {
            let statuses = status["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|c| c["ready"].as_bool() == Some(true)).count();
            let restarts: i64 = statuses.iter().filter_map(|c| c["restartCount"].as_i64()).sum();
            vec![
                name,
                format!("{ready}/{total}"),
                pod_status(obj),
                restarts.to_string(),
                age,
                or_none(&status["podIP"]),
                or_none(&spec["nodeName"]),
            ]
        }
        "Deployment" => {
            let (containers, images) = containers_and_images(&spec["template"]["spec"]);
            vec![
                name,
                format!(
                    "{}/{}",
                    status["readyReplicas"].as_i64().unwrap_or(0),
                    spec["replicas"].as_i64().unwrap_or(0)
                ),
                status["updatedReplicas"].as_i64().unwrap_or(0).to_string(),
                status["availableReplicas"].as_i64().unwrap_or(0).to_string(),
                age,
                containers,
                images,
                selector(&spec["selector"]),
            ]
        }
        "ReplicaSet" | "ReplicationController" => {
            let (containers, images) = containers_and_images(&spec["template"]["spec"]);
            // A ReplicationController's selector is a plain label map.
            let sel = if kind == "ReplicaSet" {
                spec["selector"].clone()
            } else {
                json!({"matchLabels": spec["selector"]})
            };
            vec![
                name,
                spec["replicas"].as_i64().unwrap_or(0).to_string(),
                status["replicas"].as_i64().unwrap_or(0).to_string(),
                status["readyReplicas"].as_i64().unwrap_or(0).to_string(),
                age,
                containers,
                images,
                selector(&sel),
            ]
        }
        "DaemonSet" => daemonset_cells(name, age, spec, status),
        "ControllerRevision" => {
            // Upstream prints the controller as `daemonset.apps/name`.
            let controller = meta::controller_ref(obj).map_or_else(
                || "<none>".to_string(),
                |r| {
                    let group = s(&r["apiVersion"]).split_once('/').map(|(g, _)| format!(".{g}"));
                    format!("{}{}/{}", s(&r["kind"]).to_lowercase(), group.unwrap_or_default(), s(&r["name"]))
                },
            );
            vec![name, controller, obj["revision"].as_i64().unwrap_or(0).to_string(), age]
        }
        "Job" => {
            let (containers, images) = containers_and_images(&spec["template"]["spec"]);
            vec![
                name,
                job_status(obj),
                job_completions(spec, status),
                job_duration(status),
                age,
                containers,
                images,
                selector(&spec["selector"]),
            ]
        }
        "CronJob" => cronjob_cells(name, age, spec, status),
        _ => return None,
    })
}

/// A DaemonSet's row: counts from its status, NODE SELECTOR from the pod template.
fn daemonset_cells(name: String, age: String, spec: &Value, status: &Value) -> Vec<String> {
    let (containers, images) = containers_and_images(&spec["template"]["spec"]);
    let count = |field: &str| status[field].as_i64().unwrap_or(0).to_string();
    vec![
        name,
        count("desiredNumberScheduled"),
        count("currentNumberScheduled"),
        count("numberReady"),
        count("updatedNumberScheduled"),
        count("numberAvailable"),
        selector(&json!({"matchLabels": spec["template"]["spec"]["nodeSelector"]})),
        age,
        containers,
        images,
        selector(&spec["selector"]),
    ]
}

fn cronjob_cells(name: String, age: String, spec: &Value, status: &Value) -> Vec<String> {
    let job = &spec["jobTemplate"]["spec"];
    let (containers, images) = containers_and_images(&job["template"]["spec"]);
    let suspend = match spec["suspend"].as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let last = if status["lastScheduleTime"].is_string() {
        age_of(&status["lastScheduleTime"])
    } else {
        "<none>".into()
    };
    vec![
        name,
        s(&spec["schedule"]),
        or_none(&spec["timeZone"]),
        suspend.into(),
        status["active"].as_array().map_or(0, Vec::len).to_string(),
        last,
        age,
        containers,
        images,
        selector(&job["selector"]),
    ]
}

/// The STATUS column of a pod, as kubectl shows it: a waiting/terminated reason wins over phase.
pub fn pod_status(pod: &Value) -> String {
    if meta::is_terminating(pod) {
        return "Terminating".into();
    }
    let mut reason = pod["status"]["phase"].as_str().unwrap_or("Pending").to_string();
    for c in pod["status"]["containerStatuses"].as_array().into_iter().flatten() {
        if let Some(r) = c["state"]["waiting"]["reason"].as_str().filter(|r| !r.is_empty()) {
            reason = r.to_string();
        } else if let Some(r) = c["state"]["terminated"]["reason"].as_str().filter(|r| !r.is_empty()) {
            reason = r.to_string();
        }
    }
    reason
}

/// The STATUS column of a Job, in the precedence of upstream's `printJob`.
fn job_status(job: &Value) -> String {
    let has = |t: &str| {
        job["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if meta::is_terminating(job) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    status.into()
}

/// `succeeded/completions`; a work-queue Job (no completions) shows `n/1 of parallelism`.
fn job_completions(spec: &Value, status: &Value) -> String {
    let succeeded = status["succeeded"].as_i64().unwrap_or(0);
    match (spec["completions"].as_i64(), spec["parallelism"].as_i64().unwrap_or(0)) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    }
}

/// From start to completion, or to now while the Job runs; empty before it starts.
fn job_duration(status: &Value) -> String {
    let Some(start) = status["startTime"].as_str().and_then(meta::parse_time) else {
        return String::new();
    };
    let end =
        status["completionTime"].as_str().and_then(meta::parse_time).unwrap_or_else(jiff::Timestamp::now);
    human_duration((end.as_second() - start.as_second()).max(0))
}

#[cfg(test)]
mod tests {
    use super::super::table;
    use super::*;

    #[test]
    fn pod_row_shows_waiting_reason() {
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": meta::now()}, "spec": {"containers": [{"name": "c"}], "nodeName": "n"},
            "status": {"phase": "Pending", "containerStatuses": [{"ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let t = table("Pod", &[pod], 7);
        assert_eq!(t["rows"][0]["cells"], json!(["p", "0/1", "CrashLoopBackOff", "2", "0s", "<none>", "n"]));
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        let names: Vec<&Value> =
            t["columnDefinitions"].as_array().into_iter().flatten().map(|c| &c["name"]).collect();
        assert_eq!(names, ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"]);
    }

    #[test]
    fn job_rows_follow_upstreams_printer() {
        let job = json!({"metadata": {"name": "pi", "creationTimestamp": meta::now()},
            "spec": {"completions": 5, "parallelism": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}},
            "status": {"succeeded": 5, "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:05Z",
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
        let t = table("Job", &[job], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["pi", "Complete", "5/5", "65s", "0s", "c", "i", "batch.kubernetes.io/controller-uid=u"])
        );
        let queue = json!({"metadata": {"name": "q"}, "spec": {"parallelism": 3}, "status": {}});
        let cells = &table("Job", &[queue], 1)["rows"][0]["cells"];
        assert_eq!([&cells[1], &cells[2], &cells[3]], [&json!("Running"), &json!("0/1 of 3"), &json!("")]);
    }

    #[test]
    fn daemonset_and_revision_rows_follow_upstreams_printer() {
        let ds = json!({"metadata": {"name": "agent", "creationTimestamp": meta::now()},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                "template": {"spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                "updatedNumberScheduled": 1, "numberAvailable": 1}});
        let t = table("DaemonSet", &[ds], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["agent", "2", "2", "1", "1", "1", "disk=ssd", "0s", "c", "i", "app=a"])
        );
        let cr = json!({"metadata": {"name": "agent-x", "creationTimestamp": meta::now(), "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u", "controller": true}]}, "revision": 2});
        let t = table("ControllerRevision", &[cr], 1);
        assert_eq!(t["rows"][0]["cells"], json!(["agent-x", "daemonset.apps/agent", "2", "0s"]));
    }
}
