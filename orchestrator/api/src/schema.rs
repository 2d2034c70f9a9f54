//! What we know of the upstream schema without loading OpenAPI: how each list field of the kinds
//! we serve merges (by key, as a set, or whole) and which objects are atomic. Strategic merge
//! patch and server-side apply both read this table, so the two agree on list identity.
//!
//! A field is named by the field names leading to its parent object (list items add nothing)
//! and its own name: container ports are `["spec", "template", "spec", "containers"]` + `ports`.

/// One key field of an associative list (`+listMapKey`), with the default the upstream schema
/// gives it (so `ports` items without `protocol` are keyed as `TCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListKey {
    /// Field name.
    pub name: &'static str,
    /// Value assumed when the item omits the field.
    pub default: Option<&'static str>,
}

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced whole (`+listType=atomic`, also the default for lists without a type).
    Atomic,
    /// Scalars merged as a set (`+listType=set`); `smp`: strategic merge patch merges it too.
    Set { smp: bool },
    /// Objects identified by their key fields (`+listType=map`); `smp`: strategic merge patch
    /// merges it by the first key (`patchStrategy=merge`), otherwise SMP replaces it.
    Map { keys: &'static [ListKey], smp: bool },
}

const fn key(name: &'static str) -> ListKey {
    ListKey { name, default: None }
}

const NAME: &[ListKey] = &[key("name")];
const TYPE: &[ListKey] = &[key("type")];
const IP: &[ListKey] = &[key("ip")];
const UID: &[ListKey] = &[key("uid")];
const MOUNT_PATH: &[ListKey] = &[key("mountPath")];
const DEVICE_PATH: &[ListKey] = &[key("devicePath")];
const TCP: Option<&str> = Some("TCP");
const CONTAINER_PORT: &[ListKey] = &[key("containerPort"), ListKey { name: "protocol", default: TCP }];
const SERVICE_PORT: &[ListKey] = &[key("port"), ListKey { name: "protocol", default: TCP }];
const TOPOLOGY: &[ListKey] = &[key("topologyKey"), key("whenUnsatisfiable")];

/// How the list at `path` + `field` merges.
pub(crate) fn list_type(path: &[String], field: &str) -> ListType {
    let in_container =
        path.iter().any(|p| matches!(p.as_str(), "containers" | "initContainers" | "ephemeralContainers"));
    let parent = path.last().map_or("", String::as_str);
    let map = |keys, smp| ListType::Map { keys, smp };
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates"
        | "env" => map(NAME, true),
        "claims" if parent == "resources" => map(NAME, false),
        "ports" if in_container => map(CONTAINER_PORT, true),
        // A Service's ports; EndpointSlice and load-balancer status ports are atomic.
        "ports" if parent == "spec" => map(SERVICE_PORT, true),
        "volumeMounts" => map(MOUNT_PATH, true),
        "volumeDevices" => map(DEVICE_PATH, true),
        "hostAliases" => map(IP, true),
        "topologySpreadConstraints" => map(TOPOLOGY, true),
        "ownerReferences" => map(UID, true),
        "conditions" => map(TYPE, true),
        "addresses" if parent == "status" => map(TYPE, true),
        "podIPs" | "hostIPs" if parent == "status" => map(IP, true),
        "finalizers" if parent == "metadata" => ListType::Set { smp: true },
        "podCIDRs" if parent == "spec" => ListType::Set { smp: true },
        _ => ListType::Atomic,
    }
}

/// The strategic-merge-patch merge key of a list field (`patchMergeKey`), if SMP merges it.
pub(crate) fn smp_merge_key(path: &[String], field: &str) -> Option<&'static str> {
    match list_type(path, field) {
        ListType::Map { keys, smp: true } => keys.first().map(|k| k.name),
        _ => None,
    }
}

/// Whether SMP merges a list of scalars as a set (`finalizers`).
pub(crate) fn smp_merges_primitives(path: &[String], field: &str) -> bool {
    matches!(list_type(path, field), ListType::Set { smp: true })
}

/// Objects that are replaced whole rather than merged field by field (`+structType=atomic`,
/// `+mapType=atomic`): label selectors, node selectors, object references.
pub(crate) fn is_atomic_object(path: &[String], field: &str) -> bool {
    let parent = path.last().map_or("", String::as_str);
    match field {
        "selector" | "nodeSelector" | "labelSelector" | "namespaceSelector" | "involvedObject"
        | "fieldRef" | "resourceFieldRef" | "configMapKeyRef" | "secretKeyRef" => true,
        "requiredDuringSchedulingIgnoredDuringExecution" => parent == "nodeAffinity",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ports_are_keyed_by_port_and_protocol() {
        let container = path(&["spec", "template", "spec", "containers"]);
        let ListType::Map { keys, .. } = list_type(&container, "ports") else { panic!("map list") };
        assert_eq!(keys.iter().map(|k| k.name).collect::<Vec<_>>(), ["containerPort", "protocol"]);
        assert_eq!(smp_merge_key(&container, "ports"), Some("containerPort"));
        assert_eq!(smp_merge_key(&path(&["spec"]), "ports"), Some("port"));
    }

    #[test]
    fn lists_without_a_strategy_are_atomic() {
        let container = path(&["spec", "containers"]);
        assert_eq!(list_type(&container, "args"), ListType::Atomic);
        assert_eq!(list_type(&path(&["spec"]), "tolerations"), ListType::Atomic);
        assert_eq!(list_type(&path(&["spec"]), "finalizers"), ListType::Atomic, "Namespace spec.finalizers");
        assert_eq!(list_type(&path(&["metadata"]), "finalizers"), ListType::Set { smp: true });
        assert_eq!(smp_merge_key(&path(&["spec", "containers"]), "resources"), None);
        assert_eq!(
            smp_merge_key(&path(&["spec", "containers", "resources"]), "claims"),
            None,
            "SSA-only map"
        );
    }

    #[test]
    fn selectors_are_atomic() {
        assert!(is_atomic_object(&path(&["spec"]), "selector"));
        assert!(is_atomic_object(&path(&["spec", "template", "spec"]), "nodeSelector"));
        assert!(!is_atomic_object(&path(&["spec"]), "template"));
    }
}
