//! `wasmkube bench pod-startup`: how fast pods start on a running cluster, side by side with
//! the reference tools on the same machine in the same run. Prints a table and writes JSON;
//! asserts nothing (speed goals live here, not in tests).

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use orchestrator::{api::find_by_kind, client::Client};
use serde_json::json;
use tokio::sync::Mutex;

use super::{Stat, percentiles};
use crate::cli::config::ClientOptions;

#[derive(clap::Args)]
pub struct PodStartup {
    /// How many pods.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// A wasi:http image already in the node's cache (`up --demo` loads wasmkube.local/hello-http:demo).
    #[arg(long, default_value = "wasmkube.local/hello-http:demo")]
    image: String,
    /// Also time `wasmtime serve` of this .wasm to its first 200 (needs `wasmtime` on PATH).
    #[arg(long)]
    wasmtime_component: Option<PathBuf>,
    /// Also time `runc run` of this OCI bundle (e.g. busybox running `true`; needs root and runc).
    #[arg(long)]
    runc_bundle: Option<PathBuf>,
    /// Repetitions for the reference tools.
    #[arg(long, default_value_t = 10)]
    reference_runs: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    client: ClientOptions,
}

#[derive(Default)]
struct Timings {
    created: HashMap<String, Instant>,
    running: HashMap<String, Duration>,
    first_ok: HashMap<String, Duration>,
}

impl PodStartup {
    pub async fn run(self) -> anyhow::Result<()> {
        let conn = self.client.connect()?;
        let client = conn.client;
        let namespaces = find_by_kind("v1", "Namespace").context("namespaces")?;
        let ns = format!("bench-{}", orchestrator::api::meta::random_suffix());
        client.create(namespaces, None, &json!({"metadata": {"name": ns}})).await?;
        eprintln!("pod-startup: creating {} pods of {} at once in namespace {ns}", self.pods, self.image);
        let started = Instant::now();
        let burst =
            measure(&client, &ns, &self.image, (0..self.pods).map(|i| format!("p-{i}")).collect(), 16)
                .await?;
        let total = started.elapsed();
        let running = percentiles(burst.running.values().copied().collect());
        let first_ok = percentiles(burst.first_ok.values().copied().collect());
        eprintln!("pod-startup: {} pods one at a time", self.reference_runs);
        let mut single = Timings::default();
        for i in 0..self.reference_runs {
            let t = measure(&client, &ns, &self.image, vec![format!("s-{i}")], 1).await?;
            single.running.extend(t.running);
            single.first_ok.extend(t.first_ok);
        }
        let single_running = percentiles(single.running.values().copied().collect());
        let single_first_ok = percentiles(single.first_ok.values().copied().collect());
        eprintln!("pod-startup: cleaning up namespace {ns}");
        let _ = client.delete(namespaces, None, &ns, None).await;
        let wasmtime = match &self.wasmtime_component {
            Some(c) => Some(reference_wasmtime(c, self.reference_runs).await?),
            None => None,
        };
        let runc = match &self.runc_bundle {
            Some(b) => Some(reference_runc(b, self.reference_runs)?),
            None => None,
        };
        print_table(self.pods, total, [running, first_ok, single_running, single_first_ok], wasmtime, runc);
        if let Some(path) = &self.json {
            let fmt = |p: Option<(f64, f64, usize)>| {
                p.map(|(p50, p99, n)| json!({"p50_ms": p50, "p99_ms": p99, "samples": n}))
            };
            let report = json!({"pods": self.pods, "total_s": total.as_secs_f64(),
                "create_to_running": fmt(running), "create_to_first_200": fmt(first_ok),
                "one_at_a_time_create_to_running": fmt(single_running), "one_at_a_time_create_to_first_200": fmt(single_first_ok),
                "wasmtime_serve_to_first_200": fmt(wasmtime), "runc_run_busybox_true": fmt(runc)});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        Ok(())
    }
}

/// Create pods `names` (`concurrency` at a time) and time each to Running and to its first 200.
async fn measure(
    client: &Client,
    ns: &str,
    image: &str,
    names: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<Timings> {
    let pods = find_by_kind("v1", "Pod").context("pods")?;
    let count = names.len();
    let (_, rv) = client.list(pods, Some(ns), None, None).await?;
    let mut watch = Box::pin(client.watch(pods, Some(ns), rv, None).await?);
    let timings = Arc::new(Mutex::new(Timings::default()));
    let creators = futures::stream::iter(names).for_each_concurrent(concurrency, |name| {
            let (client, ns, image, timings) = (client.clone(), ns.to_string(), image.to_string(), timings.clone());
            async move {
                let pod = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image, "imagePullPolicy": "Never", "ports": [{"containerPort": 8080}]}]}});
                timings.lock().await.created.insert(name.clone(), Instant::now());
                if let Err(e) = client.create(pods, Some(&ns), &pod).await {
                    eprintln!("pod-startup: creating {name}: {e}");
                }
            }
        });
    let deadline = tokio::time::sleep(Duration::from_secs(180));
    tokio::pin!(creators, deadline);
    let mut creators_done = false;
    let mut probes = tokio::task::JoinSet::new();
    let mut last_report = Instant::now();
    loop {
        let done = {
            let t = timings.lock().await;
            t.first_ok.len()
        };
        if done == count {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            let t = timings.lock().await;
            eprintln!(
                "pod-startup: {}/{} created, {} running, {} answered",
                t.created.len(),
                count,
                t.running.len(),
                t.first_ok.len()
            );
            last_report = Instant::now();
        }
        tokio::select! {
            _ = &mut creators, if !creators_done => creators_done = true,
            Some(_) = probes.join_next(), if !probes.is_empty() => {}
            event = watch.next() => {
                let Some(Ok(event)) = event else { return Err(anyhow!("the pod watch ended")) };
                let pod = event.object;
                let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
                let (Some("Running"), Some(ip)) = (pod["status"]["phase"].as_str(), pod["status"]["podIP"].as_str()) else { continue };
                let mut t = timings.lock().await;
                let Some(created) = t.created.get(&name).copied() else { continue };
                if t.running.contains_key(&name) {
                    continue;
                }
                t.running.insert(name.clone(), created.elapsed());
                let (timings, addr) = (timings.clone(), format!("{ip}:8080"));
                probes.spawn(async move {
                    while !matches!(http_status(&addr).await, Some(200)) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    timings.lock().await.first_ok.insert(name, created.elapsed());
                });
            }
            _ = &mut deadline => {
                eprintln!("pod-startup: stopped waiting after 180s");
                break;
            }
        }
    }
    probes.abort_all();
    let mut t = timings.lock().await;
    Ok(std::mem::take(&mut *t))
}

async fn http_status(addr: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `wasmtime serve` from process start to its first 200.
async fn reference_wasmtime(component: &std::path::Path, runs: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut samples = Vec::new();
    for i in 0..runs {
        let port = 18080 + (i % 100) as u16;
        let addr = format!("127.0.0.1:{port}");
        let start = Instant::now();
        let mut child = tokio::process::Command::new("wasmtime")
            .args(["serve", "-Scli=y", "--addr", &addr])
            .arg(component)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("running `wasmtime serve` (is wasmtime on PATH? `cargo install wasmtime-cli --version 48.0.8 --locked`)")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_status(&addr).await != Some(200) {
            if Instant::now() > deadline {
                return Err(anyhow!("wasmtime serve did not answer on {addr} within 30s"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(start.elapsed());
        let _ = child.kill().await;
    }
    percentiles(samples).context("no samples")
}

/// `runc run` of a bundle, start to exit.
pub(super) fn reference_runc(bundle: &std::path::Path, runs: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut samples = Vec::new();
    for i in 0..runs {
        let id = format!("wasmkube-bench-{}-{i}", std::process::id());
        let start = Instant::now();
        let status = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .status()
            .context("running runc")?;
        samples.push(start.elapsed());
        let _ = Command::new("runc").args(["delete", "--force", &id]).status();
        if !status.success() {
            return Err(anyhow!("runc run failed with {status}"));
        }
    }
    percentiles(samples).context("no samples")
}

fn print_table(pods: usize, total: Duration, ours: [Stat; 4], wasmtime: Stat, runc: Stat) {
    println!("pod-startup: a burst of {pods} pods was all answering after {:.2}s", total.as_secs_f64());
    println!("{:<52} {:>10} {:>10} {:>8}", "measurement", "p50 ms", "p99 ms", "samples");
    let row = |name: &str, v: Stat| match v {
        Some((p50, p99, n)) => println!("{name:<52} {p50:>10.1} {p99:>10.1} {n:>8}"),
        None => println!("{name:<52} {:>10} {:>10} {:>8}", "-", "-", 0),
    };
    row(&format!("wasmkube, burst of {pods}: created -> Running"), ours[0]);
    row(&format!("wasmkube, burst of {pods}: created -> first HTTP 200"), ours[1]);
    row("wasmkube, one at a time: created -> Running", ours[2]);
    row("wasmkube, one at a time: created -> first HTTP 200", ours[3]);
    row("wasmtime serve: process start -> first HTTP 200", wasmtime);
    row("runc run (busybox true): start -> exit", runc);
}
