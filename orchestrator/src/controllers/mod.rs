//! Controllers: each watches what it needs through informers (a local cache), and on every
//! change reconciles all objects it owns toward their spec. Reconciles are idempotent: they
//! read the cache, compare, and write only differences, so a restart mid-way converges.

pub mod deployment;
pub mod events;
pub mod gc;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod replicaset;

use std::time::Duration;

use tokio::sync::Notify;

/// How often a controller reconciles even without a change (catches anything missed).
pub const RESYNC: Duration = Duration::from_secs(30);

/// Wait until `changed` fires (bursts coalesce into one wake-up) or `RESYNC` passes; every
/// controller reconciles everything after each wake-up.
pub async fn wait_for_change(changed: &Notify) {
    tokio::select! {
        _ = changed.notified() => {}
        _ = tokio::time::sleep(RESYNC) => {}
    }
}

/// Short stable hash of a JSON value (pod-template-hash). serde_json maps are sorted, so the
/// same template always hashes the same.
pub fn template_hash(value: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(value).unwrap_or_default());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest.iter().take(10).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}
