//! Waiting on state no watch shows. What the node proxy, the Ingress table and the DNS
//! directory serve is in-process state of an agent, fed by watches the test cannot see, and a
//! process's listener has no event for "now accepting": a test learns such a change only by
//! asking again. This is the one bounded poll for all of them (the interval keeps a waiting
//! test from taking a core from the cluster it waits on).

use std::time::{Duration, Instant};

use anyhow::bail;

/// Time between two looks.
const INTERVAL: Duration = Duration::from_millis(50);

/// Ask `check` until it returns `Some`; after `timeout`, fail naming `what` and the last
/// observation `check` described.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<(Option<T>, String)>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let (found, seen) = check()?;
        if let Some(found) = found {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {seen}");
        }
        std::thread::sleep(INTERVAL);
    }
}
