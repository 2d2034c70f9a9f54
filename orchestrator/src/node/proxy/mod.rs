//! The node proxy (kube-proxy's job, inside the agent): every Service port is served on its
//! cluster IP, and node ports on the node's address, by a listener of this process that
//! forwards to the port's ready endpoints (from the EndpointSlices). On one machine cluster IPs
//! are loopback addresses, which Linux lets any process bind without configuration. Listeners
//! are bound with SO_REUSEPORT, so two agents of one cluster on one machine both serve (the
//! kernel spreads connections between them, and both know the same endpoints). Ingresses of
//! our class are served on the node's HTTP and HTTPS ports (`ingress`).

mod balance;
mod forward;
mod ingress;
pub mod ingress_rules;
pub mod table;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use tokio::{net::TcpSocket, sync::Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::service_view::ServiceView;
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

/// Where the proxy serves what is not a cluster IP, and the node's Wasm engine (requests for
/// its HTTP containers skip the network).
#[derive(Clone)]
pub struct ProxyConfig {
    pub engine: Option<wasm_runtime::WasmEngine>,
    /// The node's addresses: node ports and Ingress listen there.
    pub node_ips: Vec<IpAddr>,
    /// Ingress HTTP and HTTPS ports (None: not served).
    pub ingress_http: Option<u16>,
    pub ingress_https: Option<u16>,
}

/// Serve every Service and Ingress of the cluster until `stop`.
pub async fn run(client: Client, mut view: ServiceView, config: ProxyConfig, stop: CancellationToken) {
    let kinds = (
        find_by_kind("networking.k8s.io/v1", "Ingress"),
        find_by_kind("networking.k8s.io/v1", "IngressClass"),
    );
    let (Some(ingress_type), Some(class_type)) = kinds else {
        warn!("Ingresses are not served; the node proxy is off");
        return;
    };
    let changed = Arc::new(Notify::new());
    let ingresses = informer::spawn(client.clone(), ingress_type, None, changed.clone());
    let classes = informer::spawn(client.clone(), class_type, None, changed.clone());
    view.wait_synced().await;
    for cache in [&ingresses, &classes] {
        cache.wait_synced().await;
    }
    let pool = match &config.engine {
        Some(engine) => forward::Pool::with_local(engine.clone()),
        None => forward::Pool::default(),
    };
    let ingress_state = ingress::IngressState::default();
    let mut ingress_listeners = IngressListeners::new(&config);
    let mut listeners: HashMap<SocketAddr, Listener> = HashMap::new();
    // Addresses that could not be bound, with why: warned about once, retried every round.
    let mut refused: HashMap<SocketAddr, String> = HashMap::new();
    loop {
        let (service_list, slice_list) = (view.services.list(), view.slices.list());
        let index = table::SliceIndex::new(&slice_list);
        let wanted = table::frontends(&service_list, &index, &config.node_ips);
        serve_frontends(wanted, &mut listeners, &mut refused, &pool, &stop);
        let table = ingress_rules::IngressTable::build(&ours(&ingresses.list(), &classes.list()));
        ingress_state.certificates.refresh(&client, &table.tls).await;
        let routes = ingress::Routes::build(table, &service_list, &index, &ingress_state.routes());
        ingress_state.set_routes(routes);
        ingress_listeners.bind(&ingress_state, &pool, &stop);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = view.changed() => {}
            _ = crate::controllers::wait_for_change(&changed) => {}
        }
    }
}

/// Start, update and stop frontend listeners to match `wanted`.
fn serve_frontends(
    wanted: table::Frontends,
    listeners: &mut HashMap<SocketAddr, Listener>,
    refused: &mut HashMap<SocketAddr, String>,
    pool: &forward::Pool,
    stop: &CancellationToken,
) {
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
        match bind_shared(addr) {
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
                    warn!(
                        %addr, route = %route.key, error = %why,
                        "cannot listen for a Service port; is another process using it, or another cluster \
                         on this machine with the same --service-network or --node-ip? retrying on the next change"
                    );
                }
                refused.insert(addr, why);
            }
        }
    }
}

/// The Ingresses of our class, as the status controller decides them.
fn ours(
    ingresses: &[Arc<serde_json::Value>],
    classes: &[Arc<serde_json::Value>],
) -> Vec<Arc<serde_json::Value>> {
    let controller = crate::controllers::endpoints::INGRESS_CONTROLLER;
    let classes = || classes.iter().map(|c| &**c);
    ingresses
        .iter()
        .filter(|i| crate::api::networking::ingress_is_for(i, classes(), controller))
        .cloned()
        .collect()
}

/// The node's Ingress listeners, bound once (retried each round until they are).
struct IngressListeners {
    pending: Vec<(SocketAddr, bool)>,
}

impl IngressListeners {
    fn new(config: &ProxyConfig) -> Self {
        let mut pending = Vec::new();
        for ip in &config.node_ips {
            pending.extend(config.ingress_http.map(|p| (SocketAddr::new(*ip, p), false)));
            pending.extend(config.ingress_https.map(|p| (SocketAddr::new(*ip, p), true)));
        }
        Self { pending }
    }

    fn bind(&mut self, state: &ingress::IngressState, pool: &forward::Pool, stop: &CancellationToken) {
        self.pending.retain(|(addr, tls)| match bind_shared(*addr) {
            Ok(socket) => {
                let (state, pool, stop) = (state.clone(), pool.clone(), stop.clone());
                info!(%addr, tls, "serving Ingress");
                if *tls {
                    tokio::spawn(ingress::serve_https(socket, state, pool, stop));
                } else {
                    tokio::spawn(ingress::serve_http(socket, state, pool, stop));
                }
                false
            }
            Err(e) => {
                warn!(
                    %addr, error = %e,
                    "cannot listen for Ingress; free the port or pick another with --ingress-http-port / \
                     --ingress-https-port (0 turns it off); retrying on the next change"
                );
                true
            }
        });
    }
}

/// A listening socket shared with other agents of the cluster on this machine (SO_REUSEPORT).
pub(crate) fn bind_shared(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
