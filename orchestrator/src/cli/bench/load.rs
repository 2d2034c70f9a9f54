//! The load of `bench api-load`: N clients, each with its own connection, driving one verb at a
//! time against the API and timing every call from sending the request to the last byte of
//! the answer (the SLI's definition, seen from the client). The benchmark's pods name a
//! scheduler nobody serves, so they are stored but never bound or run: only the API and the
//! store are measured.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use orchestrator::{
    api::{ResourceType, patch::PatchType},
    client::Client,
};
use rand::Rng;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Stat, percentiles};

/// Latencies of one verb and the wall time they were taken over.
#[derive(Default)]
pub struct Samples {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    pub errors: usize,
}

impl Samples {
    /// p50/p99/count of the successful calls.
    pub fn stat(&self) -> Stat {
        percentiles(self.latencies.clone())
    }

    /// Successful calls per second of wall time.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn merge(parts: Vec<Samples>, wall: Duration) -> Samples {
        let mut all = Samples { wall, ..Default::default() };
        for p in parts {
            all.latencies.extend(p.latencies);
            all.errors += p.errors;
        }
        all
    }

    fn record<T, E: std::fmt::Display>(&mut self, what: &str, started: Instant, result: Result<T, E>) {
        match result {
            Ok(_) => self.latencies.push(started.elapsed()),
            Err(e) => {
                // One line per failing worker is enough to see what went wrong.
                if self.errors == 0 {
                    warn!(what, error = %e, "call failed");
                }
                self.errors += 1;
            }
        }
    }
}

/// Where the benchmark's objects live: pod `i` is `pod-{i}` in namespace `i / per_namespace`.
pub struct Target {
    /// One client per concurrent worker (each keeps its own connection).
    pub clients: Vec<Client>,
    pub pods: &'static ResourceType,
    pub namespaces: Vec<String>,
    pub per_namespace: usize,
}

impl Target {
    pub fn locate(&self, i: usize) -> (&str, String) {
        (&self.namespaces[i / self.per_namespace], format!("pod-{i}"))
    }

    /// The collection path of one namespace, or of the whole cluster.
    pub fn list_path(&self, namespace: Option<&str>) -> String {
        Client::path(self.pods, namespace, None, None)
    }
}

/// The pod every create sends: small, with the fields a real one has, and a scheduler name
/// nobody serves so the scheduler leaves it pending and no agent runs it.
pub fn pod(name: &str, i: usize) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"app": "api-load", "shard": (i % 10).to_string()}},
        "spec": {"schedulerName": "none", "containers": [{
            "name": "app", "image": "wasmkube.local/hello-http:demo", "imagePullPolicy": "Never",
            "ports": [{"containerPort": 8080}],
            "env": [{"name": "MODE", "value": "bench"}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
    })
}

/// Run `call` on every client at once until `more` says stop; each worker times its calls.
pub async fn workers<C, F, Fut>(clients: &[C], more: impl Fn() -> Option<usize> + Sync, call: F) -> Samples
where
    C: Clone,
    F: Fn(C, usize) -> Fut + Sync,
    Fut: Future<Output = (&'static str, Instant, Result<(), String>)>,
{
    let started = Instant::now();
    let parts = futures::future::join_all(clients.iter().map(|client| {
        let (more, call) = (&more, &call);
        async move {
            let mut s = Samples::default();
            while let Some(i) = more() {
                let (what, t, result) = call(client.clone(), i).await;
                s.record(what, t, result);
            }
            s
        }
    }))
    .await;
    Samples::merge(parts, started.elapsed())
}

/// Create pods `from..to`.
pub async fn create(target: &Target, from: usize, to: usize) -> Samples {
    let next = AtomicUsize::new(from);
    let progress = Instant::now();
    let more = || {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i > from && i % 10_000 == 0 {
            info!(created = i, elapsed_s = progress.elapsed().as_secs(), "filling");
        }
        (i < to).then_some(i)
    };
    workers(&target.clients, more, |client, i| async move {
        let (ns, name) = target.locate(i);
        let body = pod(&name, i);
        let t = Instant::now();
        let r = client.create(target.pods, Some(ns), &body).await.map(|_| ()).map_err(|e| e.to_string());
        ("create", t, r)
    })
    .await
}

/// Stop after `duration`.
pub fn for_duration(duration: Duration) -> impl Fn() -> Option<usize> + Sync {
    let end = Instant::now() + duration;
    move || (Instant::now() < end).then_some(0)
}

/// GET random pods among the first `count` for `duration`.
pub async fn get(target: &Target, count: usize, duration: Duration) -> Samples {
    workers(&target.clients, for_duration(duration), |client, _| async move {
        let i = rand::rng().random_range(0..count);
        let (ns, name) = target.locate(i);
        let t = Instant::now();
        let r = client.get(target.pods, Some(ns), &name).await.map(|_| ()).map_err(|e| e.to_string());
        ("get", t, r)
    })
    .await
}

/// GET `path` and read the whole answer; the time is to its last byte.
async fn raw_get(client: &Client, path: &str) -> Result<(Duration, bytes::Bytes), String> {
    let t = Instant::now();
    let resp = client.get_stream(path).await.map_err(|e| e.to_string())?;
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((t.elapsed(), body))
}

/// Whole (unpaged) lists of `path` by every client for `duration`, or `times` lists by one
/// client when `times` is given (a cluster-wide list of 100k objects takes seconds). The
/// first answer's item count is checked against `expect`.
pub async fn list_whole(
    target: &Target,
    path: &str,
    expect: usize,
    duration: Duration,
    times: Option<usize>,
) -> anyhow::Result<Samples> {
    let (_, first) = raw_get(&target.clients[0], path).await.map_err(|e| anyhow!("listing {path}: {e}"))?;
    let items = serde_json::from_slice::<Value>(&first)
        .ok()
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .context("the list answer has no items")?;
    if items < expect {
        return Err(anyhow!("listing {path} returned {items} items, expected at least {expect}"));
    }
    drop(first);
    let body_of = |client: Client| async move {
        let t = Instant::now();
        let r = raw_get(&client, path).await.map(|_| ());
        ("list", t, r)
    };
    Ok(match times {
        Some(n) => {
            let left = AtomicUsize::new(n);
            let more = || left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1)).ok();
            workers(&target.clients[..1], more, |c, _| body_of(c)).await
        }
        None => workers(&target.clients, for_duration(duration), |c, _| body_of(c)).await,
    })
}

/// Page through `path` with `limit`, following `continue`, as kubectl and informers do.
/// Returns the latency of each page and of each whole walk. Every client walks for
/// `duration`, or one client walks once when `once`.
pub async fn list_paged(
    target: &Target,
    path: &str,
    limit: usize,
    duration: Duration,
    once: bool,
) -> (Samples, Samples) {
    let pages = Mutex::new(Vec::new());
    let walk = |client: Client| {
        let pages = &pages;
        async move {
            let t = Instant::now();
            let mut mine = Vec::new();
            let mut token: Option<String> = None;
            let r = loop {
                let page_path = match &token {
                    None => format!("{path}?limit={limit}"),
                    Some(c) => format!("{path}?limit={limit}&continue={}", orchestrator::client::encode(c)),
                };
                let (took, body) = match raw_get(&client, &page_path).await {
                    Ok(x) => x,
                    Err(e) => break Err(e),
                };
                mine.push(took);
                let list: Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => break Err(format!("the page is not JSON: {e}")),
                };
                match list["metadata"]["continue"].as_str().filter(|c| !c.is_empty()) {
                    Some(c) => token = Some(c.to_string()),
                    None => break Ok(()),
                }
            };
            pages.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
            ("paged list", t, r)
        }
    };
    let walks = if once {
        let done = AtomicUsize::new(0);
        workers(
            &target.clients[..1],
            || (done.fetch_add(1, Ordering::Relaxed) == 0).then_some(0),
            |c, _| walk(c),
        )
        .await
    } else {
        workers(&target.clients, for_duration(duration), |c, _| walk(c)).await
    };
    let page_samples = Samples {
        latencies: pages.into_inner().unwrap_or_else(|p| p.into_inner()),
        wall: walks.wall,
        errors: walks.errors,
    };
    (page_samples, walks)
}

/// Merge-patch a label on random pods of the first namespace from every client for
/// `duration`, while `watchers` watches on that namespace time each change from the moment
/// its PATCH was sent to the moment its event arrives. Returns (update, watch) samples.
pub async fn update_and_watch(
    target: &Target,
    watchers: usize,
    duration: Duration,
) -> anyhow::Result<(Samples, Samples)> {
    let ns = target.namespaces[0].clone();
    let in_ns = target.per_namespace;
    // Watch from the current revision: a list of one item gives it without a snapshot.
    let (_, head) = raw_get(&target.clients[0], &format!("{}?limit=1", target.list_path(Some(&ns))))
        .await
        .map_err(|e| anyhow!("reading the current revision: {e}"))?;
    let rv = serde_json::from_slice::<Value>(&head)
        .ok()
        .and_then(|v| v["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .context("the list has no resourceVersion")?;
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..watchers {
        let client = target.clients[w % target.clients.len()].clone();
        let mut stream = Box::pin(client.watch(target.pods, Some(&ns), rv, None).await?);
        let (sent, seen, received) = (sent.clone(), seen.clone(), received.clone());
        tasks.spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                let arrived = Instant::now();
                let seq =
                    event.object["metadata"]["labels"]["bench-seq"].as_str().and_then(|s| s.parse().ok());
                let Some(seq) = seq else { continue };
                let at = sent.lock().unwrap_or_else(|p| p.into_inner()).get(&seq).copied();
                if let Some(at) = at {
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(arrived.duration_since(at));
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let next_seq = AtomicU64::new(0);
    let updates = workers(&target.clients, for_duration(duration), |client, _| {
        let (sent, next_seq, ns) = (&sent, &next_seq, &ns);
        async move {
            let seq = next_seq.fetch_add(1, Ordering::Relaxed);
            let name = format!("pod-{}", rand::rng().random_range(0..in_ns));
            let patch = json!({"metadata": {"labels": {"bench-seq": seq.to_string()}}});
            let t = Instant::now();
            sent.lock().unwrap_or_else(|p| p.into_inner()).insert(seq, t);
            let r = client
                .patch(target.pods, Some(ns), &name, None, PatchType::Merge, &patch)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            ("update", t, r)
        }
    })
    .await;
    // Let the last events arrive (they are counted per watcher).
    let expected = updates.latencies.len() * watchers;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tasks.abort_all();
    let got = received.load(Ordering::Relaxed);
    let latencies = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    let watch = Samples { latencies, wall: updates.wall, errors: expected.saturating_sub(got) };
    Ok((updates, watch))
}
