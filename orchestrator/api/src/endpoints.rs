//! Admission for the objects that publish a Service's backends: core/v1 Endpoints and
//! `discovery.k8s.io/v1` EndpointSlices. The endpoints controller writes them for Services with
//! a selector; users write them for Services without one, so the rules a proxy relies on
//! (addresses that parse, ports in range, one address type per slice) are checked with
//! upstream's messages.
//!
//! Differs from upstream: addresses in 127.0.0.0/8 are accepted, because a single-node cluster's
//! pod network lives there (upstream refuses loopback, link-local and multicast addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

/// Most endpoints in one slice, as upstream's `maxEndpoints`.
const MAX_SLICE_ENDPOINTS: usize = 1000;
/// Most ports in one slice (upstream's `maxPorts`).
const MAX_SLICE_PORTS: usize = 20_000;
/// Most addresses of one slice endpoint (upstream's `maxAddresses`).
const MAX_ENDPOINT_ADDRESSES: usize = 100;

/// A v1 Endpoints: every subset has addresses, every address is an IP, every port is in range.
pub fn validate_endpoints(obj: &Value) -> Result<(), String> {
    for (i, subset) in obj["subsets"].as_array().into_iter().flatten().enumerate() {
        let at = format!("subsets[{i}]");
        let ready = subset["addresses"].as_array().map(Vec::as_slice).unwrap_or_default();
        let not_ready = subset["notReadyAddresses"].as_array().map(Vec::as_slice).unwrap_or_default();
        if ready.is_empty() && not_ready.is_empty() {
            return Err(format!("{at}: Required value: must specify `addresses` or `notReadyAddresses`"));
        }
        for (field, list) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
            for (j, address) in list.iter().enumerate() {
                let ip = address["ip"].as_str().unwrap_or("");
                if ip.parse::<IpAddr>().is_err() {
                    return Err(format!(
                        "{at}.{field}[{j}].ip: Invalid value: {ip:?}: must be a valid IP address"
                    ));
                }
            }
        }
        let ports = subset["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            check_port(port, ports.len() > 1, &format!("{at}.ports[{j}]"))?;
        }
    }
    Ok(())
}

/// One port of an Endpoints subset or an EndpointSlice: a number in range, a known protocol,
/// a name when there are several.
fn check_port(port: &Value, name_required: bool, at: &str) -> Result<(), String> {
    let name = port["name"].as_str().unwrap_or("");
    if name_required && name.is_empty() {
        return Err(format!("{at}.name: Required value"));
    }
    match &port["port"] {
        Value::Null => {}
        number => {
            let n = number.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                return Err(format!("{at}.port: Invalid value: {n}: must be between 1 and 65535, inclusive"));
            }
        }
    }
    match port["protocol"].as_str() {
        None | Some("TCP" | "UDP" | "SCTP") => Ok(()),
        Some(other) => Err(format!(
            "{at}.protocol: Unsupported value: {other:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
        )),
    }
}

/// An EndpointSlice: a known address type, and addresses of that type.
pub fn validate_endpoint_slice(obj: &Value) -> Result<(), String> {
    let address_type = obj["addressType"].as_str().unwrap_or("");
    let parses: fn(&str) -> bool = match address_type {
        "" => return Err("addressType: Required value".into()),
        "IPv4" => |a| a.parse::<Ipv4Addr>().is_ok(),
        "IPv6" => |a| a.parse::<Ipv6Addr>().is_ok(),
        "FQDN" => |a| crate::syntax::dns1123_subdomain(a).is_ok(),
        other => {
            return Err(format!(
                "addressType: Unsupported value: {other:?}: supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            ));
        }
    };
    let endpoints = obj["endpoints"].as_array().map(Vec::as_slice).unwrap_or_default();
    if endpoints.len() > MAX_SLICE_ENDPOINTS {
        return Err(format!(
            "endpoints: Too many: {}: must have at most {MAX_SLICE_ENDPOINTS} items",
            endpoints.len()
        ));
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        let addresses = endpoint["addresses"].as_array().map(Vec::as_slice).unwrap_or_default();
        if addresses.is_empty() {
            return Err(format!("endpoints[{i}].addresses: Required value: must contain at least 1 address"));
        }
        if addresses.len() > MAX_ENDPOINT_ADDRESSES {
            return Err(format!(
                "endpoints[{i}].addresses: Too many: {}: must have at most {MAX_ENDPOINT_ADDRESSES} items",
                addresses.len()
            ));
        }
        for (j, address) in addresses.iter().enumerate() {
            let text = address.as_str().unwrap_or("");
            if !parses(text) {
                let what = match address_type {
                    "FQDN" => "a valid FQDN".to_string(),
                    ip => format!("a valid {ip} address"),
                };
                return Err(format!(
                    "endpoints[{i}].addresses[{j}]: Invalid value: {text:?}: must be {what}"
                ));
            }
        }
    }
    let ports = obj["ports"].as_array().map(Vec::as_slice).unwrap_or_default();
    if ports.len() > MAX_SLICE_PORTS {
        return Err(format!("ports: Too many: {}: must have at most {MAX_SLICE_PORTS} items", ports.len()));
    }
    for (i, port) in ports.iter().enumerate() {
        check_port(port, false, &format!("ports[{i}]"))?;
    }
    Ok(())
}

/// `addressType` of a slice never changes.
pub fn validate_endpoint_slice_update(old: &Value, new: &Value) -> Result<(), String> {
    if old["addressType"] != new["addressType"] {
        return Err(format!("addressType: Invalid value: {}: field is immutable", new["addressType"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_subsets_need_addresses_that_parse() {
        let ok = json!({"subsets": [{"addresses": [{"ip": "127.64.0.5"}], "notReadyAddresses": [{"ip": "10.0.0.1"}],
            "ports": [{"port": 8080, "protocol": "TCP"}]}]});
        assert_eq!(validate_endpoints(&ok), Ok(()));
        let empty = json!({"subsets": [{"ports": [{"port": 80}]}]});
        assert!(validate_endpoints(&empty).is_err_and(|e| e.contains("must specify `addresses`")));
        let bad_ip = json!({"subsets": [{"addresses": [{"ip": "pod-a"}]}]});
        assert_eq!(
            validate_endpoints(&bad_ip),
            Err("subsets[0].addresses[0].ip: Invalid value: \"pod-a\": must be a valid IP address".into())
        );
        let two_unnamed =
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"port": 81}]}]});
        assert_eq!(validate_endpoints(&two_unnamed), Err("subsets[0].ports[0].name: Required value".into()));
    }

    #[test]
    fn slices_hold_addresses_of_their_type() {
        let slice = |address_type: &str, address: &str| json!({"addressType": address_type, "endpoints": [{"addresses": [address]}], "ports": [{"port": 8080}]});
        assert_eq!(validate_endpoint_slice(&slice("IPv4", "127.64.0.9")), Ok(()));
        assert_eq!(
            validate_endpoint_slice(&slice("IPv4", "::1")),
            Err("endpoints[0].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address".into())
        );
        assert!(validate_endpoint_slice(&slice("IPv6", "::1")).is_ok());
        assert!(validate_endpoint_slice(&slice("Ip", "::1")).is_err_and(|e| e.contains("Unsupported value")));
        assert_eq!(validate_endpoint_slice(&json!({})), Err("addressType: Required value".into()));
        let placeholder = json!({"addressType": "IPv4", "endpoints": [], "ports": []});
        assert_eq!(validate_endpoint_slice(&placeholder), Ok(()));
        assert!(
            validate_endpoint_slice_update(&slice("IPv4", "10.0.0.1"), &slice("IPv6", "::1"))
                .is_err_and(|e| e.contains("immutable"))
        );
    }
}
