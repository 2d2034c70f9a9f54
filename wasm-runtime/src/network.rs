//! The network a container's guests may use, from its Pod spec (deny by default):
//!
//! - **bind / listen** (`wasi:sockets`, command components only): only on a declared
//!   `containerPort` (TCP or UDP, as declared), on the pod's IP or the unspecified address.
//!   The ephemeral port of an implicit bind (before a connect or a send) is always allowed.
//! - **connect / send** (TCP, UDP): only to the cluster's networks and to the networks and
//!   hosts of the pod's egress list (the `wasmkube.dev/egress` annotation, resolved by the agent).
//! - **outgoing `wasi:http`** requests, which do not go through `wasi:sockets`: only to a host
//!   on the egress list, or to an IP address in an allowed network.
//! - **name lookups** (`wasi:sockets/ip-name-lookup`, see `name_lookup`): cluster names always
//!   (from the agent's directory, no network); other names only when the egress list names a
//!   host, and then any name (lookups are not filtered by name); a guest still cannot connect
//!   anywhere it was not allowed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use wasmtime_wasi::sockets::SocketAddrUse;

/// Transport of a declared container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (the Kubernetes default).
    Tcp,
    /// UDP.
    Udp,
}

/// What a container may do on the network. The default denies everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// The pod's own address; binds may use it or the unspecified address.
    pub pod_ip: Option<IpAddr>,
    /// Declared `containerPorts`: the only ports a guest may bind or listen on.
    pub ports: Vec<(Protocol, u16)>,
    /// Networks a guest may connect or send to: the cluster's, plus egress CIDRs and the
    /// addresses egress host names resolved to.
    pub allowed_networks: Vec<IpNet>,
    /// Host names outgoing HTTP may address (lowercase; `*.example.com` matches subdomains).
    pub egress_hosts: Vec<String>,
}

impl NetworkPolicy {
    /// Whether `addr` may be used the way `usage` says.
    pub fn allows_socket(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::TcpListen => self.may_bind(addr, Protocol::Tcp),
            SocketAddrUse::UdpBind => self.may_bind(addr, Protocol::Udp),
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => self.may_reach(addr.ip()),
            // Inbound traffic to a socket the guest was allowed to open.
            SocketAddrUse::TcpAccept | SocketAddrUse::UdpReceive => true,
        }
    }

    fn may_bind(&self, addr: SocketAddr, protocol: Protocol) -> bool {
        let own_address = addr.ip().is_unspecified() || Some(addr.ip()) == self.pod_ip;
        // Port 0 on the unspecified address is the implicit bind before a connect/send.
        let implicit = addr.port() == 0 && addr.ip().is_unspecified();
        own_address && (implicit || self.ports.contains(&(protocol, addr.port())))
    }

    /// Whether a guest may connect or send to `ip`.
    pub fn may_reach(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_networks.iter().any(|net| net.contains(&ip))
    }

    /// Whether an outgoing HTTP request may go to `host` (a name or an IP literal, without port).
    pub fn allows_http_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.may_reach(ip);
        }
        let host = host.trim_end_matches('.');
        self.egress_hosts.iter().any(|allowed| match allowed.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len()
                    && host.ends_with(suffix)
                    && host[..host.len() - suffix.len()].ends_with('.')
            }
            None => allowed == host,
        })
    }

    /// Whether the guest gets `wasi:sockets/ip-name-lookup` at all.
    pub fn allows_name_lookup(&self) -> bool {
        !self.egress_hosts.is_empty()
    }

    /// Whether any socket use can succeed (otherwise TCP and UDP stay switched off).
    pub(crate) fn allows_sockets(&self) -> bool {
        !self.ports.is_empty() || !self.allowed_networks.is_empty()
    }
}

/// The check handed to `WasiCtxBuilder::socket_addr_check`; refusals are logged for the user.
pub(crate) fn socket_check(
    policy: Arc<NetworkPolicy>,
    denied: crate::host::DeniedLog,
) -> impl Fn(SocketAddr, SocketAddrUse) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    move |addr, usage| {
        let allowed = policy.allows_socket(addr, usage);
        if !allowed {
            denied.note(&format!("{} {addr}", usage_word(usage)));
        }
        Box::pin(std::future::ready(allowed))
    }
}

fn usage_word(usage: SocketAddrUse) -> &'static str {
    match usage {
        SocketAddrUse::TcpBind => "bind tcp",
        SocketAddrUse::TcpListen => "listen tcp",
        SocketAddrUse::TcpAccept => "accept tcp",
        SocketAddrUse::TcpConnect => "connect tcp",
        SocketAddrUse::UdpBind => "bind udp",
        SocketAddrUse::UdpSend => "send udp",
        SocketAddrUse::UdpReceive => "receive udp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> NetworkPolicy {
        NetworkPolicy {
            pod_ip: Some("127.1.0.5".parse().unwrap()),
            ports: vec![(Protocol::Tcp, 8080), (Protocol::Udp, 5353)],
            allowed_networks: vec!["127.1.0.0/16".parse().unwrap(), "10.9.0.7/32".parse().unwrap()],
            egress_hosts: vec!["api.example.com".into(), "*.svc.example".into()],
        }
    }

    #[test]
    fn binds_only_declared_ports_on_own_addresses() {
        let p = policy();
        assert!(p.allows_socket("127.1.0.5:8080".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(p.allows_socket("0.0.0.0:8080".parse().unwrap(), SocketAddrUse::TcpListen));
        assert!(!p.allows_socket("127.1.0.5:9090".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(!p.allows_socket("127.0.0.1:8080".parse().unwrap(), SocketAddrUse::TcpBind));
        // Declared for UDP only.
        assert!(!p.allows_socket("0.0.0.0:5353".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(p.allows_socket("0.0.0.0:5353".parse().unwrap(), SocketAddrUse::UdpBind));
        // The implicit bind of a connect.
        assert!(p.allows_socket("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind));
        assert!(NetworkPolicy::default().allows_socket("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind));
    }

    #[test]
    fn connects_only_to_allowed_networks() {
        let p = policy();
        assert!(p.allows_socket("127.1.3.4:80".parse().unwrap(), SocketAddrUse::TcpConnect));
        assert!(p.allows_socket("[::ffff:10.9.0.7]:443".parse().unwrap(), SocketAddrUse::TcpConnect));
        assert!(!p.allows_socket("10.9.0.8:443".parse().unwrap(), SocketAddrUse::TcpConnect));
        assert!(!p.allows_socket("1.1.1.1:53".parse().unwrap(), SocketAddrUse::UdpSend));
        assert!(
            !NetworkPolicy::default()
                .allows_socket("127.0.0.1:80".parse().unwrap(), SocketAddrUse::TcpConnect)
        );
    }

    #[test]
    fn http_hosts_by_name_or_address() {
        let p = policy();
        assert!(p.allows_http_host("api.example.com"));
        assert!(p.allows_http_host("API.Example.com."));
        assert!(p.allows_http_host("a.b.svc.example"));
        assert!(!p.allows_http_host("svc.example"));
        assert!(!p.allows_http_host("evilsvc.example"));
        assert!(!p.allows_http_host("example.com"));
        assert!(p.allows_http_host("127.1.9.9"));
        assert!(!p.allows_http_host("[::1]"));
        assert!(p.allows_name_lookup());
        assert!(!NetworkPolicy::default().allows_name_lookup());
    }
}
