//! Services on every write: the type-dependent rules kube-apiserver applies (ports, names,
//! `type`, `externalName`, what may change), and the allocation of the cluster IP and node ports
//! from the cluster's service network. Sans-IO: the API server hands in what other Services
//! already hold ([`Used`]) and stores the result; it serializes Service writes so two creates
//! never pick the same address.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
    ops::RangeInclusive,
};

use rand::Rng;
use serde_json::{Value, json};

use crate::meta;

/// The default service network: one machine's loopback, apart from the pod network.
pub const DEFAULT_SERVICE_NETWORK: &str = "127.16.0.0/16";
/// The default NodePort range, as upstream's.
pub const DEFAULT_NODE_PORTS: &str = "30000-32767";
/// The service types Kubernetes defines.
const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

/// The cluster's service network and node port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNetworks {
    base: u32,
    bits: u32,
    /// Ports a NodePort or LoadBalancer Service may take on every node.
    pub node_ports: RangeInclusive<u16>,
}

impl ServiceNetworks {
    /// Parse `--service-network` (an IPv4 CIDR from /8 to /28) and `--node-port-range`
    /// (`LOW-HIGH`).
    pub fn parse(cidr: &str, node_ports: &str) -> Result<Self, String> {
        let (base, bits) = crate::cidr::parse(cidr, 8..=28)?;
        let bad = || format!("{node_ports:?} is not a port range like {DEFAULT_NODE_PORTS}");
        let (low, high) = node_ports.split_once('-').ok_or_else(bad)?;
        let low: u16 = low.trim().parse().map_err(|_| bad())?;
        let high: u16 = high.trim().parse().map_err(|_| bad())?;
        if low == 0 || low > high {
            return Err(bad());
        }
        Ok(Self { base, bits, node_ports: low..=high })
    }

    /// The network as `a.b.c.d/n`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.base), self.bits)
    }

    /// The first usable address: upstream gives it to the `default/kubernetes` Service.
    pub fn kubernetes_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// The tenth address: the cluster DNS server's (kube-dns's address by upstream convention).
    pub fn dns_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 10)
    }

    /// The node port range as `LOW-HIGH`.
    pub fn node_port_range(&self) -> String {
        format!("{}-{}", self.node_ports.start(), self.node_ports.end())
    }

    fn size(&self) -> u64 {
        1u64 << (32 - self.bits)
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip >= self.base && u64::from(ip - self.base) < self.size()
    }

    /// Addresses no Service may be given by allocation: the network and broadcast addresses,
    /// the `kubernetes` Service's and the DNS server's.
    fn reserved(&self, ip: Ipv4Addr) -> bool {
        let offset = u64::from(u32::from(ip).wrapping_sub(self.base));
        offset == 0 || offset == self.size() - 1 || ip == self.kubernetes_ip() || ip == self.dns_ip()
    }
}

/// What the other Services of the cluster hold.
#[derive(Debug, Default, Clone)]
pub struct Used {
    ips: HashSet<Ipv4Addr>,
    node_ports: HashSet<u16>,
}

impl Used {
    /// The addresses and node ports held by `services`, leaving out the one at `except`
    /// (`namespace`, `name`: the Service being written).
    pub fn from_services<'a>(services: impl IntoIterator<Item = &'a Value>, except: (&str, &str)) -> Self {
        let mut used = Self::default();
        for svc in services {
            if (meta::namespace(svc), meta::name(svc)) == except {
                continue;
            }
            used.ips.extend(cluster_ips(svc));
            used.node_ports.extend(node_ports(svc));
        }
        used
    }
}

fn cluster_ips(svc: &Value) -> impl Iterator<Item = Ipv4Addr> + '_ {
    let spec = &svc["spec"];
    let listed = spec["clusterIPs"].as_array().into_iter().flatten().filter_map(Value::as_str);
    spec["clusterIP"].as_str().into_iter().chain(listed).filter_map(|s| s.parse().ok())
}

fn node_ports(svc: &Value) -> impl Iterator<Item = u16> + '_ {
    let ports = svc["spec"]["ports"].as_array().into_iter().flatten();
    ports.filter_map(|p| p["nodePort"].as_u64()).filter_map(|p| u16::try_from(p).ok())
}

/// Whether `svc`'s type gets node ports.
pub fn has_node_ports(svc: &Value) -> bool {
    matches!(svc["spec"]["type"].as_str(), Some("NodePort" | "LoadBalancer"))
}

/// Check a Service being created (`old` None) or updated, and fill in what the server owns:
/// `clusterIP`/`clusterIPs` (kept from `old`, taken as asked, or allocated), node ports, and
/// the IP family fields. The message names the field, as kube-apiserver's do.
pub fn admit(
    old: Option<&Value>,
    svc: &mut Value,
    used: &Used,
    networks: &ServiceNetworks,
    namespace_name: (&str, &str),
) -> Result<(), String> {
    if !svc["spec"].is_object() {
        return Err("spec: Required value".into());
    }
    let kind = svc["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
    if !TYPES.contains(&kind.as_str()) {
        return Err(format!(
            "spec.type: Unsupported value: {kind:?}: supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        ));
    }
    let old_spec = old.map(|o| &o["spec"]);
    drop_type_dependent_fields(old_spec, &mut svc["spec"], &kind);
    check_ports(&svc["spec"], &kind)?;
    if kind == "ExternalName" {
        return admit_external_name(&mut svc["spec"]);
    }
    admit_cluster_ip(old_spec, &mut svc["spec"], used, networks, namespace_name)?;
    admit_node_ports(old_spec, &mut svc["spec"], used, networks, &kind)?;
    let spec = &mut svc["spec"];
    spec["internalTrafficPolicy"] = spec["internalTrafficPolicy"].take_or(json!("Cluster"));
    if kind != "ClusterIP" {
        spec["externalTrafficPolicy"] = spec["externalTrafficPolicy"].take_or(json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        spec["allocateLoadBalancerNodePorts"] = spec["allocateLoadBalancerNodePorts"].take_or(json!(true));
    }
    if spec["sessionAffinity"] == "ClientIP" {
        let timeout = &mut spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
        *timeout = timeout.take_or(json!(10800));
        match timeout.as_i64() {
            Some(1..=86400) => {}
            _ => {
                return Err(format!(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {timeout}: must be greater than 0 and less than 86400"
                ));
            }
        }
    } else if !matches!(spec["sessionAffinity"].as_str(), None | Some("None")) {
        return Err(format!(
            "spec.sessionAffinity: Unsupported value: {}: supported values: \"ClientIP\", \"None\"",
            spec["sessionAffinity"]
        ));
    }
    Ok(())
}

trait TakeOr {
    fn take_or(&mut self, default: Value) -> Value;
}

impl TakeOr for Value {
    /// This value, or `default` when it is null.
    fn take_or(&mut self, default: Value) -> Value {
        if self.is_null() { default } else { self.take() }
    }
}

/// Upstream's `dropTypeDependentFields`: a Service changing type sheds what only its old type
/// had, when the user left those fields as they were (client-side apply keeps them in the
/// patch, and a ClusterIP Service with node ports would be refused).
fn drop_type_dependent_fields(old: Option<&Value>, spec: &mut Value, kind: &str) {
    let Some(old) = old else { return };
    if old["type"] == kind {
        return;
    }
    if !matches!(kind, "NodePort" | "LoadBalancer") {
        let old_ports: HashMap<(String, i64), &Value> = ports_by_key(old);
        if let Some(ports) = spec["ports"].as_array_mut() {
            for port in ports {
                let key = port_key(port);
                if old_ports.get(&key).is_some_and(|o| o["nodePort"] == port["nodePort"]) {
                    if let Some(p) = port.as_object_mut() {
                        p.remove("nodePort");
                    }
                }
            }
        }
        if let Some(s) = spec.as_object_mut() {
            s.remove("externalTrafficPolicy");
            s.remove("healthCheckNodePort");
            if kind != "LoadBalancer" {
                s.remove("allocateLoadBalancerNodePorts");
            }
        }
    }
    if kind == "ExternalName" && old["clusterIP"] == spec["clusterIP"] {
        if let Some(s) = spec.as_object_mut() {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"]
            {
                s.remove(field);
            }
        }
    }
}

fn port_key(port: &Value) -> (String, i64) {
    (port["name"].as_str().unwrap_or("").to_string(), port["port"].as_i64().unwrap_or(0))
}

fn ports_by_key(spec: &Value) -> HashMap<(String, i64), &Value> {
    spec["ports"].as_array().into_iter().flatten().map(|p| (port_key(p), p)).collect()
}

/// Port numbers, names and protocols.
fn check_ports(spec: &Value, kind: &str) -> Result<(), String> {
    let ports = spec["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
    let headless = spec["clusterIP"] == "None";
    if ports.is_empty() && kind != "ExternalName" && !headless {
        return Err("spec.ports: Required value".into());
    }
    let mut seen_names = HashSet::new();
    let mut seen_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let number = port["port"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&number) {
            return Err(format!(
                "spec.ports[{i}].port: Invalid value: {number}: must be between 1 and 65535, inclusive"
            ));
        }
        let name = port["name"].as_str().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            return Err(format!("spec.ports[{i}].name: Required value"));
        }
        if !name.is_empty() && !seen_names.insert(name) {
            return Err(format!("spec.ports[{i}].name: Duplicate value: {name:?}"));
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if !matches!(protocol, "TCP" | "UDP" | "SCTP") {
            return Err(format!(
                "spec.ports[{i}].protocol: Unsupported value: {protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
            ));
        }
        if !seen_ports.insert((number, protocol)) {
            return Err(format!(
                "spec.ports[{i}]: Duplicate value: {{\"port\": {number}, \"protocol\": {protocol:?}}}"
            ));
        }
        match &port["targetPort"] {
            Value::Number(n) if !(1..=65535).contains(&n.as_i64().unwrap_or(0)) => {
                return Err(format!(
                    "spec.ports[{i}].targetPort: Invalid value: {n}: must be between 1 and 65535, inclusive"
                ));
            }
            Value::String(s) => {
                if let Some(problem) = crate::networking::port_name_problem(s) {
                    return Err(format!("spec.ports[{i}].targetPort: Invalid value: {s:?}: {problem}"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn admit_external_name(spec: &mut Value) -> Result<(), String> {
    let name = spec["externalName"].as_str().unwrap_or("").trim_end_matches('.');
    if name.is_empty() {
        return Err("spec.externalName: Required value".into());
    }
    if crate::validate::check_name(name).is_err() {
        return Err(format!(
            "spec.externalName: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
    }
    if spec["clusterIP"].as_str().is_some_and(|ip| !ip.is_empty()) {
        return Err(format!(
            "spec.clusterIP: Invalid value: {}: may not be set for ExternalName services",
            spec["clusterIP"]
        ));
    }
    if let Some((i, _)) = ports_with_node_ports(spec).next() {
        return Err(format!(
            "spec.ports[{i}].nodePort: Forbidden: may not be used when `type` is 'ExternalName'"
        ));
    }
    if let Some(s) = spec.as_object_mut() {
        s.remove("clusterIP");
        s.remove("clusterIPs");
    }
    Ok(())
}

fn ports_with_node_ports(spec: &Value) -> impl Iterator<Item = (usize, &Value)> {
    let ports = spec["ports"].as_array().into_iter().flatten().enumerate();
    ports.filter(|(_, p)| p["nodePort"].as_i64().is_some_and(|n| n != 0))
}

fn admit_cluster_ip(
    old: Option<&Value>,
    spec: &mut Value,
    used: &Used,
    networks: &ServiceNetworks,
    (namespace, name): (&str, &str),
) -> Result<(), String> {
    let asked = spec["clusterIP"].as_str().filter(|s| !s.is_empty()).map(str::to_string).or_else(|| {
        spec["clusterIPs"].as_array().and_then(|a| a.first()).and_then(Value::as_str).map(str::to_string)
    });
    let kept = old
        .filter(|o| o["type"] != "ExternalName")
        .and_then(|o| o["clusterIP"].as_str())
        .filter(|ip| !ip.is_empty())
        .map(str::to_string);
    let ip = match (asked, kept) {
        (Some(asked), Some(kept)) if asked != kept => {
            return Err(format!("spec.clusterIPs[0]: Invalid value: [{asked:?}]: may not change once set"));
        }
        (_, Some(kept)) => kept,
        (Some(asked), None) if asked == "None" => asked,
        (Some(asked), None) => {
            let ip: Ipv4Addr = asked.parse().map_err(|_| {
                format!("spec.clusterIPs[0]: Invalid value: {asked:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
            })?;
            let failed = |why: String| {
                format!("spec.clusterIPs: Invalid value: [{asked:?}]: failed to allocate IP {asked}: {why}")
            };
            if !networks.contains(ip) {
                return Err(failed(format!(
                    "the provided IP ({asked}) is not in the valid range. The range of valid IPs is {}",
                    networks.cidr()
                )));
            }
            let kubernetes_own =
                (namespace, name) == ("default", "kubernetes") && ip == networks.kubernetes_ip();
            if used.ips.contains(&ip) || (networks.reserved(ip) && !kubernetes_own) {
                return Err(failed("provided IP is already allocated".into()));
            }
            asked
        }
        (None, None) => allocate_ip(used, networks)?.to_string(),
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if ip != "None" || spec["ipFamilies"].is_null() {
        spec["ipFamilies"] = json!(["IPv4"]);
    }
    spec["ipFamilyPolicy"] = spec["ipFamilyPolicy"].take_or(json!("SingleStack"));
    Ok(())
}

/// A free address, searched from a random place so freed addresses are not reused at once.
fn allocate_ip(used: &Used, networks: &ServiceNetworks) -> Result<Ipv4Addr, String> {
    let size = networks.size();
    let start = rand::rng().random_range(0..size);
    (0..size)
        .map(|i| Ipv4Addr::from(networks.base + ((start + i) % size) as u32))
        .find(|ip| !networks.reserved(*ip) && !used.ips.contains(ip))
        .ok_or_else(|| {
            format!(
                "spec.clusterIPs: Internal error: failed to allocate a serviceIP: range is full ({})",
                networks.cidr()
            )
        })
}

fn admit_node_ports(
    old: Option<&Value>,
    spec: &mut Value,
    used: &Used,
    networks: &ServiceNetworks,
    kind: &str,
) -> Result<(), String> {
    let wants_node_ports = kind == "NodePort"
        || (kind == "LoadBalancer" && spec["allocateLoadBalancerNodePorts"].as_bool() != Some(false));
    if !matches!(kind, "NodePort" | "LoadBalancer") {
        if let Some((i, _)) = ports_with_node_ports(spec).next() {
            return Err(format!(
                "spec.ports[{i}].nodePort: Forbidden: may not be used when `type` is '{kind}'"
            ));
        }
        return Ok(());
    }
    let old_ports = old.filter(|o| has_node_ports(&json!({"spec": o}))).map(ports_by_key).unwrap_or_default();
    let mut taken_here: HashMap<u16, &str> = HashMap::new();
    let Some(ports) = spec["ports"].as_array_mut() else { return Ok(()) };
    for (i, port) in ports.iter_mut().enumerate() {
        let protocol = port["protocol"].as_str().unwrap_or("TCP").to_string();
        let asked = port["nodePort"].as_i64().filter(|n| *n != 0);
        let kept = old_ports.get(&port_key(port)).and_then(|o| o["nodePort"].as_i64());
        let number = match asked {
            Some(n) => {
                let fail = |why: &str| format!("spec.ports[{i}].nodePort: Invalid value: {n}: {why}");
                let n16 =
                    u16::try_from(n).ok().filter(|n| networks.node_ports.contains(n)).ok_or_else(|| {
                        fail(&format!(
                            "provided port is not in the valid range. The range of valid ports is {}",
                            networks.node_port_range()
                        ))
                    })?;
                // One port number may serve the same Service's TCP and UDP sides.
                let clash_here = taken_here.get(&n16).is_some_and(|p| *p == protocol);
                if (used.node_ports.contains(&n16) && Some(n) != kept) || clash_here {
                    return Err(fail("provided port is already allocated"));
                }
                n16
            }
            None if !wants_node_ports => continue,
            None => match kept.and_then(|k| u16::try_from(k).ok()) {
                Some(k) => k,
                None => allocate_node_port(used, &taken_here, networks)?,
            },
        };
        taken_here.insert(number, if protocol == "TCP" { "TCP" } else { "UDP" });
        port["nodePort"] = json!(number);
    }
    Ok(())
}

fn allocate_node_port(
    used: &Used,
    here: &HashMap<u16, &str>,
    networks: &ServiceNetworks,
) -> Result<u16, String> {
    let (low, high) = (*networks.node_ports.start(), *networks.node_ports.end());
    let size = u32::from(high - low) + 1;
    let start = rand::rng().random_range(0..size);
    (0..size)
        .map(|i| low + ((start + i) % size) as u16)
        .find(|p| !used.node_ports.contains(p) && !here.contains_key(p))
        .ok_or_else(|| {
            format!(
                "spec.ports: Internal error: failed to allocate a nodePort: range is full ({})",
                networks.node_port_range()
            )
        })
}

#[cfg(test)]
#[path = "services_tests.rs"]
mod tests;
