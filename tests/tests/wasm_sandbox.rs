//! The Pod spec as a Wasm container's capability policy, end to end through kubectl: a
//! ConfigMap volume and env reach the guest (and an update reaches the running guest), a path it
//! was not given is unreadable, connecting out needs the egress annotation and listening a
//! declared port (refusals show in `kubectl logs` and as Events), a memory limit ends in OOMKilled, and a WASI preview 1 module
//! runs too, with the runtime's choice told in an Event.

use std::net::TcpListener;
use std::time::Duration;

use wasmkube_e2e::cluster::{Cluster, free_port};

const PATIENCE: Duration = Duration::from_secs(60);

/// Waits (through `kubectl logs -f`) until the pod's log has `needle`, then returns the whole log.
fn logs_containing(cluster: &Cluster, pod: &str, needle: &str) -> anyhow::Result<String> {
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", &format!("pod/{pod}"), "--timeout=60s"])?;
    cluster.wait_for_log(pod, None, needle, PATIENCE)?;
    cluster.kubectl_ok(&["logs", pod])
}

#[test]
fn the_pod_spec_grants_files_env_and_network_and_nothing_else() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("config-echo.wasm", "example.local/config-echo:1")?;
    cluster.side_load("config-echo.p1.wasm", "example.local/config-echo-p1:1")?;
    cluster.side_load("net-probe.wasm", "example.local/net-probe:1")?;
    cluster.kubectl_ok(&["create", "configmap", "app-config", "--from-literal=greeting=first"])?;

    // Files and env: the ConfigMap as a volume and as env; /etc/passwd is not there.
    cluster.apply_yaml(
        "echo",
        "apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  containers:
  - name: echo
    image: example.local/config-echo:1
    args: [--every, '200', /etc/app, /etc/passwd]
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
    volumeMounts: [{name: conf, mountPath: /etc/app}]
  volumes: [{name: conf, configMap: {name: app-config}}]
",
    )?;
    let logs = logs_containing(&cluster, "echo", "file /etc/app/greeting: first")?;
    assert!(logs.contains("env GREETING=first"), "{logs}");
    assert!(logs.contains("config-echo: cannot read /etc/passwd"), "{logs}");
    let selected = cluster.wait_for_event("echo", "RuntimeSelected", PATIENCE)?;
    assert!(selected.contains("wasi:cli/command component"), "{selected}");
    // Its usage is kept for metrics, in the kubelet's Summary API shape.
    let stats = cluster.node_stats("node-a")?;
    let pod = stats["pods"].as_array().into_iter().flatten().find(|p| p["podRef"]["name"] == "echo");
    let container = &pod.expect("the echo pod in /stats/summary")["containers"][0];
    assert!(container["memory"]["workingSetBytes"].as_u64() > Some(0), "{container}");
    assert!(container["cpu"]["usageCoreNanoSeconds"].is_u64(), "{container}");

    // An update of the ConfigMap reaches the running guest's files (env stays as it started).
    cluster.kubectl_ok(&[
        "patch",
        "configmap",
        "app-config",
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"second"}}"#,
    ])?;
    let logs = logs_containing(&cluster, "echo", "file /etc/app/greeting: second")?;
    assert!(logs.contains("--- changed"), "{logs}");
    let pod = cluster.get_json(&["pod", "echo"])?;
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 0, "updated in place, not restarted");

    // The network: no egress, the connect is refused and says why; with egress it connects.
    let outside = TcpListener::bind("127.0.0.1:0")?;
    let addr = outside.local_addr()?.to_string();
    let probe = |name: &str, annotations: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {name}{annotations}}}
spec:
  restartPolicy: Never
  containers: [{{name: probe, image: example.local/net-probe:1, args: [connect, '{addr}']}}]
"
        )
    };
    cluster.apply_yaml("closed", &probe("closed", ""))?;
    let logs = logs_containing(&cluster, "closed", "net-probe: connect")?;
    assert!(logs.contains(&format!("net-probe: connect to {addr} failed")), "{logs}");
    assert!(logs.contains(&format!("[wasmkube] denied by the pod's policy: connect tcp {addr}")), "{logs}");
    let denied = cluster.wait_for_event("closed", "PolicyDenied", PATIENCE)?;
    assert!(denied.contains(&format!("connect tcp {addr}")), "{denied}");
    cluster.apply_yaml("open", &probe("open", ", annotations: {wasmkube.dev/egress: '127.0.0.1/32'}"))?;
    logs_containing(&cluster, "open", &format!("net-probe: connected to {addr}"))?;

    // Listening: only on a declared containerPort.
    let (declared, undeclared) = (free_port(), free_port());
    let listen = |name: &str, port: u16| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: probe, image: example.local/net-probe:1, args: [listen, '0.0.0.0:{port}'], ports: [{{containerPort: {declared}}}]}}
"
        )
    };
    cluster.apply_yaml("undeclared", &listen("undeclared", undeclared))?;
    let logs = logs_containing(&cluster, "undeclared", "net-probe: listen")?;
    assert!(logs.contains(&format!("net-probe: listen on 0.0.0.0:{undeclared} failed")), "{logs}");
    assert!(
        logs.contains(&format!("[wasmkube] denied by the pod's policy: bind tcp 0.0.0.0:{undeclared}")),
        "{logs}"
    );
    cluster.apply_yaml("declared", &listen("declared", declared))?;
    logs_containing(&cluster, "declared", &format!("net-probe: listening on 0.0.0.0:{declared}"))?;

    // A WASI preview 1 module under the same grants.
    cluster.apply_yaml(
        "p1",
        "apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  restartPolicy: Never
  containers:
  - name: echo
    image: example.local/config-echo-p1:1
    args: [/etc/app]
    env: [{name: WORLD, value: preview1}]
    volumeMounts: [{name: conf, mountPath: /etc/app}]
  volumes: [{name: conf, configMap: {name: app-config}}]
",
    )?;
    cluster.kubectl_ok(&["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/p1", "--timeout=60s"])?;
    let logs = cluster.kubectl_ok(&["logs", "p1"])?;
    assert!(logs.contains("env WORLD=preview1") && logs.contains("file /etc/app/greeting: second"), "{logs}");
    let selected = cluster.wait_for_event("p1", "RuntimeSelected", PATIENCE)?;
    assert!(selected.contains("WASI preview 1 module"), "{selected}");
    Ok(())
}

#[test]
fn a_memory_limit_ends_in_oom_killed() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("mem-hog.wasm", "example.local/mem-hog:1")?;
    cluster.apply_yaml(
        "hog",
        "apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: example.local/mem-hog:1
    args: [--step-mib, '4', --every-ms, '10']
    resources: {limits: {memory: 32Mi}}
",
    )?;
    cluster.kubectl_ok(&["wait", "--for=jsonpath={.status.phase}=Failed", "pod/hog", "--timeout=60s"])?;
    let pod = cluster.get_json(&["pod", "hog"])?;
    let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{terminated}");
    assert_eq!(terminated["exitCode"], 137, "{terminated}");
    let event = cluster.wait_for_event("hog", "OOMKilled", PATIENCE)?;
    assert!(event.contains("memory limit exceeded"), "{event}");
    let logs = cluster.kubectl_ok(&["logs", "hog"])?;
    assert!(logs.contains("mem-hog: holding 28 MiB") || logs.contains("mem-hog: holding 24 MiB"), "{logs}");
    Ok(())
}
