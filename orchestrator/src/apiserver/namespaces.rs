//! Namespace deletion, as upstream: DELETE marks the namespace `Terminating` (refusing new
//! content with 403 from then on) and returns it; the namespace controller deletes everything
//! inside, then clears `spec.finalizers` through `/finalize`, which removes the namespace.
//! `default` and `kube-system` are protected.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::{ApiState, HttpError, blocking, handlers::typed, json_response};
use crate::{
    api::{ApiError, ResourceType, meta},
    store::Mutation,
};

fn namespaces() -> Result<&'static ResourceType, ApiError> {
    crate::api::find_by_kind("v1", "Namespace").ok_or_else(|| ApiError::internal("namespaces not served"))
}

fn no_finalizers_left(ns: &Value) -> bool {
    let empty = |v: &Value| v.as_array().is_none_or(|l| l.is_empty());
    empty(&ns["spec"]["finalizers"]) && empty(&ns["metadata"]["finalizers"])
}

/// `DELETE /api/v1/namespaces/{name}`.
pub async fn delete(state: &ApiState, name: &str) -> Result<Response, HttpError> {
    if name == "default" || name == "kube-system" {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        ))
        .into());
    }
    let rt = namespaces()?;
    let key = rt.key("", name);
    let store = state.store.clone();
    let owned = name.to_string();
    let stored = blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let mut ns = current.ok_or_else(|| ApiError::not_found("namespaces", &owned))?;
            if meta::is_terminating(&ns) {
                return Ok(Mutation::Keep);
            }
            // Namespaces stored before the controller existed lack its finalizer; without it
            // their contents would outlive them.
            if ns["spec"]["finalizers"].as_array().is_none_or(|l| l.is_empty()) {
                ns["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            meta::metadata_mut(&mut ns).insert("deletionTimestamp".into(), json!(meta::now()));
            ns["status"]["phase"] = json!("Terminating");
            Ok(Mutation::Put(ns))
        })
    })
    .await??
    .ok_or_else(|| ApiError::not_found("namespaces", name))?;
    Ok(json_response(StatusCode::OK, &typed(rt, stored)))
}

/// `PUT /api/v1/namespaces/{name}/finalize`: replace `spec.finalizers`; a terminating
/// namespace left without finalizers is removed.
pub async fn finalize(state: &ApiState, name: &str, body: Value) -> Result<Response, HttpError> {
    let rt = namespaces()?;
    let finalizers = match &body["spec"]["finalizers"] {
        Value::Null => json!([]),
        Value::Array(list) if list.iter().all(Value::is_string) => Value::Array(list.clone()),
        _ => {
            return Err(
                ApiError::invalid("Namespace", name, "spec.finalizers: must be a list of strings").into()
            );
        }
    };
    let key = rt.key("", name);
    let store = state.store.clone();
    let owned = name.to_string();
    let stored = blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let mut ns = current.ok_or_else(|| ApiError::not_found("namespaces", &owned))?;
            ns["spec"]["finalizers"] = finalizers;
            if meta::is_terminating(&ns) && no_finalizers_left(&ns) {
                Ok(Mutation::Delete)
            } else {
                Ok(Mutation::Put(ns))
            }
        })
    })
    .await??
    .ok_or_else(|| ApiError::not_found("namespaces", name))?;
    Ok(json_response(StatusCode::OK, &typed(rt, stored)))
}
