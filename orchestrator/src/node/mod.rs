//! The node agent (our kubelet): registers its Node, runs the pods bound to it, reports their
//! status and serves their logs. It is a client of the API and nothing else, so `wasmkube agent`
//! on another machine and the agent inside `wasmkube up` are the same code.

mod backoff;
mod container;
pub mod dns;
mod env;
pub mod grants;
mod hooks;
mod ipam;
mod linux;
pub mod logs;
mod probes;
pub mod proxy;
mod registration;
mod service_env;
mod service_view;
mod sources;
pub mod stats;
mod status;
mod volumes;
mod worker;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api::{find_by_kind, meta},
    client::{Client, informer},
};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Local setup failed (directories, caches, engine, listener).
    #[error("{0}")]
    Setup(String),
    /// The API server refused or could not be reached.
    #[error("API: {0}")]
    Api(#[from] crate::api::ApiError),
}

/// How to run an agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Node name to register.
    pub node_name: String,
    /// Where images, compiled code, logs and pod state live.
    pub data_dir: PathBuf,
    /// The address this node is reachable at (its InternalIP); logs are served there.
    pub node_ip: IpAddr,
    /// Port of the log server (0: pick a free one).
    pub port: u16,
    /// The token the API server presents when it proxies to this agent (logs); nothing else
    /// is let in.
    pub proxy_token: String,
    /// The cluster's own networks (the pod network): Wasm pods may always connect there.
    pub cluster_networks: Vec<ipnet::IpNet>,
    /// The service network: the node proxy serves cluster IPs from it, the DNS server its
    /// tenth address; Wasm pods may connect there too.
    pub services: crate::api::services::ServiceNetworks,
    /// Ingress HTTP and HTTPS ports on `node_ip` (None: not served).
    pub ingress_ports: (Option<u16>, Option<u16>),
}

/// What every pod worker shares.
#[derive(Clone)]
pub(crate) struct NodeContext {
    pub client: Client,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub engine: wasm_runtime::WasmEngine,
    pub linux: wasm_runtime::linux::LinuxRuntime,
    pub puller: Arc<oci_fetch::Puller>,
    pub images: oci_fetch::ImageCache,
    pub logs: logs::LogRegistry,
    pub ips: ipam::PodIps,
    /// `<data-dir>/pods`: each pod's volumes.
    pub pods_dir: PathBuf,
    /// Usage of the running containers, for `/stats/summary`.
    pub usage: stats::UsageRegistry,
    pub cluster_networks: Arc<Vec<ipnet::IpNet>>,
    /// The cluster DNS: its names (Wasm guests resolve there) and settings (Linux containers'
    /// resolv.conf).
    pub names: dns::SharedDirectory,
    pub dns: Arc<dns::DnsConfig>,
    /// The cluster's Services and EndpointSlices (also the Service environment variables).
    pub services: service_view::ServiceView,
}

/// A running agent; dropping the handle does not stop it, `shutdown` does.
pub struct AgentHandle {
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
    /// Where the log server listens.
    pub log_addr: SocketAddr,
}

impl AgentHandle {
    /// Stop every pod (with their grace periods, capped) and the agent.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.done.await;
    }
}

/// Directory layout of an agent's data dir.
pub fn images_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("images")
}

/// Start the agent: local setup, log server, Node registration, then the pod dispatcher.
pub async fn start(client: Client, config: AgentConfig) -> Result<AgentHandle, AgentError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| AgentError::Setup(format!("{what}: {e}"));
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| setup(&format!("creating {}", config.data_dir.display()), &e))?;
    let images = oci_fetch::ImageCache::open(&images_dir(&config.data_dir))
        .map_err(|e| setup("opening the image cache", &e))?;
    let engine = wasm_runtime::WasmEngine::new(wasm_runtime::EngineConfig {
        cache_dir: config.data_dir.join("compiled"),
        allocatable_memory: registration::memory_bytes(),
    })
    .map_err(|e| setup("starting the Wasm engine", &e))?;
    let linux = wasm_runtime::linux::LinuxRuntime::new(wasm_runtime::linux::LinuxConfig {
        state_dir: config.data_dir.join("linux"),
        runc: wasm_runtime::linux::DEFAULT_RUNC.into(),
    })
    .map_err(|e| setup("setting up the Linux runtime", &e))?;
    let log_registry = logs::LogRegistry::new(config.data_dir.join("logs"));
    let listener = tokio::net::TcpListener::bind((config.node_ip, config.port))
        .await
        .map_err(|e| setup(&format!("binding the log server on {}:{}", config.node_ip, config.port), &e))?;
    let log_addr = listener.local_addr().map_err(|e| setup("log server address", &e))?;
    let stop = CancellationToken::new();
    let usage = stats::UsageRegistry::default();
    tokio::spawn(logs::serve(
        listener,
        log_registry.clone(),
        usage.clone(),
        config.node_name.clone(),
        config.proxy_token.clone(),
        stop.clone(),
    ));

    registration::register(&client, &config, log_addr.port()).await?;
    let pod_cidr = registration::wait_for_pod_cidr(&client, &config.node_name).await?;
    info!(node = %config.node_name, %log_addr, %pod_cidr, "node registered");
    // One cache of Services and EndpointSlices for the DNS server, the proxy and pod env.
    let view = service_view::ServiceView::spawn(&client)
        .ok_or_else(|| AgentError::Setup("the API serves no Services or EndpointSlices".into()))?;
    let ctx = NodeContext {
        client: client.clone(),
        node_name: config.node_name.clone(),
        node_ip: config.node_ip,
        engine,
        linux,
        puller: Arc::new(oci_fetch::Puller::new(images.clone())),
        images,
        logs: log_registry,
        ips: ipam::PodIps::new(&pod_cidr)
            .map_err(|e| AgentError::Setup(format!("node {} has a bad podCIDR: {e}", config.node_name)))?,
        pods_dir: config.data_dir.join("pods"),
        usage,
        cluster_networks: Arc::new(cluster_networks(&config)),
        names: dns::SharedDirectory::default(),
        dns: Arc::new(dns::DnsConfig::new(config.services.dns_ip().into())),
        services: view.clone(),
    };
    tokio::spawn(dns::run(view.clone(), (*ctx.dns).clone(), ctx.names.clone(), stop.clone()));
    let proxy_config = proxy::ProxyConfig {
        engine: Some(ctx.engine.clone()),
        node_ips: vec![config.node_ip],
        ingress_http: config.ingress_ports.0,
        ingress_https: config.ingress_ports.1,
    };
    tokio::spawn(proxy::run(client.clone(), view, proxy_config, stop.clone()));
    tokio::spawn(registration::heartbeat(client.clone(), config.clone(), log_addr.port(), stop.clone()));
    let done = tokio::spawn(dispatch(ctx, stop.clone()));
    Ok(AgentHandle { stop, done, log_addr })
}

/// Where Wasm pods may always connect: the pod network and the service network.
fn cluster_networks(config: &AgentConfig) -> Vec<ipnet::IpNet> {
    let mut networks = config.cluster_networks.clone();
    match config.services.cidr().parse() {
        Ok(services) => networks.push(services),
        Err(e) => warn!(error = %e, "the service network is not a CIDR"),
    }
    networks
}

/// Keep one worker per pod bound to this node; tell workers about changes and removals.
async fn dispatch(ctx: NodeContext, stop: CancellationToken) {
    let Some(pod_type) = find_by_kind("v1", "Pod") else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let pods = informer::spawn(
        ctx.client.clone(),
        pod_type,
        Some(format!("spec.nodeName={}", ctx.node_name)),
        changed.clone(),
    );
    pods.wait_synced().await;
    let mut workers: HashMap<String, (watch::Sender<Option<Value>>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        let current: HashMap<String, Arc<Value>> =
            pods.list().into_iter().map(|p| (meta::uid(&p).to_string(), p)).collect();
        for (uid, pod) in &current {
            match workers.get(uid) {
                Some((tx, _)) => {
                    tx.send_if_modified(|old| {
                        let differs = old
                            .as_ref()
                            .map(|o| o["metadata"]["resourceVersion"] != pod["metadata"]["resourceVersion"])
                            .unwrap_or(true);
                        if differs {
                            *old = Some((**pod).clone());
                        }
                        differs
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(Some((**pod).clone()));
                    let handle = tokio::spawn(worker::run(ctx.clone(), rx, stop.child_token()));
                    workers.insert(uid.clone(), (tx, handle));
                }
            }
        }
        workers.retain(|uid, (tx, handle)| {
            if !current.contains_key(uid) {
                // The pod object is gone: the worker stops its containers and exits.
                let _ = tx.send(None);
            }
            !handle.is_finished()
        });
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            _ = stop.cancelled() => break,
        }
    }
    info!(pods = workers.len(), "agent stopping: stopping pods");
    for (_, (_, handle)) in workers {
        if let Err(e) = handle.await {
            warn!(error = %e, "pod worker panicked");
        }
    }
}
