//! Reading the ConfigMaps and Secrets a pod refers to (env, envFrom, volumes), as raw bytes:
//! ConfigMap `data` and `binaryData`, Secret `data` (base64-decoded) and `stringData`.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::{api::find_by_kind, client::Client};

/// The keys of a ConfigMap or Secret (`kind`) with their bytes; None if it does not exist.
pub async fn fetch(
    client: &Client,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let rt = find_by_kind("v1", kind).ok_or_else(|| format!("{kind} is not served"))?;
    let Some(obj) = client.get_opt(rt, Some(ns), name).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let decode = |field: &str, k: &str, raw: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| format!("{} {ns}/{name} {field} key {k} is not base64: {e}", kind.to_lowercase()))
    };
    let mut out = BTreeMap::new();
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        let raw = v.as_str().unwrap_or("");
        let value = if kind == "Secret" { decode("data", k, raw)? } else { raw.as_bytes().to_vec() };
        out.insert(k.clone(), value);
    }
    if kind == "ConfigMap" {
        for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
            out.insert(k.clone(), decode("binaryData", k, v.as_str().unwrap_or(""))?);
        }
    } else {
        for (k, v) in obj["stringData"].as_object().into_iter().flatten() {
            out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
        }
    }
    Ok(Some(out))
}
