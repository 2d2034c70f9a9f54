//! The core/v1 Endpoints of one Service, as upstream's endpoints controller writes it for older
//! clients: named like the Service, labelled with its labels, `subsets` packed so addresses
//! offering the same ports share one subset (upstream's `RepackSubsets`), ready pods under
//! `addresses`, the others under `notReadyAddresses`. Terminating pods are left out (unless
//! `publishNotReadyAddresses`), as upstream: only EndpointSlices carry draining pods.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::backends::{Backend, HEADLESS, TRIGGER_TIME, hostname, is_headless, resolve_ports, target_ref};
use crate::api::meta;

/// One address offering one port (`None`: a headless Service without ports).
struct Offer {
    port: Option<Value>,
    ip: String,
    address: Value,
    ready: bool,
}

/// The packed subsets `backends` give `svc`.
pub(super) fn subsets(svc: &Value, backends: &[Backend]) -> Vec<Value> {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let has_ports = svc["spec"]["ports"].as_array().is_some_and(|p| !p.is_empty());
    let mut offers = Vec::new();
    for b in backends.iter().filter(|b| publish || !b.terminating) {
        let mut address = json!({"ip": b.ip, "targetRef": target_ref(b.pod)});
        if let Some(node) = b.pod["spec"]["nodeName"].as_str() {
            address["nodeName"] = json!(node);
        }
        if let Some(h) = hostname(svc, b.pod) {
            address["hostname"] = json!(h);
        }
        let ready = publish || b.serving;
        let offer = |port| Offer { port, ip: b.ip.to_string(), address: address.clone(), ready };
        if !has_ports {
            if is_headless(svc) {
                offers.push(offer(None));
            }
            continue;
        }
        for p in resolve_ports(svc, b.pod) {
            let mut port = json!({"port": p.port, "protocol": p.protocol});
            if !p.name.is_empty() {
                port["name"] = json!(p.name);
            }
            if let Some(app) = p.app_protocol {
                port["appProtocol"] = json!(app);
            }
            offers.push(offer(Some(port)));
        }
    }
    repack(offers)
}

/// Group ports by the exact set of addresses offering them, one subset per such set.
fn repack(offers: Vec<Offer>) -> Vec<Value> {
    // Each port with its (sorted, distinct) addresses.
    let mut by_port: Vec<(Option<Value>, Vec<Offer>)> = Vec::new();
    for offer in offers {
        match by_port.iter_mut().find(|(p, _)| *p == offer.port) {
            Some((_, list)) if list.iter().any(|o| o.ip == offer.ip) => {}
            Some((_, list)) => list.push(offer),
            None => by_port.push((offer.port.clone(), vec![offer])),
        }
    }
    let mut subsets: Vec<(Vec<Offer>, Vec<Value>)> = Vec::new();
    for (port, mut addresses) in by_port {
        addresses.sort_by(|a, b| ip_order(&a.ip, &b.ip));
        let same = |other: &[Offer]| {
            other.len() == addresses.len()
                && other.iter().zip(&addresses).all(|(a, b)| a.ip == b.ip && a.ready == b.ready)
        };
        match subsets.iter_mut().find(|(a, _)| same(a)) {
            Some((_, ports)) => ports.extend(port),
            None => subsets.push((addresses, port.into_iter().collect())),
        }
    }
    subsets.sort_by(|a, b| ip_order(&a.0[0].ip, &b.0[0].ip));
    subsets
        .into_iter()
        .map(|(addresses, mut ports)| {
            ports.sort_by_key(|p| (p["name"].as_str().unwrap_or("").to_string(), p["port"].as_i64()));
            let (ready, not_ready): (Vec<Offer>, Vec<Offer>) = addresses.into_iter().partition(|o| o.ready);
            let mut subset = Map::new();
            for (field, list) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
                if !list.is_empty() {
                    subset.insert(field.into(), list.into_iter().map(|o| o.address).collect());
                }
            }
            if !ports.is_empty() {
                subset.insert("ports".into(), Value::Array(ports));
            }
            Value::Object(subset)
        })
        .collect()
}

fn ip_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The labels of a Service's Endpoints: the Service's, and the headless marker.
fn labels(svc: &Value) -> Value {
    let mut labels = svc["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    if is_headless(svc) {
        labels.insert(HEADLESS.into(), json!(""));
    } else {
        labels.remove(HEADLESS);
    }
    Value::Object(labels)
}

/// The Endpoints to write for `svc`, or `None` when `existing` already says it: a new object
/// (no resourceVersion) when there is none.
pub(super) fn plan(
    svc: &Value,
    backends: &[Backend],
    existing: Option<&Value>,
    trigger: &str,
) -> Option<Value> {
    let subsets = Value::Array(subsets(svc, backends));
    let labels = labels(svc);
    let mut ep = match existing {
        Some(ep) => {
            let current = if ep["subsets"].is_array() { ep["subsets"].clone() } else { json!([]) };
            let current_labels = if ep["metadata"]["labels"].is_object() {
                ep["metadata"]["labels"].clone()
            } else {
                json!({})
            };
            if current == subsets && current_labels == labels {
                return None;
            }
            ep.clone()
        }
        None => json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": meta::name(svc), "namespace": meta::namespace(svc)}}),
    };
    meta::metadata_mut(&mut ep).insert("labels".into(), labels);
    if !trigger.is_empty() {
        meta::set_annotation(&mut ep, TRIGGER_TIME, trigger);
    }
    // Go leaves an empty `subsets` out.
    match ep.as_object_mut() {
        Some(o) if subsets.as_array().is_some_and(Vec::is_empty) => {
            o.remove("subsets");
        }
        _ => ep["subsets"] = subsets,
    }
    Some(ep)
}

/// Whether an Endpoints was written by this controller (it carries the trigger annotation), so
/// it may be deleted once its Service is gone.
pub(super) fn is_ours(ep: &Value) -> bool {
    ep["metadata"]["annotations"][TRIGGER_TIME].is_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::backends::{
        backends, managed_selector,
        tests::{pod, service},
    };
    use super::*;

    fn packed(svc: &Value, pods: &[Arc<Value>]) -> Vec<Value> {
        let selector = managed_selector(svc).expect("selector").clone();
        subsets(svc, &backends(&selector, pods))
    }

    #[test]
    fn ready_and_not_ready_pods_share_a_subset_by_port() {
        let svc = service(json!(8080));
        let pods = [pod("b", "10.0.0.10", true), pod("a", "10.0.0.9", true), pod("c", "10.0.0.11", false)];
        let s = packed(&svc, &pods);
        assert_eq!(s.len(), 1);
        let ips: Vec<&Value> = s[0]["addresses"].as_array().into_iter().flatten().map(|a| &a["ip"]).collect();
        assert_eq!(ips, [&json!("10.0.0.9"), &json!("10.0.0.10")], "sorted as addresses, not text");
        assert_eq!(s[0]["notReadyAddresses"][0]["ip"], "10.0.0.11");
        assert_eq!(s[0]["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
        assert_eq!(s[0]["addresses"][0]["nodeName"], "node-a");
        assert_eq!(s[0]["addresses"][0]["targetRef"]["name"], "a");
    }

    #[test]
    fn terminating_pods_are_left_out_and_different_ports_split_subsets() {
        let mut going = (*pod("a", "10.0.0.1", true)).clone();
        going["metadata"]["deletionTimestamp"] = json!("2027-01-01T00:01:00Z");
        let mut other = (*pod("b", "10.0.0.2", true)).clone();
        other["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(9090);
        let s =
            packed(&service(json!("http")), &[Arc::new(going), Arc::new(other), pod("c", "10.0.0.3", true)]);
        let summary: Vec<(Value, Value)> =
            s.iter().map(|s| (s["addresses"][0]["ip"].clone(), s["ports"][0]["port"].clone())).collect();
        assert_eq!(summary, [(json!("10.0.0.2"), json!(9090)), (json!("10.0.0.3"), json!(8080))]);
    }

    #[test]
    fn the_object_is_written_only_when_it_changes() {
        let svc = service(json!(8080));
        let selector = managed_selector(&svc).expect("selector").clone();
        let pods = [pod("a", "10.0.0.1", true)];
        let found = backends(&selector, &pods);
        let new = plan(&svc, &found, None, "2027-01-01T00:00:05Z").expect("create");
        assert_eq!(new["metadata"]["name"], "web");
        assert_eq!(new["metadata"]["labels"], json!({"team": "a"}));
        assert!(is_ours(&new));
        assert!(plan(&svc, &found, Some(&new), "later").is_none());
        let changed = plan(&svc, &[], Some(&new), "later").expect("emptied");
        assert!(changed.get("subsets").is_none(), "{changed}");
        assert_eq!(changed["metadata"]["annotations"][TRIGGER_TIME], "later");
    }
}
