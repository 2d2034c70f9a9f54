//! The redb-backed [`Store`]: tables `objects` (key → JSON), `events` (revision → event JSON)
//! and `meta` (the revision counter).

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{EventType, Mutation, StoreError, StoredEvent};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// How many past events a watch can resume from before it gets 410 Expired (by default).
pub const RETAINED_EVENTS: u64 = 20_000;

/// The cluster store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// Serializes commit + publish so watchers see events in revision order.
    writer: Arc<Mutex<()>>,
    live: broadcast::Sender<StoredEvent>,
    retained: u64,
}

impl Store {
    /// Open (or create) the store file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_retention(path, RETAINED_EVENTS)
    }

    /// Open keeping only the last `retained` events (tests use a small log to reach 410).
    pub fn open_with_retention(path: &Path, retained: u64) -> Result<Self, StoreError> {
        let retained = retained.max(1);
        let db = Database::create(path)
            .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write()?;
        {
            txn.open_table(OBJECTS)?;
            txn.open_table(EVENTS)?;
            txn.open_table(META)?;
        }
        txn.commit()?;
        let (live, _) = broadcast::channel(4096);
        Ok(Self { db: Arc::new(db), writer: Arc::new(Mutex::new(())), live, retained })
    }

    /// The newest revision handed out.
    pub fn current_revision(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(REVISION)?.map(|v| v.value()).unwrap_or(0))
    }

    /// One object, if present.
    pub fn get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let txn = self.db.begin_read()?;
        let objects = txn.open_table(OBJECTS)?;
        let Some(raw) = objects.get(key)? else {
            return Ok(None);
        };
        decode(key, raw.value()).map(Some)
    }

    /// Every object whose key starts with `prefix`, and the revision the list is consistent at.
    pub fn list(&self, prefix: &str) -> Result<(Vec<Value>, u64), StoreError> {
        let txn = self.db.begin_read()?;
        let revision = txn.open_table(META)?.get(REVISION)?.map(|v| v.value()).unwrap_or(0);
        let objects = txn.open_table(OBJECTS)?;
        let mut items = Vec::new();
        for entry in objects.range(prefix..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            items.push(decode(k.value(), v.value())?);
        }
        Ok((items, revision))
    }

    /// Atomically read the object at `key`, let `decide` choose what to do, and apply it in the
    /// same write transaction. Returns the stored object (or the deleted one's last state).
    pub fn mutate<E, F>(&self, key: &str, decide: F) -> Result<Option<Value>, E>
    where
        E: From<StoreError>,
        F: FnOnce(Option<Value>) -> Result<Mutation, E>,
    {
        let _order = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        let (result, event) = {
            let mut objects = txn.open_table(OBJECTS).map_err(StoreError::from)?;
            let current = match objects.get(key).map_err(StoreError::from)? {
                Some(raw) => Some(decode(key, raw.value())?),
                None => None,
            };
            let existed = current.is_some();
            let mutation = decide(current.clone())?;
            let mut meta = txn.open_table(META).map_err(StoreError::from)?;
            let revision = meta.get(REVISION).map_err(StoreError::from)?.map(|v| v.value()).unwrap_or(0) + 1;
            let (event_type, mut object) = match (mutation, current) {
                (Mutation::Keep, current) => return Ok(current),
                (Mutation::Delete, None) => return Ok(None),
                (Mutation::Delete, Some(old)) => {
                    objects.remove(key).map_err(StoreError::from)?;
                    (EventType::Deleted, old)
                }
                (Mutation::Put(new), _) => {
                    (if existed { EventType::Modified } else { EventType::Added }, new)
                }
            };
            object["metadata"]["resourceVersion"] = json!(revision.to_string());
            let bytes = serde_json::to_vec(&object).map_err(|e| StoreError::Backend(e.to_string()))?;
            if event_type != EventType::Deleted {
                objects.insert(key, bytes.as_slice()).map_err(StoreError::from)?;
            }
            meta.insert(REVISION, revision).map_err(StoreError::from)?;
            let event = StoredEvent {
                rv: revision,
                event_type,
                key: key.to_string(),
                object: Arc::new(object.clone()),
            };
            let mut events = txn.open_table(EVENTS).map_err(StoreError::from)?;
            let event_bytes = serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
            events.insert(revision, event_bytes.as_slice()).map_err(StoreError::from)?;
            if revision > self.retained {
                events.retain_in(..=(revision - self.retained), |_, _| false).map_err(StoreError::from)?;
            }
            (Some(object), event)
        };
        txn.commit().map_err(StoreError::from)?;
        // No receivers is fine: nobody is watching.
        let _ = self.live.send(event);
        Ok(result)
    }

    /// Subscribe to changes committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.live.subscribe()
    }

    /// Events after `since` (exclusive) for keys under `prefix`, from the retained log.
    /// `Expired` when the log no longer reaches back to `since`.
    pub fn events_since(&self, prefix: &str, since: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let current = txn.open_table(META)?.get(REVISION)?.map(|v| v.value()).unwrap_or(0);
        let oldest = events.first()?.map(|(k, _)| k.value()).unwrap_or(current + 1);
        if since + 1 < oldest && since < current {
            return Err(StoreError::Expired { requested: since, oldest });
        }
        let mut out = Vec::new();
        for entry in events.range((since + 1)..)? {
            let (k, v) = entry?;
            let event: StoredEvent = serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                key: format!("event {}", k.value()),
                message: e.to_string(),
            })?;
            if event.key.starts_with(prefix) {
                out.push(event);
            }
        }
        Ok(out)
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<Value, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { key: key.to_string(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &Store, key: &str, value: Value) -> Value {
        store.mutate::<StoreError, _>(key, |_| Ok(Mutation::Put(value))).expect("put").expect("object")
    }

    #[test]
    fn revisions_increase_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let store = Store::open(&path).expect("open");
            let a = put(&store, "/registry/core/pods/default/a", json!({"metadata": {"name": "a"}}));
            let b = put(&store, "/registry/core/pods/default/b", json!({"metadata": {"name": "b"}}));
            assert_eq!(a["metadata"]["resourceVersion"], "1");
            assert_eq!(b["metadata"]["resourceVersion"], "2");
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.current_revision().expect("rv"), 2);
        let (items, rv) = store.list("/registry/core/pods/default/").expect("list");
        assert_eq!((items.len(), rv), (2, 2));
        let c = put(&store, "/registry/core/pods/default/c", json!({"metadata": {"name": "c"}}));
        assert_eq!(c["metadata"]["resourceVersion"], "3");
    }

    #[test]
    fn list_prefix_is_exact_and_events_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.redb")).expect("open");
        put(&store, "/registry/core/pods/default/a", json!({"metadata": {"name": "a"}}));
        put(&store, "/registry/core/pods/default2/a", json!({"metadata": {"name": "a"}}));
        put(
            &store,
            "/registry/core/pods/default/a",
            json!({"metadata": {"name": "a", "labels": {"x": "y"}}}),
        );
        store
            .mutate::<StoreError, _>("/registry/core/pods/default/a", |_| Ok(Mutation::Delete))
            .expect("delete");
        assert_eq!(store.list("/registry/core/pods/default/").expect("list").0.len(), 0);
        let events = store.events_since("/registry/core/pods/default/", 0).expect("events");
        let kinds: Vec<_> = events.iter().map(|e| (e.rv, e.event_type)).collect();
        assert_eq!(kinds, vec![(1, EventType::Added), (3, EventType::Modified), (4, EventType::Deleted)]);
        assert_eq!(store.events_since("/registry/", 3).expect("events").len(), 1);
    }

    #[test]
    fn failed_decision_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.redb")).expect("open");
        put(&store, "/k", json!({"metadata": {"name": "k"}, "v": 1}));
        let err = store.mutate::<StoreError, _>("/k", |_| Err(StoreError::Backend("refused".into())));
        assert!(err.is_err());
        assert_eq!(store.get("/k").expect("get").expect("present")["v"], 1);
        assert_eq!(store.current_revision().expect("rv"), 1);
    }

    #[tokio::test]
    async fn live_events_arrive_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.redb")).expect("open");
        let mut rx = store.subscribe();
        for i in 0..5 {
            put(&store, &format!("/k/{i}"), json!({"metadata": {"name": i.to_string()}}));
        }
        for want in 1..=5 {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .expect("in time")
                .expect("event");
            assert_eq!(ev.rv, want);
        }
    }
}
