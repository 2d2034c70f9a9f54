//! The cluster's state: objects as JSON under `/registry/...` keys, a global monotonically
//! increasing resourceVersion, and a retained log of changes that watches resume from.
//!
//! Backed by redb. A mutation stores the object, appends its event to the log and bumps the
//! revision in the same write transaction, so a crash never leaves an object without its event
//! or a revision handed out twice; mutations waiting at the same time share one transaction
//! (group commit, see `writer`). Events are published to live watchers only after the commit,
//! in revision order.

mod redb_store;
mod writer;

pub use redb_store::{Page, RETAINED_EVENTS, Store};
use serde_json::Value;
use std::sync::Arc;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed; the object is its last state.
    Deleted,
}

/// One change, as stored in the log and sent to watchers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredEvent {
    /// The revision this change produced.
    pub rv: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The storage key of the object.
    pub key: String,
    /// The object after the change (before it, for deletes), with its resourceVersion set.
    pub object: Arc<Value>,
}

/// What a mutation decided to do with the current object.
pub enum Mutation {
    /// Store this object (create or update).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Leave it as it is.
    Keep,
}

/// Storage failures. The apiserver maps them to `Status` errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("storage error: {0}")]
    Backend(String),
    /// A stored object or event is not valid JSON (corruption).
    #[error("stored data at {key} is corrupt: {message}")]
    Corrupt {
        /// The storage key.
        key: String,
        /// What failed to decode.
        message: String,
    },
    /// The asked-for history is older than the retained log.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The revision the client asked for.
        requested: u64,
        /// The oldest revision still in the log.
        oldest: u64,
    },
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Backend(e.into().to_string())
    }
}
