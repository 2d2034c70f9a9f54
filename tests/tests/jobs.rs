//! batch/v1 Jobs end to end through the real kubectl, against the real word-count component:
//! an Indexed Job runs each index exactly once, never more pods than `parallelism`; failing
//! pods hit `backoffLimit` after the pod-failure back-off; `activeDeadlineSeconds` stops a
//! Job; `ttlSecondsAfterFinished` deletes a finished Job with its pods; suspend and resume.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use wasmkube_e2e::{cluster::Cluster, word_count};

const PATIENCE: Duration = Duration::from_secs(90);

fn started_cluster(work: &std::path::Path) -> anyhow::Result<Cluster> {
    word_count::cluster(work)
}

/// A Job running word-count with `env` (YAML flow entries) and more `spec` lines.
fn job_yaml(name: &str, spec: &str, env: &str) -> String {
    let template = word_count::pod_template(2, env);
    format!("apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n{spec}\n{template}")
}

fn words(cluster: &Cluster) -> anyhow::Result<()> {
    let mut args = vec!["create", "configmap", "words", "--from-literal=words.txt=the cat and the hat"];
    let shards: Vec<String> =
        (0..5).map(|i| format!("--from-literal=words.txt.{i}=shard {i} shard")).collect();
    args.extend(shards.iter().map(String::as_str));
    cluster.kubectl_ok(&args)?;
    Ok(())
}

fn wait(cluster: &Cluster, what: &str, object: &str) -> anyhow::Result<String> {
    cluster.kubectl_ok(&["wait", &format!("--for={what}"), object, "--timeout=90s"])
}

/// Wait until every pod of Job `job` is gone.
fn wait_pods_gone(cluster: &Cluster, job: &str) -> anyhow::Result<()> {
    let selector = format!("batch.kubernetes.io/job-name={job}");
    cluster.kubectl_ok(&["wait", "--for=delete", "pod", "-l", &selector, "--timeout=60s"])?;
    Ok(())
}

/// `kubectl get events` about the object named `name`.
fn events_of(cluster: &Cluster, name: &str) -> anyhow::Result<String> {
    cluster.kubectl_ok(&["get", "events", "--field-selector", &format!("involvedObject.name={name}")])
}

/// The Job's condition of type `kind` (null when absent).
fn condition(job: &serde_json::Value, kind: &str) -> serde_json::Value {
    let conditions = job["status"]["conditions"].as_array().into_iter().flatten();
    conditions.into_iter().find(|c| c["type"] == kind).cloned().unwrap_or_default()
}

#[test]
fn an_indexed_job_runs_each_index_once_two_at_a_time() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    words(&cluster)?;
    let selector = "batch.kubernetes.io/job-name=shards";
    let mut watch = cluster.kubectl_background(&[
        "get",
        "pods",
        "-w",
        "-l",
        selector,
        "-o",
        "jsonpath={.metadata.name} {.status.phase}{\"\\n\"}",
    ])?;
    let spec = "  completions: 5\n  parallelism: 2\n  completionMode: Indexed";
    cluster.apply_yaml("shards", &job_yaml("shards", spec, "{name: SLEEP_MS, value: '300'}"))?;
    assert_eq!(wait(&cluster, "condition=complete", "job/shards")?.trim(), "job.batch/shards condition met");

    // Replay the watch up to the fifth success: never more than 2 pods were unfinished.
    let mut phases: BTreeMap<String, String> = BTreeMap::new();
    let mut most_active = 0;
    while phases.values().filter(|p| *p == "Succeeded").count() < 5 {
        let line = watch.wait_for_line(" ", PATIENCE)?;
        let (name, phase) = line.split_once(' ').unwrap_or((&line, ""));
        phases.insert(name.to_string(), phase.to_string());
        let active = phases.values().filter(|p| !matches!(p.as_str(), "Succeeded" | "Failed")).count();
        most_active = most_active.max(active);
    }
    let _ = watch.terminate();
    assert_eq!(most_active, 2, "{:?}", watch.seen);

    let pods = cluster.get_json(&["pods", "-l", selector])?;
    let pods = pods["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 5, "one pod per index, none retried");
    let mut indexes = BTreeSet::new();
    for pod in &pods {
        let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        assert!(name.starts_with(&format!("shards-{index}-")), "{name}");
        assert_eq!(pod["spec"]["hostname"], format!("shards-{index}"));
        let log = cluster.kubectl_ok(&["logs", name])?;
        assert!(log.contains(&format!("word-count: index {index}\n")), "{log}");
        assert!(log.contains("count shard 2"), "{log}");
        indexes.insert(index);
    }
    assert_eq!(indexes, (0..5).map(|i| i.to_string()).collect());

    let job = cluster.get_json(&["job", "shards"])?;
    let status = &job["status"];
    assert_eq!((status["succeeded"].as_i64(), status["completedIndexes"].as_str()), (Some(5), Some("0-4")));
    let types: Vec<&str> =
        status["conditions"].as_array().into_iter().flatten().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    let table = cluster.kubectl_ok(&["get", "job", "shards"])?;
    assert!(table.starts_with("NAME     STATUS     COMPLETIONS   DURATION   AGE\n"), "{table}");
    assert!(table.contains("shards   Complete   5/5"), "{table}");
    assert!(cluster.kubectl_ok(&["logs", "job/shards"])?.contains("word-count: index"));

    // `kubectl delete job` (Background propagation) takes the pods with it.
    cluster.kubectl_ok(&["delete", "job", "shards"])?;
    wait_pods_gone(&cluster, "paused")?;
    Ok(())
}

#[test]
fn failing_pods_hit_the_backoff_limit_after_backing_off() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    words(&cluster)?;
    cluster.apply_yaml("doomed", &job_yaml("doomed", "  backoffLimit: 1", "{name: FAIL, value: '1'}"))?;
    wait(&cluster, "condition=failed", "job/doomed")?;
    let job = cluster.get_json(&["job", "doomed"])?;
    assert_eq!(condition(&job, "Failed")["reason"], "BackoffLimitExceeded", "{job}");
    assert_eq!(job["status"]["failed"], 2, "{job}");
    assert_eq!(job["status"]["succeeded"], 0, "{job}");
    let events = events_of(&cluster, "doomed")?;
    assert!(events.contains("Job has reached the specified backoff limit"), "{events}");

    // The replacement waited out the 10 s back-off after the first failure.
    let pods = cluster.get_json(&["pods", "-l", "batch.kubernetes.io/job-name=doomed"])?;
    let mut created: Vec<i64> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["creationTimestamp"].as_str())
        .filter_map(|t| t.parse::<jiff::Timestamp>().ok().map(|t| t.as_second()))
        .collect();
    created.sort();
    assert_eq!(created.len(), 2, "{pods}");
    assert!(created[1] - created[0] >= 10, "replaced after {} s", created[1] - created[0]);
    Ok(())
}

#[test]
fn container_restarts_under_on_failure_count_toward_the_backoff_limit() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    words(&cluster)?;
    let yaml = job_yaml("flaky", "  backoffLimit: 1", "{name: FAIL, value: '1'}")
        .replace("restartPolicy: Never", "restartPolicy: OnFailure");
    cluster.apply_yaml("flaky", &yaml)?;
    wait(&cluster, "condition=failed", "job/flaky")?;
    let job = cluster.get_json(&["job", "flaky"])?;
    assert_eq!(condition(&job, "Failed")["reason"], "BackoffLimitExceeded", "{job}");
    // One pod, restarted in place by the node (never replaced by the controller), then
    // stopped when its restart reached the limit.
    let events = events_of(&cluster, "flaky")?;
    assert_eq!(events.matches("SuccessfulCreate").count(), 1, "{events}");
    assert!(events.contains("SuccessfulDelete"), "{events}");
    Ok(())
}

#[test]
fn active_deadline_seconds_stops_a_job() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    words(&cluster)?;
    let yaml = job_yaml("slow", "  activeDeadlineSeconds: 3", "{name: SLEEP_MS, value: '600000'}");
    cluster.apply_yaml("slow", &yaml)?;
    wait(&cluster, "condition=failed", "job/slow")?;
    let job = cluster.get_json(&["job", "slow"])?;
    let failed = condition(&job, "Failed");
    assert_eq!(
        (&failed["reason"], &failed["message"]),
        (&"DeadlineExceeded".into(), &"Job was active longer than specified deadline".into()),
        "{job}"
    );
    assert_eq!((job["status"]["failed"].as_i64(), job["status"]["active"].as_i64()), (Some(1), Some(0)));
    // The running pod was stopped, not left to run its ten minutes.
    wait_pods_gone(&cluster, "slow")?;
    let events = events_of(&cluster, "slow")?;
    assert!(events.contains("DeadlineExceeded"), "{events}");
    Ok(())
}

#[test]
fn a_finished_job_is_deleted_with_its_pods_after_its_ttl() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    words(&cluster)?;
    cluster.apply_yaml("brief", &job_yaml("brief", "  ttlSecondsAfterFinished: 2", ""))?;
    wait(&cluster, "delete", "job/brief")?;
    wait_pods_gone(&cluster, "brief")?;
    // It was deleted because it finished, not before.
    let events = events_of(&cluster, "brief")?;
    assert!(events.contains("Job completed"), "{events}");
    Ok(())
}

#[test]
fn a_suspended_job_stops_its_pods_and_resumes() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    words(&cluster)?;
    // How long each pod works comes from a ConfigMap: long before the suspension, short after.
    cluster.kubectl_ok(&["create", "configmap", "pace", "--from-literal=sleep=600000"])?;
    let env = "{name: SLEEP_MS, valueFrom: {configMapKeyRef: {name: pace, key: sleep}}}";
    cluster.apply_yaml("paused", &job_yaml("paused", "  completions: 2\n  parallelism: 2", env))?;
    wait(&cluster, "jsonpath={.status.active}=2", "job/paused")?;

    cluster.kubectl_ok(&["patch", "job", "paused", "--type=merge", "-p", r#"{"spec":{"suspend":true}}"#])?;
    wait(&cluster, "condition=suspended", "job/paused")?;
    wait_pods_gone(&cluster, "paused")?;
    let table = cluster.kubectl_ok(&["get", "job", "paused"])?;
    assert!(table.contains("paused   Suspended   0/2"), "{table}");

    cluster.kubectl_ok(&["patch", "configmap", "pace", "--type=merge", "-p", r#"{"data":{"sleep":"0"}}"#])?;
    cluster.kubectl_ok(&["patch", "job", "paused", "--type=merge", "-p", r#"{"spec":{"suspend":false}}"#])?;
    wait(&cluster, "condition=complete", "job/paused")?;
    let job = cluster.get_json(&["job", "paused"])?;
    // Pods stopped by the suspension are not failures.
    assert_eq!((job["status"]["succeeded"].as_i64(), job["status"]["failed"].as_i64()), (Some(2), Some(0)));
    let events = events_of(&cluster, "paused")?;
    for reason in ["Suspended", "Resumed", "SuccessfulDelete", "Completed"] {
        assert!(events.contains(reason), "{reason}: {events}");
    }
    Ok(())
}

#[test]
fn a_control_plane_restart_neither_duplicates_nor_recounts_pods() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("cluster");
    let port = wasmkube_e2e::cluster::free_port();
    let network = wasmkube_e2e::cluster::PodNetworkLease::reserve()?;
    let mut cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    cluster.side_load("word-count.wasm", word_count::IMAGE)?;
    words(&cluster)?;
    let spec = "  completions: 4\n  parallelism: 2\n  completionMode: Indexed";
    cluster.apply_yaml("steady", &job_yaml("steady", spec, "{name: SLEEP_MS, value: '3000'}"))?;
    wait(&cluster, "jsonpath={.status.active}=2", "job/steady")?;

    // Stop the whole control plane (and its agent) while two indexes run, then start it again.
    cluster.process.terminate()?;
    drop(cluster);
    let mut cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    wait(&cluster, "condition=complete", "job/steady")?;
    let pods = cluster.get_json(&["pods", "-l", "batch.kubernetes.io/job-name=steady"])?;
    let mut indexes: Vec<String> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].to_string())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["\"0\"", "\"1\"", "\"2\"", "\"3\""], "one pod per index: {pods}");
    let before = cluster.get_json(&["job", "steady"])?["status"].clone();
    assert_eq!((before["succeeded"].as_i64(), before["completedIndexes"].as_str()), (Some(4), Some("0-3")));

    // A restart after completion counts nothing again.
    cluster.process.terminate()?;
    drop(cluster);
    let cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    // Any recount would be written by the controller's first round, before a new pod event.
    cluster.kubectl_ok(&["create", "job", "marker", "--image=example.local/word-count:1"])?;
    wait(&cluster, "jsonpath={.status.startTime}", "job/marker")?;
    let after = cluster.get_json(&["job", "steady"])?["status"].clone();
    assert_eq!(after, before);
    Ok(())
}
