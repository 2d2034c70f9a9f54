//! Controllers: each watches what it needs through informers (a local cache), and on every
//! change reconciles all objects it owns toward their spec. Reconciles are idempotent: they
//! read the cache, compare, and write only differences, so a restart mid-way converges.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod replicaset;
pub mod written;

use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How often a controller reconciles even without a change (catches anything missed).
pub const RESYNC: Duration = Duration::from_secs(30);

/// Wait until `changed` fires (bursts coalesce into one wake-up) or `RESYNC` passes; every
/// controller reconciles everything after each wake-up.
pub async fn wait_for_change(changed: &Notify) {
    wait_for_change_until(changed, None).await
}

/// [`wait_for_change`], waking also at `deadline` when one is given: a controller that needs
/// to look again at a known time (a pod becoming available after `minReadySeconds`, a progress
/// deadline passing) asks for it instead of waiting for the resync.
pub async fn wait_for_change_until(changed: &Notify, deadline: Option<Instant>) {
    let resync = Instant::now() + RESYNC;
    let until = deadline.map_or(resync, |d| d.min(resync));
    tokio::select! {
        _ = changed.notified() => {}
        _ = tokio::time::sleep_until(until.into()) => {}
    }
}

/// Paces the reconcile rounds of a controller that scans every pod. Each wake-up reconciles
/// everything cached, so a round costs time in proportion to the stored objects; under a
/// steady stream of changes, back-to-back rounds of the scheduler, garbage collector and
/// ReplicaSet controller kept both cores busy and starved the API server sharing their
/// runtime (`bench api-load`: a GET went from 3 ms to 400 ms at 4k pods, and the controllers
/// kept catching up for 30 s after the load stopped). A round that took longer than
/// `PACE_FROM` is followed by a rest of `REST_FACTOR` times its length, so such a controller
/// uses at most a quarter of a core; short rounds (small clusters, pod start-up) are not slowed.
///
/// A round run through [`Rounds::timed`] counts only the time it was running, not the time it
/// waited for the API: a ReplicaSet round that created 600 pods one write after another took a
/// minute of wall time, mostly waiting, and then rested three minutes before it even wrote
/// their status (`bench churn`: 3 pods/s to fill a 1,000-pod Deployment).
pub struct Rounds {
    started: Instant,
    /// The running time of the last round, when it was [`Rounds::timed`].
    busy: Option<Duration>,
}

/// Rounds shorter than this are never paced.
const PACE_FROM: Duration = Duration::from_millis(20);
/// Rest after a long round, as a multiple of its length.
const REST_FACTOR: u32 = 3;

impl Rounds {
    /// Start timing the first round.
    pub fn new() -> Self {
        Self { started: Instant::now(), busy: None }
    }

    /// Run one round, counting for the rest after it only the time it spends being polled
    /// (computing), not the time it waits on writes.
    pub async fn timed<T>(&mut self, round: impl Future<Output = T>) -> T {
        let mut round = std::pin::pin!(round);
        let mut busy = Duration::ZERO;
        let out = std::future::poll_fn(|cx| {
            let polled = Instant::now();
            let result = round.as_mut().poll(cx);
            busy += polled.elapsed();
            result
        })
        .await;
        self.busy = Some(busy);
        out
    }

    /// End the current round: wait for a change (see [`wait_for_change`]) and for the rest the
    /// round earned, then start timing the next.
    pub async fn next(&mut self, changed: &Notify) {
        self.next_until(changed, None).await
    }

    /// [`Rounds::next`], waking also at `deadline` (see [`wait_for_change_until`]).
    pub async fn next_until(&mut self, changed: &Notify, deadline: Option<Instant>) {
        let spent = self.busy.take().unwrap_or_else(|| self.started.elapsed());
        let rest_until = tokio::time::Instant::now() + rest_after(spent);
        wait_for_change_until(changed, deadline).await;
        tokio::time::sleep_until(rest_until).await;
        self.started = Instant::now();
    }
}

impl Default for Rounds {
    fn default() -> Self {
        Self::new()
    }
}

/// How long to rest after a round that took `busy`.
fn rest_after(busy: Duration) -> Duration {
    if busy < PACE_FROM { Duration::ZERO } else { busy * REST_FACTOR }
}

/// Short stable hash of a JSON value (pod-template-hash). serde_json maps are sorted, so the
/// same template always hashes the same.
pub fn template_hash(value: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(value).unwrap_or_default());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    digest.iter().take(10).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_rounds_are_paced() {
        assert_eq!(rest_after(Duration::from_millis(5)), Duration::ZERO);
        assert_eq!(rest_after(Duration::from_millis(100)), Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_long_round_rests_even_when_a_change_is_waiting() {
        let changed = Notify::new();
        let round = Duration::from_millis(25);
        let mut rounds = Rounds { started: Instant::now() - round, busy: None };
        changed.notify_one();
        let before = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), rounds.next(&changed)).await.expect("in time");
        assert!(before.elapsed() >= round * REST_FACTOR - Duration::from_millis(1));
    }

    #[tokio::test]
    async fn a_timed_round_counts_its_running_time_not_its_waiting() {
        let mut rounds = Rounds::new();
        // A round that mostly waits (as on API writes) earns no rest.
        rounds.timed(tokio::time::sleep(Duration::from_millis(60))).await;
        let changed = Notify::new();
        changed.notify_one();
        let before = Instant::now();
        rounds.next(&changed).await;
        assert!(before.elapsed() < Duration::from_millis(50), "rested {:?}", before.elapsed());
        // One that computes does.
        rounds.timed(async { std::thread::sleep(Duration::from_millis(25)) }).await;
        changed.notify_one();
        let before = Instant::now();
        rounds.next(&changed).await;
        assert!(before.elapsed() >= Duration::from_millis(70), "rested {:?}", before.elapsed());
    }
}
