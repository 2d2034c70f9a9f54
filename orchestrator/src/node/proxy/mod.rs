//! The node proxy (kube-proxy's job, inside the agent): every Service port is served on its
//! cluster IP, and node ports on the node's address, by a listener of this process that
//! forwards to the port's ready endpoints (from the EndpointSlices). On one machine cluster IPs
//! are loopback addresses, which Linux lets any process bind without configuration. Listeners
//! are bound with SO_REUSEPORT, so two agents of one cluster on one machine both serve (the
//! kernel spreads connections between them, and both know the same endpoints).

mod balance;
mod forward;
pub mod table;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use tokio::{net::TcpSocket, sync::Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api::find_by_kind,
    client::{Client, informer},
};
use balance::Backends;
use table::PortKey;

/// One frontend being served.
struct Listener {
    key: PortKey,
    backends: Arc<Backends>,
    stop: CancellationToken,
}

/// Serve every Service of the cluster until `stop`. `node_ips` are where node ports listen.
pub async fn run(client: Client, node_ips: Vec<IpAddr>, stop: CancellationToken) {
    let (Some(service_type), Some(slice_type)) =
        (find_by_kind("v1", "Service"), find_by_kind("discovery.k8s.io/v1", "EndpointSlice"))
    else {
        warn!("Services or EndpointSlices are not served; the node proxy is off");
        return;
    };
    let changed = Arc::new(Notify::new());
    let services = informer::spawn(client.clone(), service_type, None, changed.clone());
    let slices = informer::spawn(client, slice_type, None, changed.clone());
    services.wait_synced().await;
    slices.wait_synced().await;
    let pool = forward::Pool::default();
    let mut listeners: HashMap<SocketAddr, Listener> = HashMap::new();
    // Addresses that could not be bound, with why: warned about once, retried every round.
    let mut refused: HashMap<SocketAddr, String> = HashMap::new();
    loop {
        let wanted = table::frontends(&services.list(), &slices.list(), &node_ips);
        listeners.retain(|addr, l| {
            let keep = wanted.get(addr).is_some_and(|r| r.key == l.key);
            if !keep {
                l.stop.cancel();
                info!(%addr, route = %l.key, "stopped serving");
            }
            keep
        });
        refused.retain(|addr, _| wanted.contains_key(addr));
        for (addr, route) in wanted {
            if let Some(listener) = listeners.get(&addr) {
                if *listener.backends.route() != *route {
                    listener.backends.update(route);
                }
                continue;
            }
            match bind(addr) {
                Ok(socket) => {
                    refused.remove(&addr);
                    info!(%addr, route = %route.key, http = route.http, "serving");
                    let key = route.key.clone();
                    let backends = Arc::new(Backends::new(route));
                    let token = stop.child_token();
                    tokio::spawn(forward::serve(socket, backends.clone(), pool.clone(), token.clone()));
                    listeners.insert(addr, Listener { key, backends, stop: token });
                }
                Err(e) => {
                    let why = e.to_string();
                    if refused.get(&addr) != Some(&why) {
                        warn!(%addr, route = %route.key, error = %why, "cannot listen for a Service port");
                    }
                    refused.insert(addr, why);
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = crate::controllers::wait_for_change(&changed) => {}
        }
    }
}

/// A listening socket shared with other agents of the cluster on this machine.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
