//! Node bootstrap: an agent holding the join token registers the credential it made for its
//! node name (first come, first served; the same credential again is fine, so restarts work)
//! and learns the token the API server will present when it proxies to the agent. Not a
//! Kubernetes API: upstream does this with CSRs and kubelet client certificates.
//!
//! `POST /bootstrap/v1/node-credentials` `{"nodeName": "...", "token": "..."}` →
//! `{"nodeName": "...", "apiserverToken": "...", "podNetwork": "127.64.0.0/10",
//! "serviceNetwork": "127.16.0.0/16", "nodePortRange": "30000-32767"}` (the networks, so every
//! node agrees with the control plane on them).

use axum::{
    Extension,
    body::Body,
    extract::State,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde_json::json;

use super::{ApiState, HttpError, json_response, request};
use crate::{
    api::{ApiError, validate},
    auth::{Identity, tokens::RegisterError},
};

/// Paths under this prefix are the bootstrap API.
pub const PREFIX: &str = "/bootstrap/";
/// The registration endpoint.
pub const PATH: &str = "/bootstrap/v1/node-credentials";

/// Shortest credential accepted (agents make 48 hex characters).
const MIN_TOKEN_LEN: usize = 32;

/// `POST /bootstrap/v1/node-credentials`.
pub async fn register(
    State(state): State<ApiState>,
    Extension(identity): Extension<Identity>,
    headers: http::HeaderMap,
    body: Body,
) -> Response {
    handle(&state, &identity, &headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &ApiState,
    identity: &Identity,
    headers: &http::HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    if !matches!(identity, Identity::Join | Identity::Admin) {
        return Err(ApiError::forbidden(format!(
            "User \"{}\" may not register node credentials",
            identity.user()
        ))
        .into());
    }
    let body = request::decode_body(headers, &request::read_body(body).await?)?;
    let name = body["nodeName"].as_str().unwrap_or("");
    let token = body["token"].as_str().unwrap_or("");
    if let Err(problem) = validate::check_name(name) {
        return Err(ApiError::invalid("Node", name, problem.replace("metadata.name", "nodeName")).into());
    }
    if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid(
            "Node",
            name,
            format!("token: must be at least {MIN_TOKEN_LEN} letters and digits"),
        )
        .into());
    }
    match state.tokens.register_node(name, token) {
        Ok(()) => {}
        Err(RegisterError::Taken(n)) => {
            return Err(ApiError::forbidden(format!(
                "node {n:?} is already registered by another agent; pick another --node-name"
            ))
            .into());
        }
        Err(e) => return Err(ApiError::internal(e.to_string()).into()),
    }
    tracing::info!(node = name, "registered node credential");
    let networks = state.services.networks();
    let answer = json!({
        "nodeName": name,
        "apiserverToken": state.tokens.snapshot().apiserver,
        "podNetwork": state.services.pod_network(),
        "serviceNetwork": networks.cidr(),
        "nodePortRange": networks.node_port_range(),
    });
    Ok(json_response(StatusCode::OK, &answer))
}
