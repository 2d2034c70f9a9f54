//! Create, read, update, patch, delete and list of objects: the verbs, their status codes and
//! their optimistic-concurrency rules, as kube-apiserver implements them.

use crate::apiserver::HttpError;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{ApiState, apply::field_manager, blocking, json_response, request::ResourcePath};
use crate::{
    api::{
        ApiError, ResourceType,
        apply::track_update,
        meta,
        patch::{self, PatchType},
        selectors::{FieldSelector, LabelSelector},
        validate::{self, WriteScope},
    },
    store::{Mutation, StoreError},
};

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Expired { requested, oldest } => {
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

pub(super) fn name_of(path: &ResourcePath) -> &str {
    path.name.as_deref().unwrap_or("")
}

pub(super) fn key_of(path: &ResourcePath) -> String {
    path.rt.key(path.namespace.as_deref().unwrap_or(""), name_of(path))
}

/// Stamp `apiVersion`/`kind` (never trust what was stored to have them).
pub(super) fn typed(rt: &ResourceType, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
    obj
}

/// `GET` one object (as a Table when kubectl asks for one).
pub async fn get(state: &ApiState, path: &ResourcePath, want_table: bool) -> Result<Response, HttpError> {
    let key = key_of(path);
    let store = state.store.clone();
    let obj = blocking(move || store.get(&key))
        .await??
        .ok_or_else(|| ApiError::not_found(&path.rt.qualified(), name_of(path)))?;
    if want_table {
        let rv = meta::resource_version(&obj).unwrap_or(0);
        return Ok(json_response(StatusCode::OK, &super::tables::table(path.rt.kind, &[obj], rv)));
    }
    Ok(json_response(StatusCode::OK, &typed(path.rt, obj)))
}

/// Selectors of a list or watch request.
pub struct Filters {
    /// Parsed `labelSelector`.
    pub labels: LabelSelector,
    /// Parsed `fieldSelector`.
    pub fields: FieldSelector,
}

impl Filters {
    /// Parse from the query; errors are 400s naming the selector.
    pub fn from_query(
        rt: &ResourceType,
        query: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?,
            fields: FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), rt.kind)?,
        })
    }

    /// Does the object pass both selectors?
    pub fn matches(&self, kind: &str, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(kind, obj)
    }
}

/// `GET` a collection, whole or one page of it (`limit`/`continue`).
pub async fn list(
    state: &ApiState,
    path: &ResourcePath,
    filters: Filters,
    query: &std::collections::HashMap<String, String>,
    want_table: bool,
) -> Result<Response, HttpError> {
    let prefix = path.rt.namespace_prefix(path.namespace.as_deref());
    let paging = super::paging::Paging::from_query(query, &prefix)?;
    let store = state.store.clone();
    let kind = path.rt.kind;
    let selective = !filters.labels.is_empty() || !filters.fields.is_empty();
    let page = blocking(move || {
        store.list_page(&prefix, paging.after.as_deref(), paging.limit.unwrap_or(usize::MAX), |o| {
            filters.matches(kind, o)
        })
    })
    .await??;
    // Later pages report the revision of the first, so a watch started from it misses nothing.
    let rv = paging.revision.unwrap_or(page.revision);
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    if let Some(last) = &page.next {
        list_meta["continue"] = json!(super::paging::encode(rv, last));
        // Upstream reports the count only when no selector filtered the list.
        if !selective {
            list_meta["remainingItemCount"] = json!(page.remaining);
        }
    }
    if want_table {
        let mut table = super::tables::table(path.rt.kind, &page.items, rv);
        table["metadata"] = list_meta;
        return Ok(json_response(StatusCode::OK, &table));
    }
    // Typing and encoding the items is most of a big list's cost (bench api-load): it runs on
    // the blocking pool like the read, so the async workers keep serving other requests, and
    // the items are moved into the body (`json!` would deep-copy every one of them).
    let rt = path.rt;
    let bytes = blocking(move || {
        let items = page.items.into_iter().map(|o| typed(rt, o)).collect();
        let mut body = serde_json::Map::new();
        body.insert("kind".into(), Value::String(rt.list_kind()));
        body.insert("apiVersion".into(), json!(rt.api_version()));
        body.insert("metadata".into(), list_meta);
        body.insert("items".into(), Value::Array(items));
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    })
    .await?;
    Ok((StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Refuse writes into a namespace that does not exist or is being deleted.
pub(super) async fn check_namespace(
    state: &ApiState,
    rt: &ResourceType,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    let Some(ns) = namespace.filter(|_| rt.namespaced) else {
        return Ok(());
    };
    let namespaces = crate::api::find_by_kind("v1", "Namespace")
        .ok_or_else(|| ApiError::internal("namespaces not served"))?;
    let key = namespaces.key("", ns);
    let store = state.store.clone();
    match blocking(move || store.get(&key)).await?? {
        None => Err(ApiError::not_found("namespaces", ns)),
        Some(obj) if meta::is_terminating(&obj) => Err(ApiError::forbidden(format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        ))),
        Some(_) => Ok(()),
    }
}

/// `POST` to a collection.
pub async fn create(
    state: &ApiState,
    path: &ResourcePath,
    body: Value,
    validation: FieldValidation,
    writer: Writer,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    let unknown = validation.check(rt, &body)?;
    let ns = path.namespace.clone().or_else(|| rt.namespaced.then(|| "default".to_string()));
    check_namespace(state, rt, ns.as_deref()).await?;
    let mut obj = validate::prepare_create(rt, ns.as_deref(), body)?;
    // Held until the object is stored: Service addresses are picked one write at a time.
    let allocation =
        super::services::begin(state, rt, meta::namespace(&obj), meta::name(&obj), false).await?;
    if let Some(allocation) = &allocation {
        allocation.admit(None, &mut obj)?;
    }
    track_update(None, &mut obj, &field_manager(path, writer.manager));
    let key = rt.key(meta::namespace(&obj), meta::name(&obj));
    let name = meta::name(&obj).to_string();
    let store = state.store.clone();
    let dry_run = writer.dry_run;
    let stored = blocking(move || {
        if dry_run {
            // Everything a create checks, nothing stored (no resourceVersion either).
            return match store.get(&key)? {
                Some(_) => Err(ApiError::already_exists(&rt.qualified(), &name)),
                None => Ok(Some(obj)),
            };
        }
        store.mutate::<ApiError, _>(&key, move |current| match current {
            Some(_) => Err(ApiError::already_exists(&rt.qualified(), &name)),
            None => Ok(Mutation::Put(obj)),
        })
    })
    .await??
    .ok_or_else(|| ApiError::internal("create stored nothing"))?;
    drop(allocation);
    Ok(with_warnings(json_response(StatusCode::CREATED, &typed(rt, stored)), &unknown))
}

/// The `fieldValidation` query parameter: what to do with fields the type does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Reject the request (400), as `kubectl apply/create` asks by default.
    Strict,
    /// Accept it with a `Warning` header per unknown field.
    Warn,
    /// Accept it silently (the default when the parameter is absent: our own components'
    /// writes skip the extra check).
    Ignore,
}

impl FieldValidation {
    /// From the query; an unknown value is a 400, as upstream.
    pub fn from_query(q: &std::collections::HashMap<String, String>) -> Result<Self, ApiError> {
        match q.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Ignore") => Ok(Self::Ignore),
            Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other:?}"
            ))),
        }
    }

    /// Unknown fields of `obj`: an error under Strict, warnings under Warn.
    pub(super) fn check(self, rt: &ResourceType, obj: &Value) -> Result<Vec<String>, ApiError> {
        if self == Self::Ignore {
            return Ok(Vec::new());
        }
        // Type errors are reported by admission with their own message.
        let unknown = (rt.type_check)(obj).unwrap_or_default();
        if self == Self::Strict && !unknown.is_empty() {
            let fields: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                fields.join(", "),
                kind = rt.kind,
                v = rt.version
            )));
        }
        Ok(unknown)
    }
}

/// Add one `Warning` header per unknown field (kubectl prints them).
pub(super) fn with_warnings(mut response: Response, unknown: &[String]) -> Response {
    for field in unknown {
        if let Ok(value) = http::HeaderValue::from_str(&format!("299 - \"unknown field \\\"{field}\\\"\"")) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    response
}

/// Check a client-sent resourceVersion against the stored one.
pub(super) fn check_precondition(rt: &ResourceType, current: &Value, sent: &Value) -> Result<(), ApiError> {
    match sent["metadata"]["resourceVersion"].as_str().filter(|s| !s.is_empty()) {
        Some(rv) if Some(rv) != current["metadata"]["resourceVersion"].as_str() => {
            Err(ApiError::conflict(&rt.qualified(), meta::name(current)))
        }
        _ => Ok(()),
    }
}

/// What to do with an updated object: an object being deleted whose last finalizer went away is
/// removed for good.
pub(super) fn store_or_finish(obj: Value) -> Mutation {
    let finalizers_left = obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if meta::is_terminating(&obj) && !finalizers_left && obj["kind"] != "Pod" {
        Mutation::Delete
    } else {
        Mutation::Put(obj)
    }
}

/// Replace an existing object with what `next` makes of it (the new body, or the patched
/// current object), under the usual precondition and admission rules.
async fn write_existing(
    state: &ApiState,
    path: &ResourcePath,
    scope: WriteScope,
    validation: FieldValidation,
    writer: Writer,
    next: impl FnOnce(&Value, &str) -> Result<Value, ApiError> + Send + 'static,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    let Writer { manager, dry_run } = writer;
    let who = field_manager(path, manager);
    let key = key_of(path);
    let name = name_of(path).to_string();
    let store = state.store.clone();
    // What the transaction found out (unknown fields, a dry run's result) comes back this way.
    let found = std::sync::Arc::new(std::sync::Mutex::new(Found::default()));
    let report = found.clone();
    let namespace = path.namespace.clone().unwrap_or_default();
    let allocation =
        super::services::begin(state, rt, &namespace, &name, scope == WriteScope::Status).await?;
    let stored = blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let current = current.ok_or_else(|| ApiError::not_found(&rt.qualified(), &name))?;
            let new = next(&current, &name)?;
            let unknown = validation.check(rt, &new)?;
            check_precondition(rt, &current, &new)?;
            let mut new = validate::prepare_update(rt, &current, new, scope)?;
            if let Some(allocation) = &allocation {
                allocation.admit(Some(&current), &mut new)?;
            }
            let mut found = report.lock().unwrap_or_else(|p| p.into_inner());
            found.unknown = unknown;
            // A write that changes nothing is not a change: no new resourceVersion, no event.
            if same_but_version(&new, &current) {
                return Ok(Mutation::Keep);
            }
            track_update(Some(&current), &mut new, &who);
            if dry_run {
                found.dry = Some(new);
                return Ok(Mutation::Keep);
            }
            Ok(store_or_finish(new))
        })
    })
    .await?;
    let found = std::mem::take(&mut *found.lock().unwrap_or_else(|p| p.into_inner()));
    let stored = found.dry.or(stored?);
    Ok(with_warnings(finish_write(rt, path, stored)?, &found.unknown))
}

/// Who writes (the field manager), and whether for real: under `dryRun=All` a write is
/// computed, validated and answered, but nothing is stored.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    /// The field manager the change is recorded under.
    pub manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
}

fn same_but_version(new: &Value, current: &Value) -> bool {
    let mut new = new.clone();
    new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    new == *current
}

#[derive(Default)]
struct Found {
    unknown: Vec<String>,
    dry: Option<Value>,
}

/// `PUT` an object (main endpoint or `/status`).
pub async fn update(
    state: &ApiState,
    path: &ResourcePath,
    body: Value,
    scope: WriteScope,
    validation: FieldValidation,
    writer: Writer,
) -> Result<Response, HttpError> {
    write_existing(state, path, scope, validation, writer, move |_, _| Ok(body)).await
}

/// `PATCH` an object (main endpoint or `/status`).
pub async fn patch(
    state: &ApiState,
    path: &ResourcePath,
    headers: &HeaderMap,
    body: Value,
    scope: WriteScope,
    validation: FieldValidation,
    writer: Writer,
) -> Result<Response, HttpError> {
    let kind_name = path.rt.kind;
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind = PatchType::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    write_existing(state, path, scope, validation, writer, move |current, name| {
        patch::apply(kind, current, &body).map_err(|e| {
            if e.code != 422 {
                return e;
            }
            // The patch layer names no object; say which one, keeping its reason. kubectl
            // prints `<field>: <message>` per cause, so the cause's field is "patch".
            let reason = e.message.split_once(" is invalid: ").map_or(e.message.as_str(), |(_, r)| r);
            ApiError::invalid(kind_name, name, format!("patch: {reason}"))
        })
    })
    .await
}

fn finish_write(
    rt: &ResourceType,
    path: &ResourcePath,
    stored: Option<Value>,
) -> Result<Response, HttpError> {
    let obj = stored.ok_or_else(|| ApiError::not_found(&rt.qualified(), name_of(path)))?;
    Ok(json_response(StatusCode::OK, &typed(rt, obj)))
}
