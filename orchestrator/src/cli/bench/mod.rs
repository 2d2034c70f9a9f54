//! `wasmkube bench ...`: measurements of a running cluster (or of the Wasm runtime alone),
//! printed as a table and written as JSON, next to a reference tool on the same machine where
//! one runs here. They assert nothing: speed goals live in these programs, never in timed tests.

mod api_load;
mod churn;
mod density;
mod etcd_reference;
mod http_client;
mod http_throughput;
mod instantiate;
mod linux_start;
mod load;
mod pod_startup;
mod pods;
mod proc_stats;
mod rollout;
mod rollout_watch;
mod service_throughput;
mod wrk;

use std::{path::PathBuf, time::Duration};

use crate::cli::config::ClientOptions;

/// The options the cluster benchmarks share.
#[derive(clap::Args)]
pub struct Common {
    /// Leave what the benchmark created in the cluster (its namespace is deleted by default).
    #[arg(long)]
    keep: bool,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    client: ClientOptions,
}

/// Benchmarks.
#[derive(clap::Args)]
pub struct BenchCommand {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Create N pods of a cached HTTP image; time creation → Running and creation → first HTTP 200.
    PodStartup(pod_startup::PodStartup),
    /// N concurrent clients create, get, list, update and watch pods up to 10k and 100k stored
    /// objects; per-verb throughput and p50/p99 against the Kubernetes SLOs, bytes written to
    /// the store per object, server memory.
    ApiLoad(api_load::ApiLoad),
    /// Create Linux (runc) pods one at a time; time creation → Running, next to `runc run`
    /// alone on the same busybox rootfs.
    LinuxStart(linux_start::LinuxStart),
    /// Fill one node with idle HTTP pods in steps (1k, 5k, 10k): time to Running, start rate,
    /// server RSS per pod, open files; stops early when the next step would not fit.
    Density(density::Density),
    /// wrk against one HTTP pod next to `wasmtime serve` of the same component: requests/s,
    /// p50/p99 and server CPU per request.
    HttpThroughput(http_throughput::HttpThroughput),
    /// Per-request instance cost with the pooling and the on-demand allocator (no cluster
    /// needed), and whole requests at concurrency 1 next to `wasmtime serve`.
    Instantiate(instantiate::Instantiate),
    /// Time a Deployment of N idle HTTP pods (100) rolling to a new template at maxSurge 25%, and
    /// the server CPU it took, next to upstream's client rate-limit floor.
    Rollout(rollout::Rollout),
    /// wrk through a Service and through an Ingress to 1, 2 and 4 HTTP replicas next to
    /// `wasmtime serve` of the same component: requests/s, p99 and the ratio.
    ServiceThroughput(service_throughput::ServiceThroughput),
    /// Pods replaced per second with N pods (1,000) running: delete a batch, time until the
    /// Deployment is fully available again.
    Churn(churn::Churn),
}

impl BenchCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        match self.which {
            Which::PodStartup(p) => p.run().await,
            Which::ApiLoad(a) => a.run().await,
            Which::LinuxStart(l) => l.run().await,
            Which::Density(d) => d.run().await,
            Which::HttpThroughput(h) => h.run().await,
            Which::Instantiate(i) => i.run().await,
            Which::Rollout(r) => r.run().await,
            Which::Churn(c) => c.run().await,
            Which::ServiceThroughput(s) => s.run().await,
        }
    }
}

/// p50, p99 (milliseconds) and sample count.
type Stat = Option<(f64, f64, usize)>;

/// p50 and p99 of durations, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> Stat {
    if samples.is_empty() {
        return None;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    Some((at(0.5), at(0.99), samples.len()))
}
