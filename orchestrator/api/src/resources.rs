//! The table of resources the API serves: group, version, kind, plural, scope, short names and
//! subresources. Discovery, OpenAPI, routing and storage keys are all derived from this one list.

use serde_json::Value;

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    /// API group; "" for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind, e.g. `Pod`.
    pub kind: &'static str,
    /// Plural resource name used in paths, e.g. `pods`.
    pub plural: &'static str,
    /// Singular name, e.g. `pod`.
    pub singular: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Subresources served (`status`, `scale`, `log`, `binding`).
    pub subresources: &'static [&'static str],
    /// Whether `metadata.generation` tracks spec changes.
    pub tracks_generation: bool,
    /// Type check of a whole object against the upstream Kubernetes type; on success, the
    /// paths of fields the type does not know (for `fieldValidation`).
    pub type_check: fn(&Value) -> Result<Vec<String>, String>,
}

impl ResourceType {
    /// `apiVersion` value, e.g. `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`, as kube-apiserver names resources in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// URL prefix of this group-version, `/api/v1` or `/apis/apps/v1`.
    pub fn gv_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Storage key prefix of all objects of this type.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() { "core" } else { self.group };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// Storage key of one object (namespace ignored for cluster-scoped types).
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{namespace}/{name}", self.key_prefix())
        } else {
            format!("{}{name}", self.key_prefix())
        }
    }

    /// Storage key prefix for one namespace (or all objects, for cluster-scoped types).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether a subresource is served.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

fn check<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<Vec<String>, String> {
    let typed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() { inner } else { format!("{path}: {inner}") }
    })?;
    // The upstream types drop what they do not know: whatever the input has and the typed
    // round trip lost is an unknown field.
    let known = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    lost_fields(value, &known, "", &mut unknown);
    Ok(unknown)
}

/// Paths present (and not null) in `input` but absent from `known`.
fn lost_fields(input: &Value, known: &Value, at: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, value) in i {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                match k.get(key) {
                    Some(kv) => lost_fields(value, kv, &path, out),
                    None if !value.is_null() => out.push(path),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                lost_fields(iv, kv, &format!("{at}[{n}]"), out);
            }
        }
        _ => {}
    }
}

use k8s_openapi::api::{
    apps::v1 as apps, batch::v1 as batch, core::v1 as core, discovery::v1 as discovery,
    networking::v1 as networking,
};

/// Every resource type we serve.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        subresources: &["status", "finalize"],
        tracks_generation: false,
        type_check: check::<core::Namespace>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        subresources: &["status"],
        tracks_generation: false,
        type_check: check::<core::Node>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        subresources: &["status", "log", "binding"],
        tracks_generation: false,
        type_check: check::<core::Pod>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        subresources: &[],
        tracks_generation: false,
        type_check: check::<core::Event>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        subresources: &[],
        tracks_generation: false,
        type_check: check::<core::ConfigMap>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        tracks_generation: false,
        type_check: check::<core::Secret>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        subresources: &["status"],
        tracks_generation: false,
        type_check: check::<core::Service>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        subresources: &[],
        tracks_generation: false,
        type_check: check::<core::Endpoints>,
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "ReplicationController",
        plural: "replicationcontrollers",
        singular: "replicationcontroller",
        namespaced: true,
        short_names: &["rc"],
        subresources: &["status", "scale"],
        tracks_generation: true,
        type_check: check::<core::ReplicationController>,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        subresources: &["status", "scale"],
        tracks_generation: true,
        type_check: check::<apps::Deployment>,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        subresources: &["status", "scale"],
        tracks_generation: true,
        type_check: check::<apps::ReplicaSet>,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        singular: "daemonset",
        namespaced: true,
        short_names: &["ds"],
        subresources: &["status"],
        tracks_generation: true,
        type_check: check::<apps::DaemonSet>,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "ControllerRevision",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        tracks_generation: false,
        type_check: check::<apps::ControllerRevision>,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
        singular: "job",
        namespaced: true,
        short_names: &[],
        subresources: &["status"],
        tracks_generation: true,
        type_check: check::<batch::Job>,
    },
    ResourceType {
        group: "batch",
        version: "v1",
        kind: "CronJob",
        plural: "cronjobs",
        singular: "cronjob",
        namespaced: true,
        short_names: &["cj"],
        subresources: &["status"],
        tracks_generation: true,
        type_check: check::<batch::CronJob>,
    },
    ResourceType {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        subresources: &[],
        tracks_generation: false,
        type_check: check::<discovery::EndpointSlice>,
    },
    ResourceType {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        singular: "ingress",
        namespaced: true,
        short_names: &["ing"],
        subresources: &["status"],
        tracks_generation: true,
        type_check: check::<networking::Ingress>,
    },
    ResourceType {
        group: "networking.k8s.io",
        version: "v1",
        kind: "IngressClass",
        plural: "ingressclasses",
        singular: "ingressclass",
        namespaced: false,
        short_names: &[],
        subresources: &[],
        tracks_generation: true,
        type_check: check::<networking::IngressClass>,
    },
];

/// The resource served at `group`/`version` under `plural`.
pub fn find_by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource for an `apiVersion` + `kind` pair (as written in manifests).
pub fn find_by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The resource a CLI user means by `pods`, `pod`, `po`, `deploy`, `deployments.apps`, `Pod`...
pub fn find_by_cli_name(name: &str) -> Option<&'static ResourceType> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (lower, None),
    };
    RESOURCES.iter().find(|r| {
        let name_matches = r.plural == base
            || r.singular == base
            || r.kind.eq_ignore_ascii_case(&base)
            || r.short_names.contains(&base.as_str());
        name_matches && group.as_deref().is_none_or(|g| g == r.group)
    })
}

/// All group names other than core, in a stable order.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

/// All resources of one group-version.
pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceType> {
    let group = group.to_string();
    let version = version.to_string();
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cli_names_resolve() {
        assert_eq!(find_by_cli_name("po").map(|r| r.kind), Some("Pod"));
        assert_eq!(find_by_cli_name("deploy").map(|r| r.kind), Some("Deployment"));
        assert_eq!(find_by_cli_name("deployments.apps").map(|r| r.kind), Some("Deployment"));
        assert_eq!(find_by_cli_name("Deployment").map(|r| r.kind), Some("Deployment"));
        assert!(find_by_cli_name("deployments.batch").is_none());
        assert_eq!(find_by_cli_name("ep").map(|r| r.kind), Some("Endpoints"));
        assert_eq!(find_by_cli_name("ing").map(|r| r.kind), Some("Ingress"));
        assert_eq!(find_by_cli_name("endpointslices").map(|r| r.group), Some("discovery.k8s.io"));
        assert_eq!(find_by_cli_name("ingressclass").map(|r| r.namespaced), Some(false));
    }

    #[test]
    fn keys_do_not_collide_across_namespaces() {
        let pods = find_by_plural("", "v1", "pods").expect("pods");
        assert_eq!(pods.key("default", "a"), "/registry/core/pods/default/a");
        assert!(!pods.key("default2", "a").starts_with(&pods.namespace_prefix(Some("default"))));
    }

    #[test]
    fn type_check_names_the_field() {
        let deploy = find_by_kind("apps/v1", "Deployment").expect("deployment");
        let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": "three", "selector": {}, "template": {}}});
        let err = (deploy.type_check)(&bad).expect_err("replicas is a string");
        assert!(err.contains("spec.replicas"), "{err}");
    }

    #[test]
    fn type_check_reports_unknown_fields() {
        let deploy = find_by_kind("apps/v1", "Deployment").expect("deployment");
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"replicass": 2, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Never", "bogus": true, "env": null}]}}},
            "status": {}});
        let unknown = (deploy.type_check)(&obj).expect("well typed");
        assert_eq!(unknown, ["spec.replicass", "spec.template.spec.containers[0].bogus"]);
    }
}
