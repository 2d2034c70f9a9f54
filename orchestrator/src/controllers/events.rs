//! Recording core/v1 Events about objects, so `kubectl describe` and `kubectl get events` show
//! what the system did and why.
//!
//! As kubelet's event recorder does, an event identical to one this process recorded in the
//! last 10 minutes (same object, reason, message and source) raises that event's `count` and
//! `lastTimestamp` instead of creating another object: a probe failing every second is one
//! Event counting up, not 86,400 objects a day.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tracing::debug;

use crate::{
    api::{find_by_kind, meta, patch::PatchType},
    client::Client,
};

/// How long an event keeps counting up repeats.
const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);
/// Most distinct events remembered for aggregation.
const REMEMBERED: usize = 4096;

/// (namespace, object uid, reason, message, component).
type EventKey = (String, String, String, String, String);

/// An event this process created: its name, its count, when it was last raised.
struct Recorded {
    name: String,
    count: u64,
    at: Instant,
}

static RECORDED: LazyLock<Mutex<HashMap<EventKey, Recorded>>> = LazyLock::new(Default::default);

/// The event to raise for `key` (its name and new count), if one is recent enough.
fn repeat_of(key: &EventKey) -> Option<(String, u64)> {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    let seen = recorded.get_mut(key)?;
    if seen.at.elapsed() > AGGREGATION_WINDOW {
        return None;
    }
    seen.count += 1;
    seen.at = Instant::now();
    Some((seen.name.clone(), seen.count))
}

fn remember(key: EventKey, name: String) {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    if recorded.len() >= REMEMBERED {
        recorded.retain(|_, r| r.at.elapsed() <= AGGREGATION_WINDOW);
        if recorded.len() >= REMEMBERED {
            recorded.clear();
        }
    }
    recorded.insert(key, Recorded { name, count: 1, at: Instant::now() });
}

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
    let key: EventKey =
        (ns.to_string(), meta::uid(object).to_string(), reason.into(), message.into(), component.into());
    if let Some((name, count)) = repeat_of(&key) {
        let patch = json!({"count": count, "lastTimestamp": now});
        match client.patch(events, Some(ns), &name, None, PatchType::Merge, &patch).await {
            Ok(_) => return,
            // Gone (expired or deleted): record it afresh below.
            Err(e) => debug!(error = %e, reason, "could not raise the event's count"),
        }
    }
    let name = format!("{}.{}", meta::name(object), meta::random_suffix());
    let event = json!({
        "metadata": {"name": name, "namespace": ns},
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
    match client.create(events, Some(ns), &event).await {
        Ok(_) => remember(key, name),
        Err(e) => debug!(error = %e, reason, "could not record event"),
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
