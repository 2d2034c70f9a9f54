//! Picking an endpoint for each new connection or request of one frontend: round robin over the
//! candidates, or the client's remembered endpoint under `sessionAffinity: ClientIP`. The route
//! is swapped in place when the Service or its endpoints change, so connections already open
//! pick from the new set on their next request.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use super::table::Route;

/// The live state of one frontend.
pub struct Backends {
    route: RwLock<Arc<Route>>,
    next: AtomicUsize,
    /// Client address → (endpoint, last used), for `sessionAffinity: ClientIP`.
    sticky: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
}

impl Backends {
    pub fn new(route: Arc<Route>) -> Self {
        Self { route: RwLock::new(route), next: AtomicUsize::new(0), sticky: Mutex::new(HashMap::new()) }
    }

    /// The current route.
    pub fn route(&self) -> Arc<Route> {
        self.route.read().map(|r| r.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Swap in a changed route.
    pub fn update(&self, route: Arc<Route>) {
        match self.route.write() {
            Ok(mut r) => *r = route,
            Err(p) => *p.into_inner() = route,
        }
    }

    /// The endpoint for the next connection or request of `client`, skipping `failed` ones
    /// (endpoints that refused a connection just now); `None` when nothing is left.
    pub fn pick(&self, client: IpAddr, failed: &[SocketAddr]) -> Option<SocketAddr> {
        let route = self.route();
        let candidates: Vec<SocketAddr> =
            route.candidates().into_iter().filter(|c| !failed.contains(c)).collect();
        if candidates.is_empty() {
            return None;
        }
        let Some(timeout) = route.affinity else {
            return Some(candidates[self.next.fetch_add(1, Ordering::Relaxed) % candidates.len()]);
        };
        let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if sticky.len() > 4096 {
            sticky.retain(|_, (_, used)| now.duration_since(*used) < timeout);
        }
        let chosen = match sticky.get(&client) {
            Some((addr, used)) if now.duration_since(*used) < timeout && candidates.contains(addr) => *addr,
            _ => candidates[self.next.fetch_add(1, Ordering::Relaxed) % candidates.len()],
        };
        sticky.insert(client, (chosen, now));
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::node::proxy::table::{Endpoint, PortKey};

    fn route(affinity: Option<Duration>, ready: &[&str]) -> Arc<Route> {
        let endpoints = ready
            .iter()
            .map(|a| Endpoint { addr: a.parse().unwrap(), ready: true, serving: true, terminating: false })
            .collect();
        let key = PortKey { namespace: "default".into(), service: "web".into(), port_name: String::new() };
        Arc::new(Route { key, http: true, affinity, endpoints })
    }

    #[test]
    fn round_robin_visits_every_endpoint_and_skips_failed_ones() {
        let b = Backends::new(route(None, &["127.64.0.2:80", "127.64.0.3:80"]));
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        let picks: Vec<_> = (0..4).map(|_| b.pick(client, &[]).unwrap().to_string()).collect();
        assert_eq!(picks, ["127.64.0.2:80", "127.64.0.3:80", "127.64.0.2:80", "127.64.0.3:80"]);
        let failed = ["127.64.0.2:80".parse().unwrap()];
        assert_eq!(b.pick(client, &failed).unwrap().to_string(), "127.64.0.3:80");
        let both = [failed[0], "127.64.0.3:80".parse().unwrap()];
        assert_eq!(b.pick(client, &both), None);
    }

    #[test]
    fn client_ip_affinity_sticks_until_the_endpoint_goes() {
        let b = Backends::new(route(Some(Duration::from_secs(60)), &["127.64.0.2:80", "127.64.0.3:80"]));
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let first = b.pick(one, &[]).unwrap();
        assert!((0..5).all(|_| b.pick(one, &[]) == Some(first)));
        let other = if first.to_string() == "127.64.0.2:80" { "127.64.0.3:80" } else { "127.64.0.2:80" };
        b.update(route(Some(Duration::from_secs(60)), &[other]));
        assert_eq!(b.pick(one, &[]).unwrap().to_string(), other);
    }
}
