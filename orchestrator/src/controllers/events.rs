//! Recording core/v1 Events about objects, so `kubectl describe` and `kubectl get events` show
//! what the system did and why.

use serde_json::{Value, json};
use tracing::debug;

use crate::{
    api::{find_by_kind, meta},
    client::Client,
};

/// Normal or Warning, as Kubernetes classifies events.
#[derive(Debug, Clone, Copy)]
pub enum EventKind {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Record an event about `object`. Failures are logged, never fatal: events are advisory.
pub async fn record(
    client: &Client,
    object: &Value,
    kind: EventKind,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(events) = find_by_kind("v1", "Event") else {
        return;
    };
    let ns = match meta::namespace(object) {
        "" => "default",
        ns => ns,
    };
    let now = meta::now();
    let event = json!({
        "metadata": {"name": format!("{}.{}", meta::name(object), meta::random_suffix()), "namespace": ns},
        "involvedObject": {
            "apiVersion": object["apiVersion"], "kind": object["kind"], "name": meta::name(object),
            "namespace": meta::namespace(object), "uid": meta::uid(object), "resourceVersion": object["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": match kind { EventKind::Normal => "Normal", EventKind::Warning => "Warning" },
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = client.create(events, Some(ns), &event).await {
        debug!(error = %e, reason, "could not record event");
    }
}

/// Record an event without waiting for it: events are advisory, and each one is a store write,
/// so the pod start-up path (scheduling, pulling, starting) must not queue behind them.
pub fn emit(
    client: &Client,
    object: &Value,
    kind: EventKind,
    reason: &str,
    message: &str,
    component: &'static str,
) {
    let (client, object, reason, message) =
        (client.clone(), object.clone(), reason.to_string(), message.to_string());
    tokio::spawn(async move { record(&client, &object, kind, &reason, &message, component).await });
}
