//! `wasmkube bench churn`: how many pods per second the control plane replaces with N pods (1,000
//! by default) running. A Deployment holds N idle HTTP pods; each round deletes a batch of them
//! at once and times until the ReplicaSet controller, scheduler and node agent have the
//! Deployment fully available again: batch / time is the churn rate (one pod deleted and one
//! created, started and ready, per unit). Next to it, the rate upstream's controller manager's
//! default client limit allows. Asserts nothing.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use orchestrator::api::find_by_kind;
use serde_json::json;

use super::{
    pods, proc_stats,
    rollout::{UPSTREAM_BURST, UPSTREAM_QPS},
    rollout_watch,
};

/// Deletes in flight at once.
const DELETERS: usize = 16;

#[derive(clap::Args)]
pub struct Churn {
    /// Pods kept running.
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Pods deleted at once per round.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// A wasi:http image already in the node's cache (`up --demo` loads wasmkube.local/hello-http:demo).
    #[arg(long, default_value = "wasmkube.local/hello-http:demo")]
    image: String,
    /// Process id of the server (`wasmkube up`, on this machine) for its CPU time and memory.
    #[arg(long)]
    server_pid: u32,
    /// Longest the fill or one round may take.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    #[command(flatten)]
    common: super::Common,
}

/// One round.
#[derive(Debug, serde::Serialize)]
struct Round {
    deleted: usize,
    delete_seconds: f64,
    recovered_seconds: f64,
    pods_per_second: f64,
    cpu_seconds: f64,
}

impl Churn {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.common.client.connect()?.client;
        let pod_type = find_by_kind("v1", "Pod").context("pods")?;
        let ns = pods::create_namespace(&client, "bench-churn").await?;
        let name = "churn";
        let timeout = Duration::from_secs(self.timeout);
        // kubelet's default probe period: at 1 s, 1,000 pods' probes alone are 1,000 requests/s.
        let manifest = rollout_watch::manifest(name, &self.image, self.pods, ("25%", "25%"), 10);
        client.create(rollout_watch::deployments()?, Some(&ns), &manifest).await?;
        let fill = rollout_watch::wait_complete(&client, &ns, name, timeout).await?;
        let mut rounds = Vec::new();
        for round in 1..=self.rounds {
            let (items, _) = client.list(pod_type, Some(&ns), Some("app=churn"), None).await?;
            let victims: Vec<String> = items
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
                .take(self.batch)
                .collect();
            let cpu = proc_stats::cpu_time(self.server_pid)?;
            let started = std::time::Instant::now();
            let deleted = futures::stream::iter(&victims)
                .map(|victim| client.delete(pod_type, Some(&ns), victim, None))
                .buffer_unordered(DELETERS)
                .filter(|r| std::future::ready(r.is_ok()))
                .count()
                .await;
            let delete_seconds = started.elapsed().as_secs_f64();
            rollout_watch::wait_below(&client, &ns, name, self.pods, timeout).await?;
            rollout_watch::wait_complete(&client, &ns, name, timeout).await?;
            let recovered = started.elapsed().as_secs_f64();
            let r = Round {
                deleted,
                delete_seconds,
                recovered_seconds: recovered,
                pods_per_second: deleted as f64 / recovered.max(1e-9),
                cpu_seconds: (proc_stats::cpu_time(self.server_pid)? - cpu).as_secs_f64(),
            };
            eprintln!("churn: round {round}: {r:?}");
            rounds.push(r);
        }
        let rss = proc_stats::sample(self.server_pid)?.rss;
        self.print(fill, &rounds, rss);
        if let Some(path) = &self.common.json {
            let report = json!({"pods": self.pods, "batch": self.batch, "fill_seconds": fill.as_secs_f64(),
                "rounds": rounds, "server_rss": rss, "upstream_rate_limit_pods_per_second": UPSTREAM_QPS / 2.0});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        if !self.common.keep {
            pods::delete_namespace(&client, &ns).await;
        }
        Ok(())
    }

    fn print(&self, fill: Duration, rounds: &[Round], rss: u64) {
        println!(
            "\nchurn: {} pods of {} under a Deployment (readiness probe every 10 s), {} deleted at once per round",
            self.pods, self.image, self.batch
        );
        println!(
            "fill 0 -> {}: {:.1} s ({:.1} pods/s)",
            self.pods,
            fill.as_secs_f64(),
            self.pods as f64 / fill.as_secs_f64().max(1e-9)
        );
        println!(
            "{:<8} {:>8} {:>10} {:>12} {:>10} {:>14}",
            "round", "deleted", "delete s", "recovered s", "pods/s", "CPU ms/pod"
        );
        for (i, r) in rounds.iter().enumerate() {
            println!(
                "{:<8} {:>8} {:>10.2} {:>12.1} {:>10.1} {:>14.1}",
                i + 1,
                r.deleted,
                r.delete_seconds,
                r.recovered_seconds,
                r.pods_per_second,
                r.cpu_seconds * 1000.0 / r.deleted.max(1) as f64
            );
        }
        let mut rates: Vec<f64> = rounds.iter().map(|r| r.pods_per_second).collect();
        rates.sort_by(f64::total_cmp);
        if let Some(median) = rates.get(rates.len() / 2) {
            println!(
                "median   {median:>41.1} pods/s created and deleted   vs upstream's default client limit: {:.0} pods/s \
                 ({UPSTREAM_QPS} writes/s, burst {UPSTREAM_BURST}; a replaced pod is a delete and a create)",
                UPSTREAM_QPS / 2.0
            );
        }
        println!(
            "server RSS after: {:.0} MiB (control plane, node agent and the pods: one process)",
            rss as f64 / 1048576.0
        );
    }
}
