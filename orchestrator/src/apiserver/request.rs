//! Turning an HTTP request into what the handlers work on: the resource path (group, version,
//! namespace, plural, name, subresource), query options, and a decoded body with size and
//! format checks. Nothing here touches the store.

use axum::body::Body;
use http::HeaderMap;
use serde_json::Value;

use crate::api::{ApiError, ResourceType, resources, validate::MAX_BODY_BYTES};

/// A request path resolved against the resource table.
#[derive(Debug)]
pub struct ResourcePath {
    /// The resource type.
    pub rt: &'static ResourceType,
    /// Namespace from the path (None: cluster-scoped, or a list across all namespaces).
    pub namespace: Option<String>,
    /// Object name (None: the collection).
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `log`, `binding`).
    pub subresource: Option<String>,
}

/// Parse the segments after `/api/v1` or `/apis/{g}/{v}`.
pub fn parse_path(group: &str, version: &str, rest: &str) -> Result<ResourcePath, ApiError> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let lookup = |plural: &str| resources::find_by_plural(group, version, plural);
    let not_found = || ApiError::no_route(&format!("{group}/{version}/{rest}"));
    // `namespaces/{ns}/{plural}...` addresses namespaced objects, unless the third segment is a
    // subresource of the Namespace itself (`namespaces/x/status`).
    if segs.len() >= 3 && segs[0] == "namespaces" {
        if let Some(rt) = lookup(segs[2]).filter(|rt| rt.namespaced) {
            if segs.len() > 5 {
                return Err(not_found());
            }
            return Ok(ResourcePath {
                rt,
                namespace: Some(segs[1].to_string()),
                name: segs.get(3).map(|s| s.to_string()),
                subresource: segs.get(4).map(|s| s.to_string()),
            });
        }
    }
    let rt = segs.first().and_then(|p| lookup(p)).ok_or_else(not_found)?;
    if segs.len() > 3 || (rt.namespaced && segs.len() > 1) {
        return Err(not_found());
    }
    Ok(ResourcePath {
        rt,
        namespace: None,
        name: segs.get(1).map(|s| s.to_string()),
        subresource: segs.get(2).map(|s| s.to_string()),
    })
}

/// Query parameters as a map (decoded in the API crate, where it is fuzzed).
pub use crate::api::request::query_map;

/// Read the body with the size limit, as raw bytes.
pub async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError::too_large(MAX_BODY_BYTES))
}

/// Decode a JSON, YAML or Kubernetes protobuf body (by Content-Type) into a JSON value, with a
/// nesting limit. A protobuf body becomes the JSON of the same object (apiVersion and kind from
/// its envelope), so the type checks that follow are the JSON ones.
pub fn decode_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let content_type =
        headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    crate::api::request::decode_body(content_type, bytes)
}

/// Whether the client asked for a server-side Table (`kubectl get`).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|accept| {
        accept.split(',').any(|part| part.contains("as=Table") && part.contains("g=meta.k8s.io"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve() {
        let p = parse_path("", "v1", "namespaces/default/pods/web/log").expect("pod log");
        assert_eq!(
            (p.rt.kind, p.namespace.as_deref(), p.name.as_deref(), p.subresource.as_deref()),
            ("Pod", Some("default"), Some("web"), Some("log"))
        );
        let p = parse_path("", "v1", "namespaces/default").expect("namespace");
        assert_eq!((p.rt.kind, p.name.as_deref()), ("Namespace", Some("default")));
        let p = parse_path("", "v1", "namespaces/x/status").expect("namespace status");
        assert_eq!((p.rt.kind, p.subresource.as_deref()), ("Namespace", Some("status")));
        let p = parse_path("", "v1", "pods").expect("all pods");
        assert!(p.namespace.is_none() && p.name.is_none());
        assert!(parse_path("", "v1", "pods/x").is_err(), "namespaced objects need a namespace");
        assert!(parse_path("", "v1", "widgets").is_err());
        assert!(parse_path("apps", "v1", "namespaces/d/deployments/x/scale").is_ok());
    }

    fn with_type(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_str(content_type).expect("header"));
        h
    }

    #[test]
    fn bodies_by_content_type() {
        let json = decode_body(&with_type("application/json"), br#"{"kind":"Pod"}"#).expect("json");
        assert_eq!(json["kind"], "Pod");
        let yaml = decode_body(&with_type("application/yaml"), b"kind: Pod\n").expect("yaml");
        assert_eq!(yaml["kind"], "Pod");
        // `k8s\0`, typeMeta {v1, Namespace}, raw {metadata {name: team}}.
        let pb = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x08\x0a\x06\x0a\x04team";
        let ns = decode_body(&with_type("application/vnd.kubernetes.protobuf"), pb).expect("protobuf");
        assert_eq!(
            ns,
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
        );
        let garbage = decode_body(&with_type("application/vnd.kubernetes.protobuf"), b"\x00garbage");
        assert_eq!(garbage.map_err(|e| e.code), Err(400));
        let cbor = decode_body(&with_type("application/cbor"), b"\xa0").expect_err("cbor");
        assert_eq!(cbor.code, 415);
        assert!(cbor.message.contains("application/vnd.kubernetes.protobuf"), "{}", cbor.message);
    }

    #[test]
    fn query_decoding() {
        let q = query_map(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&x"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(query_map(Some("a=%zz%"))["a"], "%zz%");
    }
}
