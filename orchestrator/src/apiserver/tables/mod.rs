//! Server-side `Table` output (what `kubectl get` prints): the usual columns per kind, as
//! kube-apiserver's printers define them. Priority-1 columns show with `-o wide`. The workload
//! kinds' rows are in `workloads`, the service-discovery kinds' in `network`; the cluster
//! kinds and the helpers they share are here.

mod network;
mod workloads;

use serde_json::{Value, json};

pub use self::workloads::pod_status;
use crate::api::meta;

/// Render `items` of `kind` as a `meta.k8s.io/v1` Table.
pub fn table(kind: &str, items: &[Value], resource_version: u64) -> Value {
    let columns = columns(kind);
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            json!({
                "cells": cells(kind, obj),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]},
            })
        })
        .collect();
    let definitions: Vec<Value> = columns
        .iter()
        .map(|(name, priority)| {
            json!({"name": name, "type": "string", "format": if *name == "Name" { "name" } else { "" }, "description": "", "priority": priority})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version.to_string()},
           "columnDefinitions": definitions, "rows": rows})
}

fn columns(kind: &str) -> Vec<(&'static str, u8)> {
    if let Some(columns) = workloads::columns(kind).or_else(|| network::columns(kind)) {
        return columns;
    }
    match kind {
        "Node" => vec![
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("OS-Image", 1),
        ],
        "Namespace" => vec![("Name", 0), ("Status", 0), ("Age", 0)],
        "ConfigMap" => vec![("Name", 0), ("Data", 0), ("Age", 0)],
        "Secret" => vec![("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)],
        "Event" => vec![("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Message", 0)],
        _ => vec![("Name", 0), ("Age", 0)],
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cells(kind: &str, obj: &Value) -> Vec<Value> {
    let name = meta::name(obj).to_string();
    let age = age(&obj["metadata"]["creationTimestamp"]);
    let cells = workloads::cells(kind, obj, name.clone(), age.clone())
        .or_else(|| network::cells(kind, obj, name.clone(), age.clone()))
        .unwrap_or_else(|| cluster_cells(kind, obj, name, age));
    cells.into_iter().map(Value::String).collect()
}

/// Rows of the cluster kinds (Nodes, Namespaces, ConfigMaps, Secrets, Events) and the default
/// NAME/AGE row.
fn cluster_cells(kind: &str, obj: &Value, name: String, age: String) -> Vec<String> {
    let spec = &obj["spec"];
    let status = &obj["status"];
    match kind {
        "Node" => {
            let ready = status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["status"] == "True");
            let mut state = match ready {
                Some(true) => "Ready".to_string(),
                _ => "NotReady".to_string(),
            };
            if spec["unschedulable"].as_bool() == Some(true) {
                state.push_str(",SchedulingDisabled");
            }
            let ip = status["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                .map(|a| s(&a["address"]))
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                state,
                "<none>".into(),
                age,
                s(&status["nodeInfo"]["kubeletVersion"]),
                ip,
                s(&status["nodeInfo"]["osImage"]),
            ]
        }
        "Namespace" => vec![name, s(&status["phase"]), age],
        "ConfigMap" => {
            let n = obj["data"].as_object().map_or(0, |m| m.len())
                + obj["binaryData"].as_object().map_or(0, |m| m.len());
            vec![name, n.to_string(), age]
        }
        "Secret" => {
            vec![name, s(&obj["type"]), obj["data"].as_object().map_or(0, |m| m.len()).to_string(), age]
        }
        "Event" => {
            let seen =
                if obj["lastTimestamp"].is_string() { &obj["lastTimestamp"] } else { &obj["eventTime"] };
            let involved = &obj["involvedObject"];
            vec![
                age_of(seen),
                s(&obj["type"]),
                s(&obj["reason"]),
                format!("{}/{}", s(&involved["kind"]).to_lowercase(), s(&involved["name"])),
                s(&obj["message"]),
            ]
        }
        _ => vec![name, age],
    }
}

fn or_none(v: &Value) -> String {
    match v.as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "<none>".into(),
    }
}

fn containers_and_images(pod_spec: &Value) -> (String, String) {
    let containers = pod_spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = containers.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = containers.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn selector(sel: &Value) -> String {
    let parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    if parts.is_empty() { "<none>".into() } else { parts.join(",") }
}

fn age(ts: &Value) -> String {
    age_of(ts)
}

fn age_of(ts: &Value) -> String {
    let Some(t) = ts.as_str().and_then(meta::parse_time) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    human_duration(secs)
}

/// kubectl's `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        format!("{m}m{}s", secs % 60)
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        format!("{h}h{}m", m % 60)
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        format!("{d}d{}h", h % 24)
    } else {
        format!("{d}d")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(300), "5m0s");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(10 * 86400), "10d");
    }
}
