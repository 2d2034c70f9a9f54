//! Follows a set of pods through a real `kubectl get pods --watch`, the way an endpoints
//! controller would: which pods are live (not terminating, not finished) and which serve
//! (live, Ready, with an IP). It also keeps the extremes seen since a reset: the most live pods
//! at once (a rollout's surge) and the fewest serving (its unavailability).

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::cluster::Cluster;

/// One pod as last seen.
#[derive(Debug, Clone, Default)]
pub struct PodState {
    pub ip: String,
    pub phase: String,
    pub ready: bool,
    pub terminating: bool,
    pub image: String,
}

impl PodState {
    /// Not being deleted and not finished.
    pub fn live(&self) -> bool {
        !self.terminating && !matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }

    /// Live, Ready and reachable: where a Service would send traffic.
    pub fn serving(&self) -> bool {
        self.live() && self.ready && !self.ip.is_empty()
    }
}

#[derive(Debug, Default)]
struct Seen {
    pods: BTreeMap<String, PodState>,
    max_live: usize,
    min_serving: usize,
}

impl Seen {
    fn counts(&self) -> (usize, usize) {
        (self.pods.values().filter(|p| p.live()).count(), self.pods.values().filter(|p| p.serving()).count())
    }
}

/// What the watch thread shares: the pods seen, and a signal on every event applied.
#[derive(Default)]
struct Shared {
    seen: Mutex<Seen>,
    changed: Condvar,
}

/// A running watch; stops when dropped.
pub struct PodWatch {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const TEMPLATE: &str = r#"jsonpath={.type}|{.object.metadata.name}|{.object.status.podIP}|{.object.status.phase}|{.object.metadata.deletionTimestamp}|{.object.status.conditions[?(@.type=="Ready")].status}|{.object.spec.containers[0].image}{"\n"}"#;

impl PodWatch {
    /// Watch the pods matching `selector` (a label selector) in the default namespace.
    pub fn start(cluster: &Cluster, selector: &str) -> anyhow::Result<Self> {
        let mut process = cluster.kubectl_background(&[
            "get",
            "pods",
            "-l",
            selector,
            "--watch",
            "--output-watch-events",
            "-o",
            TEMPLATE,
        ])?;
        let seen = Mutex::new(Seen { min_serving: usize::MAX, ..Seen::default() });
        let shared = Arc::new(Shared { seen, changed: Condvar::new() });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(line) = process.next_line(Duration::from_millis(200)) {
                        apply(&mut shared.seen.lock().unwrap_or_else(|p| p.into_inner()), &line);
                        shared.changed.notify_all();
                    }
                }
            })
        };
        Ok(Self { shared, stop, thread: Some(thread) })
    }

    /// The pods as last seen, by name.
    pub fn pods(&self) -> BTreeMap<String, PodState> {
        self.lock().pods.clone()
    }

    /// The IPs of serving pods.
    pub fn serving_ips(&self) -> Vec<String> {
        self.lock().pods.values().filter(|p| p.serving()).map(|p| p.ip.clone()).collect()
    }

    /// Start tracking extremes afresh from the current counts.
    pub fn reset_extremes(&self) {
        let mut seen = self.lock();
        let (live, serving) = seen.counts();
        seen.max_live = live;
        seen.min_serving = serving;
    }

    /// (most live pods at once, fewest serving pods) since the last reset.
    pub fn extremes(&self) -> (usize, usize) {
        let seen = self.lock();
        (seen.max_live, seen.min_serving)
    }

    /// Wait until `done` holds for the pods seen, for at most `timeout`; checked again on every
    /// watch event.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&BTreeMap<String, PodState>) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.lock();
        while !done(&seen.pods) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("{what}: not within {timeout:?}; pods: {:#?}", seen.pods);
            }
            seen = self.shared.changed.wait_timeout(seen, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        Ok(())
    }

    /// Wait for the next watch event, for at most `timeout`.
    pub fn wait_for_event(&self, timeout: Duration) {
        let seen = self.lock();
        drop(self.shared.changed.wait_timeout(seen, timeout));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.shared.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn apply(seen: &mut Seen, line: &str) {
    let fields: Vec<&str> = line.split('|').collect();
    let [kind, name, ip, phase, deletion, ready, image] = fields[..] else { return };
    if kind == "DELETED" {
        seen.pods.remove(name);
    } else {
        let state = PodState {
            ip: ip.to_string(),
            phase: phase.to_string(),
            ready: ready == "True",
            terminating: !deletion.is_empty(),
            image: image.to_string(),
        };
        seen.pods.insert(name.to_string(), state);
    }
    let (live, serving) = seen.counts();
    seen.max_live = seen.max_live.max(live);
    seen.min_serving = seen.min_serving.min(serving);
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
