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

/// An event this process created (or is creating): its name, its count, when it was last
/// raised, and whether the create has finished.
struct Recorded {
    name: String,
    count: u64,
    at: Instant,
    created: bool,
}

static RECORDED: LazyLock<Mutex<HashMap<EventKey, Recorded>>> = LazyLock::new(Default::default);

/// What to do about an event.
enum Recording {
    /// First of its kind: create it under this name.
    Create(String),
    /// A repeat of a created event: raise it to this count.
    Raise(String, u64),
    /// A repeat while the first one's create is in flight: its creator raises the count after.
    Counted,
}

/// Decide, under one lock, whether `key` is new or a repeat; a new key is remembered at once,
/// so a repeat emitted while the create is in flight counts up instead of creating a twin.
fn recording(key: &EventKey, object_name: &str) -> Recording {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(seen) = recorded.get_mut(key).filter(|seen| seen.at.elapsed() <= AGGREGATION_WINDOW) {
        seen.count += 1;
        seen.at = Instant::now();
        return if seen.created {
            Recording::Raise(seen.name.clone(), seen.count)
        } else {
            Recording::Counted
        };
    }
    if recorded.len() >= REMEMBERED {
        recorded.retain(|_, r| r.at.elapsed() <= AGGREGATION_WINDOW);
        if recorded.len() >= REMEMBERED {
            recorded.clear();
        }
    }
    let name = format!("{object_name}.{}", meta::random_suffix());
    recorded
        .insert(key.clone(), Recorded { name: name.clone(), count: 1, at: Instant::now(), created: false });
    Recording::Create(name)
}

/// After the create of `key`: mark it created (or forget it if the create failed) and return
/// the count repeats raised it to meanwhile.
fn created(key: &EventKey, ok: bool) -> u64 {
    let mut recorded = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    if !ok {
        recorded.remove(key);
        return 0;
    }
    recorded.get_mut(key).map_or(1, |seen| {
        seen.created = true;
        seen.count
    })
}

fn forget(key: &EventKey) {
    RECORDED.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
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
    let name = match recording(&key, meta::name(object)) {
        Recording::Counted => return,
        Recording::Raise(name, count) => {
            let patch = json!({"count": count, "lastTimestamp": now});
            match client.patch(events, Some(ns), &name, None, PatchType::Merge, &patch).await {
                Ok(_) => return,
                Err(e) => {
                    // Gone (expired or deleted): record it afresh.
                    debug!(error = %e, reason, "could not raise the event's count");
                    forget(&key);
                    match recording(&key, meta::name(object)) {
                        Recording::Create(name) => name,
                        _ => return,
                    }
                }
            }
        }
        Recording::Create(name) => name,
    };
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
    let result = client.create(events, Some(ns), &event).await;
    if let Err(e) = &result {
        debug!(error = %e, reason, "could not record event");
    }
    let count = created(&key, result.is_ok());
    if count > 1 {
        // Repeats arrived while the create was in flight.
        let patch = json!({"count": count, "lastTimestamp": meta::now()});
        if let Err(e) = client.patch(events, Some(ns), &name, None, PatchType::Merge, &patch).await {
            debug!(error = %e, reason, "could not raise the event's count");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reason: &str) -> EventKey {
        ("ns".into(), "uid-events-test".into(), reason.into(), "message".into(), "test".into())
    }

    #[test]
    fn a_repeat_during_the_create_counts_up_instead_of_creating_a_twin() {
        let key = key("WhileCreating");
        let Recording::Create(name) = recording(&key, "pod") else { panic!("the first is created") };
        assert!(matches!(recording(&key, "pod"), Recording::Counted));
        assert_eq!(created(&key, true), 2, "the creator raises the count the repeat left");
        match recording(&key, "pod") {
            Recording::Raise(raised, 3) => assert_eq!(raised, name),
            _ => panic!("a later repeat raises the created event"),
        }
    }

    #[test]
    fn a_failed_create_is_forgotten() {
        let key = key("CreateFailed");
        assert!(matches!(recording(&key, "pod"), Recording::Create(_)));
        assert_eq!(created(&key, false), 0);
        assert!(matches!(recording(&key, "pod"), Recording::Create(_)));
    }
}
