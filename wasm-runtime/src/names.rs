//! Cluster names for the sandbox: the agent hands a container a [`NameResolver`] (its
//! in-memory DNS directory, with the pod's search list), and outgoing `wasi:http` requests to
//! a cluster name go straight to the address it gives, with no DNS round trip. The request
//! keeps the authority and `Host` header the guest wrote; only the connection goes to the
//! resolved address. Cluster addresses are inside the cluster networks, which the egress
//! policy always allows.
//!
//! `wasi:sockets/ip-name-lookup` answers cluster names from the same resolver (see
//! `name_lookup`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::http::uri::{Authority, Scheme, Uri};

/// What a cluster name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterName {
    /// The name's addresses; empty: a name of the cluster domain that does not exist.
    Addresses(Vec<IpAddr>),
    /// An alias (a CNAME: an ExternalName Service) to a host outside the cluster.
    Alias(String),
}

/// Resolves the names a pod's guests use, as the pod's DNS would, without the network.
pub trait NameResolver: Send + Sync + std::fmt::Debug + 'static {
    /// `None`: not a cluster name; the request goes out by name, as the egress list allows.
    fn resolve(&self, host: &str) -> Option<ClusterName>;
}

/// Where an outgoing request goes after cluster name resolution.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// Not a cluster name: as the guest wrote it.
    AsWritten,
    /// A cluster address (always reachable).
    Address(SocketAddr),
    /// An ExternalName's host, which the egress policy must allow.
    Alias(String),
    /// A cluster name that does not exist.
    Missing,
}

/// Spreads requests to a name with several addresses (a headless Service) over them.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Where a request to `uri` goes.
pub(crate) fn destination(resolver: Option<&dyn NameResolver>, uri: &Uri) -> Destination {
    let (Some(resolver), Some(host)) = (resolver, uri.host()) else { return Destination::AsWritten };
    let port = uri.port_u16().unwrap_or(if uri.scheme() == Some(&Scheme::HTTPS) { 443 } else { 80 });
    let resolved = match resolver.resolve(host) {
        // An ExternalName may name another cluster name: follow it once, as a DNS server would.
        Some(ClusterName::Alias(target)) => match resolver.resolve(&format!("{target}.")) {
            Some(ClusterName::Addresses(ips)) if !ips.is_empty() => Some(ClusterName::Addresses(ips)),
            _ => Some(ClusterName::Alias(target)),
        },
        other => other,
    };
    match resolved {
        None => Destination::AsWritten,
        Some(ClusterName::Alias(target)) => Destination::Alias(target),
        Some(ClusterName::Addresses(ips)) if ips.is_empty() => Destination::Missing,
        Some(ClusterName::Addresses(ips)) => {
            let ip = ips[NEXT.fetch_add(1, Ordering::Relaxed) % ips.len()];
            Destination::Address(SocketAddr::new(ip, port))
        }
    }
}

/// `uri` with its authority replaced by `authority` (`host[:port]`, `[v6]:port`).
pub(crate) fn with_authority(uri: &Uri, authority: &str) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(authority.parse::<Authority>().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl NameResolver for Fixed {
        fn resolve(&self, host: &str) -> Option<ClusterName> {
            match host {
                "web" => Some(ClusterName::Addresses(vec!["127.16.0.20".parse().unwrap()])),
                "ext" => Some(ClusterName::Alias("example.com".into())),
                "inner" => Some(ClusterName::Alias("web".into())),
                "web." => Some(ClusterName::Addresses(vec!["127.16.0.20".parse().unwrap()])),
                "gone.default.svc.cluster.local" => Some(ClusterName::Addresses(vec![])),
                _ => None,
            }
        }
    }

    #[test]
    fn cluster_names_go_to_their_address_on_the_written_port() {
        let uri: Uri = "http://web:8080/x?y=1".parse().unwrap();
        assert_eq!(
            destination(Some(&Fixed), &uri),
            Destination::Address("127.16.0.20:8080".parse().unwrap())
        );
        let uri: Uri = "http://web/".parse().unwrap();
        assert_eq!(destination(Some(&Fixed), &uri), Destination::Address("127.16.0.20:80".parse().unwrap()));
        let uri: Uri = "https://web/".parse().unwrap();
        assert_eq!(destination(Some(&Fixed), &uri), Destination::Address("127.16.0.20:443".parse().unwrap()));
        let rewritten = with_authority(&"http://web/x?y=1".parse().unwrap(), "127.16.0.20:80").unwrap();
        assert_eq!(rewritten.to_string(), "http://127.16.0.20:80/x?y=1");
    }

    #[test]
    fn aliases_missing_and_other_names() {
        let at = |s: &str| destination(Some(&Fixed), &s.parse().unwrap());
        assert_eq!(at("http://ext/"), Destination::Alias("example.com".into()));
        assert_eq!(at("http://gone.default.svc.cluster.local/"), Destination::Missing);
        assert_eq!(at("http://inner/"), Destination::Address("127.16.0.20:80".parse().unwrap()));
        assert_eq!(at("http://example.org/"), Destination::AsWritten);
        assert_eq!(destination(None, &"http://web/".parse().unwrap()), Destination::AsWritten);
    }
}
