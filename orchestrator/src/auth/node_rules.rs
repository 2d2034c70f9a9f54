//! What a node's credential may do (upstream's Node authorizer plus NodeRestriction, reduced to
//! the kinds we serve): read pods, nodes and cluster objects; read only the Secrets and
//! ConfigMaps its own pods use, and the TLS Secrets of Ingresses (every node's proxy serves
//! Ingress); register and update only its own Node; change only the status of, and delete
//! only, pods bound to it; record Events. Everything else is 403.

use serde_json::Value;

/// A request, as the authorizer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub verb: &'a str,
    /// The object kind (`Pod`, `Node`, ...).
    pub kind: &'a str,
    /// The object name, when the request names one.
    pub name: Option<&'a str>,
    /// The subresource (`status`, `log`, ...).
    pub subresource: Option<&'a str>,
}

/// The authorizer's answer; some answers need a look at stored state first.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Forbidden, for this reason.
    Deny(String),
    /// Allowed if the named pod is bound to this node.
    IfPodBound,
    /// Allowed if a pod bound to this node uses the named object (Secret or ConfigMap).
    IfUsedByPod,
    /// Allowed if the body's `metadata.name` is this node (registering itself).
    IfBodyNamesNode,
}

/// Decide what node `node` may do with `req`.
pub fn decide(node: &str, req: &Request<'_>) -> Decision {
    let read = matches!(req.verb, "get" | "list" | "watch");
    match (req.kind, req.verb, req.subresource) {
        ("Secret" | "ConfigMap", "get", None) => Decision::IfUsedByPod,
        ("Secret" | "ConfigMap", _, _) if read => Decision::Deny(format!(
            "node '{node}' can only get individual {}s its pods use",
            req.kind.to_lowercase()
        )),
        (_, _, _) if read => Decision::Allow,
        ("Node", "create", None) => Decision::IfBodyNamesNode,
        ("Node", "update" | "patch", None | Some("status")) if req.name == Some(node) => Decision::Allow,
        ("Node", _, _) => {
            Decision::Deny(format!("node '{node}' cannot modify node '{}'", req.name.unwrap_or_default()))
        }
        ("Pod", "update" | "patch", Some("status")) | ("Pod", "delete", None) => Decision::IfPodBound,
        ("Event", "create" | "update" | "patch", None) => Decision::Allow,
        _ => Decision::Deny(format!("node '{node}' may not {} {}", req.verb, req.kind.to_lowercase())),
    }
}

/// Does `ingress` terminate TLS with the Secret `name` (`spec.tls[].secretName`)?
pub fn ingress_uses_secret(ingress: &Value, name: &str) -> bool {
    ingress["spec"]["tls"].as_array().into_iter().flatten().any(|t| t["secretName"] == name)
}

/// Does `pod` (bound to some node) use the `kind` object `name` (env, envFrom, volumes,
/// image pull secrets)?
pub fn pod_uses(pod: &Value, kind: &str, name: &str) -> bool {
    let spec = &pod["spec"];
    let (ref_key, volume_key, volume_name) = match kind {
        "Secret" => ("secretKeyRef", "secret", "secretName"),
        _ => ("configMapKeyRef", "configMap", "name"),
    };
    let env_from_key = if kind == "Secret" { "secretRef" } else { "configMapRef" };
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten()
        .collect::<Vec<_>>();
    let in_env = containers.iter().any(|c| {
        c["env"].as_array().into_iter().flatten().any(|e| e["valueFrom"][ref_key]["name"] == name)
            || c["envFrom"].as_array().into_iter().flatten().any(|e| e[env_from_key]["name"] == name)
    });
    let in_volumes = spec["volumes"].as_array().into_iter().flatten().any(|v| {
        v[volume_key][volume_name] == name
            || v["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s[volume_key]["name"] == name)
    });
    let pull_secret = kind == "Secret"
        && spec["imagePullSecrets"].as_array().into_iter().flatten().any(|s| s["name"] == name);
    in_env || in_volumes || pull_secret
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(verb: &'a str, kind: &'a str, name: Option<&'a str>, sub: Option<&'a str>) -> Request<'a> {
        Request { verb, kind, name, subresource: sub }
    }

    #[test]
    fn a_node_changes_only_its_own_things() {
        assert_eq!(decide("a", &req("watch", "Pod", None, None)), Decision::Allow);
        assert_eq!(decide("a", &req("patch", "Node", Some("a"), Some("status"))), Decision::Allow);
        assert!(matches!(decide("a", &req("patch", "Node", Some("b"), Some("status"))), Decision::Deny(_)));
        assert!(matches!(decide("a", &req("delete", "Node", Some("a"), None)), Decision::Deny(_)));
        assert_eq!(decide("a", &req("create", "Node", None, None)), Decision::IfBodyNamesNode);
        assert_eq!(decide("a", &req("patch", "Pod", Some("p"), Some("status"))), Decision::IfPodBound);
        assert_eq!(decide("a", &req("delete", "Pod", Some("p"), None)), Decision::IfPodBound);
        assert!(matches!(decide("a", &req("patch", "Pod", Some("p"), None)), Decision::Deny(_)));
        assert!(matches!(decide("a", &req("create", "Pod", None, Some("binding"))), Decision::Deny(_)));
        assert!(matches!(decide("a", &req("create", "Deployment", None, None)), Decision::Deny(_)));
        assert_eq!(decide("a", &req("get", "Secret", Some("s"), None)), Decision::IfUsedByPod);
        assert!(matches!(decide("a", &req("list", "Secret", None, None)), Decision::Deny(_)));
        assert_eq!(decide("a", &req("create", "Event", None, None)), Decision::Allow);
    }

    #[test]
    fn pods_use_secrets_and_configmaps_through_env_envfrom_and_volumes() {
        let pod = json!({"spec": {
            "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}}],
                            "envFrom": [{"configMapRef": {"name": "cm1"}}]}],
            "volumes": [{"name": "v", "secret": {"secretName": "s2"}}, {"name": "w", "configMap": {"name": "cm2"}}],
            "imagePullSecrets": [{"name": "pull"}]}});
        for (kind, name) in [
            ("Secret", "s1"),
            ("Secret", "s2"),
            ("Secret", "pull"),
            ("ConfigMap", "cm1"),
            ("ConfigMap", "cm2"),
        ] {
            assert!(pod_uses(&pod, kind, name), "{kind} {name}");
        }
        assert!(!pod_uses(&pod, "Secret", "cm1"));
        assert!(!pod_uses(&pod, "ConfigMap", "other"));
    }
}
