//! Self-healing end to end: a crashing container is restarted with a back-off that doubles as
//! kubelet's (10 s, then 20 s, ...), and a Deployment converges back to its replica count after
//! a pod or its whole ReplicaSet is deleted behind its back.

use std::{collections::BTreeSet, time::Duration};

use anyhow::Context;
use wasmkube_e2e::{cluster::Cluster, pod_watch::PodWatch};

const PATIENCE: Duration = Duration::from_secs(120);

fn seconds(time: &str) -> anyhow::Result<i64> {
    let parsed: jiff::Timestamp = time.parse().with_context(|| format!("a timestamp: {time:?}"))?;
    Ok(parsed.as_second())
}

#[test]
fn a_crashing_container_backs_off_longer_each_time() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("crasher.wasm", "example.local/crasher:1")?;
    cluster.apply_yaml(
        "crasher",
        "apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: crasher
    image: example.local/crasher:1
    imagePullPolicy: Never
    args: ['--after-secs', '0']
",
    )?;
    // Every finished run shows up once as lastState; three runs give two back-off gaps.
    let template = "jsonpath={.status.containerStatuses[0].lastState.terminated.startedAt} \
                    {.status.containerStatuses[0].lastState.terminated.finishedAt}{\"\\n\"}";
    let mut watch = cluster.kubectl_background(&["get", "pod", "crasher", "--watch", "-o", template])?;
    let mut runs: BTreeSet<(String, String)> = BTreeSet::new();
    let deadline = std::time::Instant::now() + PATIENCE;
    while runs.len() < 3 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "three runs within {PATIENCE:?}: {runs:?}");
        let Some(line) = watch.next_line(Duration::from_secs(5)) else { continue };
        if let Some((started, finished)) = line.trim().split_once(' ') {
            runs.insert((started.to_string(), finished.to_string()));
        }
    }
    let runs: Vec<(i64, i64)> =
        runs.iter().map(|(s, f)| Ok((seconds(s)?, seconds(f)?))).collect::<anyhow::Result<_>>()?;
    let first_wait = runs[1].0 - runs[0].1;
    let second_wait = runs[2].0 - runs[1].1;
    // Whole seconds on both ends: allow one either way.
    assert!((9..=13).contains(&first_wait), "the first back-off is 10 s: {runs:?}");
    assert!((19..=24).contains(&second_wait), "the second back-off is 20 s: {runs:?}");
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crasher,reason=BackOff",
    ])?;
    assert!(events.contains("Back-off restarting failed container"), "{events}");
    Ok(())
}

#[test]
fn a_deployment_converges_after_its_pods_or_replicaset_are_deleted() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", "example.local/hello-http:1")?;
    cluster.apply_yaml(
        "web",
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: example.local/hello-http:1
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
",
    )?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    let watch = PodWatch::start(&cluster, "app=web")?;
    watch.wait_until("3 serving", PATIENCE, |pods| pods.values().filter(|p| p.serving()).count() == 3)?;

    // A pod deleted behind the Deployment's back is replaced by a new one.
    let victim = watch.pods().keys().next().cloned().context("a pod")?;
    cluster.kubectl_ok(&["delete", "pod", &victim, "--wait=false"])?;
    watch.wait_until("a replacement serving", PATIENCE, |pods| {
        pods.iter().filter(|(name, p)| p.serving() && **name != victim).count() == 3
    })?;

    // The ReplicaSet deleted (its pods with it): the Deployment makes a new one.
    let old_set = cluster.get_json(&["replicasets", "-l", "app=web"])?["items"][0]["metadata"]["uid"].clone();
    let before: BTreeSet<String> = watch.pods().keys().cloned().collect();
    cluster.kubectl_ok(&["delete", "replicasets", "-l", "app=web", "--wait=false"])?;
    watch.wait_until("3 new pods serving", PATIENCE, |pods| {
        let fresh = pods.iter().filter(|(name, p)| p.serving() && !before.contains(*name)).count();
        fresh == 3 && pods.values().filter(|p| p.live()).count() == 3
    })?;
    let sets = cluster.get_json(&["replicasets", "-l", "app=web"])?;
    let items = sets["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{sets:#}");
    assert_ne!(items[0]["metadata"]["uid"], old_set, "a new ReplicaSet");
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"])?;
    Ok(())
}
