//! Memory limits: every linear memory and table a container's instances allocate is counted
//! against the container's `limits.memory` and against the pod's total (the sum of its
//! containers' limits, as the pod-level cgroup does it), and so is the memory of every HTTP
//! request's instance while it lives.
//!
//! A growth that would go over is refused with a trap, not with `memory.grow` returning -1:
//! guests built with Rust, C or Go abort on allocation failure anyway, and trapping at the
//! exact growth lets the runtime report the container as `OOMKilled` (exit code 137) as the
//! kernel's OOM killer would, instead of a confusing "unreachable" trap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasmtime::ResourceLimiter;

/// Bytes charged per table element: wasmtime stores one pointer per funcref/externref slot.
const TABLE_ELEMENT_BYTES: u64 = 8;

/// A shared memory account with an optional limit. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct MemoryBudget {
    inner: Arc<Account>,
}

#[derive(Debug, Default)]
struct Account {
    limit: Option<u64>,
    used: AtomicU64,
    /// Set when a growth was refused because of this account.
    exceeded: AtomicBool,
}

impl MemoryBudget {
    /// An account that refuses growth past `limit` bytes (`None`: counts only).
    pub fn new(limit: Option<u64>) -> Self {
        Self { inner: Arc::new(Account { limit, ..Account::default() }) }
    }

    /// Bytes of linear memory and tables currently allocated under this account.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// The limit in bytes, if any.
    pub fn limit(&self) -> Option<u64> {
        self.inner.limit
    }

    /// Whether a growth was ever refused because of this account.
    pub fn exceeded(&self) -> bool {
        self.inner.exceeded.load(Ordering::Relaxed)
    }

    /// Adds `bytes` if the account stays within its limit.
    fn try_charge(&self, bytes: u64) -> bool {
        let account = &self.inner;
        let charged = account.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            let next = used.saturating_add(bytes);
            match account.limit {
                Some(limit) if next > limit => None,
                _ => Some(next),
            }
        });
        if charged.is_err() {
            account.exceeded.store(true, Ordering::Relaxed);
        }
        charged.is_ok()
    }

    fn release(&self, bytes: u64) {
        // Saturating: a release never takes the account below zero, whatever happened before.
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| Some(used.saturating_sub(bytes)));
    }
}

/// Why a growth was refused, carried by the trap so the runtime can tell an OOM kill from a
/// guest's own failure.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory limit exceeded: growing to {wanted} more bytes would pass the {scope} limit of {limit} bytes ({used} in use)"
)]
pub struct MemoryLimitExceeded {
    /// "container" or "pod".
    pub scope: &'static str,
    /// The limit that was hit.
    pub limit: u64,
    /// Bytes in use under that limit before the growth.
    pub used: u64,
    /// The growth asked for.
    pub wanted: u64,
}

/// The `ResourceLimiter` of one store (one instance): charges the container's and the pod's
/// accounts and gives everything back when the store is dropped.
pub(crate) struct StoreLimiter {
    container: MemoryBudget,
    pod: MemoryBudget,
    /// Bytes this store has charged, released on drop.
    charged: u64,
}

impl StoreLimiter {
    pub(crate) fn new(container: MemoryBudget, pod: MemoryBudget) -> Self {
        Self { container, pod, charged: 0 }
    }

    fn grow(&mut self, bytes: u64) -> wasmtime::Result<bool> {
        if bytes == 0 {
            return Ok(true);
        }
        if !self.container.try_charge(bytes) {
            return Err(self.refusal("container", &self.container, bytes));
        }
        if !self.pod.try_charge(bytes) {
            self.container.release(bytes);
            // The container hit the pod's limit: the container is the one killed.
            self.container.inner.exceeded.store(true, Ordering::Relaxed);
            return Err(self.refusal("pod", &self.pod, bytes));
        }
        self.charged += bytes;
        Ok(true)
    }

    fn refusal(&self, scope: &'static str, budget: &MemoryBudget, wanted: u64) -> wasmtime::Error {
        let error =
            MemoryLimitExceeded { scope, limit: budget.limit().unwrap_or(0), used: budget.used(), wanted };
        tracing::warn!(%error, "memory growth refused");
        wasmtime::Error::new(error)
    }
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // Past the memory's own maximum: wasmtime fails the grow itself; charge nothing.
            return Ok(true);
        }
        self.grow(desired.saturating_sub(current) as u64)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(true);
        }
        self.grow((desired.saturating_sub(current) as u64).saturating_mul(TABLE_ELEMENT_BYTES))
    }
}

impl Drop for StoreLimiter {
    fn drop(&mut self) {
        self.container.release(self.charged);
        self.pod.release(self.charged);
    }
}

/// Whether `error` (a trap or host error out of a guest call) is a refused memory growth.
pub(crate) fn is_memory_limit(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| cause.is::<MemoryLimitExceeded>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_and_pod_accounts_are_charged_and_released() {
        let container = MemoryBudget::new(Some(300));
        let pod = MemoryBudget::new(Some(500));
        let mut a = StoreLimiter::new(container.clone(), pod.clone());
        assert!(a.memory_growing(0, 200, None).unwrap());
        assert_eq!((container.used(), pod.used()), (200, 200));
        // Past the container's limit: refused as a trap, nothing charged.
        assert!(a.memory_growing(200, 400, None).is_err());
        assert!(container.exceeded());
        assert_eq!(container.used(), 200);
        drop(a);
        assert_eq!((container.used(), pod.used()), (0, 0));
    }

    #[test]
    fn the_pod_limit_binds_containers_together() {
        let pod = MemoryBudget::new(Some(100));
        let first = MemoryBudget::new(None);
        let second = MemoryBudget::new(None);
        let mut a = StoreLimiter::new(first.clone(), pod.clone());
        let mut b = StoreLimiter::new(second.clone(), pod.clone());
        assert!(a.memory_growing(0, 60, None).unwrap());
        let refused = b.memory_growing(0, 60, None).unwrap_err();
        assert!(is_memory_limit(&refused));
        assert!(second.exceeded() && !first.exceeded());
        assert_eq!((second.used(), pod.used()), (0, 60));
    }

    #[test]
    fn tables_count_per_element() {
        let container = MemoryBudget::new(Some(8 * 10));
        let mut a = StoreLimiter::new(container.clone(), MemoryBudget::new(None));
        assert!(a.table_growing(0, 10, None).unwrap());
        assert!(a.table_growing(10, 11, None).is_err());
    }
}
