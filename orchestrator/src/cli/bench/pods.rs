//! Idle HTTP pods for the runtime benchmarks: create a batch of bare pods of a cached image in
//! a namespace of their own, and watch until every one is Running with an IP (or a deadline
//! passes), saying why the rest are not.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use orchestrator::{
    api::{ResourceType, find_by_kind},
    client::Client,
};
use serde_json::{Value, json};

/// How many creates are in flight at once.
const CREATORS: usize = 16;

/// Where a batch got to.
pub struct Batch {
    /// Pod name → pod IP, for the pods that reached Running.
    pub running: HashMap<String, String>,
    /// From the first create to the last pod Running (or to the deadline).
    pub elapsed: Duration,
    /// Creates the API refused, by message.
    pub create_errors: HashMap<String, usize>,
    /// Why pods that were created did not run (the container's waiting or terminated reason,
    /// else the phase), counted.
    pub not_running: HashMap<String, usize>,
}

/// A namespace `<prefix>-<random>` for one benchmark run.
pub async fn create_namespace(client: &Client, prefix: &str) -> anyhow::Result<String> {
    let namespaces = find_by_kind("v1", "Namespace").context("namespaces")?;
    let ns = format!("{prefix}-{}", orchestrator::api::meta::random_suffix());
    client.create(namespaces, None, &json!({"metadata": {"name": ns}})).await?;
    Ok(ns)
}

/// Delete the namespace and, with it, its pods.
pub async fn delete_namespace(client: &Client, ns: &str) {
    if let Some(namespaces) = find_by_kind("v1", "Namespace") {
        let _ = client.delete(namespaces, None, ns, None).await;
    }
}

/// Create pods `names` of `image` (serving on port 8080) and wait until each is Running.
pub async fn start(
    client: &Client,
    ns: &str,
    image: &str,
    names: Vec<String>,
    deadline: Duration,
) -> anyhow::Result<Batch> {
    let pods = find_by_kind("v1", "Pod").context("pods")?;
    let wanted: HashSet<String> = names.iter().cloned().collect();
    let (_, mut rv) = client.list(pods, Some(ns), None, None).await?;
    let mut watch = Box::pin(client.watch(pods, Some(ns), rv, None).await?);
    let started = Instant::now();
    let creators = futures::stream::iter(names)
        .map(|name| create(client, pods, ns, image, name))
        .buffer_unordered(CREATORS)
        .collect::<Vec<_>>();
    let stop = tokio::time::sleep(deadline);
    tokio::pin!(creators, stop);
    let mut batch = Batch {
        running: HashMap::new(),
        elapsed: Duration::ZERO,
        create_errors: HashMap::new(),
        not_running: HashMap::new(),
    };
    let mut reasons: HashMap<String, String> = HashMap::new();
    let mut created_all = false;
    let mut last_report = Instant::now();
    while batch.running.len() + batch.create_errors.values().sum::<usize>() < wanted.len() {
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "pods: {}/{} running after {:.0}s",
                batch.running.len(),
                wanted.len(),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::select! {
            results = &mut creators, if !created_all => {
                created_all = true;
                for error in results.into_iter().filter_map(Result::err) {
                    *batch.create_errors.entry(error).or_default() += 1;
                }
            }
            event = watch.next() => match event {
                Some(Ok(event)) => {
                    let pod = &event.object;
                    rv = pod["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(rv);
                    let name = pod["metadata"]["name"].as_str().unwrap_or("");
                    if !wanted.contains(name) || event.event_type == "BOOKMARK" {
                        continue;
                    }
                    match (pod["status"]["phase"].as_str(), pod["status"]["podIP"].as_str()) {
                        (Some("Running"), Some(ip)) => {
                            reasons.remove(name);
                            batch.running.insert(name.to_string(), ip.to_string());
                        }
                        _ => {
                            reasons.insert(name.to_string(), reason(pod));
                        }
                    }
                }
                // The server ends watches after their timeout: resume where this one was.
                Some(Err(_)) | None => watch = Box::pin(client.watch(pods, Some(ns), rv, None).await?),
            },
            () = &mut stop => {
                eprintln!("pods: stopped waiting after {deadline:?}");
                break;
            }
        }
    }
    batch.elapsed = started.elapsed();
    for why in reasons.into_values() {
        *batch.not_running.entry(why).or_default() += 1;
    }
    Ok(batch)
}

async fn create(
    client: &Client,
    pods: &ResourceType,
    ns: &str,
    image: &str,
    name: String,
) -> Result<(), String> {
    let pod = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image,
        "imagePullPolicy": "Never", "ports": [{"containerPort": 8080}]}]}});
    client.create(pods, Some(ns), &pod).await.map(drop).map_err(|e| e.to_string())
}

/// A short why for a pod that is not Running: its container's reason, else its phase.
fn reason(pod: &Value) -> String {
    let state = &pod["status"]["containerStatuses"][0]["state"];
    let detail = state["waiting"]["reason"].as_str().or(state["terminated"]["reason"].as_str());
    match (pod["status"]["phase"].as_str(), detail) {
        (_, Some(detail)) => detail.to_string(),
        (Some(phase), None) => phase.to_string(),
        (None, None) if pod["spec"]["nodeName"].is_string() => "bound, no status yet".into(),
        (None, None) => "not scheduled yet".into(),
    }
}

/// The one message of a batch of a single pod that did not run.
pub fn single_failure(batch: &Batch) -> anyhow::Error {
    let why: Vec<String> = batch.create_errors.keys().chain(batch.not_running.keys()).cloned().collect();
    anyhow!("the pod did not run: {}", if why.is_empty() { "no status".into() } else { why.join("; ") })
}
