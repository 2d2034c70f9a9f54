//! Registering this node as a Node object, waiting for the control plane to give it a pod
//! address range, and the heartbeat that keeps its Ready condition fresh.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{AgentConfig, AgentError};
use crate::{
    api::{ApiError, find_by_kind, meta, patch::PatchType},
    client::Client,
};

const HEARTBEAT: Duration = Duration::from_secs(10);

/// The node's memory (`MemTotal`), which it reports as capacity and allocatable.
pub fn memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

fn node_status(config: &AgentConfig, port: u16) -> Value {
    let now = meta::now();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let memory_kib = memory_bytes().unwrap_or(0) / 1024;
    let resources = json!({"cpu": cpus.to_string(), "memory": format!("{memory_kib}Ki"), "pods": "1000"});
    json!({
        "capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "wasmkube agent is posting ready status",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": config.node_ip.to_string()}, {"type": "Hostname", "address": config.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "wasmkube",
            "containerRuntimeVersion": "wasmtime://48", "kubeletVersion": "v1.37.0-wasmkube", "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH },
        },
    })
}

/// Create the Node, or take over an existing one with the same name (an agent restart).
pub async fn register(client: &Client, config: &AgentConfig, port: u16) -> Result<(), AgentError> {
    let nodes = find_by_kind("v1", "Node").ok_or_else(|| AgentError::Setup("nodes are not served".into()))?;
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": config.node_name, "labels": {
            "kubernetes.io/hostname": config.node_name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH },
            "wasmkube.dev/runtime": "wasmtime"}},
        "spec": {},
    });
    match client.create(nodes, None, &node).await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {}
        Err(e) => return Err(e.into()),
    }
    client
        .patch(
            nodes,
            None,
            &config.node_name,
            Some("status"),
            PatchType::Merge,
            &json!({"status": node_status(config, port)}),
        )
        .await?;
    Ok(())
}

/// Wait until the control plane has assigned `spec.podCIDR`.
pub async fn wait_for_pod_cidr(client: &Client, node_name: &str) -> Result<String, AgentError> {
    let nodes = find_by_kind("v1", "Node").ok_or_else(|| AgentError::Setup("nodes are not served".into()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let node = client.get(nodes, None, node_name).await?;
        if let Some(cidr) = node["spec"]["podCIDR"].as_str().filter(|c| !c.is_empty()) {
            return Ok(cidr.to_string());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::unavailable(format!("node {node_name} got no podCIDR within 60s: is the control plane's node-ipam controller running?")).into());
        }
        let rv = meta::resource_version(&node).unwrap_or(0);
        // Wait for the next change to our Node rather than polling.
        if let Ok(stream) = client.watch(nodes, None, rv, Some(&format!("metadata.name={node_name}"))).await {
            use futures::StreamExt;
            let mut stream = Box::pin(stream);
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        }
    }
}

/// Refresh the Node's Ready condition until stopped.
pub async fn heartbeat(client: Client, config: AgentConfig, port: u16, stop: CancellationToken) {
    let Some(nodes) = find_by_kind("v1", "Node") else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = stop.cancelled() => return,
        }
        let status = json!({"status": node_status(&config, port)});
        if let Err(e) =
            client.patch(nodes, None, &config.node_name, Some("status"), PatchType::Merge, &status).await
        {
            if e.is_not_found() {
                // Someone deleted our Node: register again.
                let _ = register(&client, &config, port).await;
            } else {
                warn!(error = %e, "node heartbeat failed");
            }
        }
    }
}
