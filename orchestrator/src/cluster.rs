//! Wiring a control plane together: store, bootstrap namespaces, tokens, API server,
//! controllers and scheduler. `wasmkube up` adds a node agent and the CLI around it.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicBool},
};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    api::{ApiError, find_by_kind, validate},
    apiserver::{self, ApiState},
    client::Client,
    store::{Mutation, Store},
};

/// Write a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

/// Errors starting the control plane.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The store could not be opened.
    #[error(
        "opening the store at {path}: {source} (is another `wasmkube up` using this data dir? stop it or pass another --data-dir)"
    )]
    Store {
        /// Path of the store file.
        path: PathBuf,
        /// Why.
        source: crate::store::StoreError,
    },
    /// Files in the data dir could not be written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// Which path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The API could not listen.
    #[error(
        "cannot listen on {addr}: {source} (is another wasmkube or kube-apiserver running? pick another with --listen)"
    )]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The cluster PKI could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// `--insecure-http` must stay on this machine.
    #[error("--insecure-http {0}: plain HTTP without authentication is only allowed on a loopback address")]
    Insecure(SocketAddr),
    /// Bootstrap objects could not be written.
    #[error("bootstrapping: {0}")]
    Bootstrap(#[from] ApiError),
}

/// A running control plane.
pub struct ControlPlane {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The cluster's tokens.
    pub tokens: crate::auth::Registry,
    /// The cluster CA certificate (PEM).
    pub ca_pem: String,
    /// `/readyz` turns 200 when this is set.
    pub ready: Arc<AtomicBool>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ControlPlane {
    /// The API's URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// An administrator client.
    pub fn admin_client(&self) -> Result<Client, ApiError> {
        Client::new(&self.url(), &self.tokens.snapshot().admin, Some(&self.ca_pem))
    }

    /// Stop controllers and the API server.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.stop.cancel();
        let _ = self.server.await;
    }
}

const BOOTSTRAP_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn bootstrap(store: &Store) -> Result<(), ApiError> {
    let namespaces =
        find_by_kind("v1", "Namespace").ok_or_else(|| ApiError::internal("namespaces not served"))?;
    for ns in BOOTSTRAP_NAMESPACES {
        let obj = validate::prepare_create(namespaces, None, json!({"metadata": {"name": ns}}))?;
        store.mutate::<ApiError, _>(&namespaces.key("", ns), |current| {
            Ok(if current.is_some() { Mutation::Keep } else { Mutation::Put(obj) })
        })?;
    }
    Ok(())
}

/// How a control plane is set up.
pub struct Options {
    /// Where the API server listens.
    pub listen: SocketAddr,
    /// The network nodes get their pod ranges from.
    pub pod_network: crate::controllers::nodeipam::PodNetwork,
    /// Where Services get their cluster IPs and node ports.
    pub service_networks: crate::api::services::ServiceNetworks,
    /// How many past changes a watch can resume from before it gets 410 Expired.
    pub watch_history: u64,
    /// Also serve plain HTTP without authentication here (loopback only, for debugging).
    pub insecure_http: Option<SocketAddr>,
}

/// Open the store in `data_dir`, start the API server and the controllers.
pub async fn start(data_dir: &Path, options: Options) -> Result<ControlPlane, ClusterError> {
    let Options { listen, pod_network, service_networks, watch_history, insecure_http } = options;
    if let Some(addr) = insecure_http.filter(|a| !a.ip().is_loopback()) {
        return Err(ClusterError::Insecure(addr));
    }
    crate::install_crypto_provider();
    std::fs::create_dir_all(data_dir).map_err(|source| ClusterError::Io {
        what: "creating",
        path: data_dir.to_path_buf(),
        source,
    })?;
    let store_path = data_dir.join("store.redb");
    let store = Store::open_with_retention(&store_path, watch_history.max(1))
        .map_err(|source| ClusterError::Store { path: store_path.clone(), source })?;
    bootstrap(&store)?;
    let tokens_path = data_dir.join("tokens.json");
    let tokens = crate::auth::Registry::load_or_create(&tokens_path).map_err(|source| ClusterError::Io {
        what: "writing",
        path: tokens_path,
        source,
    })?;
    let pki = crate::tls::ClusterPki::load_or_create(&data_dir.join("pki"), &[listen.ip()])?;
    let tls_config = pki.server_config()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ClusterError::Listen { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| ClusterError::Listen { addr: listen, source })?;
    let ready = Arc::new(AtomicBool::new(false));
    let state = ApiState {
        store,
        tokens: tokens.clone(),
        http: reqwest::Client::new(),
        ready: ready.clone(),
        watch_limits: Default::default(),
        services: Arc::new(apiserver::services::ServiceWrites::new(service_networks, pod_network.cidr())),
    };
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    if let Some(addr) = insecure_http {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ClusterError::Listen { addr, source })?;
        let app = apiserver::insecure_router(state.clone());
        let stopped = stop.clone();
        tracing::warn!(%addr, "serving the API over plain HTTP without authentication (--insecure-http)");
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped.cancelled_owned()).await;
        }));
    }
    let app = apiserver::router(state);
    let server_stop = stop.clone();
    let server = tokio::spawn(crate::tls::serve(listener, tls_config, app, server_stop));
    info!(%addr, "API server listening (HTTPS)");
    let client = Client::new(&format!("https://{addr}"), &tokens.snapshot().admin, Some(&pki.ca_pem))?;
    tasks.extend([
        tokio::spawn(crate::controllers::deployment::run(client.clone())),
        tokio::spawn(crate::controllers::replicaset::run(client.clone())),
        tokio::spawn(crate::controllers::replicaset::run_replication_controllers(client.clone())),
        tokio::spawn(crate::controllers::daemonset::run(client.clone())),
        tokio::spawn(crate::controllers::job::run(client.clone())),
        tokio::spawn(crate::controllers::cronjob::run(client.clone())),
        tokio::spawn(crate::controllers::gc::run(client.clone())),
        tokio::spawn(crate::controllers::endpoints::run(client.clone())),
        tokio::spawn(crate::controllers::namespace::run(client.clone())),
        tokio::spawn(crate::controllers::nodeipam::run(client.clone(), pod_network)),
        tokio::spawn(crate::controllers::nodelifecycle::run(client.clone())),
        tokio::spawn(crate::scheduler::run(client)),
    ]);
    Ok(ControlPlane { addr, tokens, ca_pem: pki.ca_pem, ready, stop, server, tasks })
}

/// A kubeconfig for `server` with `token`, trusting `ca_pem`, as kubectl reads it.
pub fn kubeconfig(server: &str, token: &str, ca_pem: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: wasmkube\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: wasmkube\n  context:\n    cluster: wasmkube\n    user: admin\n    namespace: default\ncurrent-context: wasmkube\nusers:\n- name: admin\n  user:\n    token: {token}\n"
    )
}

/// Name of a node by default: the host's name, lowercased into a valid object name.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = host
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if validate::check_name(&name).is_ok() { name } else { "wasmkube-node".into() }
}
