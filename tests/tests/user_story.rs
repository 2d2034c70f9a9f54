//! The walking skeleton's user story, end to end, with the real parts: a CNCF distribution
//! registry, `wasmkube push` and skopeo, `wasmkube up` plus a second `wasmkube agent` process,
//! and the real kubectl 1.37. Every step checks its result.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use wasmkube_e2e::{
    TestRegistry,
    cluster::{Cluster, http_get, root},
    wasi_image,
};

fn fixture(name: &str) -> String {
    root().join("sample-apps/fixtures").join(name).display().to_string()
}

/// The sample manifest, pointed at the test registry.
fn sample_deployment(registry: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(root().join("sample-apps/hello-http/deployment.yaml"))?;
    if !text.contains("127.0.0.1:5000/hello-http:1") {
        bail!("sample-apps/hello-http/deployment.yaml no longer names 127.0.0.1:5000/hello-http:1");
    }
    Ok(text.replace("127.0.0.1:5000", registry))
}

fn pods(cluster: &Cluster, selector: &str) -> anyhow::Result<Vec<Value>> {
    Ok(cluster.get_json(&["pods", "-l", selector])?["items"].as_array().cloned().unwrap_or_default())
}

fn running(pods: &[Value]) -> usize {
    pods.iter().filter(|p| p["status"]["phase"] == "Running").count()
}

#[test]
fn user_story_from_registry_to_reachable_pods() -> anyhow::Result<()> {
    let registry = TestRegistry::start()?;
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let _agent = cluster.join_agent(&work.path().join("node-b"), "node-b")?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "node/node-a", "node/node-b", "--timeout=60s"])?;

    // Push the app both ways: the CNCF artifact (wasmkube push) and a wasi/wasm image (skopeo).
    let reference = registry.reference("hello-http:1");
    let pushed = cluster.wasmkube_ok(&["push", &fixture("hello-http.wasm"), &reference])?;
    assert!(pushed.contains("@sha256:"), "push prints the digest: {pushed}");
    let wasm = std::fs::read(fixture("hello-http.wasm"))?;
    let (wasi_ref, _) = wasi_image::push_wasi_image(registry.addr(), "hello-http", "wasi", &wasm)?;

    // kubectl apply: 2 replicas from the registry, spread over both nodes.
    let manifest = work.path().join("deployment.yaml");
    std::fs::write(&manifest, sample_deployment(registry.addr())?)?;
    let applied = cluster.kubectl_ok(&["apply", "-f", &manifest.display().to_string()])?;
    assert!(applied.contains("deployment.apps/hello-http created"), "{applied}");
    cluster.kubectl_ok(&["rollout", "status", "deployment/hello-http", "--timeout=120s"])?;
    let list = pods(&cluster, "app=hello-http")?;
    assert_eq!(running(&list), 2, "both pods Running: {list:#?}");
    let nodes: std::collections::BTreeSet<&str> =
        list.iter().filter_map(|p| p["spec"]["nodeName"].as_str()).collect();
    assert_eq!(nodes.len(), 2, "the scheduler spreads the replicas over both nodes: {nodes:?}");

    // Every pod answers on its own IP with its own name, and its log shows the request.
    for pod in &list {
        let name = pod["metadata"]["name"].as_str().context("pod name")?;
        let ip = pod["status"]["podIP"].as_str().context("podIP")?;
        let (code, body) = http_get(&format!("{ip}:8080"), "/")?;
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains(&format!("Hello from {name}!")) && body.contains("Hello from a Wasm pod"),
            "{body}"
        );
        let logs = cluster.kubectl_ok(&["logs", name])?;
        assert!(logs.contains("GET / from hello-http"), "kubectl logs {name}: {logs:?}");
        let image_id = pod["status"]["containerStatuses"][0]["imageID"].as_str().unwrap_or("");
        assert!(image_id.contains("@sha256:"), "imageID is reported: {image_id}");
    }
    let table = cluster.wasmkube_ok(&["get", "pods", "-l", "app=hello-http"])?;
    assert!(
        table.starts_with("NAME") && table.contains("Running") && table.contains("1/1"),
        "wasmkube get prints a table: {table}"
    );

    // Re-applying the same manifest changes nothing; scaling adds a third pod.
    assert!(cluster.kubectl_ok(&["apply", "-f", &manifest.display().to_string()])?.contains("unchanged"));
    cluster.kubectl_ok(&["scale", "deployment", "hello-http", "--replicas=3"])?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/hello-http", "--timeout=120s"])?;
    assert_eq!(running(&pods(&cluster, "app=hello-http")?), 3);

    // The wasi/wasm image shape runs too.
    let pod_yaml = work.path().join("wasi-pod.yaml");
    std::fs::write(
        &pod_yaml,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello-wasi\nspec:\n  containers:\n  - name: app\n    image: {wasi_ref}\n    ports:\n    - containerPort: 8080\n"
        ),
    )?;
    cluster.kubectl_ok(&["apply", "-f", &pod_yaml.display().to_string()])?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/hello-wasi", "--timeout=90s"])?;
    let wasi_pod = cluster.get_json(&["pod", "hello-wasi"])?;
    let (code, body) =
        http_get(&format!("{}:8080", wasi_pod["status"]["podIP"].as_str().unwrap_or("")), "/")?;
    assert_eq!((code, body.contains("Hello from")), (200, true), "{body}");

    // Delete: the Deployment, its ReplicaSet and its pods go away.
    let names: Vec<String> = pods(&cluster, "app=hello-http")?
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    cluster.kubectl_ok(&["delete", "-f", &manifest.display().to_string()])?;
    for name in &names {
        cluster.kubectl_ok(&["wait", "--for=delete", &format!("pod/{name}"), "--timeout=90s"])?;
    }
    assert!(pods(&cluster, "app=hello-http")?.is_empty());
    let sets = cluster.get_json(&["replicasets"])?;
    assert_eq!(
        sets["items"].as_array().map(Vec::len),
        Some(0),
        "the ReplicaSet was garbage-collected: {sets:#}"
    );
    cluster.kubectl_ok(&["delete", "pod", "hello-wasi"])?;
    Ok(())
}

/// Side-load hello-cli into the `up` node's cache as example.local/hello-cli:1.
fn load_hello_cli(cluster: &Cluster, data_dir: &std::path::Path) -> anyhow::Result<String> {
    let node_dir = data_dir.join("node").display().to_string();
    let name = "example.local/hello-cli:1";
    cluster.wasmkube_ok(&["load", &fixture("hello-cli.wasm"), "--name", name, "--node-data-dir", &node_dir])
}

/// `kubectl run` a pod that cannot start, wait for its waiting reason, return its events.
fn run_until_waiting(cluster: &Cluster, name: &str, image: &str, reason: &str) -> anyhow::Result<String> {
    cluster.kubectl_ok(&["run", name, &format!("--image={image}"), "--restart=Never"])?;
    let condition = format!("--for=jsonpath={{.status.containerStatuses[0].state.waiting.reason}}={reason}");
    cluster.kubectl_ok(&["wait", &condition, &format!("pod/{name}"), "--timeout=90s"])?;
    let selector = format!("involvedObject.name={name}");
    cluster.kubectl_ok(&["get", "events", "--field-selector", &selector, "-o", "json"])
}

#[test]
fn bad_input_is_refused_and_bad_images_are_reported() -> anyhow::Result<()> {
    let registry = TestRegistry::start()?;
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let file = |name: &str, text: &str| -> anyhow::Result<String> {
        let p = work.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p.display().to_string())
    };
    let good =
        file("good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\ndata:\n  a: b\n")?;
    cluster.kubectl_ok(&["apply", "-f", &good])?;

    // Malformed YAML, wrong types, a missing name, an unknown kind: refused, named, nothing stored.
    let cases = [
        ("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n", "yaml"),
        (
            "types.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: typed\nspec:\n  replicas: three\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: x:1}]}\n",
            "replicas",
        ),
        (
            "typo.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: typo\nspec:\n  replicass: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: x:1}]}\n",
            "unknown field \"spec.replicass\"",
        ),
        ("noname.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\ndata: {a: b}\n", "name"),
        ("unknown.yaml", "apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n", "Gadget"),
    ];
    for (name, text, needle) in cases {
        let out = cluster.kubectl(&["create", "-f", &file(name, text)?])?;
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success(), "{name} must be refused");
        assert!(stderr.contains(&needle.to_lowercase()), "{name}: the error names the problem: {stderr}");
    }
    let stored = cluster.get_json(&["configmaps"])?;
    let names: Vec<&str> = stored["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&"keep-me") && names.len() == 1, "only the good object is stored: {names:?}");
    assert!(cluster.get_json(&["deployments"])?["items"].as_array().is_some_and(Vec::is_empty));

    // An image that does not exist: ErrImagePull/ImagePullBackOff, and an Event saying why.
    let missing = registry.reference("nope:1");
    let events = run_until_waiting(&cluster, "missing", &missing, "ImagePullBackOff")?;
    assert!(events.contains("Failed to pull image") && events.contains("nope"), "{events}");

    // A file that is not Wasm, inside a wasi/wasm image: CreateContainerError with an Event.
    let (not_wasm, _) =
        wasi_image::push_wasi_image(registry.addr(), "not-wasm", "1", b"\0asm-but-not-really-a-module")?;
    let events = run_until_waiting(&cluster, "not-wasm", &not_wasm, "CreateContainerError")?;
    assert!(events.contains("cannot run as a Wasm component"), "{events}");

    // A component that traps at start restarts with back-off; the node keeps serving others.
    let cli = registry.reference("hello-cli:1");
    cluster.wasmkube_ok(&["push", &fixture("hello-cli.wasm"), &cli])?;
    cluster.kubectl_ok(&["run", "trapper", &format!("--image={cli}"), "--", "--trap"])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CrashLoopBackOff",
        "pod/trapper",
        "--timeout=90s",
    ])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].restartCount}=1",
        "pod/trapper",
        "--timeout=90s",
    ])?;
    let trapper = cluster.get_json(&["pod", "trapper"])?;
    let last = &trapper["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["reason"], "Error", "{trapper:#}");
    assert_ne!(last["exitCode"], 0);
    // A missing ConfigMap is not a crash: the container waits, and starts once it exists.
    let needs_config = file(
        "needs-config.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: needs-config\nspec:\n  containers:\n  - name: app\n    image: {cli}\n    args: [\"--forever\"]\n    envFrom:\n    - configMapRef: {{name: settings}}\n"
        ),
    )?;
    cluster.kubectl_ok(&["apply", "-f", &needs_config])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CreateContainerConfigError",
        "pod/needs-config",
        "--timeout=90s",
    ])?;
    // (`kubectl create configmap` sends protobuf, which the server does not read yet: issue 3.)
    let settings = file(
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  MODE: test\n",
    )?;
    cluster.kubectl_ok(&["apply", "-f", &settings])?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/needs-config", "--timeout=90s"])?;
    assert_eq!(
        cluster.get_json(&["pod", "needs-config"])?["status"]["containerStatuses"][0]["restartCount"],
        0
    );
    cluster.kubectl_ok(&["run", "alive", &format!("--image={cli}"), "--", "--forever"])?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/alive", "--timeout=90s"])?;
    let logs = cluster.kubectl_ok(&["logs", "alive"])?;
    assert!(logs.contains("hello-cli: line 1"), "{logs}");
    Ok(())
}

#[test]
fn restart_brings_back_objects_and_reruns_pods() -> anyhow::Result<()> {
    let registry = TestRegistry::start()?;
    let work = tempfile::tempdir()?;
    let data = work.path().join("cluster");
    let port = wasmkube_e2e::cluster::free_port();
    let network = wasmkube_e2e::cluster::PodNetworkLease::reserve()?;
    let mut cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    let reference = registry.reference("hello-http:1");
    cluster.wasmkube_ok(&["push", &fixture("hello-http.wasm"), &reference])?;
    let manifest = work.path().join("deployment.yaml");
    std::fs::write(&manifest, sample_deployment(registry.addr())?)?;
    cluster.kubectl_ok(&["apply", "-f", &manifest.display().to_string()])?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/hello-http", "--timeout=120s"])?;
    let before = cluster.get_json(&["deployment", "hello-http"])?;

    let status = cluster.process.terminate()?;
    assert!(status.success(), "up exits cleanly on SIGTERM: {status}");
    drop(cluster);
    let cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    let after = cluster.get_json(&["deployment", "hello-http"])?;
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"], "the same object came back");
    cluster.kubectl_ok(&["rollout", "status", "deployment/hello-http", "--timeout=120s"])?;
    // The stored status says Running from before the restart until the agent has re-run each
    // pod and reported it, so wait for the agent's own report: Ready again after the restart.
    let restarted = format!("--for=jsonpath={{.status.conditions[?(@.type==\"Ready\")].status}}=True");
    cluster.kubectl_ok(&["wait", &restarted, "pod", "-l", "app=hello-http", "--timeout=60s"])?;
    let list = pods(&cluster, "app=hello-http")?;
    assert_eq!(running(&list), 2, "{list:#?}");
    for pod in &list {
        let ip = pod["status"]["podIP"].as_str().context("podIP")?;
        let (code, _) =
            wasmkube_e2e::cluster::http_get_when_up(&format!("{ip}:8080"), "/", Duration::from_secs(30))
                .with_context(|| format!("pod {} re-ran after the restart", pod["metadata"]["name"]))?;
        assert_eq!(code, 200);
    }
    Ok(())
}

#[test]
fn side_loaded_images_run_and_logs_follow() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("cluster");
    let cluster = Cluster::up(&data, "node-a")?;
    let loaded = load_hello_cli(&cluster, &data)?;
    assert!(loaded.contains("example.local/hello-cli:1"), "{loaded}");
    cluster.kubectl_ok(&[
        "run",
        "ticker",
        "--image=example.local/hello-cli:1",
        "--image-pull-policy=Never",
        "--",
        "--forever",
        "--interval-ms",
        "200",
    ])?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/ticker", "--timeout=90s"])?;
    // `logs -f` keeps streaming lines written after it started.
    let mut follow = cluster.kubectl_background(&["logs", "-f", "ticker"])?;
    let first = follow.wait_for_line("hello-cli:", Duration::from_secs(30))?;
    let later = follow.wait_for_line("hello-cli:", Duration::from_secs(30))?;
    assert_ne!(first, later, "new lines keep arriving");
    let tail = cluster.kubectl_ok(&["logs", "ticker", "--tail=1"])?;
    assert_eq!(tail.lines().count(), 1, "{tail:?}");
    // The pod is deleted gracefully: the agent stops it and removes the object; the follower ends.
    cluster.kubectl_ok(&["delete", "pod", "ticker", "--timeout=60s"])?;
    assert!(cluster.kubectl(&["get", "pod", "ticker"])?.status.code() != Some(0));
    Ok(())
}

#[test]
fn a_node_whose_agent_stops_is_marked_unknown_and_skipped() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("cluster");
    let cluster = Cluster::up(&data, "node-a")?;
    let mut agent = cluster.join_agent(&work.path().join("node-b"), "node-b")?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "node/node-b", "--timeout=60s"])?;
    let status = agent.terminate()?;
    assert!(status.success(), "the agent exits cleanly on SIGTERM: {status}");
    // No heartbeats for the grace period (40 s): the node-lifecycle controller marks it.
    cluster.kubectl_ok(&["wait", "--for=condition=Ready=Unknown", "node/node-b", "--timeout=120s"])?;
    load_hello_cli(&cluster, &data)?;
    for i in 0..3 {
        let name = format!("after-{i}");
        cluster.kubectl_ok(&[
            "run",
            &name,
            "--image=example.local/hello-cli:1",
            "--image-pull-policy=Never",
            "--",
            "--forever",
        ])?;
        cluster.kubectl_ok(&["wait", "--for=condition=Ready", &format!("pod/{name}"), "--timeout=90s"])?;
        let pod = cluster.get_json(&["pod", &name])?;
        assert_eq!(pod["spec"]["nodeName"], "node-a", "no pods for the silent node: {pod:#}");
    }
    Ok(())
}

#[test]
fn the_wasmkube_cli_covers_get_apply_delete_and_logs() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let data = work.path().join("cluster");
    let cluster = Cluster::up(&data, "node-a")?;
    load_hello_cli(&cluster, &data)?;
    let manifest = work.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: once\nspec:\n  restartPolicy: Never\n  containers:\n  - name: cli\n    image: example.local/hello-cli:1\n    imagePullPolicy: Never\n    args: [\"--lines\", \"2\"]\n",
    )?;
    let path = manifest.display().to_string();
    assert_eq!(cluster.wasmkube_ok(&["apply", "-f", &path])?.trim(), "pod/once created");
    assert_eq!(cluster.wasmkube_ok(&["apply", "-f", &path])?.trim(), "pod/once unchanged");
    cluster.kubectl_ok(&["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/once", "--timeout=90s"])?;
    let table = cluster.wasmkube_ok(&["get", "pods"])?;
    assert!(table.lines().next().is_some_and(|h| h.starts_with("NAME") && h.contains("STATUS")), "{table}");
    assert!(table.contains("once") && table.contains("Completed"), "{table}");
    let yaml = cluster.wasmkube_ok(&["get", "pod", "once", "-o", "yaml"])?;
    assert!(yaml.contains("kind: Pod") && yaml.contains("phase: Succeeded"), "{yaml}");
    let json: serde_json::Value =
        serde_json::from_str(&cluster.wasmkube_ok(&["get", "pods", "-o", "json"])?)?;
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
    let logs = cluster.wasmkube_ok(&["logs", "once"])?;
    assert!(logs.contains("hello-cli: line 2") && !logs.contains("line 3"), "{logs:?}");
    assert!(cluster.wasmkube_ok(&["delete", "-f", &path])?.contains("\"once\" deleted"));
    let missing = std::process::Command::new(wasmkube_e2e::cluster::wasmkube_bin()?)
        .args(["get", "pod", "once"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    Ok(())
}
