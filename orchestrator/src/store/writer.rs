//! Group commit: one thread owns redb's single writer and applies every mutation that is
//! waiting in one write transaction, with one fsync. Under load (a burst of pod creations,
//! status updates and events) this turns N fsyncs into one, while each caller still gets its
//! own result only after its change is durable, and watchers still see events in revision
//! order.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, mpsc},
};

use redb::{Database, ReadableTable, Table};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tracing::error;

use super::{
    EventType, Mutation, StoreError, StoredEvent,
    redb_store::{EVENTS, META, OBJECTS, REVISION, decode},
};

/// What a job hands back to run once the batch's commit is known.
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One mutation, run inside the batch's transaction.
pub(super) type Job = Box<dyn FnOnce(&mut Batch<'_>) -> Completion + Send>;

/// Most mutations folded into one transaction.
const MAX_BATCH: usize = 256;

/// The open transaction's tables and the revision counter, shared by the jobs of a batch.
pub(super) struct Batch<'t> {
    objects: Table<'t, &'static str, &'static [u8]>,
    events: Table<'t, u64, &'static [u8]>,
    revision: u64,
    published: Vec<StoredEvent>,
}

impl Batch<'_> {
    /// Read the object at `key` (as left by earlier jobs of this batch), let `decide` choose,
    /// and apply the choice with the next revision.
    pub(super) fn apply<E, F>(&mut self, key: &str, decide: F) -> Result<Option<Value>, E>
    where
        E: From<StoreError>,
        F: FnOnce(Option<Value>) -> Result<Mutation, E>,
    {
        let current = match self.objects.get(key).map_err(StoreError::from)? {
            Some(raw) => Some(decode(key, raw.value())?),
            None => None,
        };
        let existed = current.is_some();
        let (event_type, mut object) = match (decide(current.clone())?, current) {
            (Mutation::Keep, current) => return Ok(current),
            (Mutation::Delete, None) => return Ok(None),
            (Mutation::Delete, Some(old)) => (EventType::Deleted, old),
            (Mutation::Put(new), _) => (if existed { EventType::Modified } else { EventType::Added }, new),
        };
        let revision = self.revision + 1;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        let event =
            StoredEvent { rv: revision, event_type, key: key.to_string(), object: Arc::new(object.clone()) };
        let event_bytes = serde_json::to_vec(&event).map_err(|e| StoreError::Backend(e.to_string()))?;
        if event_type == EventType::Deleted {
            self.objects.remove(key).map_err(StoreError::from)?;
        } else {
            let bytes = serde_json::to_vec(&object).map_err(|e| StoreError::Backend(e.to_string()))?;
            self.objects.insert(key, bytes.as_slice()).map_err(StoreError::from)?;
        }
        self.events.insert(revision, event_bytes.as_slice()).map_err(StoreError::from)?;
        self.revision = revision;
        self.published.push(event);
        Ok(Some(object))
    }
}

/// The writer thread and its queue. Dropping it (with the last `Store` clone) closes the queue
/// and waits for the thread, so the database file is closed when the store is.
pub(super) struct Writer {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    /// Queue a job; false if the writer has stopped.
    pub(super) fn submit(&self, job: Job) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// Start the writer thread; it stops when the `Writer` is dropped.
pub(super) fn spawn(
    db: Arc<Database>,
    retained: u64,
    live: broadcast::Sender<StoredEvent>,
) -> Result<Writer, StoreError> {
    let (tx, rx) = mpsc::channel::<Job>();
    let thread = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                run_batch(&db, retained, &live, jobs);
            }
        })
        .map_err(|e| StoreError::Backend(format!("starting the store writer: {e}")))?;
    Ok(Writer { jobs: std::sync::Mutex::new(Some(tx)), thread: std::sync::Mutex::new(Some(thread)) })
}

fn run_batch(db: &Database, retained: u64, live: &broadcast::Sender<StoredEvent>, jobs: Vec<Job>) {
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    let mut published = Vec::new();
    let outcome = (|| -> Result<(), StoreError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let revision = meta.get(REVISION)?.map(|v| v.value()).unwrap_or(0);
            let mut batch = Batch {
                objects: txn.open_table(OBJECTS)?,
                events: txn.open_table(EVENTS)?,
                revision,
                published: Vec::new(),
            };
            for job in jobs {
                // A panicking job (a bug) must not leave half a change: the whole batch is
                // abandoned and every caller told so.
                match catch_unwind(AssertUnwindSafe(|| job(&mut batch))) {
                    Ok(done) => completions.push(done),
                    Err(_) => {
                        return Err(StoreError::Backend(
                            "a store mutation panicked; the batch was rolled back".into(),
                        ));
                    }
                }
            }
            if batch.revision > revision {
                meta.insert(REVISION, batch.revision)?;
                if batch.revision > retained {
                    batch.events.retain_in(..=(batch.revision - retained), |_, _| false)?;
                }
            }
            published = std::mem::take(&mut batch.published);
        }
        txn.commit()?;
        Ok(())
    })();
    if let Err(e) = &outcome {
        error!(error = %e, "store batch failed");
    }
    for done in completions {
        done(outcome.as_ref().map(|_| ()).map_err(|e| StoreError::Backend(e.to_string())));
    }
    if outcome.is_ok() {
        for event in published {
            // No receivers is fine: nobody is watching.
            let _ = live.send(event);
        }
    }
}
