//! Container probes end to end through kubectl, against the real hello-http component: a
//! readiness probe takes a pod out of Ready and back as a ConfigMap flips its health (no
//! restart); a failing liveness probe restarts the container with kubelet's Events; a startup
//! probe that never passes holds the readiness probe back and restarts the container.

use std::time::Duration;

use wasmkube_e2e::cluster::Cluster;

const PATIENCE: Duration = Duration::from_secs(60);

fn started_cluster(work: &std::path::Path) -> anyhow::Result<Cluster> {
    let cluster = Cluster::up(&work.join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", "example.local/hello-http:1")?;
    Ok(cluster)
}

fn set_health(cluster: &Cluster, state: &str) -> anyhow::Result<()> {
    let patch = format!(r#"{{"data":{{"state":"{state}"}}}}"#);
    cluster.kubectl_ok(&["patch", "configmap", "health", "--type=merge", "-p", &patch])?;
    Ok(())
}

#[test]
fn readiness_follows_the_health_check_out_of_ready_and_back() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    cluster.kubectl_ok(&["create", "configmap", "health", "--from-literal=state=ok"])?;
    cluster.apply_yaml(
        "web",
        "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: example.local/hello-http:1
    ports: [{name: http, containerPort: 8080}]
    env: [{name: HEALTH_FILE, value: /health/state}]
    volumeMounts: [{name: health, mountPath: /health}]
    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1, failureThreshold: 1}
  volumes: [{name: health, configMap: {name: health}}]
",
    )?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"])?;

    set_health(&cluster, "down")?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready=false", "pod/web", "--timeout=60s"])?;
    let unhealthy = cluster.wait_for_event("web", "Unhealthy", PATIENCE)?;
    assert_eq!(unhealthy, "Readiness probe failed: HTTP probe failed with statuscode: 503");
    // Each failed check is not a new Event: the one Event counts up, as kubelet's do.
    let selector = "involvedObject.name=web,reason=Unhealthy";
    let events = cluster.get_json(&["events", "--field-selector", selector])?;
    let name = events["items"][0]["metadata"]["name"].as_str().unwrap_or_default().to_string();
    cluster.kubectl_ok(&["wait", "--for=jsonpath={.count}=3", &format!("event/{name}"), "--timeout=60s"])?;
    let events = cluster.get_json(&["events", "--field-selector", selector])?;
    assert_eq!(events["items"].as_array().map(Vec::len), Some(1), "{events}");
    let pod = cluster.get_json(&["pod", "web"])?;
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(
        (status["ready"].as_bool(), status["started"].as_bool()),
        (Some(false), Some(true)),
        "{status}"
    );

    set_health(&cluster, "ok")?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"])?;
    // Readiness never restarts anything.
    let pod = cluster.get_json(&["pod", "web"])?;
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0, "{pod}");
    Ok(())
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    cluster.apply_yaml(
        "sick",
        "apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  restartPolicy: OnFailure
  containers:
  - name: web
    image: example.local/hello-http:1
    livenessProbe: {httpGet: {path: /status/500, port: 8080}, periodSeconds: 1, failureThreshold: 2}
",
    )?;
    let unhealthy = cluster.wait_for_event("sick", "Unhealthy", PATIENCE)?;
    assert_eq!(unhealthy, "Liveness probe failed: HTTP probe failed with statuscode: 500");
    let killing = cluster.wait_for_event("sick", "Killing", PATIENCE)?;
    assert_eq!(killing, "Container web failed liveness probe, will be restarted");
    // The stopped Wasm server exits cleanly, yet OnFailure restarts it: the probe failed it.
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].restartCount}=1",
        "pod/sick",
        "--timeout=60s",
    ])?;
    let pod = cluster.get_json(&["pod", "sick"])?;
    let last = &pod["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert!(last["finishedAt"].is_string(), "{pod}");
    Ok(())
}

#[test]
fn a_startup_probe_that_never_passes_holds_readiness_back_and_restarts() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    cluster.apply_yaml(
        "slow",
        "apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  containers:
  - name: web
    image: example.local/hello-http:1
    startupProbe: {tcpSocket: {port: 9999}, periodSeconds: 1, failureThreshold: 3}
    readinessProbe: {httpGet: {path: /status/500, port: 8080}, periodSeconds: 1}
",
    )?;
    let killing = cluster.wait_for_event("slow", "Killing", PATIENCE)?;
    assert_eq!(killing, "Container web failed startup probe, will be restarted");
    let unhealthy = cluster.wait_for_event("slow", "Unhealthy", PATIENCE)?;
    let ip = cluster.get_json(&["pod", "slow"])?["status"]["podIP"].as_str().unwrap_or_default().to_string();
    assert_eq!(unhealthy, format!("Startup probe failed: dial tcp {ip}:9999: connect: connection refused"));
    // The readiness probe (which would fail, loudly) never ran while startup had not passed.
    let events = cluster.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=slow"])?;
    assert!(!events.contains("Readiness probe failed"), "{events}");
    let pod = cluster.get_json(&["pod", "slow"])?;
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["ready"], false, "{status}");
    Ok(())
}
