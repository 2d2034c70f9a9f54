//! The redb-backed [`Store`]: tables `objects` (key → JSON), `events` (revision → event JSON)
//! and `meta` (the revision counter).

use std::{
    path::Path,
    sync::{Arc, mpsc},
};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;
use tokio::sync::broadcast;

use super::{Mutation, StoreError, StoredEvent, writer};

pub(super) const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const REVISION: &str = "revision";

/// One page of a chunked list (see [`Store::list_page`]).
#[derive(Debug)]
pub struct Page {
    /// The objects of this page.
    pub items: Vec<Value>,
    /// The store revision the page was read at.
    pub revision: u64,
    /// The last key returned, when more objects follow.
    pub next: Option<String>,
    /// How many stored objects under the prefix follow the page (before selectors).
    pub remaining: usize,
}

/// How many past events a watch can resume from before it gets 410 Expired (by default).
pub const RETAINED_EVENTS: u64 = 20_000;

/// The cluster store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    /// The group-commit writer thread (the only writer).
    writer: Arc<writer::Writer>,
    live: broadcast::Sender<StoredEvent>,
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
        let db = Arc::new(db);
        let writer = Arc::new(writer::spawn(db.clone(), retained, live.clone())?);
        Ok(Self { db, writer, live })
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

    /// One page of a list: up to `limit` objects under `prefix` that `keep` accepts, starting
    /// after the key `after`. Returns the page, the store revision it was read at, and the key
    /// of the last object returned when more may follow (the cursor of the next page).
    pub fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        mut keep: impl FnMut(&Value) -> bool,
    ) -> Result<Page, StoreError> {
        use std::ops::Bound;
        let txn = self.db.begin_read()?;
        let revision = txn.open_table(META)?.get(REVISION)?.map(|v| v.value()).unwrap_or(0);
        let objects = txn.open_table(OBJECTS)?;
        let start = after.map_or(Bound::Included(prefix), Bound::Excluded);
        let mut page = Page { items: Vec::new(), revision, next: None, remaining: 0 };
        let mut last_key = None;
        for entry in objects.range::<&str>((start, Bound::Unbounded))? {
            let (k, v) = entry?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if page.items.len() == limit {
                // Counted, not decoded: clients show it as "N more".
                page.remaining += 1;
                continue;
            }
            let obj = decode(key, v.value())?;
            if keep(&obj) {
                page.items.push(obj);
                last_key = Some(key.to_string());
            }
        }
        if page.remaining > 0 {
            page.next = last_key;
        }
        Ok(page)
    }

    /// Atomically read the object at `key`, let `decide` choose what to do, and apply it.
    /// Concurrent callers share one write transaction (see `writer`); each returns once its
    /// change is committed, with the stored object (or the deleted one's last state).
    pub fn mutate<E, F>(&self, key: &str, decide: F) -> Result<Option<Value>, E>
    where
        E: From<StoreError> + Send + 'static,
        F: FnOnce(Option<Value>) -> Result<Mutation, E> + Send + 'static,
    {
        let (reply, result) = mpsc::sync_channel::<Result<Option<Value>, E>>(1);
        let key = key.to_string();
        let job: writer::Job = Box::new(move |batch| {
            let outcome = batch.apply(&key, decide);
            Box::new(move |committed: Result<(), StoreError>| {
                let _ = reply.send(match committed {
                    Ok(()) => outcome,
                    Err(e) => Err(E::from(e)),
                });
            })
        });
        let stopped = || E::from(StoreError::Backend("the store writer has stopped".into()));
        if !self.writer.submit(job) {
            return Err(stopped());
        }
        result.recv().unwrap_or_else(|_| Err(stopped()))
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

pub(super) fn decode(key: &str, bytes: &[u8]) -> Result<Value, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { key: key.to_string(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventType, Mutation};
    use serde_json::json;

    fn put(store: &Store, key: &str, value: Value) -> Value {
        store.mutate::<StoreError, _>(key, move |_| Ok(Mutation::Put(value))).expect("put").expect("object")
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
            .mutate::<StoreError, _>("/registry/core/pods/default/a", move |_| Ok(Mutation::Delete))
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
        let err = store.mutate::<StoreError, _>("/k", move |_| Err(StoreError::Backend("refused".into())));
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

    #[test]
    fn concurrent_writers_get_unique_dense_revisions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.redb")).expect("open");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            meta_rv(&put(
                                &store,
                                &format!("/k/{t}/{i}"),
                                json!({"metadata": {"name": format!("{t}-{i}")}}),
                            ))
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
        all.sort_unstable();
        assert_eq!(all, (1..=200).collect::<Vec<u64>>(), "every change got its own revision, none skipped");
        let events = store.events_since("/k/", 0).expect("events");
        assert!(events.windows(2).all(|w| w[0].rv < w[1].rv));
        assert_eq!(store.list("/k/").expect("list").0.len(), 200);
    }

    #[test]
    fn a_panicking_mutation_rolls_back_and_the_store_keeps_working() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.redb")).expect("open");
        put(&store, "/a", json!({"metadata": {"name": "a"}}));
        let err = store.mutate::<StoreError, _>("/b", |_| -> Result<Mutation, StoreError> {
            panic!("bug in a decision")
        });
        assert!(err.is_err());
        assert!(store.get("/b").expect("get").is_none());
        assert_eq!(meta_rv(&put(&store, "/c", json!({"metadata": {"name": "c"}}))), 2);
    }

    fn meta_rv(obj: &Value) -> u64 {
        obj["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).expect("rv")
    }
}
