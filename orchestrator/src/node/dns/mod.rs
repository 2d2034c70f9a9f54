//! Cluster DNS (CoreDNS's job, inside the agent): `<svc>.<ns>.svc.cluster.local` and the other
//! Kubernetes DNS names, answered by a hickory DNS server on the cluster DNS address (the
//! service network's tenth) port 53, UDP and TCP, from a [`Directory`] rebuilt whenever
//! Services or EndpointSlices change. Other names go to the node's own nameservers.
//!
//! Linux containers reach the server through the resolv.conf kubelet would write
//! ([`resolv_conf`]); Wasm guests skip the network: their outgoing `wasi:http` requests are
//! resolved in the same directory ([`PodNames`]). The sockets are bound with SO_REUSEPORT, so
//! two agents of one cluster on one machine both serve the address (they hold the same names).

mod directory;
mod forward;
pub mod resolv_conf;
mod server;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use hickory_server::Server;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

pub use directory::{CLUSTER_DOMAIN, Directory, Entry, SharedDirectory};
pub use forward::Upstream;

use super::service_view::ServiceView;
use crate::api::meta;

/// How long a TCP client may stay idle before the server closes its connection.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Where the node's own resolver configuration is.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The cluster DNS of one agent.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The cluster DNS address (`ServiceNetworks::dns_ip`), port 53.
    pub listen: SocketAddr,
    /// The cluster domain.
    pub domain: String,
    /// The node's resolv.conf: its nameservers are the upstream, its search domains are
    /// appended to pods'.
    pub host_resolv_conf: PathBuf,
}

impl DnsConfig {
    /// The default setup for a cluster DNS address.
    pub fn new(dns_ip: IpAddr) -> Self {
        Self {
            listen: SocketAddr::new(dns_ip, 53),
            domain: CLUSTER_DOMAIN.to_string(),
            host_resolv_conf: HOST_RESOLV_CONF.into(),
        }
    }

    /// The node's resolv.conf, read now (missing: empty).
    pub fn host(&self) -> resolv_conf::ResolvConf {
        resolv_conf::parse(&std::fs::read_to_string(&self.host_resolv_conf).unwrap_or_default())
    }

    /// The resolv.conf a pod's Linux containers get.
    pub fn pod_resolv_conf(&self, pod: &Value) -> Result<String, String> {
        let host = self.host();
        let dns = resolv_conf::ClusterDns { server: self.listen.ip(), domain: &self.domain, host: &host };
        Ok(resolv_conf::for_pod(pod, &dns)?.render())
    }
}

/// Keep the directory current and serve it until `stop`. A server that cannot bind (not
/// root, or the address is not local) is a warning: Wasm pods still resolve names.
pub async fn run(
    mut view: ServiceView,
    config: DnsConfig,
    directory: SharedDirectory,
    stop: CancellationToken,
) {
    let span = info_span!("dns", listen = %config.listen);
    async move {
        let upstream = Upstream::from_resolv_conf(
            &std::fs::read_to_string(&config.host_resolv_conf).unwrap_or_default(),
            config.listen.ip(),
        );
        let mut server = match serve(&config, directory.clone(), upstream).await {
            Ok(server) => Some(server),
            Err(e) => {
                warn!(error = %e, "cannot serve cluster DNS; Wasm pods still resolve cluster names");
                None
            }
        };
        view.wait_synced().await;
        loop {
            directory.replace(Directory::build(&config.domain, &view.services.list(), &view.slices.list()));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = view.changed() => {}
            }
        }
        if let Some(server) = server.as_mut()
            && let Err(e) = server.shutdown_gracefully().await
        {
            warn!(error = %e, "stopping the DNS server");
        }
    }
    .instrument(span)
    .await
}

/// Bind the UDP and TCP sockets and start hickory's server on them.
pub async fn serve(
    config: &DnsConfig,
    directory: SharedDirectory,
    upstream: Upstream,
) -> std::io::Result<Server<server::Handler>> {
    let udp = bind_udp(config.listen)?;
    let tcp = super::proxy::bind_shared(config.listen)?;
    info!(upstream = ?upstream.servers(), "serving cluster DNS");
    let mut server = Server::new(server::Handler { directory, upstream });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, 64);
    Ok(server)
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// How one pod's Wasm guests resolve names: the directory, through the pod's search list.
#[derive(Debug)]
pub struct PodNames {
    directory: SharedDirectory,
    namespace: String,
}

impl PodNames {
    pub fn new(directory: SharedDirectory, pod: &Value) -> Self {
        Self { directory, namespace: meta::namespace(pod).to_string() }
    }
}

impl wasm_runtime::NameResolver for PodNames {
    fn resolve(&self, host: &str) -> Option<wasm_runtime::ClusterName> {
        Some(match self.directory.current().resolve(&self.namespace, host)? {
            Entry::Addresses(ips) => wasm_runtime::ClusterName::Addresses(ips),
            Entry::Alias(target) => wasm_runtime::ClusterName::Alias(target),
        })
    }
}

#[cfg(test)]
mod tests;
