//! CPU limits with epoch interruption: `limits.cpu` (millicores) becomes a token bucket that
//! each of the container's instances draws from while it runs Wasm.
//!
//! The engine's ticker bumps the epoch every [`EPOCH_TICK`]; a running guest then reaches its
//! deadline, and the callback charges the time it ran since it last resumed (capped at two
//! ticks, so time spent parked in a host call, e.g. a WASI sleep, is never billed as
//! computation). Within budget it just yields to tokio; over budget it sleeps until the bucket
//! is back at zero, the way the CFS quota throttles a cgroup. A 100m busy loop therefore runs
//! about 10 ms in every 100 ms and never holds a worker thread for longer than a tick.
//!
//! The time charged is wall time while the guest runs on its thread: accurate for a guest that
//! computes, slightly generous to the guest when the host is so overloaded that the OS preempts
//! the thread mid-slice (the preempted time is billed too). Every container, limited or not,
//! accumulates its charged time for metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::EPOCH_TICK;

/// The most a bucket may save up: one CFS period's worth, so an idle guest cannot bank a burst
/// longer than the kernel would allow.
const PERIOD: Duration = Duration::from_millis(100);

/// A container's CPU account. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CpuBudget {
    inner: Arc<Account>,
}

#[derive(Debug)]
struct Account {
    /// Millicores, `None` for no limit.
    millis: Option<u64>,
    /// Total nanoseconds of Wasm execution charged, for metrics.
    used_nanos: AtomicU64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Nanoseconds of CPU the container may still use; negative is debt.
    tokens: i128,
    refilled_at: Instant,
}

impl CpuBudget {
    /// An account for `millis` millicores (`None`: measure only).
    pub fn new(millis: Option<u64>) -> Self {
        let millis = millis.map(|m| m.max(1));
        let capacity = millis.map_or(0, capacity_nanos);
        Self {
            inner: Arc::new(Account {
                millis,
                used_nanos: AtomicU64::new(0),
                bucket: Mutex::new(Bucket { tokens: capacity, refilled_at: Instant::now() }),
            }),
        }
    }

    /// CPU time the container's guests have used so far.
    pub fn used(&self) -> Duration {
        Duration::from_nanos(self.inner.used_nanos.load(Ordering::Relaxed))
    }

    /// The limit in millicores, if any.
    pub fn millis(&self) -> Option<u64> {
        self.inner.millis
    }

    /// Charges `ran` and returns how long the guest must pause before running again.
    pub(crate) fn charge(&self, ran: Duration) -> Duration {
        let ran = ran.min(EPOCH_TICK * 2);
        self.inner.used_nanos.fetch_add(ran.as_nanos() as u64, Ordering::Relaxed);
        let Some(millis) = self.inner.millis else { return Duration::ZERO };
        let mut bucket = self.inner.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(bucket.refilled_at).as_nanos() * u128::from(millis) / 1000;
        bucket.refilled_at = now;
        let capacity = capacity_nanos(millis);
        bucket.tokens = (bucket.tokens + earned as i128).min(capacity) - ran.as_nanos() as i128;
        if bucket.tokens >= 0 {
            return Duration::ZERO;
        }
        // Time to earn the debt back at `millis` millicores.
        let debt = (-bucket.tokens) as u128;
        Duration::from_nanos((debt * 1000 / u128::from(millis)).min(u64::MAX as u128) as u64)
    }
}

fn capacity_nanos(millis: u64) -> i128 {
    PERIOD.as_nanos() as i128 * i128::from(millis) / 1000
}

/// Per-store bookkeeping: when the guest last resumed (nanoseconds since `base`), written by
/// the pause future when it completes and read by the next epoch callback.
#[derive(Debug)]
pub(crate) struct RunClock {
    base: Instant,
    resumed_at: AtomicU64,
}

impl RunClock {
    pub(crate) fn start() -> Arc<Self> {
        Arc::new(Self { base: Instant::now(), resumed_at: AtomicU64::new(0) })
    }

    /// Marks the guest as running again from now.
    pub(crate) fn resume(&self) {
        self.resumed_at.store(self.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// How long the guest has been running since it last resumed.
    pub(crate) fn ran(&self) -> Duration {
        let resumed = Duration::from_nanos(self.resumed_at.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(resumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_bucket_no_pause() {
        let budget = CpuBudget::new(Some(1000));
        assert_eq!(budget.charge(Duration::from_millis(10)), Duration::ZERO);
        assert_eq!(budget.used(), Duration::from_millis(10));
    }

    #[test]
    fn a_hundred_millicores_pays_back_ten_times_what_it_overran() {
        let budget = CpuBudget::new(Some(100));
        // 10 ms of bucket, then every 20 ms slice is debt repaid at 0.1 core.
        let mut pause = Duration::ZERO;
        for _ in 0..3 {
            pause = budget.charge(Duration::from_millis(20));
        }
        // 60 ms charged against 10 ms saved: ~50 ms of debt, ~500 ms to repay.
        assert!(pause > Duration::from_millis(400) && pause <= Duration::from_millis(500), "{pause:?}");
    }

    #[test]
    fn charges_are_capped_and_unlimited_is_never_paused() {
        let budget = CpuBudget::new(None);
        assert_eq!(budget.charge(Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(budget.used(), EPOCH_TICK * 2);
    }
}
