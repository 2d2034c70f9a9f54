//! The `discovery.k8s.io/v1` EndpointSlices of one Service, as upstream's endpointslice
//! controller writes them: one slice per distinct list of resolved ports, at most 100
//! endpoints each, owned by the Service. Planning is pure: it compares what the backends need
//! with the slices that exist and keeps every endpoint in the slice it is already in, so
//! churn rewrites only the slices whose endpoints changed; a slice emptied of endpoints is
//! reused for new ones before a new slice is created. A Service with no endpoints keeps one
//! empty placeholder slice, as upstream.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::backends::{
    Backend, HEADLESS, ResolvedPort, TRIGGER_TIME, hostname, is_headless, resolve_ports, target_ref,
};
use crate::api::meta;

/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`] (upstream's, so tools that look for it find it).
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Most endpoints in one slice (upstream's `--max-endpoints-per-slice` default).
pub const MAX_PER_SLICE: usize = 100;

/// The writes that bring a Service's slices to what its backends need.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// New slices (with `generateName`).
    pub create: Vec<Value>,
    /// Changed slices, whole, with the resourceVersion they were read at.
    pub update: Vec<Value>,
    /// Slices to delete.
    pub delete: Vec<Arc<Value>>,
}

/// The endpoints that share one list of ports, keyed by pod uid.
struct Group {
    ports: Value,
    endpoints: Vec<(String, Value)>,
}

impl Group {
    fn take(&mut self, key: &str) -> Option<Value> {
        let at = self.endpoints.iter().position(|(k, _)| k == key)?;
        Some(self.endpoints.remove(at).1)
    }
}

/// An existing slice that keeps some of its endpoints.
struct Kept {
    slice: Arc<Value>,
    group: usize,
    endpoints: Vec<Value>,
    changed: bool,
}

/// Whether a slice is one of ours for any Service (by its labels).
pub(super) fn is_managed(slice: &Value) -> bool {
    slice["metadata"]["labels"][MANAGED_BY_LABEL] == CONTROLLER_NAME
}

/// Plan the slices of `svc` (a Service with a selector) for `backends`, given its managed
/// slices `existing`; `trigger` goes on every slice written.
pub(super) fn plan(svc: &Value, backends: &[Backend], existing: &[Arc<Value>], trigger: &str) -> Plan {
    let labels = labels(svc);
    let mut groups = groups(svc, backends);
    let mut plan = Plan::default();
    let mut kept: Vec<Kept> = Vec::new();
    let mut spare: Vec<Arc<Value>> = Vec::new();
    let mut sorted: Vec<&Arc<Value>> = existing.iter().collect();
    sorted.sort_by(|a, b| meta::name(a).cmp(meta::name(b)));
    for slice in sorted {
        if !owned_by(slice, svc) || slice["addressType"] != "IPv4" {
            plan.delete.push(slice.clone());
            continue;
        }
        let Some(group) = groups.iter().position(|g| g.ports == ports_of(slice)) else {
            spare.push(slice.clone());
            continue;
        };
        let old = slice["endpoints"].as_array().map(Vec::as_slice).unwrap_or_default();
        let endpoints: Vec<Value> = old.iter().filter_map(|e| groups[group].take(&endpoint_key(e))).collect();
        if endpoints.is_empty() {
            spare.push(slice.clone());
            continue;
        }
        let changed = endpoints != old || slice["metadata"]["labels"] != labels;
        kept.push(Kept { slice: slice.clone(), group, endpoints, changed });
    }
    // Slices already being written take new endpoints first, then untouched ones.
    kept.sort_by_key(|k| !k.changed);
    let mut fresh = Vec::new();
    for (i, group) in groups.iter_mut().enumerate() {
        let mut left = std::mem::take(&mut group.endpoints).into_iter().map(|(_, e)| e).peekable();
        for k in kept.iter_mut().filter(|k| k.group == i) {
            while k.endpoints.len() < MAX_PER_SLICE && left.peek().is_some() {
                k.endpoints.extend(left.next());
                k.changed = true;
            }
        }
        let left: Vec<Value> = left.collect();
        fresh.extend(left.chunks(MAX_PER_SLICE).map(|c| (group.ports.clone(), c.to_vec())));
    }
    if kept.is_empty() && fresh.is_empty() {
        // Keep (or make) one empty slice, so a watcher sees the Service has no endpoints.
        match spare.iter().position(|s| is_placeholder(s)) {
            Some(at) => {
                let slice = spare.remove(at);
                if slice["metadata"]["labels"] != labels {
                    plan.update.push(build(svc, &labels, trigger, Some(&slice), json!([]), vec![]));
                }
            }
            None => fresh.push((json!([]), vec![])),
        }
    }
    for (ports, endpoints) in fresh {
        let base = spare.pop();
        let slice = build(svc, &labels, trigger, base.as_deref(), ports, endpoints);
        if base.is_some() { plan.update.push(slice) } else { plan.create.push(slice) }
    }
    for k in kept.into_iter().filter(|k| k.changed) {
        let ports = k.slice["ports"].clone();
        plan.update.push(build(svc, &labels, trigger, Some(&k.slice), ports, k.endpoints));
    }
    plan.delete.extend(spare);
    plan
}

/// The endpoints `backends` need, grouped by their resolved ports in order of first use.
fn groups(svc: &Value, backends: &[Backend]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for b in backends {
        let ports = ports_json(&resolve_ports(svc, b.pod));
        let entry = (meta::uid(b.pod).to_string(), endpoint(svc, b));
        match groups.iter_mut().find(|g| g.ports == ports) {
            Some(g) => g.endpoints.push(entry),
            None => groups.push(Group { ports, endpoints: vec![entry] }),
        }
    }
    groups
}

/// One backend as a slice endpoint. A terminating pod stays (not ready, serving as its
/// readiness says) so a proxy can drain it; `publishNotReadyAddresses` makes every pod ready.
fn endpoint(svc: &Value, b: &Backend) -> Value {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let serving = publish || b.serving;
    let ready = publish || (serving && !b.terminating);
    let mut e = json!({
        "addresses": [b.ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": b.terminating},
        "targetRef": target_ref(b.pod),
    });
    if let Some(node) = b.pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        e["nodeName"] = json!(node);
    }
    if let Some(h) = hostname(svc, b.pod) {
        e["hostname"] = json!(h);
    }
    e
}

fn ports_json(ports: &[ResolvedPort]) -> Value {
    let ports = ports.iter().map(|p| {
        let mut port = json!({"name": p.name, "port": p.port, "protocol": p.protocol});
        if let Some(app) = &p.app_protocol {
            port["appProtocol"] = json!(app);
        }
        port
    });
    Value::Array(ports.collect())
}

/// A slice's ports (absent reads as none).
fn ports_of(slice: &Value) -> Value {
    if slice["ports"].is_array() { slice["ports"].clone() } else { json!([]) }
}

/// What identifies an endpoint across rounds: its pod, else its addresses.
fn endpoint_key(e: &Value) -> String {
    match e["targetRef"]["uid"].as_str() {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => e["addresses"].to_string(),
    }
}

fn is_placeholder(slice: &Value) -> bool {
    slice["endpoints"].as_array().is_none_or(Vec::is_empty) && ports_of(slice) == json!([])
}

fn owned_by(slice: &Value, svc: &Value) -> bool {
    slice["metadata"]["ownerReferences"].as_array().is_some_and(|refs| {
        refs.iter().any(|r| r["uid"] == meta::uid(svc) && r["kind"] == "Service" && r["apiVersion"] == "v1")
    })
}

/// The Service's labels (but the reserved ones) and ours.
fn labels(svc: &Value) -> Value {
    let reserved = [SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS];
    let mut labels: Map<String, Value> = svc["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !reserved.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if is_headless(svc) {
        labels.insert(HEADLESS.into(), json!(""));
    }
    labels.insert(SERVICE_NAME_LABEL.into(), json!(meta::name(svc)));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    Value::Object(labels)
}

/// A slice of `svc` holding `endpoints` on `ports`: `base` rewritten, or a new one.
fn build(
    svc: &Value,
    labels: &Value,
    trigger: &str,
    base: Option<&Value>,
    ports: Value,
    endpoints: Vec<Value>,
) -> Value {
    let mut slice = base.cloned().unwrap_or_else(|| {
        let owner = json!({"apiVersion": "v1", "kind": "Service", "name": meta::name(svc), "uid": meta::uid(svc),
            "controller": true, "blockOwnerDeletion": true});
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {
            "generateName": format!("{}-", meta::name(svc)), "namespace": meta::namespace(svc), "ownerReferences": [owner]}})
    });
    meta::metadata_mut(&mut slice).insert("labels".into(), labels.clone());
    if !trigger.is_empty() {
        meta::set_annotation(&mut slice, TRIGGER_TIME, trigger);
    }
    slice["addressType"] = json!("IPv4");
    slice["ports"] = ports;
    slice["endpoints"] = Value::Array(endpoints);
    slice
}

#[cfg(test)]
mod tests {
    use super::super::backends::{
        backends, managed_selector,
        tests::{pod, service},
    };
    use super::*;

    fn planned(svc: &Value, pods: &[Arc<Value>], existing: &[Arc<Value>]) -> Plan {
        let selector = managed_selector(svc).expect("selector").clone();
        let found = backends(&selector, pods);
        plan(svc, &found, existing, "2027-01-01T00:00:05Z")
    }

    /// Pretend the API stored what the plan created.
    fn stored(mut slice: Value, name: &str) -> Arc<Value> {
        meta::metadata_mut(&mut slice).insert("name".into(), json!(name));
        Arc::new(slice)
    }

    fn addresses(slice: &Value) -> Vec<&str> {
        slice["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["addresses"][0].as_str())
            .collect()
    }

    #[test]
    fn a_new_service_gets_one_slice_with_every_backend() {
        let svc = service(json!("http"));
        let pods = [pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false)];
        let p = planned(&svc, &pods, &[]);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (1, 0, 0));
        let slice = &p.create[0];
        assert_eq!(slice["metadata"]["generateName"], "web-");
        assert_eq!(
            slice["metadata"]["labels"],
            json!({"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME})
        );
        assert_eq!(slice["metadata"]["ownerReferences"][0]["uid"], "svc-uid");
        assert_eq!(slice["metadata"]["annotations"][TRIGGER_TIME], "2027-01-01T00:00:05Z");
        assert_eq!(slice["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
        assert_eq!(addresses(slice), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            slice["endpoints"][1]["conditions"],
            json!({"ready": false, "serving": false, "terminating": false})
        );
        assert_eq!(slice["endpoints"][0]["nodeName"], "node-a");
        assert_eq!(
            slice["endpoints"][0]["targetRef"],
            json!({"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"})
        );
    }

    #[test]
    fn unchanged_backends_write_nothing_and_a_flip_rewrites_one_slice() {
        let svc = service(json!(8080));
        let pods = vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)];
        let first = stored(planned(&svc, &pods, &[]).create.remove(0), "web-aaaaa");
        let again = planned(&svc, &pods, &[first.clone()]);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty(), "{again:?}");
        let flipped = vec![pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false)];
        let p = planned(&svc, &flipped, &[first]);
        assert_eq!((p.create.len(), p.update.len()), (0, 1));
        assert_eq!(p.update[0]["metadata"]["name"], "web-aaaaa");
        assert_eq!(p.update[0]["endpoints"][1]["conditions"]["ready"], false);
    }

    #[test]
    fn terminating_pods_stay_to_drain_and_publish_not_ready_makes_all_ready() {
        let mut going = (*pod("a", "10.0.0.1", true)).clone();
        going["metadata"]["deletionTimestamp"] = json!("2027-01-01T00:01:00Z");
        let pods = vec![Arc::new(going)];
        let svc = service(json!(8080));
        let p = planned(&svc, &pods, &[]);
        assert_eq!(
            p.create[0]["endpoints"][0]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        let mut publish = service(json!(8080));
        publish["spec"]["publishNotReadyAddresses"] = json!(true);
        let p = planned(&publish, &[pod("b", "10.0.0.2", false)], &[]);
        assert_eq!(
            p.create[0]["endpoints"][0]["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
    }

    #[test]
    fn pods_resolving_a_named_port_differently_get_their_own_slices() {
        let svc = service(json!("http"));
        let mut other = (*pod("b", "10.0.0.2", true)).clone();
        other["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(9090);
        let p = planned(&svc, &[pod("a", "10.0.0.1", true), Arc::new(other)], &[]);
        let ports: Vec<&Value> = p.create.iter().map(|s| &s["ports"][0]["port"]).collect();
        assert_eq!(ports, [&json!(8080), &json!(9090)]);
        assert_eq!(addresses(&p.create[1]), ["10.0.0.2"]);
    }

    #[test]
    fn slices_hold_at_most_a_hundred_and_grow_into_room_before_new_slices() {
        let svc = service(json!(8080));
        let many: Vec<Arc<Value>> = (0..150)
            .map(|i| pod(&format!("p{i:03}"), &format!("10.0.{}.{}", i / 200, i % 200), true))
            .collect();
        let p = planned(&svc, &many, &[]);
        let sizes: Vec<usize> = p.create.iter().map(|s| addresses(s).len()).collect();
        assert_eq!(sizes, [100, 50]);
        let existing = [stored(p.create[0].clone(), "web-one"), stored(p.create[1].clone(), "web-two")];
        let mut more = many.clone();
        more.push(pod("q", "10.0.1.1", true));
        let p = planned(&svc, &more, &existing);
        assert_eq!((p.create.len(), p.update.len()), (0, 1));
        assert_eq!(p.update[0]["metadata"]["name"], "web-two");
        assert_eq!(addresses(&p.update[0]).len(), 51);
    }

    #[test]
    fn an_emptied_service_keeps_one_placeholder_and_strays_go() {
        let svc = service(json!(8080));
        let one = stored(planned(&svc, &[pod("a", "10.0.0.1", true)], &[]).create.remove(0), "web-aaaaa");
        let mut stray = (*one).clone();
        stray["metadata"]["name"] = json!("web-old");
        stray["metadata"]["ownerReferences"][0]["uid"] = json!("old-uid");
        let p = planned(&svc, &[], &[one, Arc::new(stray)]);
        assert_eq!(p.delete.iter().map(|s| meta::name(s)).collect::<Vec<_>>(), ["web-old"]);
        assert_eq!(p.update.len(), 1, "the emptied slice becomes the placeholder");
        assert_eq!((&p.update[0]["endpoints"], &p.update[0]["ports"]), (&json!([]), &json!([])));
        let placeholder = Arc::new(p.update[0].clone());
        let again = planned(&svc, &[], &[placeholder]);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
    }
}
