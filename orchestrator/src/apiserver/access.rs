//! Authentication (bearer token → identity) and authorization (what a node's credential may
//! do, see `auth::node_rules`) in front of every API request.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::Method;

use super::{ApiState, HttpError, blocking, request::ResourcePath};
use crate::{
    api::{ApiError, find_by_kind, meta},
    auth::{
        Identity,
        node_rules::{self, Decision},
    },
};

/// Paths anyone may read (health and version probes).
fn is_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
}

/// Middleware: find the caller's identity (401 without a known token) and keep it in the
/// request's extensions. The join token only reaches the bootstrap endpoint.
pub async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(identity) = token.and_then(|t| state.tokens.identify(t)) else {
        return HttpError(ApiError::unauthorized()).into_response();
    };
    if identity == Identity::Join && !req.uri().path().starts_with(super::bootstrap::PREFIX) {
        return HttpError(ApiError::forbidden(format!(
            "User \"{}\" may only register a node credential at {}",
            identity.user(),
            super::bootstrap::PATH
        )))
        .into_response();
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// The Kubernetes verb of a request.
pub fn verb(method: &Method, path: &ResourcePath, watch: bool) -> &'static str {
    match (method, path.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

/// What a create must still check once its body is decoded.
#[derive(Debug, Default, Clone)]
pub struct Pending {
    /// The created object must carry this name (a node registering itself).
    pub must_name: Option<String>,
}

fn forbidden(identity: &Identity, verb: &str, path: &ResourcePath, why: &str) -> ApiError {
    let resource = match path.subresource.as_deref() {
        Some(sub) => format!("{}/{sub}", path.rt.plural),
        None => path.rt.plural.to_string(),
    };
    let scope = match path.namespace.as_deref() {
        Some(ns) if path.rt.namespaced => format!("in the namespace \"{ns}\""),
        _ => "at the cluster scope".to_string(),
    };
    let subject = match path.name.as_deref() {
        Some(n) => format!("{} \"{n}\"", path.rt.plural),
        None => path.rt.plural.to_string(),
    };
    ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}: {why}",
        identity.user(),
        path.rt.group,
    ))
}

/// May `identity` do `verb` on `path`? Admins may do anything; nodes follow `node_rules`.
pub async fn authorize(
    state: &ApiState,
    identity: &Identity,
    verb: &str,
    path: &ResourcePath,
) -> Result<Pending, ApiError> {
    let Identity::Node(node) = identity else {
        return Ok(Pending::default());
    };
    let req = node_rules::Request {
        verb,
        kind: path.rt.kind,
        name: path.name.as_deref(),
        subresource: path.subresource.as_deref(),
    };
    let ns = path.namespace.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    match node_rules::decide(node, &req) {
        Decision::Allow => Ok(Pending::default()),
        Decision::Deny(why) => Err(forbidden(identity, verb, path, &why)),
        Decision::IfBodyNamesNode => Ok(Pending { must_name: Some(node.clone()) }),
        Decision::IfPodBound => {
            let pods = find_by_kind("v1", "Pod").ok_or_else(|| ApiError::internal("pods not served"))?;
            let key = pods.key(&ns, &name);
            let store = state.store.clone();
            let pod = blocking(move || store.get(&key)).await??;
            match pod {
                // Let the handler answer 404 for a pod that does not exist.
                None => Ok(Pending::default()),
                Some(p) if p["spec"]["nodeName"] == node.as_str() => Ok(Pending::default()),
                Some(_) => Err(forbidden(
                    identity,
                    verb,
                    path,
                    &format!("node '{node}' can only change pods bound to it"),
                )),
            }
        }
        Decision::IfUsedByPod => {
            let pods = find_by_kind("v1", "Pod").ok_or_else(|| ApiError::internal("pods not served"))?;
            let prefix = pods.namespace_prefix(Some(&ns));
            let store = state.store.clone();
            let (items, _) = blocking(move || store.list(&prefix)).await??;
            let used = items
                .iter()
                .filter(|p| p["spec"]["nodeName"] == node.as_str() && !meta::is_terminating(p))
                .any(|p| node_rules::pod_uses(p, path.rt.kind, &name));
            if used || serves_tls_with(state, path.rt.kind, &ns, &name).await? {
                Ok(Pending::default())
            } else {
                let why = format!("no relationship found between node '{node}' and this object");
                Err(forbidden(identity, verb, path, &why))
            }
        }
    }
}

/// Whether an Ingress of `ns` terminates TLS with the Secret `name`: every node serves
/// Ingress (its proxy is the ingress controller), so it may read those certificates.
async fn serves_tls_with(state: &ApiState, kind: &str, ns: &str, name: &str) -> Result<bool, ApiError> {
    let Some(ingresses) = find_by_kind("networking.k8s.io/v1", "Ingress").filter(|_| kind == "Secret") else {
        return Ok(false);
    };
    let prefix = ingresses.namespace_prefix(Some(ns));
    let store = state.store.clone();
    let (items, _) = blocking(move || store.list(&prefix)).await??;
    Ok(items.iter().any(|i| node_rules::ingress_uses_secret(i, name)))
}

/// Check what a create left pending against its decoded body.
pub fn check_pending(
    pending: &Pending,
    identity: &Identity,
    path: &ResourcePath,
    body: &serde_json::Value,
) -> Result<(), ApiError> {
    if let Some(name) = &pending.must_name {
        if meta::name(body) != name {
            let why = format!("node '{name}' can only register itself");
            return Err(forbidden(identity, "create", path, &why));
        }
    }
    Ok(())
}
