//! Limits on watch connections, per caller: how fast new watches may be opened (a token
//! bucket) and how many may be open at once. A client over either limit gets 429
//! TooManyRequests with `Retry-After`, which client-go and the Python client honour by
//! retrying; one runaway client cannot exhaust the server for the others.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::api::ApiError;

/// Watch limits.
#[derive(Debug)]
pub struct WatchLimits {
    /// New watches per second, per caller, once the burst is spent.
    pub rate: f64,
    /// How many new watches a caller may open at once before the rate applies.
    pub burst: f64,
    /// Open watches per caller.
    pub max_open: usize,
    state: Mutex<HashMap<String, Caller>>,
}

#[derive(Debug)]
struct Caller {
    tokens: f64,
    refilled: Instant,
    open: usize,
}

impl Default for WatchLimits {
    /// Generous for controllers and kubectl (an informer opens one watch per kind), tight
    /// enough that a loop opening watches is stopped within a second.
    fn default() -> Self {
        Self::new(50.0, 200.0, 2000)
    }
}

impl WatchLimits {
    /// Limits with these figures.
    pub fn new(rate: f64, burst: f64, max_open: usize) -> Self {
        Self { rate, burst, max_open, state: Mutex::new(HashMap::new()) }
    }

    /// Admit a new watch by `caller`, or refuse it with a 429. The guard keeps it counted as
    /// open until dropped (when the stream ends).
    pub fn admit(self: &Arc<Self>, caller: &str) -> Result<WatchGuard, ApiError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry =
            state.entry(caller.to_string()).or_insert(Caller { tokens: self.burst, refilled: now, open: 0 });
        let elapsed = now.duration_since(entry.refilled).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * self.rate).min(self.burst);
        entry.refilled = now;
        if entry.open >= self.max_open {
            return Err(ApiError::too_many_requests(format!(
                "too many open watches for {caller}: the limit is {}",
                self.max_open
            )));
        }
        if entry.tokens < 1.0 {
            return Err(ApiError::too_many_requests(format!(
                "{caller} is opening watches faster than {} per second",
                self.rate
            )));
        }
        entry.tokens -= 1.0;
        entry.open += 1;
        Ok(WatchGuard { limits: self.clone(), caller: caller.to_string() })
    }
}

/// One admitted watch; dropping it frees its slot.
#[derive(Debug)]
pub struct WatchGuard {
    limits: Arc<WatchLimits>,
    caller: String,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut state = self.limits.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = state.get_mut(&self.caller) {
            c.open = c.open.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_and_frees_slots_on_drop() {
        let limits = Arc::new(WatchLimits::new(0.001, 3.0, 2));
        let a = limits.admit("u").expect("first");
        let b = limits.admit("u").expect("second");
        let full = limits.admit("u").expect_err("only two open");
        assert_eq!((full.code, full.reason), (429, "TooManyRequests"));
        assert!(limits.admit("v").is_ok(), "per caller");
        drop(a);
        let c = limits.admit("u").expect("a slot freed");
        drop((b, c));
        let rate = limits.admit("u").expect_err("burst of three spent");
        assert!(rate.message.contains("faster than"), "{}", rate.message);
    }
}
