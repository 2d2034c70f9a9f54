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

/// Decode a JSON or YAML body (by Content-Type) into a JSON value, with a nesting limit.
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
}
