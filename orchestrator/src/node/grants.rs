//! The parts of the Pod spec that become a Wasm container's limits and network policy:
//! `resources.limits` (Kubernetes quantities), declared ports, the `wasmkube.dev/egress` and
//! `wasmkube.dev/request-timeout` annotations.
//!
//! `wasmkube.dev/egress` lists where the pod may connect to outside the cluster, separated by
//! commas or spaces: IP addresses, CIDRs, host names, and `*.example.com` wildcards (for
//! outgoing HTTP; wildcards cannot be resolved for raw sockets). Host names are resolved when
//! the container starts and their addresses allowed for sockets too.

use std::{net::IpAddr, time::Duration};

use ipnet::IpNet;
use serde_json::Value;
use wasm_runtime::{NetworkPolicy, Protocol, ResourceLimits};

/// Annotation: where the pod may connect outside the cluster.
pub const EGRESS_ANNOTATION: &str = "wasmkube.dev/egress";
/// Annotation: how long one HTTP request may run (a Go-style duration: `500ms`, `30s`, `2m`).
pub const REQUEST_TIMEOUT_ANNOTATION: &str = "wasmkube.dev/request-timeout";

/// A container's `resources.limits`.
pub fn limits(container: &Value) -> Result<ResourceLimits, String> {
    let l = &container["resources"]["limits"];
    let memory = match &l["memory"] {
        Value::Null => None,
        q => {
            Some(quantity(q).ok_or_else(|| format!("resources.limits.memory: invalid quantity {q}"))?.ceil()
                as u64)
        }
    };
    let cpu = match &l["cpu"] {
        Value::Null => None,
        q => Some(
            (quantity(q).ok_or_else(|| format!("resources.limits.cpu: invalid quantity {q}"))? * 1000.0)
                .ceil() as u64,
        ),
    };
    Ok(ResourceLimits { memory_bytes: memory, cpu_millis: cpu })
}

/// The pod's memory limit: the sum of its containers' limits when every container has one.
pub fn pod_memory_limit(pod: &Value) -> Option<u64> {
    let containers = pod["spec"]["containers"].as_array()?;
    containers.iter().map(|c| limits(c).ok().and_then(|l| l.memory_bytes)).sum()
}

/// A Kubernetes quantity (`128Mi`, `1G`, `100m`, `0.5`, `1e3`) as a number of units.
pub fn quantity(q: &Value) -> Option<f64> {
    let text = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text.as_str(), 1.0));
    // Rust's float parser takes "inf" and "nan": a quantity never is.
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+') {
        return None;
    }
    let value = number.parse::<f64>().ok()? * factor;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// The HTTP request timeout from the pod's annotation, or the runtime's default.
pub fn request_timeout(pod: &Value) -> Result<Duration, String> {
    match pod["metadata"]["annotations"][REQUEST_TIMEOUT_ANNOTATION].as_str() {
        None => Ok(wasm_runtime::DEFAULT_REQUEST_TIMEOUT),
        Some(text) => duration(text).filter(|d| !d.is_zero()).ok_or_else(|| {
            format!(
                "annotation {REQUEST_TIMEOUT_ANNOTATION}: {text:?} is not a duration like 500ms, 30s or 2m"
            )
        }),
    }
}

/// A Go-style duration with one unit: `250ms`, `30s`, `2m`, `1h`.
fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.find(|c: char| c.is_ascii_alphabetic()).map(|i| text.split_at(i))?;
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// The network policy of `container` in `pod`: its declared ports on the pod IP, the cluster
/// networks, and the pod's egress list (host names resolved now).
pub async fn network(
    pod: &Value,
    container: &Value,
    pod_ip: IpAddr,
    cluster_networks: &[IpNet],
) -> Result<NetworkPolicy, String> {
    let mut ports = Vec::new();
    for p in container["ports"].as_array().into_iter().flatten() {
        let Some(port) = p["containerPort"].as_u64().and_then(|p| u16::try_from(p).ok()) else { continue };
        let protocol = match p["protocol"].as_str().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            other => return Err(format!("port {port}: protocol {other} is not supported (TCP and UDP are)")),
        };
        ports.push((protocol, port));
    }
    let mut allowed_networks = cluster_networks.to_vec();
    let mut egress_hosts = Vec::new();
    let list = pod["metadata"]["annotations"][EGRESS_ANNOTATION].as_str().unwrap_or("");
    for entry in list.split([',', ' ', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        if let Ok(net) = entry.parse::<IpNet>() {
            allowed_networks.push(net);
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            allowed_networks.push(IpNet::from(ip));
        } else if let Some(host) = valid_host(entry) {
            if !host.starts_with("*.") {
                // Unresolvable now is not fatal: outgoing HTTP still goes by name.
                if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), 0)).await {
                    allowed_networks.extend(addrs.map(|a| IpNet::from(a.ip().to_canonical())));
                }
            }
            egress_hosts.push(host);
        } else {
            return Err(format!(
                "annotation {EGRESS_ANNOTATION}: {entry:?} is not an IP address, CIDR or host name"
            ));
        }
    }
    Ok(NetworkPolicy { pod_ip: Some(pod_ip), ports, allowed_networks, egress_hosts })
}

/// A lowercase DNS name, optionally with a leading `*.`.
fn valid_host(entry: &str) -> Option<String> {
    let host = entry.to_ascii_lowercase();
    let name = host.strip_prefix("*.").unwrap_or(&host);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    ok.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("128Mi")), Some(134217728.0));
        assert_eq!(quantity(&json!("1G")), Some(1e9));
        assert_eq!(quantity(&json!("100m")), Some(0.1));
        assert_eq!(quantity(&json!(2)), Some(2.0));
        assert_eq!(quantity(&json!("1.5")), Some(1.5));
        for bad in ["", "Mi", "inf", "nan", "-1", "12Q", "1.2.3"] {
            assert_eq!(quantity(&json!(bad)), None, "{bad}");
        }
        let c = json!({"resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}});
        assert_eq!(
            limits(&c).unwrap(),
            ResourceLimits { memory_bytes: Some(64 << 20), cpu_millis: Some(250) }
        );
        assert!(limits(&json!({"resources": {"limits": {"cpu": "lots"}}})).is_err());
    }

    #[test]
    fn pod_limit_only_when_every_container_has_one() {
        let both = json!({"spec": {"containers": [
            {"resources": {"limits": {"memory": "1Mi"}}}, {"resources": {"limits": {"memory": "2Mi"}}}]}});
        assert_eq!(pod_memory_limit(&both), Some(3 << 20));
        let one = json!({"spec": {"containers": [{"resources": {"limits": {"memory": "1Mi"}}}, {}]}});
        assert_eq!(pod_memory_limit(&one), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("5"), None);
        assert_eq!(duration("5d"), None);
        let pod = json!({"metadata": {"annotations": {REQUEST_TIMEOUT_ANNOTATION: "0s"}}});
        assert!(request_timeout(&pod).is_err());
    }

    #[tokio::test]
    async fn egress_entries() {
        let pod = json!({"metadata": {"annotations": {EGRESS_ANNOTATION: "10.0.0.0/8, 192.168.1.7 *.Example.com,localhost"}}});
        let container = json!({"ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]});
        let cluster: Vec<IpNet> = vec!["127.64.0.0/10".parse().unwrap()];
        let p = network(&pod, &container, "127.64.0.9".parse().unwrap(), &cluster).await.unwrap();
        assert_eq!(p.ports, [(Protocol::Tcp, 8080), (Protocol::Udp, 53)]);
        assert!(p.may_reach("10.1.2.3".parse().unwrap()) && p.may_reach("192.168.1.7".parse().unwrap()));
        assert!(p.may_reach("127.64.1.1".parse().unwrap()) && p.may_reach("127.0.0.1".parse().unwrap()));
        assert!(p.allows_http_host("api.example.com") && p.allows_http_host("localhost"));
        let bad = json!({"metadata": {"annotations": {EGRESS_ANNOTATION: "http://x"}}});
        assert!(network(&bad, &json!({}), "127.64.0.9".parse().unwrap(), &cluster).await.is_err());
    }
}
