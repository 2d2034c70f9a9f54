//! Namespace deletion: everything inside is deleted (pods gracefully, through their agents),
//! then the namespace itself. `default` and `kube-system` are protected, as upstream does.

use crate::apiserver::HttpError;
use axum::response::Response;
use http::StatusCode;

use super::{ApiState, blocking, handlers, json_response, request::ResourcePath};
use crate::{
    api::{ApiError, meta, resources::RESOURCES, status::success_status},
    store::Mutation,
};

/// `DELETE /api/v1/namespaces/{name}`.
pub async fn delete(state: &ApiState, name: &str) -> Result<Response, HttpError> {
    if name == "default" || name == "kube-system" {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        ))
        .into());
    }
    let namespaces = crate::api::find_by_kind("v1", "Namespace")
        .ok_or_else(|| ApiError::internal("namespaces not served"))?;
    let key = namespaces.key("", name);
    let store = state.store.clone();
    let owned = name.to_string();
    // Mark it terminating first so nothing new is created inside while we empty it.
    blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let mut ns = current.ok_or_else(|| ApiError::not_found("namespaces", &owned))?;
            if meta::is_terminating(&ns) {
                return Ok(Mutation::Keep);
            }
            meta::metadata_mut(&mut ns).insert("deletionTimestamp".into(), serde_json::json!(meta::now()));
            ns["status"]["phase"] = serde_json::json!("Terminating");
            Ok(Mutation::Put(ns))
        })
    })
    .await??;
    for rt in RESOURCES.iter().filter(|r| r.namespaced) {
        let prefix = rt.namespace_prefix(Some(name));
        let store = state.store.clone();
        let (items, _) = blocking(move || store.list(&prefix)).await??;
        for obj in items {
            let path = ResourcePath {
                rt,
                namespace: Some(name.to_string()),
                name: Some(meta::name(&obj).to_string()),
                subresource: None,
            };
            // Boxed: deleting a namespace deletes objects through the generic delete, which
            // itself dispatches namespaces here.
            match Box::pin(handlers::delete(state, &path, handlers::DeleteOptions::default())).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
    }
    let key = namespaces.key("", name);
    let store = state.store.clone();
    let gone = blocking(move || store.mutate::<ApiError, _>(&key, move |_| Ok(Mutation::Delete))).await??;
    let uid = gone.as_ref().map(|o| meta::uid(o).to_string()).unwrap_or_default();
    Ok(json_response(StatusCode::OK, &success_status(name, "", "namespaces", &uid)))
}
