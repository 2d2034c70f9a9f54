//! Discovery documents (legacy `/api`, `/apis`, per group-version resource lists, `/version`)
//! and the OpenAPI v3 documents kubectl's `--validate=strict` looks for, all generated from the
//! resource table.

use serde_json::{Value, json};

use crate::api::resources::{self, RESOURCES, ResourceType};

pub(super) const VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "37", "gitVersion": format!("v1.37.0-wasmkube.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "", "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// `GET /api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

fn group_entry(group: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/v1"), "version": "v1"});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups().into_iter().map(group_entry).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, if served.
pub fn group(group: &str) -> Option<Value> {
    resources::groups().contains(&group).then(|| {
        let mut entry = group_entry(group);
        entry["kind"] = json!("APIGroup");
        entry["apiVersion"] = json!("v1");
        entry
    })
}

/// `kubectl get all` expands the `all` category from discovery.
pub(super) fn categories(rt: &ResourceType) -> Vec<&'static str> {
    if matches!(
        rt.kind,
        "Pod"
            | "Service"
            | "ReplicationController"
            | "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "CronJob"
    ) {
        vec!["all"]
    } else {
        vec![]
    }
}

fn resource_entries(rt: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
        "verbs": VERBS, "shortNames": rt.short_names,
        "categories": categories(rt),
    })];
    for sub in rt.subresources {
        let (kind, group, version, verbs): (&str, &str, &str, &[&str]) = match *sub {
            "scale" => ("Scale", "autoscaling", "v1", &["get", "patch", "update"]),
            "log" => ("Pod", "", "v1", &["get"]),
            "binding" => ("Binding", "", "v1", &["create"]),
            "finalize" => (rt.kind, rt.group, rt.version, &["update"]),
            _ => (rt.kind, rt.group, rt.version, &["get", "patch", "update"]),
        };
        let mut entry = json!({"name": format!("{}/{sub}", rt.plural), "singularName": "", "namespaced": rt.namespaced, "kind": kind, "verbs": verbs});
        if *sub == "scale" {
            entry["group"] = json!(group);
            entry["version"] = json!(version);
        }
        out.push(entry);
    }
    out
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = resources::in_group_version(group, version).flat_map(resource_entries).collect();
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}

fn gv_key(group: &str) -> String {
    if group.is_empty() { "api/v1".into() } else { format!("apis/{group}/v1") }
}

/// `GET /openapi/v3`: where each group-version's document lives.
pub fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut groups = vec![""];
    groups.extend(resources::groups());
    for g in groups {
        let key = gv_key(g);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", env!("CARGO_PKG_VERSION"))}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/{api/v1 | apis/g/v}`: one operation per verb and path, each naming its
/// group-version-kind and declaring the `fieldValidation` parameter (what kubectl's validator
/// checks). Schemas are left open: the server validates types itself.
pub fn openapi_document(gv_path: &str) -> Option<Value> {
    let rts: Vec<&ResourceType> = RESOURCES.iter().filter(|rt| gv_key(rt.group) == gv_path).collect();
    if rts.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for rt in rts {
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}, "description": "Strict, Warn or Ignore: how unknown fields are handled"},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        ]);
        let body = |types: &[&str]| {
            let content: serde_json::Map<String, Value> =
                types.iter().map(|t| (t.to_string(), json!({"schema": {"type": "object"}}))).collect();
            json!({"content": content})
        };
        let op = |verb: &str, types: Option<&[&str]>| {
            let mut o = json!({"x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {"200": {"description": "OK"}}});
            if let Some(t) = types {
                o["requestBody"] = body(t);
            }
            o
        };
        let base = format!("/{}{}", gv_path, if rt.namespaced { "/namespaces/{namespace}" } else { "" });
        let collection = format!("{base}/{}", rt.plural);
        paths.insert(collection.clone(), json!({"get": op("list", None), "post": op("post", Some(&["application/json", "application/yaml"]))}));
        paths.insert(format!("{collection}/{{name}}"), json!({
            "get": op("get", None),
            "put": op("put", Some(&["application/json", "application/yaml"])),
            "delete": op("delete", None),
            "patch": op("patch", Some(&["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"])),
        }));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "wasmkube", "version": env!("CARGO_PKG_VERSION")}, "paths": paths, "components": {"schemas": {}}}),
    )
}
