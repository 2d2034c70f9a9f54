//! The Linux fallback end to end, with the real parts: the busybox sample image built by its
//! script from Debian's busybox-static, pushed with skopeo to the CNCF distribution registry,
//! run by `wasmkube up`'s agent under the real runc, observed with the real kubectl.
//! A Wasm and a busybox container in one pod share its emptyDir volume. A busybox httpd pod is
//! reached through its pod IP and a Service, like a Wasm pod.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use wasmkube_e2e::{
    TestRegistry,
    cluster::Cluster,
    linux_image::{RawEntry, push_busybox, push_raw_image, raw_tar, runc_usable},
    poll,
};

fn container_status(cluster: &Cluster, pod: &str) -> anyhow::Result<Value> {
    let pod = cluster.get_json(&["pod", pod])?;
    Ok(pod["status"]["containerStatuses"][0].clone())
}

/// Waits until the pod's first container has terminated; returns its container status.
fn wait_terminated(cluster: &Cluster, pod: &str) -> anyhow::Result<Value> {
    poll::until(&format!("{pod} to terminate"), Duration::from_secs(90), || {
        let status = container_status(cluster, pod)?;
        let done = status["state"]["terminated"].is_object().then(|| status.clone());
        Ok((done, status.to_string()))
    })
}

fn events_for(cluster: &Cluster, pod: &str) -> anyhow::Result<String> {
    cluster.kubectl_ok(&["get", "events", "--field-selector", &format!("involvedObject.name={pod}")])
}

/// Containers runc still knows about in the agent's runc root.
fn runc_containers(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let root = cluster.data_dir.join("node/linux/runc");
    let output = std::process::Command::new("/usr/sbin/runc")
        .arg("--root")
        .arg(&root)
        .args(["list", "-q"])
        .output()
        .context("runc list")?;
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect())
}

/// Waits until runc knows no container of this cluster's agent.
fn wait_no_runc_containers(cluster: &Cluster) -> anyhow::Result<()> {
    poll::until("runc to forget the containers", Duration::from_secs(30), || {
        let left = runc_containers(cluster)?;
        Ok((left.is_empty().then_some(()), format!("{left:?}")))
    })
}

fn pod_yaml(name: &str, image: &str, restart: &str, grace: u32, script: &str) -> String {
    let script = script.replace('\n', "\n      ");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: {grace}\n  containers:\n  - name: main\n    image: {image}\n    command: [\"sh\", \"-c\"]\n    args:\n    - |\n      {script}\n    env:\n    - name: GREETING\n      value: from-the-pod-spec\n    resources:\n      limits:\n        memory: 64Mi\n        cpu: 500m\n"
    )
}

/// A registry holding the busybox sample image and a one-node cluster (runc required).
struct Setup {
    cluster: Cluster,
    image: String,
    work: tempfile::TempDir,
    _registry: TestRegistry,
}

impl Setup {
    fn new() -> anyhow::Result<Self> {
        runc_usable().map_err(anyhow::Error::msg)?;
        let registry = TestRegistry::start()?;
        let image = push_busybox(&registry, "busybox", "1")?;
        let work = tempfile::tempdir()?;
        let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
        Ok(Setup { cluster, image, work, _registry: registry })
    }
}

#[test]
fn busybox_runs_under_runc_with_logs_exit_codes_restarts_and_graceful_stop() -> anyhow::Result<()> {
    let Setup { cluster, image, work: _work, _registry } = Setup::new()?;

    // Runs, its stdout and stderr are in `kubectl logs`, the exit code is the process's.
    let script =
        "echo \"hello from busybox $GREETING as $(id -u) on $(hostname)\"\necho to-stderr >&2\nexit 3";
    cluster.apply_yaml("once", &pod_yaml("once", &image, "Never", 30, script))?;
    let status = wait_terminated(&cluster, "once")?;
    assert_eq!(status["state"]["terminated"]["exitCode"], 3, "{status:#}");
    assert_eq!(status["state"]["terminated"]["reason"], "Error", "{status:#}");
    assert!(status["containerID"].as_str().unwrap_or("").starts_with("runc://"), "{status:#}");
    let logs = cluster.kubectl_ok(&["logs", "once"])?;
    assert!(logs.contains("hello from busybox from-the-pod-spec as 0 on once"), "kubectl logs: {logs:?}");
    assert!(logs.contains("to-stderr"), "stderr is logged too: {logs:?}");
    let events = events_for(&cluster, "once")?;
    assert!(events.contains("RuntimeSelected") && events.contains("runc"), "{events}");
    let pod = cluster.get_json(&["pod", "once"])?;
    assert_eq!(pod["status"]["phase"], "Failed", "{:#}", pod["status"]);

    // OnFailure restarts a failing container (after the kubelet's 10 s back-off).
    let script = "echo run\nexit 1";
    cluster.apply_yaml("flaky", &pod_yaml("flaky", &image, "OnFailure", 30, script))?;
    let restarted = poll::until("flaky to restart", Duration::from_secs(90), || {
        let status = container_status(&cluster, "flaky")?;
        let restarts = status["restartCount"].as_u64().unwrap_or(0);
        Ok(((restarts >= 1).then(|| status.clone()), status.to_string()))
    })?;
    assert_eq!(restarted["lastState"]["terminated"]["exitCode"], 1, "{restarted:#}");
    cluster.kubectl_ok(&["delete", "pod", "flaky", "--grace-period=1"])?;

    // Delete: SIGTERM reaches the process (its trap runs and says so), well within the grace
    // period, and the container is gone from runc afterwards.
    let script = "trap 'echo got SIGTERM; exit 0' TERM\necho ready\nwhile true; do sleep 1 & wait $!; done";
    cluster.apply_yaml("sleeper", &pod_yaml("sleeper", &image, "Always", 30, script))?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/sleeper", "--timeout=90s"])?;
    let mut follow = cluster.kubectl_background(&["logs", "-f", "sleeper"])?;
    follow.wait_for_line("ready", Duration::from_secs(30))?;
    assert!(runc_containers(&cluster)?.iter().any(|id| id.contains("-main-")), "runc runs it");
    let deleting = Instant::now();
    cluster.kubectl_ok(&["delete", "pod", "sleeper", "--wait=false"])?;
    follow.wait_for_line("got SIGTERM", Duration::from_secs(20))?;
    cluster.kubectl_ok(&["wait", "--for=delete", "pod/sleeper", "--timeout=60s"])?;
    let took = deleting.elapsed();
    assert!(took < Duration::from_secs(20), "SIGTERM ended it long before the 30 s grace: {took:?}");

    // A process that ignores SIGTERM (PID 1 without a handler) is SIGKILLed after the grace.
    let script = "echo stubborn\nwhile true; do sleep 1; done";
    cluster.apply_yaml("stubborn", &pod_yaml("stubborn", &image, "Always", 2, script))?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/stubborn", "--timeout=90s"])?;
    let deleting = Instant::now();
    cluster.kubectl_ok(&["delete", "pod", "stubborn", "--wait=false"])?;
    cluster.kubectl_ok(&["wait", "--for=delete", "pod/stubborn", "--timeout=60s"])?;
    let took = deleting.elapsed();
    assert!(took >= Duration::from_secs(2), "the grace period was given: {took:?}");
    assert!(took < Duration::from_secs(20), "then SIGKILL ended it: {took:?}");
    wait_no_runc_containers(&cluster)?;
    let bundles = std::fs::read_dir(cluster.data_dir.join("node/linux/containers"))?.count();
    assert_eq!(bundles, 0, "every run's bundle (with its rootfs copy) is removed when it ends");
    Ok(())
}

#[test]
fn a_pod_mixes_a_wasm_and_a_linux_container_sharing_a_volume() -> anyhow::Result<()> {
    let Setup { cluster, image, work: _work, _registry } = Setup::new()?;
    cluster.side_load("config-echo.wasm", "wasmkube.local/config-echo:mixed")?;
    // busybox writes a file into the shared emptyDir; config-echo (Wasm) reads it from there.
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: mixed}}
spec:
  containers:
  - name: reader
    image: wasmkube.local/config-echo:mixed
    imagePullPolicy: Never
    args: [--every, '200', /shared]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: shell
    image: {image}
    command: [sh, -c, 'echo written by busybox > /data/note; echo side by side; while true; do sleep 1; done']
    volumeMounts: [{{name: shared, mountPath: /data}}]
  volumes: [{{name: shared, emptyDir: {{}}}}]
"
    );
    cluster.apply_yaml("mixed", &yaml)?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/mixed", "--timeout=90s"])?;
    let pod = cluster.get_json(&["pod", "mixed"])?;
    let ids: Vec<&str> = pod["status"]["containerStatuses"]
        .as_array()
        .context("container statuses")?
        .iter()
        .filter_map(|c| c["containerID"].as_str())
        .collect();
    assert!(ids.iter().any(|id| id.starts_with("wasm://")), "{ids:?}");
    assert!(ids.iter().any(|id| id.starts_with("runc://")), "{ids:?}");
    cluster.wait_for_log("mixed", Some("shell"), "side by side", Duration::from_secs(30))?;
    // The Wasm container reads the file busybox wrote into the shared emptyDir.
    cluster.wait_for_log(
        "mixed",
        Some("reader"),
        "file /shared/note: written by busybox",
        Duration::from_secs(30),
    )?;
    // Killed behind the agent's back (runc kill, as an OOM killer or an operator would): the
    // restart policy brings it back.
    let containers = runc_containers(&cluster)?;
    let [id] = containers.as_slice() else { bail!("one runc container: {containers:?}") };
    let killed = std::process::Command::new("/usr/sbin/runc")
        .arg("--root")
        .arg(cluster.data_dir.join("node/linux/runc"))
        .args(["kill", id, "KILL"])
        .status()?;
    assert!(killed.success(), "runc kill: {killed}");
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[?(@.name==\"shell\")].restartCount}=1",
        "pod/mixed",
        "--timeout=90s",
    ])?;
    let pod = cluster.get_json(&["pod", "mixed"])?;
    let shell = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "shell"))
        .context("the shell container")?;
    assert_eq!(shell["lastState"]["terminated"]["exitCode"], 137, "{shell:#}");
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/mixed", "--timeout=90s"])?;
    cluster.kubectl_ok(&["delete", "pod", "mixed", "--grace-period=1"])?;
    wait_no_runc_containers(&cluster)?;
    Ok(())
}

#[test]
fn exec_probes_and_the_pre_stop_hook_run_inside_the_container() -> anyhow::Result<()> {
    let Setup { cluster, image, work: _work, _registry } = Setup::new()?;
    // The first run turns sick after 3 s; the liveness probe ends it, and its preStop hook
    // leaves a note in the emptyDir, which the next run prints (and stays healthy).
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: probed}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: {image}
    command: [sh, -c, 'touch /tmp/ready; cat /data/note 2>/dev/null; if [ ! -e /data/note ]; then sleep 3; touch /tmp/sick; fi; while true; do sleep 1; done']
    volumeMounts: [{{name: data, mountPath: /data}}]
    readinessProbe: {{exec: {{command: [cat, /tmp/ready]}}, periodSeconds: 1}}
    livenessProbe: {{exec: {{command: [test, '!', -e, /tmp/sick]}}, periodSeconds: 1, failureThreshold: 1}}
    lifecycle: {{preStop: {{exec: {{command: [sh, -c, 'echo note from the preStop hook > /data/note']}}}}}}
  volumes: [{{name: data, emptyDir: {{}}}}]
"
    );
    cluster.apply_yaml("probed", &yaml)?;
    let unhealthy = cluster.wait_for_event("probed", "Unhealthy", Duration::from_secs(90))?;
    assert_eq!(unhealthy, "Liveness probe failed: command \"test ! -e /tmp/sick\" exited with code 1");
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].restartCount}=1",
        "pod/probed",
        "--timeout=90s",
    ])?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/probed", "--timeout=90s"])?;
    cluster.wait_for_log("probed", Some("main"), "note from the preStop hook", Duration::from_secs(30))?;
    cluster.kubectl_ok(&["delete", "pod", "probed", "--grace-period=1"])?;
    wait_no_runc_containers(&cluster)?;
    Ok(())
}

/// Linux pods are reached the same way as Wasm pods: their pod IP, and a Service's cluster IP
/// through the node proxy (they share the node's network, so the port is picked free).
#[test]
fn a_linux_pod_serves_behind_a_service() -> anyhow::Result<()> {
    let Setup { cluster, image, work: _work, _registry } = Setup::new()?;
    let port = wasmkube_e2e::cluster::free_port();
    let yaml = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: httpd, labels: {{app: httpd}}}}
spec:
  containers:
  - name: httpd
    image: {image}
    command: [sh, -c, 'mkdir -p /www && echo hello from linux > /www/index.html && exec busybox httpd -f -p {port} -h /www']
    ports: [{{name: http, containerPort: {port}}}]
    readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: httpd}}
spec:
  selector: {{app: httpd}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"
    );
    cluster.apply_yaml("httpd", &yaml)?;
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/httpd", "--timeout=90s"])?;
    let pod_ip = cluster.get_json(&["pod", "httpd"])?["status"]["podIP"].as_str().unwrap_or("").to_string();
    let (code, body) = wasmkube_e2e::cluster::http_get(&format!("{pod_ip}:{port}"), "/")?;
    assert_eq!((code, body.as_str()), (200, "hello from linux\n"));
    let service_ip =
        cluster.get_json(&["service", "httpd"])?["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let answer = poll::until("the Service to lead to the Linux pod", Duration::from_secs(60), || {
        let answer = wasmkube_e2e::cluster::http_get(&format!("{service_ip}:80"), "/");
        let seen = format!("{answer:?}");
        Ok((answer.ok().filter(|(code, _)| *code == 200), seen))
    })?;
    assert_eq!(answer.1, "hello from linux\n");
    Ok(())
}

#[test]
fn a_hostile_layer_is_refused_and_writes_nothing_outside_the_rootfs() -> anyhow::Result<()> {
    let registry = TestRegistry::start()?;
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let passwd_before = std::fs::read("/etc/passwd")?;
    // The unpacker's temp rootfs is <node>/linux/rootfs/.tmp-*/, so `../../etc/passwd` would
    // land in <node>/linux/etc/passwd; the deep one would reach the host's /tmp.
    let marker = format!("wasmkube-escape-{}", std::process::id());
    let deep = format!("{}tmp/{marker}", "../".repeat(20));
    let tar = raw_tar(&[
        RawEntry::File("ok.txt".into(), b"fine\n".to_vec()),
        RawEntry::File("../../etc/passwd".into(), b"root::0:0::/:/bin/sh\n".to_vec()),
        RawEntry::File(deep, b"x".to_vec()),
    ])?;
    let image = push_raw_image(&registry, "hostile", "1", &[tar], &["/bin/sh"])?;
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostile\nspec:\n  containers:\n  - name: main\n    image: {image}\n"
    );
    cluster.apply_yaml("hostile", &yaml)?;
    let waiting = poll::until("the pod to report the refused layer", Duration::from_secs(60), || {
        let status = container_status(&cluster, "hostile")?;
        let waiting = &status["state"]["waiting"];
        let refused = waiting["reason"] == "CreateContainerError"
            && waiting["message"].as_str().is_some_and(|m| m.contains("refused"));
        Ok((refused.then(|| waiting.clone()), status.to_string()))
    })?;
    let message = waiting["message"].as_str().unwrap_or("");
    assert!(message.contains("../../etc/passwd") && message.contains("sha256:"), "{message}");
    let events = events_for(&cluster, "hostile")?;
    assert!(events.contains("Failed") && events.contains("../../etc/passwd"), "{events}");
    let node = cluster.data_dir.join("node");
    assert!(!node.join("linux/etc").exists(), "nothing written next to the rootfs cache");
    assert!(!std::path::Path::new("/tmp").join(&marker).exists(), "nothing written to the host's /tmp");
    assert_eq!(std::fs::read("/etc/passwd")?, passwd_before, "the host's /etc/passwd is untouched");
    let rootfs = std::fs::read_dir(node.join("linux/rootfs"))?.count();
    assert_eq!(rootfs, 0, "a refused image leaves no rootfs behind");
    Ok(())
}
