//! A watch-fed local cache of one resource type (kube-rs calls it a reflector): list, then
//! watch from the list's resourceVersion, relist on 410 or a broken stream. Controllers read
//! from it instead of asking the server in a loop, and are woken when it changes.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use super::Client;
use crate::api::{ResourceType, meta};

/// The cache: `namespace/name` → object.
#[derive(Clone)]
pub struct Cache {
    items: Arc<RwLock<BTreeMap<String, Arc<Value>>>>,
    synced: watch::Receiver<bool>,
}

impl Cache {
    /// All cached objects (shared, not copied: controllers list on every change).
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.items.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// One object by `namespace/name` (or `name`).
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.items.read().ok().and_then(|m| m.get(key).cloned())
    }

    /// Wait until the first list has landed.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Whether the first list has landed.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }
}

/// Start an informer for `rt` (optionally filtered by a field selector); `changed` is notified
/// after every change to the cache.
pub fn spawn(
    client: Client,
    rt: &'static ResourceType,
    field_selector: Option<String>,
    changed: Arc<Notify>,
) -> Cache {
    let items = Arc::new(RwLock::new(BTreeMap::new()));
    let (synced_tx, synced) = watch::channel(false);
    let cache = Cache { items: items.clone(), synced };
    tokio::spawn(async move {
        loop {
            if let Err(e) =
                run_once(&client, rt, field_selector.as_deref(), &items, &changed, &synced_tx).await
            {
                warn!(kind = rt.kind, error = %e, "informer lost its watch; relisting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    cache
}

async fn run_once(
    client: &Client,
    rt: &'static ResourceType,
    field_selector: Option<&str>,
    items: &RwLock<BTreeMap<String, Arc<Value>>>,
    changed: &Notify,
    synced: &watch::Sender<bool>,
) -> Result<(), crate::api::ApiError> {
    let (list, mut rv) = client.list(rt, None, None, field_selector).await?;
    if let Ok(mut m) = items.write() {
        *m = list.into_iter().map(|o| (meta::key_of(&o), Arc::new(o))).collect();
    }
    synced.send_replace(true);
    changed.notify_waiters();
    changed.notify_one();
    loop {
        let mut stream = Box::pin(client.watch(rt, None, rv, field_selector).await?);
        while let Some(event) = stream.next().await {
            let event = event?;
            match event.event_type.as_str() {
                "ADDED" | "MODIFIED" => {
                    rv = meta::resource_version(&event.object).unwrap_or(rv);
                    if let Ok(mut m) = items.write() {
                        m.insert(meta::key_of(&event.object), Arc::new(event.object));
                    }
                }
                "DELETED" => {
                    rv = meta::resource_version(&event.object).unwrap_or(rv);
                    if let Ok(mut m) = items.write() {
                        m.remove(&meta::key_of(&event.object));
                    }
                }
                "BOOKMARK" => {
                    rv = meta::resource_version(&event.object).unwrap_or(rv);
                    continue;
                }
                _ => {
                    let status = crate::api::ApiError::from_status(
                        event.object["code"].as_u64().unwrap_or(500) as u16,
                        &event.object,
                    );
                    debug!(kind = rt.kind, error = %status, "watch error event");
                    return Err(status);
                }
            }
            changed.notify_waiters();
            changed.notify_one();
        }
        // The server ended the watch (timeout): resume from where we are.
    }
}
