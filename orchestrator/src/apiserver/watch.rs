//! `?watch=true`: newline-delimited JSON events. Starts from a snapshot (no resourceVersion,
//! `0`, or the streaming-list handshake `sendInitialEvents=true`, which ends the snapshot with a
//! bookmark annotated `k8s.io/initial-events-end`), or resumes after a resourceVersion from the
//! retained log (410 Expired when it is too old). Selector transitions become ADDED/DELETED.

use crate::apiserver::HttpError;
use std::{collections::HashSet, time::Duration};

use axum::{body::Body, response::Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::{ApiState, handlers::Filters, request::ResourcePath};
use crate::{
    api::{ApiError, ResourceType},
    store::{EventType, StoredEvent},
};

/// Parsed watch parameters.
pub struct WatchParams {
    /// `resourceVersion` (None: unset or "").
    pub resource_version: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
}

impl WatchParams {
    /// From the query; invalid combinations are rejected as kube-apiserver rejects them.
    pub fn from_query(q: &std::collections::HashMap<String, String>) -> Result<Self, ApiError> {
        let resource_version = match q.get("resourceVersion").map(String::as_str) {
            None | Some("") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("resourceVersion {rv:?} is not a valid resource version"))
            })?),
        };
        let send_initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        let match_rule = q.get("resourceVersionMatch").map(String::as_str).unwrap_or("");
        if send_initial_events && match_rule != "NotOlderThan" {
            return Err(ApiError::invalid(
                "ListOptions",
                "",
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !match_rule.is_empty() && !send_initial_events {
            return Err(ApiError::invalid(
                "ListOptions",
                "",
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        let timeout =
            q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800).clamp(1, 3600);
        Ok(Self {
            resource_version,
            send_initial_events,
            bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
            timeout: Duration::from_secs(timeout),
        })
    }
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line("BOOKMARK", &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}))
}

fn with_type(rt: &ResourceType, obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
    obj
}

/// Per-stream state: which objects the client currently sees as matching.
struct Filter {
    rt: &'static ResourceType,
    prefix: String,
    filters: Filters,
    visible: HashSet<String>,
    /// A watch resumed from a resourceVersion does not know what the client saw at that
    /// revision: an object first seen here through a change (not a create) is taken to have
    /// been visible, so unfiltered watches get MODIFIED/DELETED exactly as upstream. Keys whose
    /// visibility has been settled this way are remembered.
    resumed: bool,
    settled: HashSet<String>,
    last_rv: u64,
    /// Send Table rows (kubectl get -w) instead of objects; column definitions go only with
    /// the first one, as kube-apiserver does.
    table: bool,
    columns_sent: bool,
}

impl Filter {
    /// One event line carrying `obj` in the form the client asked for.
    fn encode(&mut self, event_type: &str, obj: &Value) -> Bytes {
        if !self.table {
            return line(event_type, &with_type(self.rt, obj));
        }
        let rv = crate::api::meta::resource_version(obj).unwrap_or(self.last_rv);
        let mut table = super::tables::table(self.rt.kind, std::slice::from_ref(obj), rv);
        if self.columns_sent {
            table["columnDefinitions"] = Value::Array(Vec::new());
        }
        self.columns_sent = true;
        line(event_type, &table)
    }

    /// The line to send for a stored event, if any.
    fn translate(&mut self, ev: &StoredEvent) -> Option<Bytes> {
        if ev.rv <= self.last_rv || !ev.key.starts_with(&self.prefix) {
            return None;
        }
        self.last_rv = ev.rv;
        let matches = self.filters.matches(self.rt.kind, &ev.object);
        let assumed = self.resumed && ev.event_type != EventType::Added && !self.settled.contains(&ev.key);
        if self.resumed {
            self.settled.insert(ev.key.clone());
        }
        let was_visible = self.visible.contains(&ev.key) || assumed;
        let event_type = match (ev.event_type, matches, was_visible) {
            (EventType::Deleted, _, true) | (EventType::Deleted, true, false) => {
                self.visible.remove(&ev.key);
                "DELETED"
            }
            (EventType::Deleted, false, false) => return None,
            (_, true, true) => "MODIFIED",
            (_, true, false) => {
                self.visible.insert(ev.key.clone());
                "ADDED"
            }
            (_, false, true) => {
                self.visible.remove(&ev.key);
                "DELETED"
            }
            (_, false, false) => return None,
        };
        Some(self.encode(event_type, &ev.object))
    }
}

/// Start a watch; the response body streams until timeout, client disconnect or an error.
pub async fn watch(
    state: &ApiState,
    path: &ResourcePath,
    filters: Filters,
    params: WatchParams,
    table: bool,
    guard: super::limits::WatchGuard,
) -> Result<Response, HttpError> {
    let rt = path.rt;
    let prefix = rt.namespace_prefix(path.namespace.as_deref());
    // Subscribe before reading the snapshot/log so nothing committed in between is missed;
    // duplicates are dropped by revision.
    let live = state.store.subscribe();
    let store = state.store.clone();
    let mut filter = Filter {
        rt,
        prefix: prefix.clone(),
        filters,
        visible: HashSet::new(),
        resumed: false,
        settled: HashSet::new(),
        last_rv: 0,
        table,
        columns_sent: false,
    };
    let mut initial: Vec<Bytes> = Vec::new();
    let snapshot = params.send_initial_events || matches!(params.resource_version, None | Some(0));
    if snapshot {
        let p = prefix.clone();
        let (items, rv) = super::blocking(move || store.list(&p)).await??;
        for obj in &items {
            if !filter.filters.matches(rt.kind, obj) {
                continue;
            }
            filter.visible.insert(rt.key(crate::api::meta::namespace(obj), crate::api::meta::name(obj)));
            initial.push(filter.encode("ADDED", obj));
        }
        filter.last_rv = rv;
        if params.send_initial_events {
            initial.push(bookmark(rt, rv, true));
        }
    } else if let Some(since) = params.resource_version {
        let p = prefix.clone();
        let current = state.store.current_revision()?;
        if since > current {
            return Err(ApiError {
                code: 504,
                reason: "Timeout",
                message: format!("Too large resource version: {since}, current: {current}"),
                details: Some(
                    json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]}),
                ),
            }
            .into());
        }
        filter.last_rv = since;
        filter.resumed = true;
        match super::blocking(move || store.events_since(&p, since)).await? {
            Ok(events) => {
                for ev in &events {
                    if let Some(l) = filter.translate(ev) {
                        initial.push(l);
                    }
                }
            }
            Err(e) => {
                let status = ApiError::from(e).to_status();
                initial.push(line("ERROR", &status));
                let body = Body::from_stream(futures::stream::iter(
                    initial.into_iter().map(Ok::<_, std::convert::Infallible>),
                ));
                return Ok(super::stream_response(body));
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let store = state.store.clone();
    tokio::spawn(pump(initial, live, filter, tx, params, store, guard));
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
    Ok(super::stream_response(Body::from_stream(stream)))
}

async fn pump(
    initial: Vec<Bytes>,
    mut live: broadcast::Receiver<StoredEvent>,
    mut filter: Filter,
    tx: mpsc::Sender<Bytes>,
    params: WatchParams,
    store: crate::store::Store,
    // Held for as long as the stream is open: it counts against the caller's open watches.
    _guard: super::limits::WatchGuard,
) {
    for l in initial {
        if tx.send(l).await.is_err() {
            return;
        }
    }
    // Catch up on anything committed between the snapshot and the subscription.
    if let Ok(events) = store.events_since(&filter.prefix, filter.last_rv) {
        for ev in &events {
            if let Some(l) = filter.translate(ev) {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
        }
    }
    let deadline = tokio::time::sleep(params.timeout);
    tokio::pin!(deadline);
    let mut bookmark_tick = tokio::time::interval(Duration::from_secs(60));
    bookmark_tick.tick().await;
    loop {
        let next = tokio::select! {
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = bookmark_tick.tick(), if params.bookmarks => Some(bookmark(filter.rt, filter.last_rv.max(store.current_revision().unwrap_or(0)), false)),
            ev = live.recv() => match ev {
                Ok(ev) => filter.translate(&ev),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // We fell behind the live feed; the client must relist.
                    let status = ApiError::expired("the watch fell behind; too old resource version, please relist").to_status();
                    let _ = tx.send(line("ERROR", &status)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(l) = next {
            if tx.send(l).await.is_err() {
                return;
            }
        }
    }
}
