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
    /// The node token, as `wasmkube up` prints it.
    #[arg(long, env = "WASMKUBE_NODE_TOKEN", hide_env_values = true)]
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
    /// Port for the log server (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

impl AgentCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let ca = std::fs::read_to_string(&self.ca_cert)
            .with_context(|| format!("reading the cluster CA {}", self.ca_cert.display()))?;
        let client = Client::new(&self.server, &self.token, Some(&ca))?;
        let node_name = self.node_name.unwrap_or_else(cluster::default_node_name);
        let agent = node::start(
            client,
            AgentConfig {
                node_name: node_name.clone(),
                data_dir: self.data_dir,
                node_ip: self.node_ip,
                port: self.port,
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
