//! `wasmkube bench ...`: measurements of a running cluster, printed as a table and written as
//! JSON, next to a reference tool on the same machine where one runs here. They assert nothing:
//! speed goals live in these programs, never in timed tests.

mod api_load;
mod etcd_reference;
mod linux_start;
mod load;
mod pod_startup;
mod proc_stats;

use std::time::Duration;

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
}

impl BenchCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        match self.which {
            Which::PodStartup(p) => p.run().await,
            Which::ApiLoad(a) => a.run().await,
            Which::LinuxStart(l) => l.run().await,
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
