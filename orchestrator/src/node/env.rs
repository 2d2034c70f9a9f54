//! A container's environment from its Pod spec: literal values, the downward API (pod name,
//! namespace, uid, IPs, node name, labels/annotations), and ConfigMap/Secret keys (`env` and
//! `envFrom`, with `optional`). Missing required sources are errors the kubelet reports as
//! `CreateContainerConfigError`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{api::meta, client::Client};

/// Resolve every variable of `container` in `pod`, whose IP is `pod_ip`; `service_vars` (see
/// `service_env`) are added where the container does not define the same name, and its
/// `$(VAR)` references may use them.
pub async fn resolve(
    client: &Client,
    pod: &Value,
    container: &Value,
    (pod_ip, host_ip): (&str, &str),
    service_vars: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, String> {
    let ns = meta::namespace(pod);
    let mut vars: Vec<(String, String)> = Vec::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or("");
        let (kind, reference) = if source["configMapRef"].is_object() {
            ("ConfigMap", &source["configMapRef"])
        } else {
            ("Secret", &source["secretRef"])
        };
        let optional = reference["optional"].as_bool() == Some(true);
        let name = reference["name"].as_str().unwrap_or("");
        match fetch_data(client, kind, ns, name).await? {
            Some(data) => {
                for (k, v) in data {
                    set(format!("{prefix}{k}"), v, &mut vars);
                }
            }
            None if optional => {}
            None => return Err(format!("{} \"{name}\" not found", kind.to_lowercase())),
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or("").to_string();
        if name.is_empty() {
            continue;
        }
        if let Some(v) = var["value"].as_str() {
            let value = expand(&expand(v, &vars), &service_vars);
            set(name, value, &mut vars);
            continue;
        }
        let from = &var["valueFrom"];
        let value = if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            Some(
                field_ref(pod, path, pod_ip, host_ip)
                    .ok_or_else(|| format!("env {name}: unsupported fieldRef {path:?}"))?,
            )
        } else if from["configMapKeyRef"].is_object() || from["secretKeyRef"].is_object() {
            let (kind, r) = if from["configMapKeyRef"].is_object() {
                ("ConfigMap", &from["configMapKeyRef"])
            } else {
                ("Secret", &from["secretKeyRef"])
            };
            let optional = r["optional"].as_bool() == Some(true);
            let (obj_name, key) = (r["name"].as_str().unwrap_or(""), r["key"].as_str().unwrap_or(""));
            match fetch_data(client, kind, ns, obj_name).await?.and_then(|mut d| d.remove(key)) {
                Some(v) => Some(v),
                None if optional => None,
                None => {
                    return Err(format!("couldn't find key {key} in {} {ns}/{obj_name}", kind));
                }
            }
        } else {
            None
        };
        if let Some(v) = value {
            set(name, v, &mut vars);
        }
    }
    for (name, value) in service_vars {
        if !vars.iter().any(|(defined, _)| *defined == name) {
            vars.push((name, value));
        }
    }
    Ok(vars)
}

/// Set a variable; a later definition replaces an earlier one, as in Kubernetes.
fn set(k: String, v: String, vars: &mut Vec<(String, String)>) {
    vars.retain(|(existing, _)| *existing != k);
    vars.push((k, v));
}

/// `$(VAR)` expansion of earlier variables, as Kubernetes does for `value`.
fn expand(value: &str, vars: &[(String, String)]) -> String {
    let mut out = value.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

fn field_ref(pod: &Value, path: &str, pod_ip: &str, host_ip: &str) -> Option<String> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    Some(match path {
        "metadata.name" => meta::name(pod).to_string(),
        "metadata.namespace" => meta::namespace(pod).to_string(),
        "metadata.uid" => meta::uid(pod).to_string(),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        p if p.starts_with("metadata.labels['") => {
            s(&pod["metadata"]["labels"][p.trim_start_matches("metadata.labels['").trim_end_matches("']")])
        }
        p if p.starts_with("metadata.annotations['") => s(&pod["metadata"]["annotations"]
            [p.trim_start_matches("metadata.annotations['").trim_end_matches("']")]),
        _ => return None,
    })
}

/// The data of a ConfigMap or Secret as text (invalid UTF-8 replaced), None if it does not exist.
async fn fetch_data(
    client: &Client,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let data = super::sources::fetch(client, kind, ns, name).await?;
    Ok(data.map(|d| d.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn downward_api_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}});
        assert_eq!(field_ref(&pod, "metadata.name", "1", "2").as_deref(), Some("p"));
        assert_eq!(field_ref(&pod, "status.podIP", "127.64.0.2", "2").as_deref(), Some("127.64.0.2"));
        assert_eq!(field_ref(&pod, "metadata.labels['app']", "", "").as_deref(), Some("web"));
        assert_eq!(field_ref(&pod, "spec.nodeName", "", "").as_deref(), Some("n1"));
        assert!(field_ref(&pod, "spec.bogus", "", "").is_none());
    }

    #[test]
    fn expansion_uses_earlier_vars() {
        let vars = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)", &vars), "x-$(B)");
    }
}
