//! Cluster DNS end to end: `wasmkube up`'s agent serves the cluster DNS address; the test asks
//! it directly over UDP (A, SRV, NXDOMAIN, a headless Service's pod address and an endpoint's
//! hostname); a Wasm pod (hello-http) fetches another Service by its long and short names
//! through `wasi:http` outgoing, resolved in the agent's memory, and a command component
//! connects to it by name through `wasi:sockets/ip-name-lookup`; a busybox Linux pod gets
//! kubelet's resolv.conf and `wget`s the Wasm Service by name, its query going over the network
//! to the agent's server.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use anyhow::Context;
use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RData, RecordType},
};
use wasmkube_e2e::{
    TestRegistry,
    cluster::{Cluster, http_get, http_get_until},
    linux_image::{push_busybox, runc_usable},
    poll,
};

const PATIENCE: Duration = Duration::from_secs(60);

/// The Wasm Service and its pod (with a hostname under the headless Service), the headless
/// Service, an ExternalName alias of the first, and the Wasm client.
const APPS: &str = "apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  hostname: alpha
  subdomain: web-headless
  containers:
  - name: web
    image: example.local/hello-http:1
    ports: [{name: http, containerPort: 8080}]
    env:
    - {name: GREETING, value: 'served by name'}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: web.default.svc.cluster.local
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: example.local/hello-http:1
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: prober}
spec:
  containers:
  - {name: probe, image: example.local/net-probe:1, args: [connect, 'web:80']}
";

fn busybox_pod(image: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: bb}}
spec:
  restartPolicy: Never
  containers:
  - name: bb
    image: {image}
    command: [sh, -c]
    args:
    - |
      cat /etc/resolv.conf
      busybox wget -q -O - http://web/ && echo wget-short-ok
      busybox wget -q -O - http://web.default.svc.cluster.local/ && echo wget-long-ok
      busybox nslookup alpha.web-headless.default.svc.cluster.local
      exit 0
"
    )
}

/// The cluster DNS address: the service network's tenth address, port 53.
fn dns_address(cluster: &Cluster) -> anyhow::Result<SocketAddr> {
    let base: Ipv4Addr = cluster.service_network.split('/').next().context("service network")?.parse()?;
    Ok(SocketAddr::from((Ipv4Addr::from(u32::from(base) + 10), 53)))
}

/// One UDP query to `server`; the answer's response code and records as text.
fn ask(server: SocketAddr, name: &str, kind: RecordType) -> anyhow::Result<(ResponseCode, Vec<String>)> {
    let mut message = Message::query();
    message.metadata.id = rand_id();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name)?, kind));
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    socket.send_to(&message.to_vec()?, server)?;
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).with_context(|| format!("no answer from {server} for {name}"))?;
    let answer = Message::from_vec(&buf[..n])?;
    anyhow::ensure!(answer.metadata.id == message.metadata.id, "an answer to another query");
    let records = answer
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(srv) => format!("{} {}", srv.port, srv.target),
            other => other.to_string(),
        })
        .collect();
    Ok((answer.metadata.response_code, records))
}

fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos());
    (nanos.unwrap_or(7) & 0xffff) as u16
}

/// Ask until the answer is `want` (the directory follows the API a moment behind).
fn wait_answer(
    server: SocketAddr,
    name: &str,
    kind: RecordType,
    want: (ResponseCode, Vec<String>),
) -> anyhow::Result<()> {
    // The directory follows the endpoints with a lag no watch shows.
    poll::until(&format!("{name} {kind} to answer {want:?}"), PATIENCE, || {
        let got = ask(server, name, kind)?;
        Ok(((got == want).then_some(()), format!("{got:?}")))
    })
}

/// GET `path` on the client pod until it answers 200.
fn fetch(client: &str, path: &str) -> anyhow::Result<String> {
    Ok(http_get_until(client, path, PATIENCE, |code, _| code == 200)?.1)
}

fn pod_ip(cluster: &Cluster, pod: &str) -> anyhow::Result<String> {
    let pod = cluster.get_json(&["pod", pod])?;
    Ok(pod["status"]["podIP"].as_str().context("no podIP")?.to_string())
}

#[test]
fn pods_find_services_by_name() -> anyhow::Result<()> {
    runc_usable().map_err(anyhow::Error::msg)?;
    let registry = TestRegistry::start()?;
    let busybox = push_busybox(&registry, "busybox", "1")?;
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", "example.local/hello-http:1")?;
    cluster.side_load("net-probe.wasm", "example.local/net-probe:1")?;
    cluster.apply_yaml("apps", APPS)?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web",
        "pod/client",
        "pod/prober",
        "--timeout=90s",
    ])?;
    let dns = dns_address(&cluster)?;
    let web_ip = pod_ip(&cluster, "web")?;
    let svc = cluster.get_json(&["service", "web"])?;
    let cluster_ip = svc["spec"]["clusterIP"].as_str().context("no clusterIP")?.to_string();

    // Direct queries to the agent's DNS server.
    use ResponseCode::{NXDomain, NoError};
    wait_answer(dns, "web.default.svc.cluster.local.", RecordType::A, (NoError, vec![cluster_ip.clone()]))?;
    wait_answer(
        dns,
        "web-headless.default.svc.cluster.local.",
        RecordType::A,
        (NoError, vec![web_ip.clone()]),
    )?;
    let alpha = (NoError, vec![web_ip.clone()]);
    assert_eq!(ask(dns, "alpha.web-headless.default.svc.cluster.local.", RecordType::A)?, alpha);
    let srv = (NoError, vec!["80 web.default.svc.cluster.local.".to_string()]);
    assert_eq!(ask(dns, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV)?, srv);
    let ext = ask(dns, "ext.default.svc.cluster.local.", RecordType::A)?;
    assert_eq!(ext, (NoError, vec!["web.default.svc.cluster.local.".into(), cluster_ip.clone()]));
    assert_eq!(ask(dns, "nope.default.svc.cluster.local.", RecordType::A)?, (NXDomain, vec![]));

    // A Wasm pod reaches the Service by its names through wasi:http, resolved in memory.
    let client = format!("{}:8080", pod_ip(&cluster, "client")?);
    for path in [
        "/fetch/web.default.svc.cluster.local/",
        "/fetch/web/",
        "/fetch/web.default/",
        "/fetch/web-headless:8080/",
        "/fetch/alpha.web-headless:8080/",
        "/fetch/ext/",
    ] {
        let body = fetch(&client, path)?;
        assert!(body.starts_with("fetched 200: Hello from web! served by name"), "{path}: {body:?}");
    }
    let (code, body) = http_get(&client, "/fetch/nope.default.svc.cluster.local/")?;
    assert_eq!(code, 502, "an unknown cluster name fails: {body}");

    // A command component resolves the short name through wasi:sockets/ip-name-lookup (Rust
    // std's `TcpStream::connect("web:80")`) and connects to the cluster IP.
    let line = cluster.wait_for_log("prober", None, "net-probe: connect", PATIENCE)?;
    assert!(line.contains("net-probe: connected to web:80"), "{line}");

    // A Linux pod resolves through the agent's server with kubelet's resolv.conf.
    cluster.apply_yaml("bb", &busybox_pod(&busybox))?;
    cluster.kubectl_ok(&["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/bb", "--timeout=120s"])?;
    let logs = cluster.kubectl_ok(&["logs", "bb"])?;
    let dns_ip: IpAddr = dns.ip();
    for line in [
        format!("nameserver {dns_ip}"),
        "search default.svc.cluster.local svc.cluster.local cluster.local".to_string(),
        "options ndots:5".to_string(),
        "Hello from web! served by name".to_string(),
        "wget-short-ok".to_string(),
        "wget-long-ok".to_string(),
        format!("Address: {web_ip}"),
    ] {
        assert!(logs.contains(&line), "the busybox pod's log lacks {line:?}:\n{logs}");
    }
    Ok(())
}
