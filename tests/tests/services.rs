//! Services end to end, through the real kubectl and the node proxy: two versions of the
//! hello-http component behind one Service share its traffic on the cluster IP and on a node
//! port; a readiness probe failing everywhere turns the Service into a clear 503 and recovering
//! brings the traffic back; `sessionAffinity: ClientIP` keeps a client on one pod; a port that
//! is not HTTP is carried as plain TCP; containers get kubelet's Service variables; and
//! allocation errors read as kube-apiserver's.

use std::{collections::BTreeSet, time::Duration};

use anyhow::Context;
use wasmkube_e2e::cluster::{Cluster, http_get, http_get_until};

const PATIENCE: Duration = Duration::from_secs(60);

fn deployment(name: &str, version: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web, version: {version}}}}}
  template:
    metadata: {{labels: {{app: web, version: {version}}}}}
    spec:
      containers:
      - name: web
        image: example.local/hello-http:1
        ports: [{{name: http, containerPort: 8080}}]
        env:
        - {{name: GREETING, value: 'version {version}'}}
        - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        - {{name: HEALTH_FILE, value: /health/state}}
        volumeMounts: [{{name: health, mountPath: /health}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1, failureThreshold: 1}}
      volumes: [{{name: health, configMap: {{name: health}}}}]
"
    )
}

const SERVICES: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: raw}
spec:
  selector: {app: web}
  ports: [{port: 9000, targetPort: 8080}]
";

fn set_health(cluster: &Cluster, state: &str) -> anyhow::Result<()> {
    let patch = format!(r#"{{"data":{{"state":"{state}"}}}}"#);
    cluster.kubectl_ok(&["patch", "configmap", "health", "--type=merge", "-p", &patch])?;
    Ok(())
}

/// The pod name hello-http put in its greeting (`Hello from <pod>! ...`).
fn pod_of(body: &str) -> Option<String> {
    body.strip_prefix("Hello from ")?.split_once('!').map(|(pod, _)| pod.to_string())
}

/// GET `path` at `addr` until `done` accepts an answer.
fn get_until(addr: &str, path: &str, done: impl FnMut(u16, &str) -> bool) -> anyhow::Result<(u16, String)> {
    http_get_until(addr, path, PATIENCE, done)
}

#[test]
fn a_service_spreads_requests_over_ready_pods_and_follows_readiness() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", "example.local/hello-http:1")?;
    cluster.kubectl_ok(&["create", "configmap", "health", "--from-literal=state=ok"])?;
    cluster.apply_yaml("v1", &deployment("web-v1", "v1", 2))?;
    cluster.apply_yaml("v2", &deployment("web-v2", "v2", 1))?;
    cluster.apply_yaml("services", SERVICES)?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "deploy/web-v1",
        "deploy/web-v2",
        "--timeout=90s",
    ])?;

    let svc = cluster.get_json(&["service", "web"])?;
    let cluster_ip = svc["spec"]["clusterIP"].as_str().context("no clusterIP")?.to_string();
    let service_prefix = cluster.service_network.trim_end_matches(".0.0/16");
    assert!(cluster_ip.starts_with(service_prefix), "{cluster_ip} is not in {}", cluster.service_network);
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().context("no nodePort")?;
    assert!((30000..=32767).contains(&node_port), "{svc}");
    let pods = cluster.get_json(&["pods", "-l", "app=web"])?;
    let all: BTreeSet<String> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(all.len(), 3, "{pods}");

    // Every ready pod, of both versions, answers through the cluster IP and the node port.
    for addr in [format!("{cluster_ip}:80"), format!("{}:{node_port}", cluster.node_ip)] {
        let mut seen = BTreeSet::new();
        let mut versions = BTreeSet::new();
        get_until(&addr, "/", |code, body| {
            if code == 200 {
                seen.extend(pod_of(body));
                versions.extend(["v1", "v2"].into_iter().filter(|v| body.contains(&format!("version {v}"))));
            }
            seen == all
        })?;
        assert_eq!(versions.len(), 2, "{addr}: {versions:?}");
    }

    // A client with ClientIP affinity stays on one pod.
    let sticky_ip =
        cluster.get_json(&["service", "sticky"])?["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let (_, first) = get_until(&format!("{sticky_ip}:80"), "/", |code, _| code == 200)?;
    for _ in 0..20 {
        let (code, body) = http_get(&format!("{sticky_ip}:80"), "/")?;
        assert_eq!((code, pod_of(&body)), (200, pod_of(&first)), "{body}");
    }

    // A port that is not HTTP is carried as TCP, to a pod all the same.
    let raw_ip =
        cluster.get_json(&["service", "raw"])?["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    get_until(&format!("{raw_ip}:9000"), "/", |code, body| code == 200 && pod_of(body).is_some())?;

    // Containers started after a Service get kubelet's variables for it.
    cluster.side_load("config-echo.wasm", "example.local/config-echo:1")?;
    cluster.apply_yaml(
        "echo",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: echo}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: echo\n    image: example.local/config-echo:1\n    env: [{name: WEB_URL, value: 'http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/'}]\n",
    )?;
    cluster.kubectl_ok(&["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/echo", "--timeout=60s"])?;
    let env = cluster.kubectl_ok(&["logs", "echo"])?;
    for line in [
        format!("env WEB_SERVICE_HOST={cluster_ip}"),
        "env WEB_SERVICE_PORT_HTTP=80".to_string(),
        format!("env RAW_PORT=tcp://{raw_ip}:9000"),
        format!("env WEB_URL=http://{cluster_ip}:80/"),
    ] {
        assert!(env.lines().any(|l| l == line), "no {line:?} in:\n{env}");
    }

    // No ready pod: the Service answers 503 and says why; traffic returns with readiness.
    set_health(&cluster, "down")?;
    let (_, why) = get_until(&format!("{cluster_ip}:80"), "/", |code, _| code == 503)?;
    assert_eq!(why, "service default/web:http has no ready endpoints (3 not ready)\n");
    set_health(&cluster, "ok")?;
    get_until(&format!("{cluster_ip}:80"), "/", |code, body| code == 200 && pod_of(body).is_some())?;
    Ok(())
}

#[test]
fn service_addresses_are_checked_like_kube_apiserver() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.kubectl_ok(&["create", "service", "clusterip", "first", "--tcp=80:8080"])?;
    let taken =
        cluster.get_json(&["service", "first"])?["spec"]["clusterIP"].as_str().unwrap_or("").to_string();

    let clash = cluster.kubectl(&[
        "create",
        "service",
        "clusterip",
        "second",
        "--tcp=80",
        &format!("--clusterip={taken}"),
    ])?;
    let stderr = String::from_utf8_lossy(&clash.stderr);
    assert!(!clash.status.success());
    assert!(
        stderr.contains(&format!("failed to allocate IP {taken}: provided IP is already allocated")),
        "{stderr}"
    );
    let outside =
        cluster.kubectl(&["create", "service", "clusterip", "third", "--tcp=80", "--clusterip=10.0.0.1"])?;
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(stderr.contains(&format!("The range of valid IPs is {}", cluster.service_network)), "{stderr}");

    cluster.kubectl_ok(&["create", "service", "nodeport", "np", "--tcp=80", "--node-port=30080"])?;
    let again =
        cluster.kubectl(&["create", "service", "nodeport", "np2", "--tcp=80", "--node-port=30080"])?;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"),
        "{stderr}"
    );

    // The address stays with the Service through an edit, and cannot be changed.
    cluster.kubectl_ok(&["label", "service", "first", "tier=front"])?;
    let kept =
        cluster.get_json(&["service", "first"])?["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    assert_eq!(kept, taken);
    let moved = cluster.kubectl(&[
        "patch",
        "service",
        "first",
        "--type=merge",
        "-p",
        r#"{"spec":{"clusterIP":"127.0.0.9","clusterIPs":["127.0.0.9"]}}"#,
    ])?;
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(stderr.contains("may not change once set"), "{stderr}");

    // A deleted Service's address is free again.
    cluster.kubectl_ok(&["delete", "service", "first"])?;
    cluster.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "reuse",
        "--tcp=80",
        &format!("--clusterip={taken}"),
    ])?;
    Ok(())
}
