//! DaemonSets and ReplicationControllers end to end, through kubectl, on clusters of real
//! nodes (`wasmkube up` plus `wasmkube agent` processes) running hello-http.
//!
//! - A DaemonSet follows the nodes: a joining node gets a daemon, a deleted one loses it, and
//!   a nodeSelector follows node labels as kubectl changes them.
//! - A rolling update with maxUnavailable 1 replaces the daemons one node at a time;
//!   `rollout history` lists both templates and `rollout undo` brings the first one back.
//! - `OnDelete` changes a pod only once it is deleted; `maxSurge` starts the new daemon beside
//!   the old one.
//! - A ReplicationController scales up and down and replaces a deleted pod.
//!
//! Waits are on watches (`kubectl wait`, `rollout status`, a pod watch), never on sleeps.

use std::{collections::BTreeSet, path::Path, time::Duration};

use anyhow::Context;
use serde_json::Value;
use wasmkube_e2e::{
    cluster::{Cluster, Process, root, wasmkube_bin},
    pod_watch::PodWatch,
};

const V1: &str = "example.local/hello-http:1";
const V2: &str = "example.local/hello-http:2";

/// A cluster whose `up` node (node-a) has both hello-http tags.
fn cluster(dir: &Path) -> anyhow::Result<Cluster> {
    let cluster = Cluster::up(&dir.join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", V1)?;
    cluster.side_load("hello-http.wasm", V2)?;
    Ok(cluster)
}

/// Start node `name` with both hello-http tags in its image cache, and wait until it is Ready.
fn join(cluster: &Cluster, dir: &Path, name: &str) -> anyhow::Result<Process> {
    let node_dir = dir.join(name);
    let fixture = root().join("sample-apps/fixtures/hello-http.wasm").display().to_string();
    for image in [V1, V2] {
        let out = std::process::Command::new(wasmkube_bin()?)
            .args(["load", &fixture, "--name", image, "--node-data-dir", &node_dir.display().to_string()])
            .output()?;
        anyhow::ensure!(out.status.success(), "load: {}", String::from_utf8_lossy(&out.stderr));
    }
    let agent = cluster.join_agent(&node_dir, name)?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", &format!("node/{name}"), "--timeout=60s"])?;
    Ok(agent)
}

/// A DaemonSet of hello-http with a readiness probe; `extra` goes into the pod spec.
fn daemonset(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:{extra}
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: {image}
        imagePullPolicy: Never
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
"
    )
}

/// `kubectl wait` on a jsonpath of `object`.
fn wait_for(cluster: &Cluster, object: &str, jsonpath: &str) -> anyhow::Result<()> {
    cluster.kubectl_ok(&["wait", &format!("--for=jsonpath={jsonpath}"), object, "--timeout=120s"])?;
    Ok(())
}

/// The live (not terminating) pods with `app=<app>`.
fn pods(cluster: &Cluster, app: &str) -> anyhow::Result<Vec<Value>> {
    let list = cluster.get_json(&["pods", "-l", &format!("app={app}")])?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect())
}

fn nodes_of(pods: &[Value]) -> BTreeSet<String> {
    pods.iter().filter_map(|p| p["spec"]["nodeName"].as_str()).map(str::to_string).collect()
}

fn names_of(pods: &[Value]) -> Vec<String> {
    pods.iter().filter_map(|p| p["metadata"]["name"].as_str()).map(str::to_string).collect()
}

/// The REVISION column of `kubectl rollout history`.
fn revisions(cluster: &Cluster, object: &str) -> anyhow::Result<Vec<String>> {
    let history = cluster.kubectl_ok(&["rollout", "history", object])?;
    Ok(history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .map(str::to_string)
        .collect())
}

#[test]
fn a_daemonset_follows_nodes_joining_leaving_and_their_labels() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = cluster(work.path())?;
    cluster.apply_yaml("agent", &daemonset("agent", V1, ""))?;
    cluster.kubectl_ok(&["rollout", "status", "ds/agent", "--timeout=120s"])?;
    assert_eq!(nodes_of(&pods(&cluster, "agent")?), BTreeSet::from(["node-a".to_string()]));

    // A node joining gets its daemon.
    let mut agent_b = join(&cluster, work.path(), "node-b")?;
    wait_for(&cluster, "ds/agent", "{.status.numberReady}=2")?;
    let both = pods(&cluster, "agent")?;
    assert_eq!(both.len(), 2, "one pod per node: {both:#?}");
    assert_eq!(nodes_of(&both), BTreeSet::from(["node-a".to_string(), "node-b".to_string()]));
    let table = cluster.kubectl_ok(&["get", "ds", "agent"])?;
    let header: Vec<&str> = table.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE"]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(row[..7], ["agent", "2", "2", "2", "2", "2", "<none>"], "{table}");

    // A nodeSelector follows the node's labels.
    cluster.apply_yaml("ssd", &daemonset("ssd", V1, "\n      nodeSelector: {disk: ssd}"))?;
    cluster.kubectl_ok(&["rollout", "status", "ds/ssd", "--timeout=60s"])?;
    assert!(pods(&cluster, "ssd")?.is_empty(), "no node has the label yet");
    cluster.kubectl_ok(&["label", "node", "node-b", "disk=ssd"])?;
    wait_for(&cluster, "ds/ssd", "{.status.numberReady}=1")?;
    assert_eq!(nodes_of(&pods(&cluster, "ssd")?), BTreeSet::from(["node-b".to_string()]));
    cluster.kubectl_ok(&["label", "node", "node-b", "disk-"])?;
    cluster.kubectl_ok(&["wait", "--for=delete", "pod", "-l", "app=ssd", "--timeout=60s"])?;
    wait_for(&cluster, "ds/ssd", "{.status.desiredNumberScheduled}=0")?;

    // A node leaving (its agent stopped, its Node deleted) loses its daemon.
    let on_b: Vec<String> =
        names_of(&both.iter().filter(|p| p["spec"]["nodeName"] == "node-b").cloned().collect::<Vec<_>>());
    agent_b.terminate()?;
    cluster.kubectl_ok(&["delete", "node", "node-b"])?;
    let pod_b = on_b.first().context("a pod on node-b")?;
    cluster.kubectl_ok(&["wait", "--for=delete", &format!("pod/{pod_b}"), "--timeout=60s"])?;
    wait_for(&cluster, "ds/agent", "{.status.desiredNumberScheduled}=1")?;
    assert_eq!(nodes_of(&pods(&cluster, "agent")?), BTreeSet::from(["node-a".to_string()]));
    Ok(())
}

#[test]
fn a_daemonset_rolls_out_one_node_at_a_time_and_undoes() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = cluster(work.path())?;
    let _agent_b = join(&cluster, work.path(), "node-b")?;
    cluster.apply_yaml("web", &daemonset("web", V1, ""))?;
    cluster.kubectl_ok(&["rollout", "status", "ds/web", "--timeout=120s"])?;
    let first = pods(&cluster, "web")?;
    assert_eq!(nodes_of(&first).len(), 2, "{first:#?}");

    let watch = PodWatch::start(&cluster, "app=web")?;
    watch.wait_until("the watch sees both daemons", Duration::from_secs(30), |p| {
        p.values().filter(|p| p.serving()).count() == 2
    })?;
    watch.reset_extremes();
    // The revision copies the DaemonSet's annotations: the change cause shows in the history.
    cluster.kubectl_ok(&["annotate", "ds/web", "kubernetes.io/change-cause=to version 2"])?;
    cluster.apply_yaml("web", &daemonset("web", V2, ""))?;
    cluster.kubectl_ok(&["rollout", "status", "ds/web", "--timeout=120s"])?;
    let (max_live, min_serving) = watch.extremes();
    assert!(max_live <= 2, "maxSurge 0: never two daemons on a node (saw {max_live} live pods)");
    assert!(min_serving >= 1, "maxUnavailable 1: one node at a time (saw {min_serving} serving)");
    let second = pods(&cluster, "web")?;
    assert!(second.iter().all(|p| p["spec"]["containers"][0]["image"] == V2), "{second:#?}");
    assert!(names_of(&second).iter().all(|n| !names_of(&first).contains(n)), "every pod was replaced");

    assert_eq!(revisions(&cluster, "ds/web")?, ["1", "2"]);
    let history = cluster.kubectl_ok(&["rollout", "history", "ds/web"])?;
    assert!(history.lines().any(|l| l.starts_with('2') && l.contains("to version 2")), "{history}");
    let shown = cluster.kubectl_ok(&["rollout", "history", "ds/web", "--revision=1"])?;
    assert!(shown.contains(V1), "{shown}");
    let revs = cluster.kubectl_ok(&["get", "controllerrevisions"])?;
    assert!(revs.contains("daemonset.apps/web"), "{revs}");

    let undone = cluster.kubectl_ok(&["rollout", "undo", "ds/web"])?;
    assert!(undone.contains("rolled back"), "{undone}");
    cluster.kubectl_ok(&["rollout", "status", "ds/web", "--timeout=120s"])?;
    let third = pods(&cluster, "web")?;
    assert_eq!(third.len(), 2, "{third:#?}");
    assert!(third.iter().all(|p| p["spec"]["containers"][0]["image"] == V1), "{third:#?}");
    assert_eq!(revisions(&cluster, "ds/web")?, ["2", "3"], "the first template came back as revision 3");
    Ok(())
}

#[test]
fn on_delete_waits_for_deletions_and_a_surge_starts_the_new_daemon_first() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = cluster(work.path())?;
    let with_strategy = |image: &str, strategy: &str| {
        daemonset("od", image, "")
            .replace("spec:\n  selector", &format!("spec:\n  updateStrategy: {strategy}\n  selector"))
    };
    cluster.apply_yaml("od", &with_strategy(V1, "{type: OnDelete}"))?;
    wait_for(&cluster, "ds/od", "{.status.numberReady}=1")?;
    let first = names_of(&pods(&cluster, "od")?);

    // OnDelete: a new template changes no pod until the pod is deleted.
    cluster.apply_yaml("od", &with_strategy(V2, "{type: OnDelete}"))?;
    wait_for(&cluster, "ds/od", "{.status.observedGeneration}=2")?;
    assert_eq!(names_of(&pods(&cluster, "od")?), first, "the old pod stays");
    wait_for(&cluster, "ds/od", "{.status.updatedNumberScheduled}=0")?;
    cluster.kubectl_ok(&["delete", "pod", &first[0]])?;
    wait_for(&cluster, "ds/od", "{.status.updatedNumberScheduled}=1")?;
    wait_for(&cluster, "ds/od", "{.status.numberAvailable}=1")?;
    let replaced = pods(&cluster, "od")?;
    assert!(replaced.iter().all(|p| p["spec"]["containers"][0]["image"] == V2), "{replaced:#?}");

    // maxSurge 1: the new daemon starts beside the old one, which goes once it is available.
    let watch = PodWatch::start(&cluster, "app=od")?;
    watch.wait_until("the watch sees the daemon", Duration::from_secs(30), |p| {
        p.values().filter(|p| p.serving()).count() == 1
    })?;
    watch.reset_extremes();
    let surge = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";
    cluster.apply_yaml("od", &with_strategy(V1, surge))?;
    cluster.kubectl_ok(&["rollout", "status", "ds/od", "--timeout=120s"])?;
    let (max_live, min_serving) = watch.extremes();
    assert_eq!((max_live, min_serving), (2, 1), "surged to two pods, never none serving");
    let last = pods(&cluster, "od")?;
    assert_eq!(last.len(), 1, "{last:#?}");
    assert_eq!(last[0]["spec"]["containers"][0]["image"], V1);
    Ok(())
}

#[test]
fn a_replication_controller_scales_and_replaces_pods() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = cluster(work.path())?;
    // No selector: it is defaulted from the template's labels.
    let rc = format!(
        "apiVersion: v1
kind: ReplicationController
metadata: {{name: legacy}}
spec:
  replicas: 2
  template:
    metadata: {{labels: {{app: legacy}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: {V1}
        imagePullPolicy: Never
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
"
    );
    cluster.apply_yaml("legacy", &rc)?;
    wait_for(&cluster, "rc/legacy", "{.status.readyReplicas}=2")?;
    let table = cluster.kubectl_ok(&["get", "rc", "legacy"])?;
    let header: Vec<&str> = table.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], "{table}");
    let selector = cluster.get_json(&["rc", "legacy"])?["spec"]["selector"].clone();
    assert_eq!(selector, serde_json::json!({"app": "legacy"}));

    cluster.kubectl_ok(&["scale", "rc", "legacy", "--replicas=3"])?;
    wait_for(&cluster, "rc/legacy", "{.status.readyReplicas}=3")?;
    assert_eq!(pods(&cluster, "legacy")?.len(), 3);
    cluster.kubectl_ok(&["scale", "rc", "legacy", "--replicas=1"])?;
    wait_for(&cluster, "rc/legacy", "{.status.replicas}=1")?;
    assert_eq!(pods(&cluster, "legacy")?.len(), 1);

    let victim = names_of(&pods(&cluster, "legacy")?).pop().context("one pod")?;
    cluster.kubectl_ok(&["delete", "pod", &victim, "--wait=false"])?;
    cluster.kubectl_ok(&["wait", "--for=delete", &format!("pod/{victim}"), "--timeout=60s"])?;
    wait_for(&cluster, "rc/legacy", "{.status.readyReplicas}=1")?;
    let now = pods(&cluster, "legacy")?;
    assert_eq!(now.len(), 1, "{now:#?}");
    assert!(!names_of(&now).contains(&victim), "the deleted pod was replaced");
    Ok(())
}
