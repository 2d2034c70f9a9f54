//! Which nodes a DaemonSet runs on, and the pod it puts there. Pure functions over JSON, as
//! upstream's `NodeShouldRunDaemonPod`: the template's `nodeSelector` and required node
//! affinity must match the node, and every NoSchedule/NoExecute taint (a cordon counts as the
//! `unschedulable` taint) must be tolerated by the template's tolerations plus the ones every
//! daemon pod gets. Readiness is not required: daemon pods tolerate not-ready nodes.
//!
//! Pods are created bound (`spec.nodeName` set) because our scheduler does not read node
//! affinity; they also carry upstream's `matchFields metadata.name` affinity term, so what
//! `kubectl get pod -o yaml` shows is what upstream's controller writes.

use serde_json::{Value, json};

/// Label naming the ControllerRevision a daemon pod was made from.
pub const REVISION_HASH: &str = "controller-revision-hash";
/// Label with the DaemonSet generation the pod was made at (deprecated upstream, still set).
const TEMPLATE_GENERATION: &str = "pod-template-generation";

/// The taint a cordoned node carries (the node lifecycle controller adds it upstream).
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Tolerations upstream adds to every daemon pod: a daemon keeps running on a node that is
/// unhealthy, short of resources or cordoned.
pub fn default_tolerations() -> Vec<Value> {
    let tolerate = |key: &str, effect: &str| json!({"key": key, "operator": "Exists", "effect": effect});
    vec![
        tolerate("node.kubernetes.io/not-ready", "NoExecute"),
        tolerate("node.kubernetes.io/unreachable", "NoExecute"),
        tolerate("node.kubernetes.io/disk-pressure", "NoSchedule"),
        tolerate("node.kubernetes.io/memory-pressure", "NoSchedule"),
        tolerate("node.kubernetes.io/pid-pressure", "NoSchedule"),
        tolerate(UNSCHEDULABLE, "NoSchedule"),
    ]
}

/// Upstream's `Toleration.ToleratesTaint`: an empty effect or key matches any; `Exists`
/// matches any value, `Equal` (or no operator) the same value.
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let set = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    if set(&toleration["effect"]) && toleration["effect"] != taint["effect"] {
        return false;
    }
    if set(&toleration["key"]) && toleration["key"] != taint["key"] {
        return false;
    }
    match toleration["operator"].as_str().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => toleration["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or(""),
        _ => false,
    }
}

/// The node's taints, with `spec.unschedulable` as the taint upstream puts on a cordon.
fn taints(node: &Value) -> Vec<Value> {
    let mut taints = node["spec"]["taints"].as_array().cloned().unwrap_or_default();
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        taints.push(json!({"key": UNSCHEDULABLE, "effect": "NoSchedule"}));
    }
    taints
}

/// One `matchExpressions` / `matchFields` requirement against a value lookup.
fn requirement_holds(req: &Value, value_of: impl Fn(&str) -> Option<String>) -> bool {
    let key = req["key"].as_str().unwrap_or("");
    let values: Vec<&str> =
        req["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let value = value_of(key);
    let number = |s: &str| s.parse::<i64>().ok();
    match req["operator"].as_str().unwrap_or("") {
        "In" => value.is_some_and(|v| values.contains(&v.as_str())),
        "NotIn" => value.is_none_or(|v| !values.contains(&v.as_str())),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) =
                (value.as_deref().and_then(number), values.first().and_then(|b| number(b)))
            else {
                return false;
            };
            if req["operator"] == "Gt" { have > bound } else { have < bound }
        }
        _ => false,
    }
}

/// Required node affinity: any term matches (a term: all its requirements hold).
fn affinity_matches(pod_spec: &Value, node: &Value) -> bool {
    let required = &pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    let Some(terms) = required["nodeSelectorTerms"].as_array() else { return true };
    let label = |k: &str| node["metadata"]["labels"][k].as_str().map(str::to_string);
    let field =
        |k: &str| (k == "metadata.name").then(|| node["metadata"]["name"].as_str().unwrap_or("").to_string());
    terms.iter().any(|term| {
        let exprs = term["matchExpressions"].as_array().into_iter().flatten();
        let fields = term["matchFields"].as_array().into_iter().flatten();
        let non_empty = exprs.clone().next().is_some() || fields.clone().next().is_some();
        non_empty
            && exprs.into_iter().all(|r| requirement_holds(r, label))
            && fields.into_iter().all(|r| requirement_holds(r, field))
    })
}

/// Whether a pod of this template belongs on `node`.
pub fn should_run(pod_spec: &Value, node: &Value) -> bool {
    let selector_ok = pod_spec["nodeSelector"]
        .as_object()
        .is_none_or(|sel| sel.iter().all(|(k, v)| node["metadata"]["labels"][k] == *v));
    let mut tolerations = pod_spec["tolerations"].as_array().cloned().unwrap_or_default();
    tolerations.extend(default_tolerations());
    let taints_ok = taints(node)
        .iter()
        .filter(|t| t["effect"] == "NoSchedule" || t["effect"] == "NoExecute")
        .all(|t| tolerations.iter().any(|tol| tolerates(tol, t)));
    selector_ok && taints_ok && affinity_matches(pod_spec, node)
}

/// The pod `ds` runs on `node`, made from its template at revision `hash`.
pub fn pod_for_node(ds: &Value, node: &str, hash: &str) -> Value {
    let template = &ds["spec"]["template"];
    let mut metadata = template["metadata"].as_object().cloned().unwrap_or_default();
    metadata.remove("name");
    let mut labels = metadata.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
    labels.insert(REVISION_HASH.into(), json!(hash));
    let generation = ds["metadata"]["generation"].as_i64().unwrap_or(1);
    labels.insert(TEMPLATE_GENERATION.into(), json!(generation.to_string()));
    metadata.insert("labels".into(), Value::Object(labels));
    metadata
        .insert("generateName".into(), json!(format!("{}-", ds["metadata"]["name"].as_str().unwrap_or(""))));
    metadata.insert("namespace".into(), ds["metadata"]["namespace"].clone());
    metadata.insert("ownerReferences".into(), json!([crate::api::meta::owner_reference(ds)]));
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["nodeName"] = json!(node);
    let node_term = json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]);
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": node_term});
    let mut tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for default in default_tolerations() {
        if !tolerations.iter().any(|t| t["key"] == default["key"] && t["effect"] == default["effect"]) {
            tolerations.push(default);
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: Value, spec: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}, "spec": spec})
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "k", "operator": "Equal", "value": "v"}), &taint));
        assert!(
            tolerates(&json!({"key": "k", "value": "v", "effect": "NoSchedule"}), &taint),
            "Equal by default"
        );
        assert!(!tolerates(&json!({"key": "k", "operator": "Equal", "value": "w"}), &taint));
        assert!(tolerates(&json!({"key": "k", "operator": "Exists"}), &taint));
        assert!(tolerates(&json!({"operator": "Exists"}), &taint), "an empty key with Exists tolerates all");
        assert!(!tolerates(&json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}), &taint));
        assert!(!tolerates(&json!({"key": "other", "operator": "Exists"}), &taint));
    }

    #[test]
    fn node_selector_and_taints_decide_eligibility() {
        let spec = json!({"nodeSelector": {"disk": "ssd"}});
        assert!(should_run(&spec, &node(json!({"disk": "ssd"}), json!({}))));
        assert!(!should_run(&spec, &node(json!({"disk": "hdd"}), json!({}))));
        assert!(!should_run(&spec, &node(json!({}), json!({}))));
        let tainted =
            node(json!({}), json!({"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}));
        assert!(!should_run(&json!({}), &tainted));
        assert!(should_run(&json!({"tolerations": [{"key": "gpu", "operator": "Exists"}]}), &tainted));
        let soft = node(json!({}), json!({"taints": [{"key": "gpu", "effect": "PreferNoSchedule"}]}));
        assert!(should_run(&json!({}), &soft), "only NoSchedule and NoExecute keep a daemon away");
    }

    #[test]
    fn daemons_run_on_cordoned_and_unhealthy_nodes() {
        assert!(should_run(&json!({}), &node(json!({}), json!({"unschedulable": true}))));
        let pressured = node(
            json!({}),
            json!({"taints": [
            {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}),
        );
        assert!(should_run(&json!({}), &pressured));
    }

    #[test]
    fn required_node_affinity_is_honoured() {
        let spec = |op: &str, values: Value| {
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": op, "values": values}]}]}}}})
        };
        let a = node(json!({"zone": "a"}), json!({}));
        assert!(should_run(&spec("In", json!(["a", "b"])), &a));
        assert!(!should_run(&spec("NotIn", json!(["a"])), &a));
        assert!(should_run(&spec("Exists", json!([])), &a));
        assert!(!should_run(&spec("DoesNotExist", json!([])), &a));
        let by_name = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}});
        assert!(!should_run(&by_name, &a));
    }

    #[test]
    fn the_pod_is_bound_labelled_and_tolerant() {
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "u", "generation": 3},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "i"}],
                "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}}});
        let pod = pod_for_node(&ds, "n1", "abc");
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "agent", REVISION_HASH: "abc", TEMPLATE_GENERATION: "3"})
        );
        assert_eq!(pod["metadata"]["generateName"], "agent-");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u");
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(6), "no duplicate toleration");
        let terms =
            &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(terms["nodeSelectorTerms"][0]["matchFields"][0]["values"], json!(["n1"]));
    }
}
