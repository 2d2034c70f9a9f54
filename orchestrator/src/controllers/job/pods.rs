//! The pods a Job wants: which completion indexes are done, which active pods to keep or delete
//! and which indexes to start (Indexed mode), and a pod from the Job's template. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::state::{self, Pods};
use crate::api::{batch::COMPLETION_INDEX, meta};

/// Indexes done: those recorded in the status plus those of succeeded pods (below
/// `completions`; anything else is not a valid index of this Job).
pub(super) fn completed_indexes(job: &Value, pods: &Pods, completions: u32) -> BTreeSet<u32> {
    let mut done = state::parse_indexes(job["status"]["completedIndexes"].as_str().unwrap_or(""));
    done.extend(pods.succeeded.iter().filter_map(|p| state::index_of(p)));
    done.retain(|i| *i < completions);
    done
}

/// Indexed mode: which active pods to keep (one per index not yet done, oldest first), which to
/// delete (duplicates, done or invalid indexes), and which indexes to start, lowest first.
pub(super) fn indexed_plan<'a>(
    pods: &Pods<'a>,
    completed: &BTreeSet<u32>,
    completions: u32,
    parallelism: usize,
) -> (Vec<&'a Value>, Vec<&'a Value>, Vec<Option<u32>>) {
    let mut by_index: BTreeMap<u32, Vec<&Value>> = BTreeMap::new();
    let mut extra = Vec::new();
    for pod in &pods.active {
        match state::index_of(pod).filter(|i| *i < completions && !completed.contains(i)) {
            Some(i) => by_index.entry(i).or_default().push(pod),
            None => extra.push(*pod),
        }
    }
    let mut keep = Vec::new();
    for list in by_index.values_mut() {
        list.sort_by_key(|p| p["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string());
        keep.push(list[0]);
        extra.extend_from_slice(&list[1..]);
    }
    let room = parallelism.saturating_sub(keep.len());
    let missing = (0..completions)
        .filter(|i| !completed.contains(i) && !by_index.contains_key(i))
        .take(room)
        .map(Some)
        .collect();
    (keep, extra, missing)
}

/// A pod for the Job from its template; in Indexed mode it carries its index (annotation,
/// label, `JOB_COMPLETION_INDEX` from the annotation, hostname `<job>-<index>`), as upstream.
pub(super) fn pod_from_template(job: &Value, index: Option<u32>) -> Value {
    let template = &job["spec"]["template"];
    let mut metadata = template["metadata"].as_object().cloned().unwrap_or_default();
    let mut spec = template["spec"].clone();
    let name = meta::name(job);
    metadata.remove("name");
    metadata.insert("namespace".into(), json!(meta::namespace(job)));
    metadata.insert("ownerReferences".into(), json!([meta::owner_reference(job)]));
    metadata.insert("generateName".into(), json!(format!("{name}-")));
    if let Some(i) = index {
        metadata.insert("generateName".into(), json!(format!("{name}-{i}-")));
        for key in ["annotations", "labels"] {
            let mut map = metadata.get(key).and_then(Value::as_object).cloned().unwrap_or_default();
            map.insert(COMPLETION_INDEX.into(), json!(i.to_string()));
            metadata.insert(key.into(), Value::Object(map));
        }
        if spec["hostname"].as_str().is_none_or(str::is_empty) && spec.is_object() {
            spec["hostname"] = json!(format!("{name}-{i}"));
        }
        for list in ["initContainers", "containers"] {
            for c in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                add_index_env(c);
            }
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

fn add_index_env(container: &mut Value) {
    let Some(c) = container.as_object_mut() else { return };
    let env = c.entry("env").or_insert_with(|| json!([]));
    let Some(env) = env.as_array_mut() else { return };
    if env.iter().any(|e| e["name"] == "JOB_COMPLETION_INDEX") {
        return;
    }
    let path = format!("metadata.annotations['{COMPLETION_INDEX}']");
    env.push(json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"fieldPath": path}}}));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn indexed_pod(index: u32, created: &str) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": format!("p{index}-{created}"), "creationTimestamp": created,
            "annotations": {COMPLETION_INDEX: index.to_string()},
            "ownerReferences": [{"uid": "j", "controller": true}]}, "status": {"phase": "Running"}}))
    }

    #[test]
    fn indexed_plan_keeps_one_pod_per_open_index_and_starts_the_lowest_missing() {
        let pods = vec![
            indexed_pod(1, "2026-01-01T00:00:01Z"),
            indexed_pod(1, "2026-01-01T00:00:02Z"),
            indexed_pod(0, "2026-01-01T00:00:01Z"),
            indexed_pod(9, "2026-01-01T00:00:01Z"),
        ];
        let sorted = Pods::of("j", &pods);
        let done: BTreeSet<u32> = [0].into_iter().collect();
        let (keep, extra, missing) = indexed_plan(&sorted, &done, 5, 3);
        let names = |l: &[&Value]| l.iter().map(|p| meta::name(p).to_string()).collect::<Vec<_>>();
        // Index 1 keeps its older pod; a pod for done index 0 and one past `completions` go.
        assert_eq!(names(&keep), ["p1-2026-01-01T00:00:01Z"]);
        let mut gone = names(&extra);
        gone.sort();
        assert_eq!(gone, ["p0-2026-01-01T00:00:01Z", "p1-2026-01-01T00:00:02Z", "p9-2026-01-01T00:00:01Z"]);
        assert_eq!(missing, [Some(2), Some(3)], "parallelism 3 leaves room for two");
    }

    #[test]
    fn an_indexed_pod_carries_its_index_everywhere_upstream_puts_it() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "wc", "namespace": "ns", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"app": "wc"}},
                "spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}}});
        let pod = pod_from_template(&job, Some(3));
        let meta = &pod["metadata"];
        assert_eq!(meta["generateName"], "wc-3-");
        assert_eq!(
            (&meta["annotations"][COMPLETION_INDEX], &meta["labels"][COMPLETION_INDEX]),
            (&json!("3"), &json!("3"))
        );
        assert_eq!(meta["labels"]["app"], "wc");
        assert_eq!(meta["ownerReferences"][0]["uid"], "u");
        assert_eq!(pod["spec"]["hostname"], "wc-3");
        let env = &pod["spec"]["containers"][0]["env"];
        assert_eq!(env[1]["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(
            env[1]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        let plain = pod_from_template(&job, None);
        assert_eq!(plain["metadata"]["generateName"], "wc-");
        assert!(plain["spec"]["hostname"].is_null());
    }
}
