//! Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): the one-request
//! form of discovery kubectl asks for first on `/api` and `/apis`. Served with an `ETag` so a
//! client holding the document gets `304 Not Modified`, as upstream's aggregated handler does.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::resources::{self, ResourceType};

/// The media type of an aggregated discovery document.
pub const CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Does the Accept header list the aggregated v2 form (before plain JSON or not at all)?
/// Parameter order does not matter, as in client-go's `ContentTypeIsGVK`.
pub fn wanted(headers: &HeaderMap) -> bool {
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
    for range in accept.flat_map(|a| a.split(',')) {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| pk.trim() == k && pv.trim() == v);
        if media == "application/json"
            && has("g", "apidiscovery.k8s.io")
            && has("v", "v2")
            && has("as", "APIGroupDiscoveryList")
        {
            return true;
        }
        // The first acceptable plain type wins when it is listed before the aggregated one.
        if matches!(media, "application/json" | "*/*") && params.is_empty() {
            return false;
        }
    }
    false
}

fn verbs_of(sub: &str) -> (&'static [&'static str], Option<(&'static str, &'static str, &'static str)>) {
    match sub {
        "scale" => (&["get", "patch", "update"], Some(("autoscaling", "v1", "Scale"))),
        "log" => (&["get"], Some(("", "v1", "Pod"))),
        "binding" => (&["create"], Some(("", "v1", "Binding"))),
        "finalize" => (&["update"], None),
        _ => (&["get", "patch", "update"], None),
    }
}

fn resource(rt: &ResourceType) -> Value {
    let subresources: Vec<Value> = rt
        .subresources
        .iter()
        .map(|sub| {
            let (verbs, kind) = verbs_of(sub);
            let (group, version, kind) = kind.unwrap_or((rt.group, rt.version, rt.kind));
            json!({"subresource": sub, "responseKind": {"group": group, "version": version, "kind": kind}, "verbs": verbs})
        })
        .collect();
    json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": super::discovery::VERBS,
        "shortNames": rt.short_names,
        "categories": super::discovery::categories(rt),
        "subresources": subresources,
    })
}

fn group_item(group: &str) -> Value {
    let served: Vec<Value> = resources::in_group_version(group, "v1").map(resource).collect();
    json!({
        "metadata": {"name": group},
        "versions": [{"version": "v1", "freshness": "Current", "resources": served}],
    })
}

/// The document for `/api` (the core group, named "") or `/apis` (every other group).
pub fn document(core: bool) -> Value {
    let items: Vec<Value> =
        if core { vec![group_item("")] } else { resources::groups().into_iter().map(group_item).collect() };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Serve `document(core)`, or 304 when the client's `If-None-Match` names its ETag.
pub fn respond(core: bool, headers: &HeaderMap) -> Response {
    let body = serde_json::to_vec(&document(core)).unwrap_or_default();
    // Upstream's ETag is a hash of the document in quotes; the same shape here.
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn negotiation_follows_the_accept_order() {
        assert!(wanted(&accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        )));
        assert!(wanted(&accept("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io")));
        assert!(wanted(&accept(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer,application/json"
        )));
        assert!(!wanted(&accept("application/json")));
        assert!(!wanted(&accept("application/json, */*")));
        assert!(!wanted(&accept(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        )));
        assert!(!wanted(&HeaderMap::new()));
    }

    #[test]
    fn deployments_list_scale_as_autoscaling_v1() {
        let doc = document(false);
        let apps = doc["items"].as_array().and_then(|i| i.iter().find(|g| g["metadata"]["name"] == "apps"));
        let deploy = apps.and_then(|g| {
            g["versions"][0]["resources"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["resource"] == "deployments"))
        });
        let deploy = deploy.expect("deployments served");
        assert_eq!(deploy["scope"], "Namespaced");
        let scale =
            deploy["subresources"].as_array().and_then(|s| s.iter().find(|s| s["subresource"] == "scale"));
        assert_eq!(
            scale.expect("scale")["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let core = document(true);
        assert_eq!(core["items"][0]["metadata"]["name"], "");
    }

    #[test]
    fn service_discovery_groups_are_listed_with_their_scope_and_status() {
        let doc = document(false);
        let resource = |group: &str, plural: &str| {
            doc["items"]
                .as_array()
                .and_then(|i| i.iter().find(|g| g["metadata"]["name"] == group))
                .and_then(|g| g["versions"][0]["resources"].as_array())
                .and_then(|r| r.iter().find(|r| r["resource"] == plural))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(resource("discovery.k8s.io", "endpointslices")["responseKind"]["kind"], "EndpointSlice");
        let ingresses = resource("networking.k8s.io", "ingresses");
        assert_eq!(ingresses["shortNames"], json!(["ing"]));
        assert_eq!(ingresses["subresources"][0]["subresource"], "status");
        assert_eq!(resource("networking.k8s.io", "ingressclasses")["scope"], "Cluster");
        let core = document(true);
        let endpoints = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["resource"] == "endpoints"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(endpoints["shortNames"], json!(["ep"]));
        assert!(super::super::discovery::openapi_document("apis/networking.k8s.io/v1").is_some());
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let first = respond(false, &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers().get(header::ETAG).expect("etag").clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(respond(false, &h).status(), StatusCode::NOT_MODIFIED);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(respond(false, &h).status(), StatusCode::OK);
    }
}
