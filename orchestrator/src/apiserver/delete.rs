//! DELETE of one object and of a collection: preconditions, graceful pod termination,
//! finalizers, and the propagation policies. `Background` removes the object now and lets the
//! garbage collector delete its dependents; `Foreground` and `Orphan` keep it (with the
//! `foregroundDeletion` / `orphan` finalizer) until the collector has deleted, or let go of,
//! its dependents — what `kubectl delete --cascade=foreground|orphan` asks for.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::{
    ApiState, HttpError, blocking,
    handlers::{Filters, key_of, name_of, typed},
    json_response,
    request::ResourcePath,
};
use crate::{
    api::{ApiError, ResourceType, meta, ownership, status::success_status},
    store::Mutation,
};

/// How a delete treats the object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete now; the collector deletes dependents afterwards (the default).
    #[default]
    Background,
    /// Delete dependents first, then the object.
    Foreground,
    /// Remove the object's ownerReferences from dependents, then delete the object.
    Orphan,
}

impl Propagation {
    fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(ApiError::invalid(
                "DeleteOptions",
                "",
                format!(
                    "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
                ),
            )),
        }
    }

    /// The finalizer that holds the owner while the collector works.
    fn finalizer(self) -> Option<&'static str> {
        match self {
            Self::Background => None,
            Self::Foreground => Some(ownership::FOREGROUND),
            Self::Orphan => Some(ownership::ORPHAN),
        }
    }
}

/// Options of a delete, from the body (`DeleteOptions`) and the query.
#[derive(Debug, Default)]
pub struct DeleteOptions {
    /// Seconds the object may take to terminate.
    pub grace_period: Option<i64>,
    /// Only delete if the uid matches.
    pub uid: Option<String>,
    /// Only delete if the resourceVersion matches.
    pub resource_version: Option<String>,
    /// What happens to dependents.
    pub propagation: Propagation,
    /// `dryRun=All`: answer as the delete would, change nothing.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Merge body and query forms (the query wins, as upstream decodes it last).
    pub fn parse(
        body: Option<&Value>,
        query: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let mut opts = Self::default();
        if let Some(b) = body {
            opts.grace_period = b["gracePeriodSeconds"].as_i64();
            opts.uid = b["preconditions"]["uid"].as_str().map(str::to_string);
            opts.resource_version = b["preconditions"]["resourceVersion"].as_str().map(str::to_string);
            // The deprecated boolean still works: orphanDependents=true means Orphan.
            if b["orphanDependents"] == json!(true) {
                opts.propagation = Propagation::Orphan;
            }
            if let Some(p) = b["propagationPolicy"].as_str() {
                opts.propagation = Propagation::parse(p)?;
            }
            opts.dry_run = b["dryRun"].as_array().is_some_and(|d| d.iter().any(|v| v == "All"));
        }
        match query.get("dryRun").map(String::as_str) {
            None | Some("") => {}
            Some("All") => opts.dry_run = true,
            Some(other) => {
                return Err(ApiError::invalid(
                    "DeleteOptions",
                    "",
                    format!("dryRun: Unsupported value: {other:?}: supported values: \"All\""),
                ));
            }
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            opts.grace_period = Some(g.parse().map_err(|_| {
                ApiError::bad_request(format!("gracePeriodSeconds must be an integer, got {g:?}"))
            })?);
        }
        if query.get("orphanDependents").is_some_and(|v| v == "true") {
            opts.propagation = Propagation::Orphan;
        }
        if let Some(p) = query.get("propagationPolicy").filter(|p| !p.is_empty()) {
            opts.propagation = Propagation::parse(p)?;
        }
        Ok(opts)
    }
}

fn is_finished(pod: &Value) -> bool {
    matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn check_preconditions(rt: &ResourceType, obj: &Value, opts: &DeleteOptions) -> Result<(), ApiError> {
    let stale_uid = opts.uid.as_deref().is_some_and(|u| u != meta::uid(obj));
    let stale_rv = opts
        .resource_version
        .as_deref()
        .is_some_and(|rv| Some(rv) != obj["metadata"]["resourceVersion"].as_str());
    if stale_uid || stale_rv {
        return Err(ApiError::conflict(&rt.qualified(), meta::name(obj)));
    }
    Ok(())
}

/// Decide what a delete does to the current object: graceful pod termination and finalizers
/// keep it (marked with deletionTimestamp); otherwise it goes.
fn delete_decision(rt: &ResourceType, mut obj: Value, opts: &DeleteOptions) -> Result<Mutation, ApiError> {
    check_preconditions(rt, &obj, opts)?;
    if meta::is_terminating(&obj) && !rt.kind.eq("Pod") {
        // Already on its way out: a second delete changes nothing (upstream re-reads it too).
        return Ok(Mutation::Keep);
    }
    // Foreground/Orphan only have something to wait for on kinds the collector follows.
    if let Some(f) = opts.propagation.finalizer().filter(|_| ownership::is_owner_kind(rt.kind)) {
        let m = meta::metadata_mut(&mut obj);
        let finalizers = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = finalizers.as_array_mut().filter(|l| !l.iter().any(|x| x == f)) {
            list.push(json!(f));
        }
    }
    let has_finalizers = obj["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    // A pod on a node is stopped by that node's agent, which then deletes it with grace 0.
    let graceful_pod = rt.kind == "Pod"
        && obj["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty())
        && !is_finished(&obj);
    let grace = opts
        .grace_period
        .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0);
    if graceful_pod && grace > 0 {
        let existing = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if meta::is_terminating(&obj) && existing.is_some_and(|e| e <= grace) {
            return Ok(Mutation::Keep);
        }
        let deadline = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(grace))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let m = meta::metadata_mut(&mut obj);
        m.insert("deletionTimestamp".into(), json!(deadline.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        return Ok(Mutation::Put(obj));
    }
    if has_finalizers {
        if meta::is_terminating(&obj) {
            return Ok(Mutation::Keep);
        }
        let m = meta::metadata_mut(&mut obj);
        m.insert("deletionTimestamp".into(), json!(meta::now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        return Ok(Mutation::Put(obj));
    }
    Ok(Mutation::Delete)
}

/// Delete one object; returns it (still present, or its last state) and whether it is gone.
async fn delete_one(
    state: &ApiState,
    path: &ResourcePath,
    opts: DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let rt = path.rt;
    let key = key_of(path);
    let name = name_of(path).to_string();
    let store = state.store.clone();
    let (result, gone, dry) = blocking(move || {
        let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let removed = gone.clone();
        let dry = std::sync::Arc::new(std::sync::Mutex::new(None));
        let would = dry.clone();
        let result = store.mutate::<ApiError, _>(&key, move |current| {
            let current = current.ok_or_else(|| ApiError::not_found(&rt.qualified(), &name))?;
            let decision = delete_decision(rt, current.clone(), &opts)?;
            removed.store(matches!(decision, Mutation::Delete), std::sync::atomic::Ordering::Release);
            if opts.dry_run {
                let after = match decision {
                    Mutation::Put(obj) => obj,
                    _ => current,
                };
                *would.lock().unwrap_or_else(|p| p.into_inner()) = Some(after);
                return Ok(Mutation::Keep);
            }
            Ok(decision)
        });
        let dry = dry.lock().unwrap_or_else(|p| p.into_inner()).take();
        (result, gone.load(std::sync::atomic::Ordering::Acquire), dry)
    })
    .await?;
    let obj = dry.or(result?).ok_or_else(|| ApiError::not_found(&rt.qualified(), name_of(path)))?;
    Ok((obj, gone))
}

/// `DELETE` one object: 200 with a `Status` when it is gone at once, else 200 with the object
/// as it now stands (terminating). Pods always answer with the pod, as upstream.
pub async fn delete(
    state: &ApiState,
    path: &ResourcePath,
    opts: DeleteOptions,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    if rt.kind == "Namespace" {
        return super::namespaces::delete(state, name_of(path)).await;
    }
    let (obj, gone) = delete_one(state, path, opts).await?;
    if gone && rt.kind != "Pod" {
        return Ok(json_response(
            StatusCode::OK,
            &success_status(meta::name(&obj), rt.group, rt.plural, meta::uid(&obj)),
        ));
    }
    Ok(json_response(StatusCode::OK, &typed(rt, obj)))
}

/// `DELETE` a collection (`deletecollection`): every object the selectors match, each deleted
/// as a single DELETE would; answers with the list of what was deleted, as upstream.
pub async fn delete_collection(
    state: &ApiState,
    path: &ResourcePath,
    filters: Filters,
    options: Option<&Value>,
    query: &std::collections::HashMap<String, String>,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    if rt.kind == "Namespace" {
        return Err(ApiError::method_not_allowed("deletecollection is not supported on namespaces").into());
    }
    let prefix = rt.namespace_prefix(path.namespace.as_deref());
    let store = state.store.clone();
    let (items, rv) = blocking(move || store.list(&prefix)).await??;
    let mut deleted = Vec::new();
    for obj in items.into_iter().filter(|o| filters.matches(rt.kind, o)) {
        let one = ResourcePath {
            rt,
            namespace: rt.namespaced.then(|| meta::namespace(&obj).to_string()),
            name: Some(meta::name(&obj).to_string()),
            subresource: None,
        };
        match delete_one(state, &one, DeleteOptions::parse(options, query)?).await {
            Ok((obj, _)) => deleted.push(typed(rt, obj)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let body = json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted});
    Ok(json_response(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::find_by_kind;

    fn q(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn policies_come_from_body_or_query() {
        let body = json!({"kind": "DeleteOptions", "propagationPolicy": "Foreground"});
        assert_eq!(
            DeleteOptions::parse(Some(&body), &q(&[])).expect("ok").propagation,
            Propagation::Foreground
        );
        let opts = DeleteOptions::parse(Some(&body), &q(&[("propagationPolicy", "Orphan")])).expect("ok");
        assert_eq!(opts.propagation, Propagation::Orphan);
        let legacy = json!({"orphanDependents": true});
        assert_eq!(
            DeleteOptions::parse(Some(&legacy), &q(&[])).expect("ok").propagation,
            Propagation::Orphan
        );
        let bad = DeleteOptions::parse(Some(&json!({"propagationPolicy": "Sideways"})), &q(&[]));
        assert_eq!(bad.expect_err("unsupported").code, 422);
    }

    #[test]
    fn foreground_and_orphan_hold_owners_with_a_finalizer() {
        let deploy = find_by_kind("apps/v1", "Deployment").expect("deploy");
        let d = json!({"metadata": {"name": "web", "uid": "u1", "resourceVersion": "3"}});
        for (policy, finalizer) in
            [(Propagation::Foreground, "foregroundDeletion"), (Propagation::Orphan, "orphan")]
        {
            let opts = DeleteOptions { propagation: policy, ..Default::default() };
            let Ok(Mutation::Put(kept)) = delete_decision(deploy, d.clone(), &opts) else {
                panic!("{policy:?} keeps the owner");
            };
            assert_eq!(kept["metadata"]["finalizers"], json!([finalizer]));
            assert!(meta::is_terminating(&kept));
            assert!(matches!(delete_decision(deploy, kept, &opts), Ok(Mutation::Keep)), "idempotent");
        }
        let bg = delete_decision(deploy, d.clone(), &DeleteOptions::default());
        assert!(matches!(bg, Ok(Mutation::Delete)));
        // A ConfigMap has no tracked dependents: Foreground deletes it at once.
        let cm = find_by_kind("v1", "ConfigMap").expect("cm");
        let fg = DeleteOptions { propagation: Propagation::Foreground, ..Default::default() };
        assert!(matches!(delete_decision(cm, d, &fg), Ok(Mutation::Delete)));
    }
}
