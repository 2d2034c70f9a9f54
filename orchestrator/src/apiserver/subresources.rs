//! Subresources: `/scale` (autoscaling/v1 Scale over spec.replicas), `/binding` (the
//! scheduler's assignment of a pod to a node) and `/log` (proxied to the agent of the pod's node,
//! as kube-apiserver proxies to the kubelet).

use crate::apiserver::HttpError;
use std::collections::HashMap;

use axum::{body::Body, response::Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::{ApiState, blocking, json_response, request::ResourcePath};
use crate::{
    api::{
        ApiError,
        apply::track_update,
        meta,
        patch::{self, PatchType},
        validate::{self, WriteScope},
    },
    store::Mutation,
};

fn scale_of(obj: &Value) -> Value {
    // A ReplicationController's selector is the label map itself; the apps kinds nest it.
    let labels = &obj["spec"]["selector"];
    let labels = if labels["matchLabels"].is_object() || obj["kind"] != "ReplicationController" {
        &labels["matchLabels"]
    } else {
        labels
    };
    let selector: Vec<String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"], "uid": obj["metadata"]["uid"],
                     "resourceVersion": obj["metadata"]["resourceVersion"], "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")},
    })
}

/// How a write reaches `/scale`.
pub enum ScaleWrite {
    /// `PUT` with a whole Scale.
    Replace(Value),
    /// `PATCH` of the Scale representation.
    Patch(PatchType, Value),
}

/// `GET`, `PUT` or `PATCH` of `/scale`.
pub async fn scale(
    state: &ApiState,
    path: &ResourcePath,
    write: Option<ScaleWrite>,
    writer: super::handlers::Writer,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    // Recorded as a write through `scale` owning `spec.replicas`, as upstream's scale handler
    // maps the Scale's fields onto the parent.
    let who = super::apply::field_manager(path, writer.manager);
    let dry_run = writer.dry_run;
    let name = path.name.clone().unwrap_or_default();
    let key = rt.key(path.namespace.as_deref().unwrap_or(""), &name);
    let store = state.store.clone();
    let dry = std::sync::Arc::new(std::sync::Mutex::new(None));
    let would = dry.clone();
    let obj = blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let current = current.ok_or_else(|| ApiError::not_found(&rt.qualified(), &name))?;
            let Some(write) = write else {
                return Ok(Mutation::Keep);
            };
            let old_scale = scale_of(&current);
            let new_scale = match write {
                ScaleWrite::Replace(v) => v,
                ScaleWrite::Patch(kind, p) => patch::apply(kind, &old_scale, &p)?,
            };
            if let Some(rv) = new_scale["metadata"]["resourceVersion"].as_str().filter(|s| !s.is_empty()) {
                if Some(rv) != current["metadata"]["resourceVersion"].as_str() {
                    return Err(ApiError::conflict(&rt.qualified(), &name));
                }
            }
            let replicas = new_scale["spec"]["replicas"].as_i64().ok_or_else(|| {
                ApiError::invalid("Scale", &name, "spec.replicas: Required value: must be an integer")
            })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "Scale",
                    &name,
                    "spec.replicas: Invalid value: must be greater than or equal to 0",
                ));
            }
            let mut next = current.clone();
            next["spec"]["replicas"] = json!(replicas);
            let mut next = validate::prepare_update(rt, &current, next, WriteScope::Main)?;
            track_update(Some(&current), &mut next, &who);
            if dry_run {
                *would.lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
                return Ok(Mutation::Keep);
            }
            Ok(Mutation::Put(next))
        })
    })
    .await??;
    let obj = dry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .or(obj)
        .ok_or_else(|| ApiError::not_found(&rt.qualified(), path.name.as_deref().unwrap_or("")))?;
    Ok(json_response(StatusCode::OK, &scale_of(&obj)))
}

/// `POST pods/{name}/binding`: assign the pod to a node, once.
pub async fn bind(state: &ApiState, path: &ResourcePath, body: Value) -> Result<Response, HttpError> {
    let rt = path.rt;
    let name = path.name.clone().unwrap_or_default();
    let node = body["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("Binding", &name, "target.name: Required value"))?
        .to_string();
    let key = rt.key(path.namespace.as_deref().unwrap_or(""), &name);
    let store = state.store.clone();
    blocking(move || {
        store.mutate::<ApiError, _>(&key, move |current| {
            let mut pod = current.ok_or_else(|| ApiError::not_found("pods", &name))?;
            if let Some(existing) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError { code: 409, reason: "Conflict", message: format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{existing}\""), details: None });
            }
            if meta::is_terminating(&pod) {
                return Err(ApiError::conflict("pods", &name));
            }
            pod["spec"]["nodeName"] = json!(node);
            let conditions = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": meta::now(), "lastProbeTime": null}));
            pod["status"]["conditions"] = json!(conditions);
            Ok(Mutation::Put(pod))
        })
    })
    .await??;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The container a log request means: the one named, the default-container annotation, or the
/// only one.
fn pick_container(pod: &Value, asked: Option<&String>) -> Result<String, ApiError> {
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let pod_name = meta::name(pod);
    if let Some(c) = asked.filter(|c| !c.is_empty()) {
        return if names.contains(&c.as_str()) {
            Ok(c.clone())
        } else {
            Err(ApiError::bad_request(format!("container {c} is not valid for pod {pod_name}")))
        };
    }
    if let Some(d) = pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str() {
        return Ok(d.to_string());
    }
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// Where a node's agent serves logs: its InternalIP and kubelet port.
fn node_endpoint(node: &Value) -> Option<String> {
    let ip = node["status"]["addresses"].as_array()?.iter().find(|a| a["type"] == "InternalIP")?["address"]
        .as_str()?
        .to_string();
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64()?;
    Some(format!("{ip}:{port}"))
}

/// `GET pods/{name}/log`: stream the container log from the pod's node.
pub async fn log(
    state: &ApiState,
    path: &ResourcePath,
    query: &HashMap<String, String>,
    raw_query: Option<&str>,
) -> Result<Response, HttpError> {
    let name = path.name.clone().unwrap_or_default();
    let ns = path.namespace.clone().unwrap_or_default();
    let key = path.rt.key(&ns, &name);
    let store = state.store.clone();
    let pod = blocking(move || store.get(&key)).await??.ok_or_else(|| ApiError::not_found("pods", &name))?;
    let container = pick_container(&pod, query.get("container"))?;
    let node_name = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: the pod is not scheduled yet"
        ))
    })?;
    let nodes =
        crate::api::find_by_kind("v1", "Node").ok_or_else(|| ApiError::internal("nodes not served"))?;
    let node_key = nodes.key("", node_name);
    let store = state.store.clone();
    let node = blocking(move || store.get(&node_key))
        .await??
        .ok_or_else(|| ApiError::not_found("nodes", node_name))?;
    let endpoint = node_endpoint(&node).ok_or_else(|| {
        ApiError::unavailable(format!("node {node_name} does not say where it serves logs"))
    })?;
    let url = format!("http://{endpoint}/containerLogs/{ns}/{name}/{container}?{}", raw_query.unwrap_or(""));
    let response =
        state.http.get(&url).bearer_auth(state.tokens.snapshot().apiserver).send().await.map_err(|e| {
            ApiError::unavailable(format!("could not reach the agent of node {node_name} at {endpoint}: {e}"))
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        let body = response.text().await.unwrap_or_default();
        let parsed: Value = serde_json::from_str(&body).unwrap_or(json!({"message": body}));
        return Err(ApiError::from_status(status, &parsed).into());
    }
    let stream = response.bytes_stream();
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()).into())
}
