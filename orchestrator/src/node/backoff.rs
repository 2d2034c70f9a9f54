//! Restart and image-pull back-off as the kubelet does it: 10 s doubling to 5 min, reset after
//! a container has run cleanly for 10 min.

use std::time::Duration;

const INITIAL: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);
const RESET_AFTER: Duration = Duration::from_secs(600);

/// One back-off sequence.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next try, recording one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let delay = INITIAL.saturating_mul(2u32.saturating_pow(self.failures.min(16))).min(MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Forget past failures if the last run lasted long enough.
    pub fn ran_for(&mut self, run: Duration) {
        if run >= RESET_AFTER {
            self.failures = 0;
        }
    }

    /// Forget past failures (a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300]);
        b.ran_for(Duration::from_secs(30));
        assert_eq!(b.next_delay().as_secs(), 300);
        b.ran_for(Duration::from_secs(601));
        assert_eq!(b.next_delay().as_secs(), 10);
    }
}
