//! The cluster's DNS names as a table, rebuilt from the cached Services and EndpointSlices
//! whenever they change (pure, no IO): the DNS server and the Wasm sandbox's name lookups read
//! it, so a query costs a hash lookup, never a scan. The names are upstream's (the Kubernetes
//! DNS specification, as CoreDNS serves it):
//!
//! - `<svc>.<ns>.svc.<domain>`: the cluster IP; for a headless Service (`clusterIP: None`) the
//!   addresses of its ready endpoints (all of them with `publishNotReadyAddresses`); for an
//!   ExternalName Service a CNAME to `spec.externalName`.
//! - `<host>.<svc>.<ns>.svc.<domain>` for each endpoint of a headless Service: `host` is the
//!   endpoint's `hostname` (a pod with `spec.hostname` and `spec.subdomain: <svc>`), else its
//!   address with dashes (`10-1-2-3`).
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for each named port.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{Arc, RwLock},
};

use serde_json::Value;

use crate::api::meta;

/// The cluster domain, as kubelet's `--cluster-domain` default.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// What a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A and AAAA records.
    Addresses(Vec<IpAddr>),
    /// A CNAME (an ExternalName Service), lowercase without the trailing dot.
    Alias(String),
}

/// One SRV target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub port: u16,
    /// A name of this directory (the Service's, or one endpoint's).
    pub target: String,
}

/// What the directory says of a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Found<'a> {
    /// A name outside the cluster domain: not ours to answer.
    Outside,
    /// No such name in the cluster domain (NXDOMAIN).
    Missing,
    /// The name exists; these are its records (both may be empty: NODATA).
    Name { entry: Option<&'a Entry>, srv: &'a [Srv] },
}

/// Every name of the cluster domain.
#[derive(Debug, Default)]
pub struct Directory {
    domain: String,
    entries: HashMap<String, Entry>,
    srv: HashMap<String, Vec<Srv>>,
    /// Names that exist only above others (`default.svc.cluster.local`): NODATA, not NXDOMAIN.
    parents: HashSet<String>,
}

/// A name in canonical form: lowercase, no trailing dot.
pub fn canonical(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Directory {
    /// The directory of `services` and their `slices` under `domain`.
    pub fn build(domain: &str, services: &[Arc<Value>], slices: &[Arc<Value>]) -> Self {
        let mut dir = Self { domain: canonical(domain), ..Self::default() };
        let mut by_service: HashMap<(&str, &str), Vec<&Value>> = HashMap::new();
        for slice in slices {
            if let Some(svc) = slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str() {
                by_service.entry((meta::namespace(slice), svc)).or_default().push(slice);
            }
        }
        for svc in services {
            let key = (meta::namespace(svc), meta::name(svc));
            dir.add_service(svc, by_service.get(&key).map(Vec::as_slice).unwrap_or_default());
        }
        let mut parents = HashSet::new();
        for name in dir.entries.keys().chain(dir.srv.keys()) {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                if parent.len() < dir.domain.len() {
                    break;
                }
                parents.insert(parent.to_string());
                rest = parent;
            }
        }
        parents.insert(dir.domain.clone());
        dir.parents = parents;
        dir
    }

    fn add_service(&mut self, svc: &Value, slices: &[&Value]) {
        let (ns, name) = (meta::namespace(svc), meta::name(svc));
        if !is_label(ns) || !is_label(name) {
            return;
        }
        let spec = &svc["spec"];
        let fqdn = format!("{name}.{ns}.svc.{}", self.domain);
        if spec["type"] == "ExternalName" {
            if let Some(target) = spec["externalName"].as_str().filter(|t| !t.is_empty()) {
                self.entries.insert(fqdn, Entry::Alias(canonical(target)));
            }
            return;
        }
        let headless = spec["clusterIP"] == "None";
        if !headless {
            let ips = cluster_ips(spec);
            if ips.is_empty() {
                return;
            }
            for port in named_ports(spec) {
                let srv = vec![Srv { port: port.number, target: fqdn.clone() }];
                self.srv.insert(format!("_{}._{}.{fqdn}", port.name, port.protocol), srv);
            }
            self.entries.insert(fqdn, Entry::Addresses(ips));
            return;
        }
        let all = spec["publishNotReadyAddresses"].as_bool().unwrap_or(false);
        let mut addresses = Vec::new();
        for slice in slices {
            for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
                // Upstream: an absent `ready` means ready.
                if !all && !endpoint["conditions"]["ready"].as_bool().unwrap_or(true) {
                    continue;
                }
                let ips: Vec<IpAddr> = endpoint["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str()?.parse().ok())
                    .collect();
                let Some(first) = ips.first() else { continue };
                let host = match endpoint["hostname"].as_str().filter(|h| is_label(h)) {
                    Some(h) => h.to_ascii_lowercase(),
                    None => first.to_string().replace(['.', ':'], "-"),
                };
                let host_name = format!("{host}.{fqdn}");
                self.add_endpoint_srv(&fqdn, &host_name, slice);
                match self.entries.get_mut(&host_name) {
                    Some(Entry::Addresses(held)) => held.extend(&ips),
                    _ => {
                        self.entries.insert(host_name, Entry::Addresses(ips.clone()));
                    }
                }
                addresses.extend(ips);
            }
        }
        addresses.sort();
        addresses.dedup();
        self.entries.insert(fqdn, Entry::Addresses(addresses));
    }

    /// SRV records of a headless Service point at each endpoint, on the slice's port.
    fn add_endpoint_srv(&mut self, fqdn: &str, host_name: &str, slice: &Value) {
        for port in slice["ports"].as_array().into_iter().flatten() {
            let Some(name) = port["name"].as_str().filter(|n| is_label(n)) else { continue };
            let Some(number) = port["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else { continue };
            let protocol = port["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
            let srv = Srv { port: number, target: host_name.to_string() };
            let records = self.srv.entry(format!("_{name}._{protocol}.{fqdn}")).or_default();
            if !records.contains(&srv) {
                records.push(srv);
            }
        }
    }

    /// The cluster domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether `name` (canonical) is the cluster domain or below it.
    pub fn in_zone(&self, name: &str) -> bool {
        name == self.domain || name.strip_suffix(self.domain.as_str()).is_some_and(|rest| rest.ends_with('.'))
    }

    /// What the directory says of `name` (canonical).
    pub fn find(&self, name: &str) -> Found<'_> {
        if !self.in_zone(name) {
            return Found::Outside;
        }
        let entry = self.entries.get(name);
        let srv = self.srv.get(name).map(Vec::as_slice).unwrap_or_default();
        if entry.is_none() && srv.is_empty() && !self.parents.contains(name) {
            return Found::Missing;
        }
        Found::Name { entry, srv }
    }

    /// The search list of a pod in `namespace`, as kubelet writes it for dnsPolicy ClusterFirst.
    pub fn search_list(&self, namespace: &str) -> [String; 3] {
        let domain = &self.domain;
        [format!("{namespace}.svc.{domain}"), format!("svc.{domain}"), domain.clone()]
    }

    /// Resolve `host` as a pod in `namespace` would with the resolv.conf kubelet writes
    /// (search list, `ndots:5`), for the Wasm sandbox. `None`: not a cluster name (nothing in
    /// the directory, and not below the cluster domain), so it goes out by name; an empty
    /// address list: a cluster name that does not exist.
    pub fn resolve(&self, namespace: &str, host: &str) -> Option<Entry> {
        let absolute = host.ends_with('.');
        let name = canonical(host);
        if name.is_empty() || name.parse::<IpAddr>().is_ok() {
            return None;
        }
        let searched = self.search_list(namespace).map(|suffix| format!("{name}.{suffix}"));
        let dots = name.matches('.').count();
        let candidates: Vec<&str> = match (absolute, dots >= 5) {
            (true, _) => vec![name.as_str()],
            (false, true) => {
                std::iter::once(name.as_str()).chain(searched.iter().map(String::as_str)).collect()
            }
            (false, false) => {
                searched.iter().map(String::as_str).chain(std::iter::once(name.as_str())).collect()
            }
        };
        for candidate in candidates {
            if let Some(entry) = self.entries.get(candidate) {
                return Some(entry.clone());
            }
        }
        self.in_zone(&name).then(|| Entry::Addresses(Vec::new()))
    }
}

/// The directory the server and the sandboxes share; replaced whole on every change.
#[derive(Debug, Clone, Default)]
pub struct SharedDirectory(Arc<RwLock<Arc<Directory>>>);

impl SharedDirectory {
    /// The directory now.
    pub fn current(&self) -> Arc<Directory> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, directory: Directory) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
    }
}

fn cluster_ips(spec: &Value) -> Vec<IpAddr> {
    let listed = spec["clusterIPs"].as_array().into_iter().flatten().filter_map(Value::as_str);
    let mut ips: Vec<IpAddr> =
        spec["clusterIP"].as_str().into_iter().chain(listed).filter_map(|ip| ip.parse().ok()).collect();
    ips.dedup();
    ips
}

struct NamedPort {
    name: String,
    protocol: String,
    number: u16,
}

fn named_ports(spec: &Value) -> impl Iterator<Item = NamedPort> + '_ {
    spec["ports"].as_array().into_iter().flatten().filter_map(|p| {
        let name = p["name"].as_str().filter(|n| is_label(n))?;
        Some(NamedPort {
            name: name.to_ascii_lowercase(),
            protocol: p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase(),
            number: p["port"].as_u64().and_then(|n| u16::try_from(n).ok())?,
        })
    })
}

/// A DNS label we can put in a name (API validation already asks for DNS-1123 labels; this
/// keeps a hand-written object from making a name with dots or spaces).
fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
