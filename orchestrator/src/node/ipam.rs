//! Pod IPs for this node: each pod gets its own address from the node's podCIDR (an IPv4 /16
//! inside 127.0.0.0/8 on a single machine), so two pods may both listen on port 8080.

use std::{
    collections::HashSet,
    net::Ipv4Addr,
    sync::{Arc, Mutex},
};

/// The node's pool of pod addresses.
#[derive(Clone)]
pub struct PodIps {
    base: u32,
    size: u32,
    used: Arc<Mutex<HashSet<Ipv4Addr>>>,
}

impl PodIps {
    /// A pool over `cidr` (e.g. `127.64.0.0/16`).
    pub fn new(cidr: &str) -> Result<Self, String> {
        let (base, bits) = crate::api::cidr::parse(cidr, 8..=30)?;
        Ok(Self { base, size: 1 << (32 - bits), used: Arc::new(Mutex::new(HashSet::new())) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Ipv4Addr>> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take `preferred` if it is in the pool and free (a restarted agent keeps pod IPs),
    /// else the lowest free address. Skips .0 and .1 of the range.
    pub fn allocate(&self, preferred: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        let mut used = self.lock();
        if let Some(p) = preferred.filter(|p| self.contains(*p) && u32::from(*p) - self.base >= 2) {
            if used.insert(p) {
                return Some(p);
            }
        }
        (2..self.size - 1).map(|i| Ipv4Addr::from(self.base + i)).find(|ip| used.insert(*ip))
    }

    /// Return an address to the pool.
    pub fn release(&self, ip: Ipv4Addr) {
        self.lock().remove(&ip);
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        v >= self.base && v < self.base + self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_unique_addresses_and_honours_preference() {
        let pool = PodIps::new("127.64.0.0/16").expect("pool");
        let a = pool.allocate(None).expect("a");
        let b = pool.allocate(None).expect("b");
        assert_eq!((a, b), (Ipv4Addr::new(127, 64, 0, 2), Ipv4Addr::new(127, 64, 0, 3)));
        assert_eq!(pool.allocate(Some(Ipv4Addr::new(127, 64, 9, 9))), Some(Ipv4Addr::new(127, 64, 9, 9)));
        assert_eq!(pool.allocate(Some(a)), Some(Ipv4Addr::new(127, 64, 0, 4)), "a is taken");
        assert_eq!(
            pool.allocate(Some(Ipv4Addr::new(10, 0, 0, 1))),
            Some(Ipv4Addr::new(127, 64, 0, 5)),
            "outside the pool"
        );
        pool.release(a);
        assert_eq!(pool.allocate(None), Some(a));
        assert!(PodIps::new("nonsense").is_err());
    }
}
