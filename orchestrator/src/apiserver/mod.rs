//! The Kubernetes-compatible HTTP API: discovery, OpenAPI, CRUD/list/watch on every served
//! resource, subresources, and errors as `Status`. Every request needs a bearer token except
//! health and version probes.

mod access;
mod aggregated;
mod apply;
mod bootstrap;
mod delete;
mod discovery;
mod handlers;
pub mod limits;
mod namespaces;
mod paging;
mod request;
pub mod services;
mod subresources;
pub mod tables;
mod watch;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    body::Body,
    extract::{Path, Request, State},
    middleware,
    response::{IntoResponse, Response},
    routing::{any, get},
};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::{
    api::{ApiError, patch::PatchType, validate::WriteScope},
    store::Store,
};

/// Shared state of the API server.
#[derive(Clone)]
pub struct ApiState {
    /// The cluster store.
    pub store: Store,
    /// Who holds which token.
    pub tokens: crate::auth::Registry,
    /// Client for talking to node agents.
    pub http: reqwest::Client,
    /// Set once the whole cluster is up; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
    /// Limits on watch connections per caller.
    pub watch_limits: Arc<limits::WatchLimits>,
    /// The service network, and the turn Service writes take to allocate from it.
    pub services: Arc<services::ServiceWrites>,
}

/// Run a store call off the async workers (redb is synchronous and fsyncs on commit).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("store task failed: {e}")))
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(http::header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

pub(crate) fn stream_response(body: Body) -> Response {
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An [`ApiError`] on its way out as an HTTP response (a `Status` body with its code). A
/// newtype because the API crate is sans-IO and knows nothing of axum.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<crate::store::StoreError> for HttpError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl std::ops::Deref for HttpError {
    type Target = ApiError;
    fn deref(&self) -> &ApiError {
        &self.0
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(code, &self.0.to_status());
        if code == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Build the router.
pub fn router(state: ApiState) -> Router {
    routes().layer(middleware::from_fn_with_state(state.clone(), access::authenticate)).with_state(state)
}

/// The router without authentication: every request acts as the administrator. Only for the
/// loopback-only `--insecure-http` debugging listener.
pub fn insecure_router(state: ApiState) -> Router {
    routes()
        .layer(middleware::from_fn(|mut req: Request, next: middleware::Next| async move {
            req.extensions_mut().insert(crate::auth::Identity::Admin);
            next.run(req).await
        }))
        .with_state(state)
}

fn routes() -> Router<ApiState> {
    Router::new()
        .route("/version", get(|| async { json_response(StatusCode::OK, &discovery::version()) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api", get(|headers: HeaderMap| async move { discovery_root(true, &headers) }))
        .route("/api/v1", get(|| async { gv_resources("", "v1") }))
        .route("/apis", get(|headers: HeaderMap| async move { discovery_root(false, &headers) }))
        .route(
            "/apis/{group}",
            get(|Path(group): Path<String>| async move {
                discovery::group(&group).map(|g| json_response(StatusCode::OK, &g)).unwrap_or_else(|| {
                    HttpError(ApiError::no_route(&format!("/apis/{group}"))).into_response()
                })
            }),
        )
        .route(
            "/apis/{group}/{version}",
            get(|Path((g, v)): Path<(String, String)>| async move { gv_resources(&g, &v) }),
        )
        // An empty OpenAPI v2 document (zero protobuf bytes): kubectl falls back to v2 for kinds
        // the v3 documents do not declare, and without it reports "failed to download openapi"
        // instead of "no matches for kind". Sent as octet-stream: client-go's media-type parser
        // rejects the `@` in the protobuf type name, and it decodes the body as protobuf anyway.
        .route(
            "/openapi/v2",
            get(|| async {
                (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/octet-stream")], Vec::<u8>::new())
                    .into_response()
            }),
        )
        .route("/openapi/v3", get(|| async { json_response(StatusCode::OK, &discovery::openapi_root()) }))
        .route(
            "/openapi/v3/{*path}",
            get(|Path(path): Path<String>| async move {
                discovery::openapi_document(&path).map(|d| json_response(StatusCode::OK, &d)).unwrap_or_else(
                    || HttpError(ApiError::no_route(&format!("/openapi/v3/{path}"))).into_response(),
                )
            }),
        )
        .route(bootstrap::PATH, axum::routing::post(bootstrap::register))
        .route("/api/v1/{*rest}", any(core_resource))
        .route("/apis/{group}/{version}/{*rest}", any(group_resource))
        .fallback(|req: Request| async move { HttpError(ApiError::no_route(req.uri().path())) })
}

/// `/api` and `/apis`: aggregated discovery when the client asks for it first, else legacy.
fn discovery_root(core: bool, headers: &HeaderMap) -> Response {
    if aggregated::wanted(headers) {
        return aggregated::respond(core, headers);
    }
    let doc = if core { discovery::core_versions() } else { discovery::group_list() };
    json_response(StatusCode::OK, &doc)
}

async fn readyz(State(state): State<ApiState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the cluster is still starting").into_response()
    }
}

fn gv_resources(group: &str, version: &str) -> Response {
    match discovery::resource_list(group, version) {
        Some(list) => json_response(StatusCode::OK, &list),
        None => HttpError(ApiError::no_route(&format!("{group}/{version}"))).into_response(),
    }
}

async fn core_resource(State(state): State<ApiState>, Path(rest): Path<String>, req: Request) -> Response {
    dispatch(state, "", "v1", &rest, req).await.unwrap_or_else(IntoResponse::into_response)
}

async fn group_resource(
    State(state): State<ApiState>,
    Path((group, version, rest)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    dispatch(state, &group, &version, &rest, req).await.unwrap_or_else(IntoResponse::into_response)
}

fn is_true(q: &std::collections::HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

async fn dispatch(
    state: ApiState,
    group: &str,
    version: &str,
    rest: &str,
    req: Request,
) -> Result<Response, HttpError> {
    let path = request::parse_path(group, version, rest)?;
    let (parts, body) = req.into_parts();
    let query = request::query_map(parts.uri.query());
    let headers = parts.headers;
    let sub = path.subresource.clone();
    if let Some(s) = sub.as_deref() {
        if !path.rt.has_subresource(s) {
            return Err(ApiError::no_route(parts.uri.path()).into());
        }
    }
    let table = request::wants_table(&headers);
    let identity =
        parts.extensions.get::<crate::auth::Identity>().cloned().unwrap_or(crate::auth::Identity::Admin);
    let verb = access::verb(&parts.method, &path, is_true(&query, "watch"));
    let pending = access::authorize(&state, &identity, verb, &path).await?;
    match (&parts.method, path.name.is_some(), sub.as_deref()) {
        (&Method::GET, false, None) => {
            let filters = handlers::Filters::from_query(path.rt, &query)?;
            if is_true(&query, "watch") {
                let params = watch::WatchParams::from_query(&query)?;
                let guard = state.watch_limits.admit(&identity.user())?;
                watch::watch(&state, &path, filters, params, table, guard).await
            } else {
                handlers::list(&state, &path, filters, &query, table).await
            }
        }
        (&Method::GET, true, None | Some("status")) => {
            handlers::get(&state, &path, table && sub.is_none()).await
        }
        (&Method::GET, true, Some("scale")) => {
            subresources::scale(&state, &path, None, handlers::Writer::default()).await
        }
        (&Method::GET, true, Some("log")) => {
            subresources::log(&state, &path, &query, parts.uri.query()).await
        }
        (&Method::POST, false, None) => {
            let writer = writer(&query, &headers, "CreateOptions")?;
            let body = request::decode_body(&headers, &request::read_body(body).await?)?;
            access::check_pending(&pending, &identity, &path, &body)?;
            handlers::create(&state, &path, body, validation(&query)?, writer).await
        }
        (&Method::POST, true, Some("binding")) => {
            let body = request::decode_body(&headers, &request::read_body(body).await?)?;
            subresources::bind(&state, &path, body).await
        }
        (&Method::PUT, true, None | Some("status")) => {
            let writer = writer(&query, &headers, "UpdateOptions")?;
            let body = request::decode_body(&headers, &request::read_body(body).await?)?;
            handlers::update(&state, &path, body, scope(sub.as_deref()), validation(&query)?, writer).await
        }
        (&Method::PUT, true, Some("finalize")) => {
            let body = request::decode_body(&headers, &request::read_body(body).await?)?;
            namespaces::finalize(&state, path.name.as_deref().unwrap_or(""), body).await
        }
        (&Method::PUT, true, Some("scale")) => {
            let writer = writer(&query, &headers, "UpdateOptions")?;
            let body = request::decode_body(&headers, &request::read_body(body).await?)?;
            subresources::scale(&state, &path, Some(subresources::ScaleWrite::Replace(body)), writer).await
        }
        (&Method::PATCH, true, None | Some("status")) if apply::is_apply(&headers) => {
            apply::apply(&state, &path, &query, body).await
        }
        (&Method::PATCH, true, None | Some("status")) => {
            apply::check_patch_options(&query, false)?;
            let writer = writer(&query, &headers, "PatchOptions")?;
            let body = decode_patch(&headers, body).await?;
            let validation = validation(&query)?;
            handlers::patch(&state, &path, &headers, body, scope(sub.as_deref()), validation, writer).await
        }
        (&Method::PATCH, true, Some("scale")) => {
            apply::check_patch_options(&query, false)?;
            let writer = writer(&query, &headers, "PatchOptions")?;
            let content_type =
                headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let kind = PatchType::from_content_type(content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
            let body = decode_patch(&headers, body).await?;
            subresources::scale(&state, &path, Some(subresources::ScaleWrite::Patch(kind, body)), writer)
                .await
        }
        (&Method::DELETE, true, None) => {
            let bytes = request::read_body(body).await?;
            let options = if bytes.is_empty() { None } else { Some(request::decode_body(&headers, &bytes)?) };
            delete::delete(&state, &path, delete::DeleteOptions::parse(options.as_ref(), &query)?).await
        }
        (&Method::DELETE, false, None) => {
            let filters = handlers::Filters::from_query(path.rt, &query)?;
            let bytes = request::read_body(body).await?;
            let options = if bytes.is_empty() { None } else { Some(request::decode_body(&headers, &bytes)?) };
            delete::delete_collection(&state, &path, filters, options.as_ref(), &query).await
        }
        (method, _, _) => {
            Err(ApiError::method_not_allowed(format!("{method} is not supported on {}", parts.uri.path()))
                .into())
        }
    }
}

fn scope(sub: Option<&str>) -> WriteScope {
    if sub == Some("status") { WriteScope::Status } else { WriteScope::Main }
}

/// The field manager and `dryRun` of a write.
fn writer(
    q: &std::collections::HashMap<String, String>,
    headers: &HeaderMap,
    options_kind: &str,
) -> Result<handlers::Writer, ApiError> {
    Ok(handlers::Writer {
        manager: apply::manager_name(q, headers, options_kind)?,
        dry_run: apply::dry_run(q)?,
    })
}

fn validation(q: &std::collections::HashMap<String, String>) -> Result<handlers::FieldValidation, ApiError> {
    handlers::FieldValidation::from_query(q)
}

/// Patch bodies are JSON whatever their patch content type says (apply configurations, YAML,
/// are read by `apply`; one reaching here is on a subresource that takes no apply).
async fn decode_patch(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = request::read_body(body).await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/apply-patch") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))
}
