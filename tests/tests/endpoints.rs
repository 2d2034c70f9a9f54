//! Service discovery objects end to end through the real kubectl: the endpoints controller
//! publishes a Deployment's pods behind a Service as EndpointSlices and v1 Endpoints, follows a
//! readiness probe (flipped per pod through a ConfigMap key named after the pod) out of ready
//! and back, adds a scaled-up pod and removes everything with the Service; LoadBalancer
//! Services and Ingresses of our class get the node's address; `kubectl create ingress` goes
//! through protobuf and admission. Every wait is a `kubectl wait` or a watch.

use std::{collections::BTreeMap, time::Duration};

use serde_json::Value;
use wasmkube_e2e::{cluster::Cluster, pod_watch::PodWatch};

const PATIENCE: Duration = Duration::from_secs(90);
const SLICE_OF_WEB: &str = "kubernetes.io/service-name=web";

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: example.local/hello-http:1
        ports: [{name: http, containerPort: 8080}]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: HEALTH_FILE, value: /health/$(POD_NAME)}
        volumeMounts: [{name: health, mountPath: /health}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1, failureThreshold: 1}
      volumes: [{name: health, configMap: {name: health}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {team: a}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
";

fn started_cluster(work: &std::path::Path) -> anyhow::Result<Cluster> {
    let cluster = Cluster::up(&work.join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", "example.local/hello-http:1")?;
    Ok(cluster)
}

/// Set the health of one pod (its key in the `health` ConfigMap).
fn set_health(cluster: &Cluster, pod: &str, state: &str) -> anyhow::Result<()> {
    let patch = format!(r#"{{"data":{{"{pod}":"{state}"}}}}"#);
    cluster.kubectl_ok(&["patch", "configmap", "health", "--type=merge", "-p", &patch])?;
    Ok(())
}

/// `kubectl wait --for=jsonpath=...` on `what`.
fn wait_for(cluster: &Cluster, jsonpath: &str, what: &[&str]) -> anyhow::Result<()> {
    let condition = format!("--for=jsonpath={jsonpath}");
    let timeout = format!("--timeout={}s", PATIENCE.as_secs());
    let mut args = vec!["wait", condition.as_str(), timeout.as_str()];
    args.extend_from_slice(what);
    cluster.kubectl_ok(&args)?;
    Ok(())
}

/// Wait until the Endpoints lists `pod` (at `ip`) under `field` (`addresses` or
/// `notReadyAddresses`), and the slices show it with `ready`.
fn wait_published(cluster: &Cluster, pod: &str, ip: &str, ready: bool) -> anyhow::Result<()> {
    let field = if ready { "addresses" } else { "notReadyAddresses" };
    wait_for(
        cluster,
        &format!("{{.subsets[0].{field}[?(@.targetRef.name==\"{pod}\")].ip}}={ip}"),
        &["endpoints/web"],
    )?;
    let condition = format!("{{.endpoints[?(@.targetRef.name==\"{pod}\")].conditions.ready}}={ready}");
    wait_for(cluster, &condition, &["endpointslices", "-l", SLICE_OF_WEB])
}

/// Pod name → IP of the live `app=web` pods, once `count` of them have an IP.
fn web_pods(watch: &PodWatch, count: usize) -> anyhow::Result<BTreeMap<String, String>> {
    watch.wait_until(&format!("{count} web pods with an IP"), PATIENCE, |pods| {
        pods.values().filter(|p| p.live() && !p.ip.is_empty()).count() == count
    })?;
    Ok(watch.pods().into_iter().filter(|(_, p)| p.live()).map(|(name, p)| (name, p.ip)).collect())
}

/// Every endpoint of the Service's slices: (address, ready, port).
fn slice_endpoints(cluster: &Cluster) -> anyhow::Result<Vec<(String, bool, i64)>> {
    let slices = cluster.get_json(&["endpointslices", "-l", SLICE_OF_WEB])?;
    let mut out = Vec::new();
    for slice in slices["items"].as_array().into_iter().flatten() {
        let port = slice["ports"][0]["port"].as_i64().unwrap_or(0);
        for e in slice["endpoints"].as_array().into_iter().flatten() {
            let address = e["addresses"][0].as_str().unwrap_or_default().to_string();
            out.push((address, e["conditions"]["ready"] == true, port));
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn a_service_publishes_its_ready_pods_and_follows_them() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    cluster.kubectl_ok(&["create", "configmap", "health"])?;
    let watch = PodWatch::start(&cluster, "app=web")?;
    cluster.apply_yaml("web", WEB)?;
    let pods = web_pods(&watch, 2)?;
    for pod in pods.keys() {
        set_health(&cluster, pod, "ok")?;
    }
    for (pod, ip) in &pods {
        wait_published(&cluster, pod, ip, true)?;
    }

    // Both pods, on the port `http` names in their template, in every form kubectl shows.
    let mut pairs: Vec<String> = pods.values().map(|ip| format!("{ip}:8080")).collect();
    pairs.sort_by_key(|p| p.parse::<std::net::SocketAddr>().ok());
    let table = cluster.kubectl_ok(&["get", "endpoints", "web"])?;
    assert!(table.contains(&pairs.join(",")), "{table}");
    let expected: Vec<(String, bool, i64)> = pods.values().map(|ip| (ip.clone(), true, 8080)).collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(slice_endpoints(&cluster)?, expected);
    let slices = cluster.get_json(&["endpointslices", "-l", SLICE_OF_WEB])?;
    let slice = &slices["items"][0];
    assert_eq!(slices["items"].as_array().map(Vec::len), Some(1), "{slices}");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["ports"], serde_json::json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["labels"]["team"], "a");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    let described = cluster.kubectl_ok(&["describe", "service", "web"])?;
    let endpoints_line = described.lines().find(|l| l.starts_with("Endpoints:")).unwrap_or_default();
    for pair in &pairs {
        assert!(endpoints_line.contains(pair.as_str()), "{described}");
    }

    // A failing readiness probe takes one pod out of traffic, and it comes back.
    let (sick, sick_ip) = pods.iter().next().map(|(n, ip)| (n.clone(), ip.clone())).unwrap_or_default();
    set_health(&cluster, &sick, "down")?;
    wait_published(&cluster, &sick, &sick_ip, false)?;
    let ep = cluster.get_json(&["endpoints", "web"])?;
    assert_eq!(ep["subsets"][0]["addresses"].as_array().map(Vec::len), Some(1), "{ep}");
    set_health(&cluster, &sick, "ok")?;
    wait_published(&cluster, &sick, &sick_ip, true)?;

    // A third replica joins once it is up.
    cluster.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"])?;
    let all = web_pods(&watch, 3)?;
    let (new, new_ip) = all
        .iter()
        .find(|(n, _)| !pods.contains_key(*n))
        .map(|(n, ip)| (n.clone(), ip.clone()))
        .unwrap_or_default();
    set_health(&cluster, &new, "ok")?;
    wait_published(&cluster, &new, &new_ip, true)?;
    assert_eq!(slice_endpoints(&cluster)?.len(), 3);

    // Deleting the Service takes its slices (garbage collection) and Endpoints with it.
    let slice_name = format!("endpointslice/{}", slice["metadata"]["name"].as_str().unwrap_or_default());
    cluster.kubectl_ok(&["delete", "service", "web"])?;
    cluster.kubectl_ok(&["wait", "--for=delete", &slice_name, "endpoints/web", "--timeout=90s"])?;
    let left = cluster.kubectl_ok(&["get", "endpointslices", "-l", SLICE_OF_WEB, "-o", "name"])?;
    assert_eq!(left.trim(), "", "{left}");
    Ok(())
}

#[test]
fn load_balancers_and_ingresses_get_the_node_address() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let node_ip = cluster.node_ip.clone();

    cluster.kubectl_ok(&["create", "service", "loadbalancer", "lb", "--tcp=80:8080"])?;
    wait_for(&cluster, &format!("{{.status.loadBalancer.ingress[0].ip}}={node_ip}"), &["service/lb"])?;
    let svc = cluster.get_json(&["service", "lb"])?;
    assert_eq!(svc["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP", "{svc}");
    let row = cluster.kubectl_ok(&["get", "service", "lb", "--no-headers"])?;
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
    assert!(row.contains(&node_ip) && row.contains(&format!("80:{node_port}/TCP")), "{row}");

    let classes = cluster.kubectl_ok(&["get", "ingressclass"])?;
    assert!(classes.contains("wasmkube") && classes.contains("wasmkube.dev/ingress"), "{classes}");
    cluster.kubectl_ok(&[
        "create",
        "ingress",
        "site",
        "--class=wasmkube",
        "--rule=a.example.com/a*=svc-a:80,tls=site-tls",
        "--rule=a.example.com/b=svc-b:http",
    ])?;
    // No class named: the default class (ours) takes it.
    cluster.kubectl_ok(&["create", "ingress", "plain", "--rule=/x*=svc-a:80"])?;
    for ingress in ["ingress/site", "ingress/plain"] {
        wait_for(&cluster, &format!("{{.status.loadBalancer.ingress[0].ip}}={node_ip}"), &[ingress])?;
    }
    let site = cluster.get_json(&["ingress", "site"])?;
    let paths = &site["spec"]["rules"][0]["http"]["paths"];
    assert_eq!(
        (&paths[0]["pathType"], &paths[1]["pathType"]),
        (&Value::from("Prefix"), &Value::from("Exact")),
        "{site}"
    );
    let table = cluster.kubectl_ok(&["get", "ingress", "site"])?;
    let row = table.lines().nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[..5], ["site", "wasmkube", "a.example.com", node_ip.as_str(), "80, 443"], "{table}");

    // Admission words its refusals as kube-apiserver does.
    let bad = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad}
spec:
  rules:
  - http:
      paths: [{path: /, backend: {service: {name: svc-a, port: {number: 80}}}}]
";
    std::fs::write(work.path().join("bad.yaml"), bad)?;
    let out = cluster.kubectl(&["apply", "-f", &work.path().join("bad.yaml").display().to_string()])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr
                .contains("spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"),
        "{stderr}"
    );
    Ok(())
}
