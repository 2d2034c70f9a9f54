//! `wasmkube bench http-throughput`: wrk against one hello-http pod (its pod IP, no proxy in
//! between) and, in the same run with the same wrk settings, against `wasmtime serve` of the
//! same component. Rounds alternate between the two so a neighbour's load on the shared cores
//! hits both alike; the best round of each is compared. Also reads each server's CPU time over
//! the run, for CPU per request. Prints a table and writes JSON; asserts nothing.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use serde_json::json;

use super::{
    http_client::{self, WasmtimeServe},
    pods, proc_stats,
    wrk::{WrkLoad, WrkReport},
};

#[derive(clap::Args)]
pub struct HttpThroughput {
    /// A wasi:http image already in the node's cache (`up --demo` loads wasmkube.local/hello-http:demo).
    #[arg(long, default_value = "wasmkube.local/hello-http:demo")]
    image: String,
    #[command(flatten)]
    wrk: WrkOptions,
    #[command(flatten)]
    common: super::Common,
}

/// The wrk settings and the reference server, shared by the HTTP benchmarks.
#[derive(clap::Args)]
pub(super) struct WrkOptions {
    /// Also load `wasmtime serve` of this .wasm, the same component (needs `wasmtime` on PATH).
    #[arg(long)]
    pub wasmtime_component: Option<PathBuf>,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// wrk runs per server, alternating between the servers.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Process id of the server running the pods and the proxy (`wasmkube up`), for its CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

impl WrkOptions {
    /// The load every run applies.
    pub fn load(&self) -> WrkLoad {
        WrkLoad { threads: self.threads, connections: self.connections, seconds: self.duration }
    }

    /// `wasmtime serve` of the reference component, when one was given.
    pub async fn reference(&self) -> anyhow::Result<Option<WasmtimeServe>> {
        match &self.wasmtime_component {
            Some(c) => Ok(Some(WasmtimeServe::start(c).await?)),
            None => Ok(None),
        }
    }
}

/// One wrk run and the server CPU it cost.
#[derive(Clone, Copy, serde::Serialize)]
pub(super) struct Run {
    #[serde(flatten)]
    pub wrk: WrkReport,
    /// Server CPU time per request, µs (None when the server's pid is unknown).
    pub cpu_us_per_request: Option<f64>,
}

impl HttpThroughput {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.common.client.connect()?.client;
        let ns = pods::create_namespace(&client, "bench-http").await?;
        let result = self.measure(&client, &ns).await;
        if !self.common.keep {
            pods::delete_namespace(&client, &ns).await;
        }
        result
    }

    async fn measure(&self, client: &orchestrator::client::Client, ns: &str) -> anyhow::Result<()> {
        let batch =
            pods::start(client, ns, &self.image, vec!["hello".into()], Duration::from_secs(120)).await?;
        let ip = batch.running.get("hello").ok_or_else(|| pods::single_failure(&batch))?;
        let pod_addr: SocketAddr = format!("{ip}:8080").parse().context("the pod's IP")?;
        http_client::wait_for_200(pod_addr, Duration::from_secs(30)).await?;
        let wasmtime = self.wrk.reference().await?;
        let load = self.wrk.load();
        let rounds = self.wrk.rounds;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            eprintln!(
                "http-throughput: round {round}/{}: wrk {} http://{pod_addr}/",
                rounds,
                load.describe()
            );
            ours.push(measured(&load, pod_addr, self.wrk.server_pid).await?);
            if let Some(server) = &wasmtime {
                eprintln!(
                    "http-throughput: round {round}/{}: wrk {} against wasmtime serve",
                    rounds,
                    load.describe()
                );
                theirs.push(measured(&load, server.addr, server.pid()).await?);
            }
        }
        let version = wasmtime.as_ref().and(WasmtimeServe::version());
        print_table(&load, best(&ours), best(&theirs), version.as_deref(), rounds);
        if let Some(path) = &self.common.json {
            let report = json!({"wrk": load, "rounds": rounds, "wasmkube_pod": ours,
                "wasmtime_serve": wasmtime.as_ref().map(|_| json!({"version": version, "runs": theirs}))});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        Ok(())
    }
}

/// One wrk run against `addr`, with the CPU time `pid` spent meanwhile.
pub(super) async fn measured(load: &WrkLoad, addr: SocketAddr, pid: Option<u32>) -> anyhow::Result<Run> {
    let cpu_before = pid.and_then(|p| proc_stats::cpu_time(p).ok());
    let wrk = load.run(&format!("http://{addr}/")).await?;
    let cpu_after = pid.and_then(|p| proc_stats::cpu_time(p).ok());
    let cpu_us_per_request = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if wrk.requests > 0 => {
            Some((after - before).as_secs_f64() * 1e6 / wrk.requests as f64)
        }
        _ => None,
    };
    Ok(Run { wrk, cpu_us_per_request })
}

/// The round with the most requests per second.
pub(super) fn best(runs: &[Run]) -> Option<Run> {
    runs.iter().copied().max_by(|a, b| a.wrk.requests_per_s.total_cmp(&b.wrk.requests_per_s))
}

fn print_table(load: &WrkLoad, ours: Option<Run>, theirs: Option<Run>, version: Option<&str>, rounds: usize) {
    println!("http-throughput: wrk {} on this machine, best of {rounds} alternating rounds", load.describe());
    println!(
        "{:<36} {:>10} {:>9} {:>9} {:>8} {:>12}",
        "server", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req"
    );
    let row = |name: &str, run: Option<Run>| match run {
        Some(Run { wrk, cpu_us_per_request }) => println!(
            "{name:<36} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>12}",
            wrk.requests_per_s,
            wrk.p50_ms,
            wrk.p99_ms,
            wrk.errors,
            cpu_us_per_request.map_or("-".into(), |c| format!("{c:.1}"))
        ),
        None => println!("{name:<36} {:>10} {:>9} {:>9} {:>8} {:>12}", "-", "-", "-", "-", "-"),
    };
    row("wasmkube pod (pod IP:8080)", ours);
    match version {
        Some(v) => row(&format!("{v} serve -Scli=y"), theirs),
        None => println!("(wasmtime serve not measured: pass --wasmtime-component with wasmtime on PATH)"),
    }
    if let (Some(a), Some(b)) = (ours, theirs) {
        println!(
            "wasmkube / wasmtime serve: {:.2}x the requests/s, {:.2}x the p99",
            a.wrk.requests_per_s / b.wrk.requests_per_s,
            a.wrk.p99_ms / b.wrk.p99_ms
        );
    }
}
