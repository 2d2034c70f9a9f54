//! `wasmkube bench rollout`: how long a Deployment of N idle HTTP pods (100 by default) takes to
//! roll to a new template at maxSurge / maxUnavailable 25%, and the CPU the server (control
//! plane and node agent, one process) spent on it. Next to it, the floor the upstream
//! controller manager's default client rate limit puts on the same rollout. Asserts nothing.

use std::time::Duration;

use serde_json::json;

use super::{pods, proc_stats, rollout_watch};

/// kube-controller-manager's defaults: `--kube-api-qps 20`, `--kube-api-burst 30`, shared by
/// the Deployment and ReplicaSet controllers' writes.
pub const UPSTREAM_QPS: f64 = 20.0;
pub const UPSTREAM_BURST: f64 = 30.0;

#[derive(clap::Args)]
pub struct Rollout {
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 100)]
    replicas: usize,
    /// maxSurge (a number or a percentage).
    #[arg(long, default_value = "25%")]
    max_surge: String,
    /// maxUnavailable (a number or a percentage).
    #[arg(long, default_value = "25%")]
    max_unavailable: String,
    /// How many rollouts to time one after another (v1 → v2 → ...).
    #[arg(long, default_value_t = 3)]
    rollouts: usize,
    /// A wasi:http image already in the node's cache (`up --demo` loads wasmkube.local/hello-http:demo).
    #[arg(long, default_value = "wasmkube.local/hello-http:demo")]
    image: String,
    /// Process id of the server (`wasmkube up`, on this machine) for its CPU time and memory.
    #[arg(long)]
    server_pid: u32,
    /// Longest one rollout may take.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    common: super::Common,
}

/// One timed rollout.
#[derive(Debug, serde::Serialize)]
struct Timed {
    what: String,
    seconds: f64,
    cpu_seconds: f64,
}

impl Rollout {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.common.client.connect()?.client;
        let ns = pods::create_namespace(&client, "bench-rollout").await?;
        let name = "rollout";
        let manifest = rollout_watch::manifest(
            name,
            &self.image,
            self.replicas,
            (&self.max_surge, &self.max_unavailable),
            1,
        );
        let timeout = Duration::from_secs(self.timeout);
        let mut timed = Vec::new();
        let cpu = proc_stats::cpu_time(self.server_pid)?;
        client.create(rollout_watch::deployments()?, Some(&ns), &manifest).await?;
        let seconds = rollout_watch::wait_complete(&client, &ns, name, timeout).await?;
        timed.push(Timed {
            what: format!("create 0 -> {}", self.replicas),
            seconds: seconds.as_secs_f64(),
            cpu_seconds: (proc_stats::cpu_time(self.server_pid)? - cpu).as_secs_f64(),
        });
        for version in 2..self.rollouts + 2 {
            let cpu = proc_stats::cpu_time(self.server_pid)?;
            rollout_watch::change_template(&client, &ns, name, &format!("v{version}")).await?;
            let seconds = rollout_watch::wait_complete(&client, &ns, name, timeout).await?;
            timed.push(Timed {
                what: format!("roll v{} -> v{version}", version - 1),
                seconds: seconds.as_secs_f64(),
                cpu_seconds: (proc_stats::cpu_time(self.server_pid)? - cpu).as_secs_f64(),
            });
        }
        let rss = proc_stats::sample(self.server_pid)?.rss;
        let floor = self.upstream_floor();
        self.print(&timed, floor, rss);
        if let Some(path) = &self.common.json {
            let report = json!({"replicas": self.replicas, "max_surge": self.max_surge,
                "max_unavailable": self.max_unavailable, "timed": timed, "server_rss": rss,
                "upstream_rate_limit_floor_seconds": floor});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        if !self.common.keep {
            pods::delete_namespace(&client, &ns).await;
        }
        Ok(())
    }

    /// The least time upstream's controllers need for one rollout at their default client rate
    /// limit: every new pod created and every old pod deleted is one write (ReplicaSet scales
    /// and status writes come on top and are not counted).
    fn upstream_floor(&self) -> f64 {
        let writes = 2.0 * self.replicas as f64;
        ((writes - UPSTREAM_BURST) / UPSTREAM_QPS).max(0.0)
    }

    fn print(&self, timed: &[Timed], floor: f64, rss: u64) {
        println!(
            "\nrollout: {} replicas of {}, maxSurge {}, maxUnavailable {}, readiness probe every 1 s",
            self.replicas, self.image, self.max_surge, self.max_unavailable
        );
        println!("{:<18} {:>10} {:>10} {:>12} {:>10}", "", "seconds", "pods/s", "server CPU s", "CPU ms/pod");
        for t in timed {
            println!(
                "{:<18} {:>10.1} {:>10.1} {:>12.2} {:>10.1}",
                t.what,
                t.seconds,
                self.replicas as f64 / t.seconds.max(1e-9),
                t.cpu_seconds,
                t.cpu_seconds * 1000.0 / self.replicas as f64
            );
        }
        println!(
            "upstream floor     {floor:>10.1}   (kube-controller-manager's default client limit, {UPSTREAM_QPS} writes/s \
             burst {UPSTREAM_BURST}: {} pod creates and deletes; scales, status and the pods' own start not counted)",
            2 * self.replicas
        );
        println!(
            "server RSS after: {:.0} MiB (control plane, node agent and the pods: one process)",
            rss as f64 / 1048576.0
        );
    }
}
