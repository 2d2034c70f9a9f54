//! Server-side apply over HTTP (`PATCH` with `application/apply-patch+yaml`, on an object or its
//! `/status`), and the field manager every write is recorded under: the `fieldManager` query
//! parameter or the product name of the User-Agent, checked as kube-apiserver checks
//! Create/Update/PatchOptions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{body::Body, response::Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{
    ApiState, HttpError, blocking,
    handlers::{self, FieldValidation},
    json_response, request,
    request::ResourcePath,
};
use crate::{
    api::{
        ApiError, ResourceType,
        apply::{self, FieldManager},
        meta,
        validate::{self, WriteScope},
    },
    store::Mutation,
};

/// The content type of an apply configuration (YAML, of which JSON is a subset).
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Longest field manager name upstream accepts.
const MAX_MANAGER_LEN: usize = 128;

/// Whether a PATCH is a server-side apply.
pub(super) fn is_apply(headers: &HeaderMap) -> bool {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim() == APPLY_PATCH
}

/// A 422 about a request option, worded as upstream words it:
/// `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: ...`.
fn invalid_option(options: &str, field: &str, reason: &str, detail: String) -> ApiError {
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{options}.meta.k8s.io \"\" is invalid: {field}: {detail}"),
        details: Some(json!({"group": "meta.k8s.io", "kind": options,
            "causes": [{"reason": reason, "message": detail, "field": field}]})),
    }
}

/// The manager a write is recorded under: `fieldManager`, else what the User-Agent names before
/// its first `/` (`kubectl/v1.37.1 (linux/amd64) ...` is `kubectl`), printable characters only.
/// `options` names the request's options kind for errors (`CreateOptions`, ...).
pub(super) fn manager_name(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    options: &str,
) -> Result<String, ApiError> {
    if let Some(name) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        if name.len() > MAX_MANAGER_LEN {
            return Err(invalid_option(
                options,
                "fieldManager",
                "FieldValueTooLong",
                format!("Too long: may not be more than {MAX_MANAGER_LEN} bytes"),
            ));
        }
        if let Some((i, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
            return Err(invalid_option(
                options,
                "fieldManager",
                "FieldValueInvalid",
                format!("Invalid value: {name:?}: invalid character {c:?} (at position {i})"),
            ));
        }
        return Ok(name.clone());
    }
    let agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut out = String::new();
    for c in agent.split('/').next().unwrap_or("").chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_MANAGER_LEN {
            break;
        }
        out.push(c);
    }
    Ok(out)
}

/// Who a write through `path` is recorded as.
pub(super) fn field_manager(path: &ResourcePath, name: String) -> FieldManager {
    FieldManager {
        name,
        subresource: path.subresource.clone(),
        api_version: path.rt.api_version(),
        status_subresource: path.rt.has_subresource("status"),
        now: meta::now(),
    }
}

/// `force` is for apply only; apply needs a `fieldManager` (upstream's ValidatePatchOptions).
pub(super) fn check_patch_options(query: &HashMap<String, String>, apply: bool) -> Result<bool, ApiError> {
    let force = match query.get("force").map(String::as_str) {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0" | "") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!("force must be true or false, got {other:?}")));
        }
    };
    if !apply && force.is_some() {
        return Err(invalid_option(
            "PatchOptions",
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch".into(),
        ));
    }
    if apply && query.get("fieldManager").is_none_or(String::is_empty) {
        return Err(invalid_option(
            "PatchOptions",
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch".into(),
        ));
    }
    Ok(force.unwrap_or(false))
}

/// `dryRun=All`: everything but the store write.
pub(super) fn dry_run(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(invalid_option(
            "PatchOptions",
            "dryRun",
            "FieldValueNotSupported",
            format!("Unsupported value: {other:?}: supported values: \"All\""),
        )),
    }
}

/// The apply configuration: JSON (what kubectl sends) or YAML, one object.
fn decode_config(bytes: &[u8]) -> Result<Value, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let decoded = match first {
        None => return Err(ApiError::bad_request("the apply configuration is empty")),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some(_) => std::str::from_utf8(bytes)
            .map_err(|_| "the YAML is not valid UTF-8".to_string())
            .and_then(crate::api::yaml::from_str_single),
    };
    match decoded {
        Ok(config @ Value::Object(_)) => Ok(config),
        Ok(_) => Err(ApiError::bad_request("error decoding YAML: the apply configuration must be an object")),
        Err(e) => Err(ApiError::bad_request(format!("error decoding YAML: {e}"))),
    }
}

/// The configuration must name this resource's kind and version and the object of the URL.
fn check_config(rt: &ResourceType, path: &ResourcePath, config: &Value) -> Result<(), ApiError> {
    let api_version = config["apiVersion"].as_str().unwrap_or("");
    let kind = config["kind"].as_str().unwrap_or("");
    if api_version != rt.api_version() || kind != rt.kind {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        return Err(ApiError::bad_request(format!("invalid object type: {group}/{version}, Kind={kind}")));
    }
    let name = meta::name(config);
    let url_name = path.name.as_deref().unwrap_or("");
    if name != url_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    let namespace = meta::namespace(config);
    if rt.namespaced && !namespace.is_empty() && Some(namespace) != path.namespace.as_deref() {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// What the store transaction found out, for the response.
#[derive(Default)]
struct Outcome {
    created: bool,
    unknown: Vec<String>,
    /// The object a dry run would have stored.
    dry: Option<Value>,
}

/// `PATCH` with an apply configuration: create the object (201) or merge into it (200), as
/// `fieldManager`, `force=true` taking over conflicting fields.
pub(super) async fn apply(
    state: &ApiState,
    path: &ResourcePath,
    query: &HashMap<String, String>,
    body: Body,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    let force = check_patch_options(query, true)?;
    let dry_run = dry_run(query)?;
    let validation = FieldValidation::from_query(query)?;
    let who = field_manager(path, query.get("fieldManager").cloned().unwrap_or_default());
    let config = decode_config(&request::read_body(body).await?)?;
    check_config(rt, path, &config)?;
    let name = path.name.clone().unwrap_or_default();
    let namespace = path.namespace.clone();
    let key = rt.key(namespace.as_deref().unwrap_or(""), &name);
    // Only a create needs a live namespace; updates go on in a terminating one, as upstream.
    let store = state.store.clone();
    let probe = key.clone();
    if blocking(move || store.get(&probe)).await??.is_none() {
        handlers::check_namespace(state, rt, namespace.as_deref()).await?;
    }
    let scope =
        if path.subresource.as_deref() == Some("status") { WriteScope::Status } else { WriteScope::Main };
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let report = outcome.clone();
    let store = state.store.clone();
    let allocation = super::services::begin(
        state,
        rt,
        namespace.as_deref().unwrap_or(""),
        &name,
        scope == WriteScope::Status,
    )
    .await?;
    let stored = blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
            let refused = |e: apply::ApplyError| e.into_api_error(rt.kind, &name);
            let next = match current {
                None if scope == WriteScope::Status => {
                    return Err(ApiError::not_found(&rt.qualified(), &name));
                }
                None => {
                    let merged = apply::apply(None, &config, &who, force).map_err(refused)?;
                    report.unknown = validation.check(rt, &merged)?;
                    report.created = true;
                    let mut created = validate::prepare_create(rt, namespace.as_deref(), merged)?;
                    if let Some(allocation) = &allocation {
                        allocation.admit(None, &mut created)?;
                    }
                    created
                }
                Some(current) => {
                    let merged = apply::apply(Some(&current), &config, &who, force).map_err(refused)?;
                    report.unknown = validation.check(rt, &merged)?;
                    handlers::check_precondition(rt, &current, &merged)?;
                    // Admission of a /status write starts from the live metadata; the
                    // ownership just computed must survive it.
                    let managed = merged["metadata"].get("managedFields").cloned();
                    let mut next = validate::prepare_update(rt, &current, merged, scope)?;
                    if let Some(allocation) = &allocation {
                        allocation.admit(Some(&current), &mut next)?;
                    }
                    match managed {
                        Some(m) => meta::metadata_mut(&mut next).insert("managedFields".into(), m),
                        None => meta::metadata_mut(&mut next).remove("managedFields"),
                    };
                    if next == current {
                        // Nothing changed, not even ownership: no write, no new resourceVersion.
                        return Ok(Mutation::Keep);
                    }
                    next
                }
            };
            if dry_run {
                report.dry = Some(next);
                return Ok(Mutation::Keep);
            }
            Ok(if report.created { Mutation::Put(next) } else { handlers::store_or_finish(next) })
        })
    })
    .await??;
    let outcome = std::mem::take(&mut *outcome.lock().unwrap_or_else(|p| p.into_inner()));
    let obj = outcome
        .dry
        .or(stored)
        .ok_or_else(|| ApiError::not_found(&rt.qualified(), path.name.as_deref().unwrap_or("")))?;
    let code = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(handlers::with_warnings(json_response(code, &handlers::typed(rt, obj)), &outcome.unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn manager_comes_from_the_query_or_the_user_agent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::USER_AGENT,
            "kubectl/v1.37.1 (linux/amd64) kubernetes/abc".parse().expect("ua"),
        );
        assert_eq!(manager_name(&query(&[]), &headers, "CreateOptions").expect("ok"), "kubectl");
        let q = query(&[("fieldManager", "kubectl-edit")]);
        assert_eq!(manager_name(&q, &headers, "CreateOptions").expect("ok"), "kubectl-edit");
        assert_eq!(manager_name(&query(&[]), &HeaderMap::new(), "CreateOptions").expect("ok"), "");
        let long = "x".repeat(129);
        let err =
            manager_name(&query(&[("fieldManager", &long)]), &headers, "UpdateOptions").expect_err("long");
        assert_eq!(err.code, 422);
        assert!(err.message.starts_with("UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long"));
    }

    #[test]
    fn patch_options_are_checked_like_upstream() {
        let err = check_patch_options(&query(&[]), true).expect_err("no manager");
        assert_eq!(
            err.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        assert_eq!(err.code, 422);
        let err = check_patch_options(&query(&[("force", "true")]), false).expect_err("force");
        assert!(err.message.contains("force: Forbidden: may not be specified for non-apply patch"));
        assert_eq!(
            check_patch_options(&query(&[("fieldManager", "m"), ("force", "true")]), true).ok(),
            Some(true)
        );
        assert!(dry_run(&query(&[("dryRun", "Some")])).is_err());
    }

    #[test]
    fn configurations_decode_from_json_or_yaml() {
        assert_eq!(decode_config(br#" {"a": 1}"#).expect("json")["a"], 1);
        assert_eq!(decode_config(b"a: [1, 2]\n").expect("yaml")["a"][1], 2);
        assert_eq!(decode_config(b"- 1\n").expect_err("list").code, 400);
        assert_eq!(decode_config(b"  ").expect_err("empty").code, 400);
        assert_eq!(decode_config(b"{nope").expect_err("bad").code, 400);
    }
}
