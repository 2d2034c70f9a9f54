//! API fidelity as the real kubectl 1.37 sees it: discovery (aggregated, with ETag), chunked
//! lists, delete propagation policies (`--cascade=background|foreground|orphan`), namespace
//! lifecycle (Terminating, 403 inside, contents removed first). Pods here need no image: an
//! unpullable one keeps them Pending-with-a-reason, which is all ownership needs.

use anyhow::Context;
use serde_json::Value;
use wasmkube_e2e::cluster::Cluster;

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
spec:
  replicas: 2
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec: {containers: [{name: c, image: 127.0.0.1:1/absent:1}]}
";

fn write(dir: &std::path::Path, name: &str, text: &str) -> anyhow::Result<String> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p.display().to_string())
}

fn items(cluster: &Cluster, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    Ok(cluster.get_json(args)?["items"].as_array().cloned().unwrap_or_default())
}

/// Create a 2-replica deployment and wait until its ReplicaSet has made both pods.
fn deployment(cluster: &Cluster, dir: &std::path::Path, name: &str) -> anyhow::Result<()> {
    let file = write(dir, &format!("{name}.yaml"), &DEPLOY.replace("NAME", name))?;
    cluster.kubectl_ok(&["apply", "-f", &file])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.replicas}=2",
        &format!("deployment/{name}"),
        "--timeout=60s",
    ])?;
    Ok(())
}

#[test]
fn delete_honours_each_propagation_policy() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;

    // Foreground: kubectl returns once the deployment is gone, and by then so is everything
    // it owned (the deployment waited for its ReplicaSet, which waited for its pods).
    deployment(&cluster, work.path(), "fg")?;
    cluster.kubectl_ok(&["delete", "deployment", "fg", "--cascade=foreground", "--timeout=90s"])?;
    assert!(items(&cluster, &["rs", "-l", "app=fg"])?.is_empty(), "foreground left replicasets");
    assert!(items(&cluster, &["pods", "-l", "app=fg"])?.is_empty(), "foreground left pods");

    // Orphan: the deployment goes, its ReplicaSet and pods stay, no longer owned.
    deployment(&cluster, work.path(), "orph")?;
    cluster.kubectl_ok(&["delete", "deployment", "orph", "--cascade=orphan", "--timeout=60s"])?;
    let sets = items(&cluster, &["rs", "-l", "app=orph"])?;
    assert_eq!(sets.len(), 1, "the replicaset survives: {sets:#?}");
    let owners = &sets[0]["metadata"]["ownerReferences"];
    assert!(owners.as_array().is_none_or(|o| o.is_empty()), "ownerReference removed: {owners}");
    assert_eq!(items(&cluster, &["pods", "-l", "app=orph"])?.len(), 2, "pods survive");

    // Background (the default): deleting the orphaned ReplicaSet takes its pods with it.
    let rs = sets[0]["metadata"]["name"].as_str().context("rs name")?.to_string();
    cluster.kubectl_ok(&["delete", "rs", &rs])?;
    cluster.kubectl_ok(&["wait", "--for=delete", "pod", "-l", "app=orph", "--timeout=90s"])?;

    // A policy kubectl would not send is refused, naming the supported ones.
    let out = cluster.kubectl(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/configmaps/none?propagationPolicy=Sideways",
    ])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("Foreground"), "{stderr}");
    Ok(())
}

#[test]
fn a_terminating_namespace_refuses_content_and_goes_once_empty() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n";
    cluster.kubectl_ok(&["apply", "-f", &write(work.path(), "ns.yaml", ns)?])?;
    // A ConfigMap with a finalizer holds the namespace in Terminating until it is released.
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: team\n  finalizers: [example.com/hold]\ndata: {a: b}\n";
    cluster.kubectl_ok(&["apply", "-f", &write(work.path(), "held.yaml", held)?])?;
    cluster.kubectl_ok(&["run", "p", "-n", "team", "--image=127.0.0.1:1/absent:1", "--restart=Never"])?;

    cluster.kubectl_ok(&["delete", "namespace", "team", "--wait=false"])?;
    let ns = cluster.get_json(&["namespace", "team"])?;
    assert_eq!(ns["status"]["phase"], "Terminating", "{ns:#}");
    let refused =
        cluster.kubectl(&["create", "configmap", "late", "-n", "team", "--dry-run=client", "-o", "yaml"])?;
    let late = write(work.path(), "late.yaml", &String::from_utf8_lossy(&refused.stdout))?;
    let out = cluster.kubectl(&["apply", "-f", &late])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("being terminated"), "create inside: {stderr}");

    // The pod goes (through its agent); the held ConfigMap waits for its finalizer.
    cluster.kubectl_ok(&["wait", "--for=delete", "pod/p", "-n", "team", "--timeout=90s"])?;
    assert_eq!(cluster.get_json(&["namespace", "team"])?["status"]["phase"], "Terminating");
    cluster.kubectl_ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])?;
    cluster.kubectl_ok(&["wait", "--for=delete", "namespace/team", "--timeout=60s"])?;
    Ok(())
}

#[test]
fn discovery_is_aggregated_and_lists_come_in_chunks() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    // kubectl asks for aggregated discovery first; the answer must come back in that form.
    let out = cluster.kubectl(&["api-resources", "--api-group=apps", "-v=8"])?;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Content-Type: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
        "{log}"
    );
    let resources = String::from_utf8_lossy(&out.stdout);
    let deploy = resources.lines().find(|l| l.starts_with("deployments")).context("deployments listed")?;
    assert!(
        deploy.contains("deploy") && deploy.contains("apps/v1") && deploy.contains("Deployment"),
        "{deploy}"
    );
    // kubectl scale finds deployments/scale through the same discovery.
    let scaled = cluster.kubectl(&["scale", "deployment/none", "--replicas=2"])?;
    assert!(String::from_utf8_lossy(&scaled.stderr).contains("not found"), "scale resolved the subresource");

    let many: String =
        (0..7).map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n")).collect();
    cluster.kubectl_ok(&["apply", "-f", &write(work.path(), "many.yaml", &many)?])?;
    let out = cluster.kubectl(&["get", "configmaps", "--chunk-size=3", "-o", "name", "-v=6"])?;
    let names = String::from_utf8_lossy(&out.stdout);
    assert_eq!(names.lines().filter(|l| l.starts_with("configmap/c")).count(), 7, "{names}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.matches("limit=3").count() >= 3 && log.contains("continue="), "paged requests: {log}");
    Ok(())
}

#[test]
fn a_node_credential_changes_only_its_own_node() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let node_dir = work.path().join("node-b");
    let _agent = cluster.join_agent(&node_dir, "node-b")?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "node/node-b", "--timeout=60s"])?;
    let credential = std::fs::read_to_string(node_dir.join("node-credential"))?;
    let token = format!("--token={}", credential.trim());
    let as_node = |args: &[&str]| -> anyhow::Result<(bool, String)> {
        let mut all = vec![token.as_str()];
        all.extend_from_slice(args);
        let out = cluster.kubectl(&all)?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()))
    };
    let (ok, err) = as_node(&["get", "pods", "-A"])?;
    assert!(ok, "a node reads pods: {err}");
    let (ok, err) = as_node(&["label", "node", "node-b", "disk=ssd"])?;
    assert!(ok, "a node changes its own Node: {err}");
    for args in [
        &["label", "node", "node-a", "stolen=yes"][..],
        &["delete", "node", "node-a"][..],
        &["get", "secrets"][..],
        &["create", "deployment", "x", "--image=r/x:1"][..],
    ] {
        let (ok, err) = as_node(args)?;
        assert!(!ok && err.contains("forbidden") && err.contains("system:node:node-b"), "{args:?}: {err}");
    }
    // The join token itself opens nothing but registration.
    let join = format!("--token={}", cluster.join_token);
    let out = cluster.kubectl(&[join.as_str(), "get", "pods"])?;
    assert!(!out.status.success(), "the join token is not an API credential");
    assert!(cluster.get_json(&["node", "node-a"])?["metadata"]["labels"].get("stolen").is_none());
    Ok(())
}

#[test]
fn insecure_http_is_loopback_only() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    // Anywhere but loopback is refused before anything starts.
    let out = std::process::Command::new(wasmkube_e2e::cluster::wasmkube_bin()?)
        .args(["up", "--data-dir"])
        .arg(work.path().join("refused"))
        .args(["--listen", "127.0.0.1:0", "--insecure-http", "0.0.0.0:8080"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("loopback"), "{stderr}");
    let port = wasmkube_e2e::cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _cluster = Cluster::up_with(&work.path().join("cluster"), "node-a", &["--insecure-http", &addr])?;
    let (code, body) = wasmkube_e2e::cluster::http_get(&addr, "/api/v1/namespaces/default")?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"kind\":\"Namespace\""), "{body}");
    Ok(())
}

#[test]
fn server_dry_runs_change_nothing() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    deployment(&cluster, work.path(), "dry")?;
    let before = cluster.get_json(&["deployment", "dry"])?;
    let rv = before["metadata"]["resourceVersion"].clone();

    // Create, apply (both kinds), scale, patch, label and delete, all with --dry-run=server.
    let cm = write(
        work.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ghost}\ndata: {a: b}\n",
    )?;
    let out = cluster.kubectl_ok(&["apply", "-f", &cm, "--dry-run=server"])?;
    assert!(out.contains("created (server dry run)"), "{out}");
    cluster.kubectl_ok(&["apply", "-f", &cm, "--dry-run=server", "--server-side"])?;
    let changed =
        write(work.path(), "dry.yaml", &DEPLOY.replace("NAME", "dry").replace("replicas: 2", "replicas: 5"))?;
    cluster.kubectl_ok(&["apply", "-f", &changed, "--dry-run=server"])?;
    cluster.kubectl_ok(&["scale", "deployment/dry", "--replicas=4", "--dry-run=server"])?;
    cluster.kubectl_ok(&["label", "deployment", "dry", "x=y", "--dry-run=server"])?;
    cluster.kubectl_ok(&[
        "patch",
        "deployment",
        "dry",
        "--type=merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
        "--dry-run=server",
    ])?;
    cluster.kubectl_ok(&["delete", "deployment", "dry", "--dry-run=server"])?;

    let out = cluster.kubectl(&["get", "configmap", "ghost"])?;
    assert!(!out.status.success(), "a dry-run create stored nothing");
    let after = cluster.get_json(&["deployment", "dry"])?;
    assert_eq!(after["metadata"]["resourceVersion"], rv, "the deployment was not written");
    assert_eq!(after["spec"]["replicas"], 2);
    // A write that changes nothing is not a write either: kubectl sees the same
    // resourceVersion come back and says so.
    let label = r#"{"metadata":{"labels":{"team":"a"}}}"#;
    let first = cluster.kubectl_ok(&["patch", "deployment", "dry", "--type=merge", "-p", label])?;
    assert!(first.contains("patched") && !first.contains("no change"), "{first}");
    let second = cluster.kubectl_ok(&["patch", "deployment", "dry", "--type=merge", "-p", label])?;
    assert!(second.contains("patched (no change)"), "{second}");
    Ok(())
}
