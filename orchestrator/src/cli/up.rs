//! `wasmkube up`: the whole single-node cluster in one foreground process.

use std::{net::SocketAddr, path::PathBuf, sync::atomic::Ordering, time::Duration};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use orchestrator::{
    api::find_by_kind,
    cluster,
    node::{self, AgentConfig},
};
use serde_json::json;

/// The demo app, bundled so `up --demo` needs no registry.
const DEMO_WASM: &[u8] = include_bytes!("../../../sample-apps/fixtures/hello-http.wasm");
const DEMO_IMAGE: &str = "wasmkube.local/hello-http:demo";

/// Start a single-node cluster: API server, embedded store, scheduler, controllers and a node
/// agent, in the foreground until Ctrl-C.
#[derive(clap::Args)]
pub struct UpCommand {
    /// Where the store, kubeconfig, tokens, images and logs live.
    #[arg(long, env = "WASMKUBE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Name of this node (default: the host name).
    #[arg(long)]
    node_name: Option<String>,
    /// Pod addresses: each node gets a /16 of this network (inside 127.0.0.0/8 on one machine).
    #[arg(long, default_value = orchestrator::controllers::nodeipam::DEFAULT_POD_NETWORK)]
    pod_network: String,
    /// Service cluster IPs come from this network (inside 127.0.0.0/8 on one machine); the
    /// cluster DNS server answers on its tenth address. Must not overlap the pod network.
    #[arg(long, default_value = orchestrator::api::services::DEFAULT_SERVICE_NETWORK)]
    service_network: String,
    /// Ports NodePort and LoadBalancer Services get on every node.
    #[arg(long, default_value = orchestrator::api::services::DEFAULT_NODE_PORTS)]
    node_port_range: String,
    /// This node's address: NodePorts, LoadBalancer Services and Ingress are served there
    /// (default: the address of --listen).
    #[arg(long)]
    node_ip: Option<std::net::IpAddr>,
    /// Ingress is served on this port of the node's address (0: not at all).
    #[arg(long, default_value_t = 8080)]
    ingress_http_port: u16,
    /// Ingress with TLS is served on this port of the node's address (0: not at all).
    #[arg(long, default_value_t = 8443)]
    ingress_https_port: u16,
    /// Also deploy the bundled hello-http sample and print a URL to curl.
    #[arg(long)]
    demo: bool,
    /// How many past changes a watch can resume from; older resourceVersions get 410 Expired.
    #[arg(long, default_value_t = orchestrator::store::RETAINED_EVENTS)]
    watch_history: u64,
    /// Debugging only: also serve the API over plain HTTP, without authentication, on this
    /// loopback address (e.g. 127.0.0.1:8080). Refused on any other address.
    #[arg(long, value_name = "ADDR")]
    insecure_http: Option<SocketAddr>,
}

impl UpCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let data_dir = self.data_dir.unwrap_or_else(super::config::default_data_dir);
        let pod_network = orchestrator::controllers::nodeipam::PodNetwork::parse(&self.pod_network)
            .map_err(|e| anyhow!("--pod-network: {e}"))?;
        let cluster_network: ipnet::IpNet =
            self.pod_network.parse().map_err(|e| anyhow!("--pod-network {}: {e}", self.pod_network))?;
        let service_networks =
            orchestrator::api::services::ServiceNetworks::parse(&self.service_network, &self.node_port_range)
                .map_err(|e| anyhow!("--service-network/--node-port-range: {e}"))?;
        let service_cidr: ipnet::IpNet = service_networks.cidr().parse()?;
        if service_cidr.contains(&cluster_network) || cluster_network.contains(&service_cidr) {
            return Err(anyhow!(
                "--service-network {} overlaps --pod-network {}: give them separate ranges",
                self.service_network,
                self.pod_network
            ));
        }
        let options = cluster::Options {
            listen: self.listen,
            pod_network,
            service_networks: service_networks.clone(),
            watch_history: self.watch_history,
            insecure_http: self.insecure_http,
        };
        let cp = cluster::start(&data_dir, options).await?;
        let tokens = cp.tokens.snapshot();
        let kubeconfig_path = data_dir.join("kubeconfig");
        cluster::write_private(
            &kubeconfig_path,
            cluster::kubeconfig(&cp.url(), &tokens.admin, &cp.ca_pem).as_bytes(),
        )
        .with_context(|| format!("writing {}", kubeconfig_path.display()))?;
        let node_name = self.node_name.unwrap_or_else(cluster::default_node_name);
        // This process's own node gets a fresh credential each start, limited like any node's.
        let credential = orchestrator::auth::tokens::random_token();
        cp.tokens.set_node(&node_name, &credential).context("registering the local node")?;
        let agent_client = orchestrator::client::Client::new(&cp.url(), &credential, Some(&cp.ca_pem))?;
        let node_dir = data_dir.join("node");
        let agent = node::start(
            agent_client,
            AgentConfig {
                node_name: node_name.clone(),
                data_dir: node_dir,
                node_ip: self.node_ip.unwrap_or(self.listen.ip()),
                port: 0,
                proxy_token: tokens.apiserver.clone(),
                cluster_networks: vec![cluster_network],
                services: service_networks,
                ingress_ports: (
                    Some(self.ingress_http_port).filter(|p| *p != 0),
                    Some(self.ingress_https_port).filter(|p| *p != 0),
                ),
            },
        )
        .await
        .context("starting the node agent")?;
        cp.ready.store(true, Ordering::Release);
        println!("wasmkube is up");
        println!("  API server:  {}", cp.url());
        println!("  kubeconfig:  {}", kubeconfig_path.display());
        println!("  node:        {node_name} (logs served on {})", agent.log_addr);
        println!(
            "  join a node: wasmkube agent --server {} --token {} --ca-cert {} --data-dir DIR --node-name NAME",
            cp.url(),
            tokens.join,
            data_dir.join("pki/ca.crt").display()
        );
        println!("Try: export KUBECONFIG={}; kubectl get nodes", kubeconfig_path.display());
        if self.demo {
            let node_ip = self.node_ip.unwrap_or(self.listen.ip());
            let ingress =
                Some(self.ingress_http_port).filter(|p| *p != 0).map(|p| SocketAddr::new(node_ip, p));
            match deploy_demo(&cp, &data_dir, ingress).await {
                Ok(url) => println!("demo: hello-http is running; try: curl {url}"),
                Err(e) => eprintln!("demo: {e:#}"),
            }
        }
        println!("Press Ctrl-C to stop.");
        super::shutdown_signal().await;
        eprintln!("stopping: pods first, then the API server");
        agent.shutdown().await;
        cp.shutdown().await;
        Ok(())
    }
}

/// Whether `addr` answers a GET / with 200 before `deadline`.
async fn answers_200(addr: SocketAddr, deadline: tokio::time::Instant) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let mut head = [0u8; 12];
            if stream.write_all(request.as_bytes()).await.is_ok()
                && stream.read_exact(&mut head).await.is_ok()
                && head.ends_with(b" 200")
            {
                return true;
            }
        }
        // The proxy learns the endpoint from a watch: look again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether the pod is Ready with every container started at `since` or later (RFC 3339 in
/// whole seconds, so the strings compare as times).
fn serving_since(pod: &serde_json::Value, since: &str) -> bool {
    let status = &pod["status"];
    let ready = status["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    let fresh = status["containerStatuses"].as_array().is_some_and(|all| {
        !all.is_empty()
            && all.iter().all(|c| c["state"]["running"]["startedAt"].as_str().is_some_and(|t| t >= since))
    });
    ready && fresh && status["podIP"].is_string()
}

/// Side-load the bundled sample, deploy it with a Service and an Ingress, and wait until it
/// answers; the URL to try.
async fn deploy_demo(
    cp: &cluster::ControlPlane,
    data_dir: &std::path::Path,
    ingress: Option<SocketAddr>,
) -> anyhow::Result<String> {
    let wasm_path = data_dir.join("hello-http-demo.wasm");
    std::fs::write(&wasm_path, DEMO_WASM).with_context(|| format!("writing {}", wasm_path.display()))?;
    let cache = oci_fetch::ImageCache::open(&node::images_dir(&data_dir.join("node")))?;
    cache.load_wasm_file(&wasm_path, DEMO_IMAGE)?;
    let client = cp.admin_client()?;
    let deployments =
        find_by_kind("apps/v1", "Deployment").ok_or_else(|| anyhow!("deployments not served"))?;
    let pods = find_by_kind("v1", "Pod").ok_or_else(|| anyhow!("pods not served"))?;
    let services = find_by_kind("v1", "Service").ok_or_else(|| anyhow!("services not served"))?;
    let ingresses =
        find_by_kind("networking.k8s.io/v1", "Ingress").ok_or_else(|| anyhow!("ingresses not served"))?;
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "hello-http-demo", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hello-http-demo"}},
            "template": {"metadata": {"labels": {"app": "hello-http-demo"}}, "spec": {"containers": [{
                "name": "hello-http", "image": DEMO_IMAGE, "imagePullPolicy": "Never", "ports": [{"containerPort": 8080}],
                "env": [{"name": "GREETING", "value": "Hello from the wasmkube demo"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}},
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "hello-http-demo", "namespace": "default"},
        "spec": {"selector": {"app": "hello-http-demo"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    });
    let route = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "hello-http-demo", "namespace": "default"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "hello-http-demo", "port": {"name": "http"}}}}]}}]},
    });
    for (kind, object) in [(deployments, &manifest), (services, &service), (ingresses, &route)] {
        match client.create(kind, Some("default"), object).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!("demo: waiting for a hello-http pod to run...");
    // After a restart the stored pod still says Running and Ready from the last run, with its
    // old IP, until the agent has run it again: only a container started by this run counts.
    let since = orchestrator::api::meta::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (items, rv) = client.list(pods, Some("default"), Some("app=hello-http-demo"), None).await?;
        if let Some(pod) = items.iter().find(|p| serving_since(p, &since)) {
            let pod_url = format!("http://{}:8080/", pod["status"]["podIP"].as_str().unwrap_or(""));
            return Ok(match ingress {
                // The Ingress is the stable address; it answers once the proxy has the endpoint
                // (seconds at most; longer means the port is not ours, see the agent's warning).
                Some(addr)
                    if answers_200(addr, tokio::time::Instant::now() + Duration::from_secs(10)).await =>
                {
                    format!("http://{addr}/ (Ingress; the pod itself: {pod_url})")
                }
                _ => pod_url,
            });
        }
        if tokio::time::Instant::now() > deadline {
            let state = items
                .first()
                .map(|p| orchestrator::apiserver::tables::pod_status(p))
                .unwrap_or_else(|| "no pod".into());
            return Err(anyhow!(
                "the demo pod is not running after 120s (state: {state}); see `kubectl describe pods -l app=hello-http-demo`"
            ));
        }
        // Wait for the next pod change instead of polling.
        let mut stream = Box::pin(client.watch(pods, Some("default"), rv, None).await?);
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    }
}
