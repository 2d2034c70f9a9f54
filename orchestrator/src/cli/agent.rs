//! `wasmkube agent`: join this machine to a running cluster as a node.

use std::{net::IpAddr, path::PathBuf};

use anyhow::Context;
use orchestrator::{
    client::Client,
    cluster,
    node::{self, AgentConfig},
};

/// Run a node agent against a cluster's API server, in the foreground until Ctrl-C.
#[derive(clap::Args)]
pub struct AgentCommand {
    /// The API server URL, as `wasmkube up` prints it.
    #[arg(long)]
    server: String,
    /// The join token, as `wasmkube up` prints it. It only registers this node's own
    /// credential (kept in `<data-dir>/node-credential`); everything else uses that credential,
    /// which may change only this node and its pods.
    #[arg(long, env = "WASMKUBE_JOIN_TOKEN", hide_env_values = true)]
    token: String,
    /// The cluster CA certificate, as `wasmkube up` prints it (`<data-dir>/pki/ca.crt`).
    #[arg(long)]
    ca_cert: PathBuf,
    /// Where this node keeps images, compiled code and logs.
    #[arg(long)]
    data_dir: PathBuf,
    /// Name of this node (default: the host name).
    #[arg(long)]
    node_name: Option<String>,
    /// Address this node is reachable at; it serves logs there.
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: IpAddr,
    /// Ingress is served on this port of --node-ip (0: not at all).
    #[arg(long, default_value_t = 8080)]
    ingress_http_port: u16,
    /// Ingress with TLS is served on this port of --node-ip (0: not at all).
    #[arg(long, default_value_t = 8443)]
    ingress_https_port: u16,
    /// Port for the log server (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The cluster's pod network (the `--pod-network` of `wasmkube up`), for servers that do
    /// not say it when the node joins: Wasm pods on this node may always connect there;
    /// anything else needs the pod's `wasmkube.dev/egress` annotation.
    #[arg(long, default_value = orchestrator::controllers::nodeipam::DEFAULT_POD_NETWORK)]
    cluster_cidr: ipnet::IpNet,
}

/// Where an agent registers its credential (see the API server's bootstrap module).
const BOOTSTRAP_PATH: &str = "/bootstrap/v1/node-credentials";

/// This node's credential: made once, kept private in the agent's data dir, so a restarted
/// agent is recognised as the same node.
fn node_credential(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let token = text.trim().to_string();
        if token.len() >= 32 {
            return Ok(token);
        }
    }
    let token = orchestrator::auth::tokens::random_token();
    cluster::write_private(path, token.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

impl AgentCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let ca = std::fs::read_to_string(&self.ca_cert)
            .with_context(|| format!("reading the cluster CA {}", self.ca_cert.display()))?;
        let node_name = self.node_name.unwrap_or_else(cluster::default_node_name);
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let credential = node_credential(&self.data_dir.join("node-credential"))?;
        let join = Client::new(&self.server, &self.token, Some(&ca))?;
        let body = serde_json::json!({"nodeName": node_name, "token": credential});
        let answer = join
            .request(reqwest::Method::POST, BOOTSTRAP_PATH, Some(("application/json", &body)), None)
            .await
            .with_context(|| format!("registering node {node_name} with {}", self.server))?;
        let proxy_token = answer["apiserverToken"].as_str().unwrap_or_default().to_string();
        // The cluster's networks come from the server, so every node agrees on them.
        let cluster_cidr = match answer["podNetwork"].as_str() {
            Some(cidr) => cidr.parse().with_context(|| format!("the server's pod network {cidr:?}"))?,
            None => self.cluster_cidr,
        };
        let services = orchestrator::api::services::ServiceNetworks::parse(
            answer["serviceNetwork"].as_str().unwrap_or(orchestrator::api::services::DEFAULT_SERVICE_NETWORK),
            answer["nodePortRange"].as_str().unwrap_or(orchestrator::api::services::DEFAULT_NODE_PORTS),
        )
        .map_err(|e| anyhow::anyhow!("the server's service network: {e}"))?;
        let client = Client::new(&self.server, &credential, Some(&ca))?;
        let agent = node::start(
            client,
            AgentConfig {
                node_name: node_name.clone(),
                data_dir: self.data_dir,
                node_ip: self.node_ip,
                port: self.port,
                proxy_token,
                cluster_networks: vec![cluster_cidr],
                services,
                ingress_ports: (
                    Some(self.ingress_http_port).filter(|p| *p != 0),
                    Some(self.ingress_https_port).filter(|p| *p != 0),
                ),
            },
        )
        .await
        .with_context(|| format!("starting node {node_name} against {}", self.server))?;
        println!("node {node_name} joined {} (logs served on {})", self.server, agent.log_addr);
        super::shutdown_signal().await;
        agent.shutdown().await;
        Ok(())
    }
}
