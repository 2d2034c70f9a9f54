//! A Deployment for the control-plane benchmarks: create one of idle HTTP pods and wait until
//! a rollout of it is complete (every replica updated and available, the latest generation
//! observed), printing progress as `kubectl rollout status` does.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orchestrator::{
    api::{ResourceType, find_by_kind, patch::PatchType},
    client::Client,
};
use serde_json::{Value, json};

/// How often the Deployment's status is read while waiting (one GET; cheap next to the work).
const POLL: Duration = Duration::from_millis(250);

pub fn deployments() -> anyhow::Result<&'static ResourceType> {
    find_by_kind("apps/v1", "Deployment").context("deployments")
}

/// A Deployment `name` of `replicas` pods of `image` (serving on 8080, ready when it answers
/// its readiness probe, checked every `probe_period` seconds).
pub fn manifest(
    name: &str,
    image: &str,
    replicas: usize,
    (max_surge, max_unavailable): (&str, &str),
    probe_period: u32,
) -> Value {
    let int_or_percent = |v: &str| v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n));
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": int_or_percent(max_surge), "maxUnavailable": int_or_percent(max_unavailable)}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
                    "name": "app", "image": image, "imagePullPolicy": "Never",
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "GREETING", "value": "v1"}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": probe_period},
                }]},
            },
        },
    })
}

/// Change the template (the greeting), which starts a rollout.
pub async fn change_template(client: &Client, ns: &str, name: &str, greeting: &str) -> anyhow::Result<()> {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app",
        "env": [{"name": "GREETING", "value": greeting}]}]}}}});
    client.patch(deployments()?, Some(ns), name, None, PatchType::Strategic, &patch).await?;
    Ok(())
}

/// Wait until the Deployment's rollout is complete; prints progress every few seconds.
/// Returns how long it took.
pub async fn wait_complete(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last_line = String::new();
    let mut last_print = Instant::now();
    loop {
        let d = client.get(deployments()?, Some(ns), name).await?;
        let (done, line) = progress(&d);
        if done {
            eprintln!("{name}: {line} after {:.1}s", started.elapsed().as_secs_f64());
            return Ok(started.elapsed());
        }
        if line != last_line || last_print.elapsed() > Duration::from_secs(5) {
            eprintln!("{name}: {line} ({:.0}s)", started.elapsed().as_secs_f64());
            last_line = line;
            last_print = Instant::now();
        }
        if started.elapsed() > timeout {
            bail!("{name}: not complete after {timeout:?}: {last_line}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the rollout is complete, and kubectl's words for where it is.
fn progress(d: &Value) -> (bool, String) {
    let count = |field: &str| d["status"][field].as_i64().unwrap_or(0);
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(0);
    let observed = d["status"]["observedGeneration"].as_i64().unwrap_or(0)
        >= d["metadata"]["generation"].as_i64().unwrap_or(0);
    let (updated, total, available) =
        (count("updatedReplicas"), count("replicas"), count("availableReplicas"));
    if !observed {
        return (false, "waiting for the spec update to be observed".into());
    }
    if updated < desired {
        return (false, format!("{updated} of {desired} new replicas updated, {available} available"));
    }
    if total > updated {
        return (false, format!("{} old replicas pending termination", total - updated));
    }
    if available < updated {
        return (false, format!("{available} of {updated} updated replicas available"));
    }
    (true, format!("{desired} replicas rolled out"))
}

/// Wait until the Deployment reports fewer than `count` available pods (a batch was deleted and
/// the status shows it), so that a following [`wait_complete`] does not return on a stale status.
pub async fn wait_below(
    client: &Client,
    ns: &str,
    name: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let d = client.get(deployments()?, Some(ns), name).await?;
        if d["status"]["availableReplicas"].as_u64().unwrap_or(0) < count as u64 {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("{name}: the deleted pods never showed in its status");
        }
        tokio::time::sleep(POLL).await;
    }
}
