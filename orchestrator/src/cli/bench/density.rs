//! `wasmkube bench density`: how many idle HTTP pods one node holds. Fills the cluster in steps
//! (1k, 5k, 10k pods of a cached hello-http image) and prints, per step, the pods Running, the
//! time until they all were and the start rate, the server's RSS in total and per pod, its open
//! files and threads and its CPU use while idle, next to the anchors: Kubernetes' 110 pods per
//! node and runwasi's ~19 MB per pod. Before each step it projects memory, file descriptors and
//! time from the step before, and stops early (saying why) when the next step would not fit.
//! Asserts nothing.

use std::time::Duration;

use serde_json::json;

use super::{http_client, pods, proc_stats};

/// Kubernetes' default and scalability limit of pods per node (min(110, 10 × cores)).
const KUBERNETES_PODS_PER_NODE: usize = 110;
/// runwasi's memory per Wasm container: its wasmtime shim (~16 MB) plus zygote (~3.3 MB).
const RUNWASI_BYTES_PER_POD: f64 = 19.0 * 1e6;
/// Share of the machine's available memory, and of the server's open-file limit, a step may
/// be projected to use.
const HEADROOM: f64 = 0.8;
const MIB: f64 = 1024.0 * 1024.0;

#[derive(clap::Args)]
pub struct Density {
    /// Pod counts to fill the node to, ascending, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    steps: Vec<usize>,
    /// A wasi:http image already in the node's cache (`up --demo` loads wasmkube.local/hello-http:demo).
    #[arg(long, default_value = "wasmkube.local/hello-http:demo")]
    image: String,
    /// Process id of the server running the pods (`wasmkube up`, on this machine): its RSS, open
    /// files, threads and CPU time.
    #[arg(long)]
    server_pid: u32,
    /// Longest a step may take to get all its pods Running; also the projected time past which
    /// the next step is not tried.
    #[arg(long, default_value_t = 540)]
    step_timeout: u64,
    /// Seconds to sit idle after each step before reading memory, open files and idle CPU. The
    /// in-process API clients keep the connections a burst opened for 90 s of idleness, so a
    /// shorter wait counts those too.
    #[arg(long, default_value_t = 95)]
    settle: u64,
    /// Running pods to send one GET each after each step (they must all answer 200).
    #[arg(long, default_value_t = 50)]
    probe: usize,
    #[command(flatten)]
    common: super::Common,
}

/// What the server looked like at rest.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Reading {
    rss: u64,
    /// Open files as the last pod of the step got Running (burst connections included).
    open_files_at_running: u64,
    /// Open files after the settle time.
    open_files: u64,
    open_file_limit: u64,
    threads: u64,
    /// CPU used while idle over the settle time, in % of one core.
    idle_cpu_percent: f64,
}

/// One filled step.
#[derive(Debug, serde::Serialize)]
struct Step {
    target: usize,
    running: usize,
    started_in_step: usize,
    seconds: f64,
    pods_per_second: f64,
    reading: Reading,
    probed: usize,
    answered_200: usize,
    create_errors: std::collections::HashMap<String, usize>,
    not_running: std::collections::HashMap<String, usize>,
}

impl Density {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.common.client.connect()?.client;
        eprintln!("density: fd limit of the server: {}", proc_stats::open_files(self.server_pid)?.1);
        let baseline = self.read(0).await?;
        let ns = pods::create_namespace(&client, "bench-density").await?;
        let mut steps: Vec<Step> = Vec::new();
        let mut stopped = None;
        let mut targets = self.steps.clone().into_iter().peekable();
        while let Some(target) = targets.next() {
            let running = steps.last().map_or(0, |s| s.running);
            eprintln!("density: filling to {target} pods ({} more)", target.saturating_sub(running));
            let names = (running..target).map(|i| format!("d-{i}")).collect();
            let batch =
                pods::start(&client, &ns, &self.image, names, Duration::from_secs(self.step_timeout)).await?;
            let total_running = running + batch.running.len();
            let (probed, answered_200) = probe(batch.running.values(), self.probe).await;
            let reading = self.read(total_running).await?;
            let step = Step {
                target,
                running: total_running,
                started_in_step: batch.running.len(),
                seconds: batch.elapsed.as_secs_f64(),
                pods_per_second: batch.running.len() as f64 / batch.elapsed.as_secs_f64().max(1e-9),
                reading,
                probed,
                answered_200,
                create_errors: batch.create_errors,
                not_running: batch.not_running,
            };
            print_step(&step, &baseline);
            let incomplete = step.running < target;
            steps.push(step);
            if incomplete {
                stopped =
                    Some(format!("only {total_running} of {target} pods ran within {}s", self.step_timeout));
                break;
            }
            if let Some(&next) = targets.peek()
                && let Some(why) = self.would_not_fit(&baseline, &steps, next)?
            {
                stopped = Some(format!("not trying {next} pods: {why}"));
                break;
            }
        }
        print_summary(&steps, &baseline, stopped.as_deref());
        if let Some(path) = &self.common.json {
            let report = json!({"baseline": baseline, "steps": steps, "stopped": stopped,
                "anchors": {"kubernetes_pods_per_node": KUBERNETES_PODS_PER_NODE, "runwasi_bytes_per_pod": RUNWASI_BYTES_PER_POD}});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        if !self.common.keep {
            eprintln!("density: deleting namespace {ns}");
            pods::delete_namespace(&client, &ns).await;
        }
        Ok(())
    }

    /// Sit idle for the settle time, then read the server.
    async fn read(&self, pods: usize) -> anyhow::Result<Reading> {
        let pid = self.server_pid;
        let (open_files_at_running, _) = proc_stats::open_files(pid)?;
        let cpu_before = proc_stats::cpu_time(pid)?;
        tokio::time::sleep(Duration::from_secs(self.settle)).await;
        let idle_cpu_percent =
            (proc_stats::cpu_time(pid)? - cpu_before).as_secs_f64() * 100.0 / self.settle.max(1) as f64;
        let (open_files, open_file_limit) = proc_stats::open_files(pid)?;
        let reading = Reading {
            rss: proc_stats::sample(pid)?.rss,
            open_files_at_running,
            open_files,
            open_file_limit,
            threads: proc_stats::threads(pid)?,
            idle_cpu_percent,
        };
        eprintln!("density: at {pods} pods: {reading:?}");
        Ok(reading)
    }

    /// Why filling to `next` pods would not fit, projected from what the pods so far cost.
    /// Why the step to `next` pods would not fit, projected linearly from the growth over the
    /// last step (from the baseline for the first): later pods cost less than the first ones
    /// (shared code, log descriptors that are no longer held open past a cap).
    fn would_not_fit(
        &self,
        baseline: &Reading,
        steps: &[Step],
        next: usize,
    ) -> anyhow::Result<Option<String>> {
        let Some(last) = steps.last() else { return Ok(None) };
        let (from_rss, from_files, from_pods) = match steps.len().checked_sub(2).map(|i| &steps[i]) {
            Some(before) => (before.reading.rss, before.reading.open_files_at_running, before.running),
            None => (baseline.rss, baseline.open_files, 0),
        };
        let more = next.saturating_sub(last.running) as f64;
        let pods = last.running.saturating_sub(from_pods).max(1) as f64;
        let rss_per_pod = last.reading.rss.saturating_sub(from_rss) as f64 / pods;
        // From the count at Running: the next burst opens its connections again.
        let fds_per_pod = last.reading.open_files_at_running.saturating_sub(from_files) as f64 / pods;
        let (_, available) = proc_stats::memory()?;
        let memory = rss_per_pod * more;
        if memory > available as f64 * HEADROOM {
            return Ok(Some(format!(
                "{:.0} MiB more memory projected, {:.0} MiB available",
                memory / MIB,
                available as f64 / MIB
            )));
        }
        let fds = last.reading.open_files_at_running as f64 + fds_per_pod * more;
        if fds > last.reading.open_file_limit as f64 * HEADROOM {
            return Ok(Some(format!(
                "{fds:.0} open files projected ({fds_per_pod:.1} a pod), the server's limit is {} (ulimit -n)",
                last.reading.open_file_limit
            )));
        }
        let seconds = more / last.pods_per_second.max(1e-9);
        if seconds > self.step_timeout as f64 {
            return Ok(Some(format!(
                "{seconds:.0}s projected at {:.0} pods/s, over the step timeout of {}s",
                last.pods_per_second, self.step_timeout
            )));
        }
        Ok(None)
    }
}

/// GET / from up to `count` of the pods (spread over the batch); how many were asked and how
/// many answered 200.
async fn probe<'a>(ips: impl Iterator<Item = &'a String>, count: usize) -> (usize, usize) {
    let ips: Vec<&String> = ips.collect();
    let stride = (ips.len() / count.max(1)).max(1);
    let mut asked = 0;
    let mut ok = 0;
    for ip in ips.iter().step_by(stride).take(count) {
        asked += 1;
        let Ok(addr) = format!("{ip}:8080").parse() else { continue };
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            http_client::Connection::open(addr).await?.get().await
        })
        .await;
        if matches!(answer, Ok(Ok(200))) {
            ok += 1;
        }
    }
    (asked, ok)
}

fn print_step(step: &Step, baseline: &Reading) {
    let r = &step.reading;
    eprintln!(
        "density: {} running ({} new in {:.1}s, {:.0} pods/s), RSS {:.0} MiB ({:.0} MiB before any pod), \
         {} open files of {}, {} threads, idle CPU {:.1}%, {}/{} probed pods answered 200",
        step.running,
        step.started_in_step,
        step.seconds,
        step.pods_per_second,
        r.rss as f64 / MIB,
        baseline.rss as f64 / MIB,
        r.open_files,
        r.open_file_limit,
        r.threads,
        r.idle_cpu_percent,
        step.answered_200,
        step.probed
    );
    for (why, n) in step.create_errors.iter().chain(step.not_running.iter()) {
        eprintln!("density:   {n} pods not running: {why}");
    }
}

fn print_summary(steps: &[Step], baseline: &Reading, stopped: Option<&str>) {
    println!(
        "density: idle hello-http pods on one node; server RSS before any pod {:.0} MiB, {} open files",
        baseline.rss as f64 / MIB,
        baseline.open_files
    );
    println!(
        "{:>7} {:>8} {:>8} {:>7} {:>9} {:>10} {:>10} {:>13} {:>8} {:>7} {:>9}",
        "target",
        "running",
        "time s",
        "pods/s",
        "RSS MiB",
        "KiB/pod",
        "KiB/pod+",
        "files run/idle",
        "threads",
        "idle %",
        "GET 200"
    );
    for s in steps {
        let r = &s.reading;
        let pods = s.running.max(1) as f64;
        println!(
            "{:>7} {:>8} {:>8.1} {:>7.0} {:>9.0} {:>10.0} {:>10.0} {:>13} {:>8} {:>7.1} {:>5}/{}",
            s.target,
            s.running,
            s.seconds,
            s.pods_per_second,
            r.rss as f64 / MIB,
            r.rss as f64 / pods / 1024.0,
            r.rss.saturating_sub(baseline.rss) as f64 / pods / 1024.0,
            format!("{}/{}", r.open_files_at_running, r.open_files),
            r.threads,
            r.idle_cpu_percent,
            s.answered_200,
            s.probed
        );
    }
    println!(
        "KiB/pod: the whole process's RSS / pods; KiB/pod+: its growth since before the first pod / pods; \
         files: open as the step's last pod ran / after idling (limit {})",
        steps.last().map_or(0, |s| s.reading.open_file_limit)
    );
    if let Some(last) = steps.last() {
        let runwasi = RUNWASI_BYTES_PER_POD * last.running as f64;
        println!(
            "anchors: Kubernetes runs at most {KUBERNETES_PODS_PER_NODE} pods per node; runwasi at ~19 MB a pod would need {:.1} GiB for {} pods",
            runwasi / (MIB * 1024.0),
            last.running
        );
    }
    if let Some(why) = stopped {
        println!("stopped early: {why}");
    }
}
