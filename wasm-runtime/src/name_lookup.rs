//! `wasi:sockets/ip-name-lookup` with cluster names: wasmtime-wasi 48 resolves lookups itself
//! (`tokio::net::lookup_host`, all or nothing by `allow_ip_name_lookup`) and offers no hook, so
//! this module replaces the interface's host functions in the linker (shadowing wasmtime's).
//!
//! A name the container's [`NameResolver`](crate::NameResolver) knows is answered from memory,
//! whatever the egress list says: cluster addresses are always reachable. An IP literal is
//! answered as itself. Any other name is looked up by the node's resolver only when the pod's
//! egress list names a host (as before: wasmtime cannot filter lookups by name); otherwise it
//! fails as `permanent-resolver-failure`, as wasmtime's own implementation does when lookups
//! are off. A name below the cluster domain that does not exist is `name-unresolvable`.

use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::task::JoinHandle;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime::{StoreContextMut, bail};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{DynPollable, Network, Pollable, subscribe};

use crate::host::Host;
use crate::names::ClusterName;

/// The interface as wasmtime-wasi 48 defines it (components importing any 0.2.x match).
const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

type Lookup = Result<Vec<IpAddr>, ErrorCode>;

/// The `resolve-address-stream` resource: an answer, or a lookup still under way.
pub(crate) enum ResolveAddressStream {
    Ready(std::vec::IntoIter<IpAddr>),
    Failed(ErrorCode),
    Pending(JoinHandle<Lookup>),
}

impl ResolveAddressStream {
    fn from_lookup(lookup: Lookup) -> Self {
        match lookup {
            Ok(ips) => Self::Ready(ips.into_iter()),
            Err(code) => Self::Failed(code),
        }
    }

    /// Take a finished lookup's answer, if it has finished.
    fn settle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Self::Pending(task) = self {
            let finished = match Pin::new(task).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(lookup)) => lookup,
                Poll::Ready(Err(_)) => Err(ErrorCode::Unknown),
            };
            *self = Self::from_lookup(finished);
        }
        Poll::Ready(())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.settle(cx)).await;
    }
}

/// Replace wasmtime-wasi's `ip-name-lookup` host functions in `linker` with ours.
pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(INTERFACE)?;
    instance.resource(
        "resolve-address-stream",
        ResourceType::host::<ResolveAddressStream>(),
        |mut store, rep| {
            store.data_mut().table().delete(Resource::<ResolveAddressStream>::new_own(rep))?;
            Ok(())
        },
    )?;
    instance.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, Host>, (network, name): (Resource<Network>, String)| {
            let host = store.data_mut();
            host.table().get(&network)?;
            let stream = match resolve(host, &name) {
                Ok(stream) => stream,
                Err(code) => return Ok((Err(code),)),
            };
            Ok((Ok(host.table().push(stream)?),))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, Host>, (stream,): (Resource<ResolveAddressStream>,)| {
            let stream = store.data_mut().table().get_mut(&stream)?;
            if stream.settle(&mut Context::from_waker(Waker::noop())).is_pending() {
                return Ok((Err(ErrorCode::WouldBlock),));
            }
            Ok((match stream {
                ResolveAddressStream::Ready(ips) => Ok(ips.next().map(IpAddress::from)),
                ResolveAddressStream::Failed(code) => Err(*code),
                ResolveAddressStream::Pending(_) => bail!("a settled lookup is pending"),
            },))
        },
    )?;
    instance.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: StoreContextMut<'_, Host>, (stream,): (Resource<ResolveAddressStream>,)| {
            let pollable: Resource<DynPollable> = subscribe(store.data_mut().table(), stream)?;
            Ok((pollable,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Start resolving `name` for the guest of `host`.
fn resolve(host: &Host, name: &str) -> Result<ResolveAddressStream, ErrorCode> {
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(ResolveAddressStream::Ready(vec![ip].into_iter()));
    }
    if !valid_name(name) {
        return Err(ErrorCode::InvalidArgument);
    }
    match host.names().and_then(|names| names.resolve(name)) {
        Some(ClusterName::Addresses(ips)) if ips.is_empty() => Err(ErrorCode::NameUnresolvable),
        Some(ClusterName::Addresses(ips)) => Ok(ResolveAddressStream::Ready(ips.into_iter())),
        // An ExternalName is resolved as its target, by the node, if the pod may look names up.
        Some(ClusterName::Alias(target)) => lookup_outside(host, target),
        None => lookup_outside(host, name.to_string()),
    }
}

fn lookup_outside(host: &Host, name: String) -> Result<ResolveAddressStream, ErrorCode> {
    if !host.network().allows_name_lookup() {
        return Err(ErrorCode::PermanentResolverFailure);
    }
    Ok(ResolveAddressStream::Pending(tokio::spawn(async move {
        match tokio::net::lookup_host((name.as_str(), 0)).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip().to_canonical()).collect()),
            Err(e) => {
                tracing::debug!(%name, error = %e, "name lookup failed");
                Err(ErrorCode::NameUnresolvable)
            }
        }
    })))
}

/// A DNS name we pass on: ASCII letters, digits, `-`, `_` and dots, at most 253 bytes.
/// (Internationalized names would need punycode, which wasmtime's own lookup does; ours
/// refuses them as `invalid-argument`.)
fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_lookup() {
        for ok in ["web", "web.default.svc.cluster.local.", "_http._tcp.web", "a-b.example.com"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "a..b", "a b", "bücher.example", &"x".repeat(64), &"a.".repeat(130)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
