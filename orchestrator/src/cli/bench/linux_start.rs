//! `wasmkube bench linux-start`: how long a Linux (runc) pod takes from creation to Running,
//! next to `runc run` alone on the same busybox rootfs, in the same run on the same machine.
//! The first pod pulls and unpacks the image; the others start from the unpacked rootfs.
//! Prints a table and writes JSON; asserts nothing.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use orchestrator::{api::find_by_kind, client::Client};
use serde_json::json;

use super::{Stat, percentiles, pod_startup::reference_runc};
use crate::cli::config::ClientOptions;

#[derive(clap::Args)]
pub struct LinuxStart {
    /// A linux/amd64 busybox image the node can pull (sample-apps/busybox/build-image.sh).
    #[arg(long)]
    image: String,
    /// How many pods, one after the other.
    #[arg(long, default_value_t = 10)]
    pods: usize,
    /// Also time `runc run` of this OCI bundle (the same busybox rootfs running `true`).
    #[arg(long)]
    runc_bundle: Option<PathBuf>,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    client: ClientOptions,
}

impl LinuxStart {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.client.connect()?.client;
        let namespaces = find_by_kind("v1", "Namespace").context("namespaces")?;
        let ns = format!("bench-{}", orchestrator::api::meta::random_suffix());
        client.create(namespaces, None, &json!({"metadata": {"name": ns}})).await?;
        let mut samples = Vec::with_capacity(self.pods);
        for i in 0..self.pods {
            let took = time_to_running(&client, &ns, &self.image, &format!("linux-{i}")).await?;
            eprintln!("linux-start: pod {i} Running after {:.1} ms", took.as_secs_f64() * 1000.0);
            samples.push(took);
        }
        let _ = client.delete(namespaces, None, &ns, None).await;
        let first = samples.first().map(|d| d.as_secs_f64() * 1000.0);
        let warm = percentiles(samples.iter().skip(1).copied().collect());
        let runc = match &self.runc_bundle {
            Some(bundle) => Some(reference_runc(bundle, self.pods.max(5))?),
            None => None,
        };
        print_table(first, warm, runc);
        if let Some(path) = &self.json {
            let fmt = |p: Stat| p.map(|(p50, p99, n)| json!({"p50_ms": p50, "p99_ms": p99, "samples": n}));
            let report = json!({"first_pod_pull_unpack_to_running_ms": first,
                "created_to_running": fmt(warm), "runc_run_busybox_true": fmt(runc)});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        Ok(())
    }
}

/// Creates one busybox pod and waits (on a watch) until it is Running; then deletes it and
/// waits until it is gone, so that one pod's teardown never overlaps the next one's start.
async fn time_to_running(client: &Client, ns: &str, image: &str, name: &str) -> anyhow::Result<Duration> {
    let pods = find_by_kind("v1", "Pod").context("pods")?;
    let (_, rv) = client.list(pods, Some(ns), None, None).await?;
    let mut watch = Box::pin(client.watch(pods, Some(ns), rv, Some(&format!("metadata.name={name}"))).await?);
    let pod = json!({"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 0,
        "containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}]}});
    let created = Instant::now();
    client.create(pods, Some(ns), &pod).await?;
    let running = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(event) = watch.next().await {
            let pod = event?.object;
            if pod["status"]["phase"] == "Running" {
                return Ok(created.elapsed());
            }
        }
        Err(anyhow!("the pod watch ended before {name} was Running"))
    })
    .await
    .map_err(|_| anyhow!("{name} was not Running after 120 s"))??;
    client.delete(pods, Some(ns), name, Some(0)).await?;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = watch.next().await {
            if event?.event_type == "DELETED" {
                return Ok(());
            }
        }
        Err(anyhow!("the pod watch ended before {name} was deleted"))
    })
    .await
    .map_err(|_| anyhow!("{name} was not deleted after 60 s"))??;
    Ok(running)
}

fn print_table(first: Option<f64>, warm: Stat, runc: Stat) {
    println!("{:<56} {:>10} {:>10} {:>8}", "measurement", "p50 ms", "p99 ms", "samples");
    let row = |name: &str, v: Stat| match v {
        Some((p50, p99, n)) => println!("{name:<56} {p50:>10.1} {p99:>10.1} {n:>8}"),
        None => println!("{name:<56} {:>10} {:>10} {:>8}", "-", "-", 0),
    };
    row("wasmkube, first pod (pull + unpack): created -> Running", first.map(|ms| (ms, ms, 1)));
    row("wasmkube, image unpacked: created -> Running", warm);
    row("runc run alone (same busybox rootfs, `true`): start -> exit", runc);
}
