//! `wasmkube bench api-load`: how the API server and its store hold up as objects pile up.
//! For each object count (10k, then 100k): fill the cluster to that count with N concurrent
//! creating clients, then time get, list (one namespace and the whole cluster, whole and in
//! pages of 500), update and watch, and read the server's memory and the bytes it wrote to
//! disk per object. Each p99 is printed next to its Kubernetes SLO, and next to a bare etcd
//! under the same load when one is given. Prints tables and writes JSON; asserts nothing.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, anyhow};
use orchestrator::api::find_by_kind;
use serde_json::{Value, json};
use tracing::info;

use super::{
    etcd_reference::Etcd,
    load::{self, Samples, Target},
    proc_stats::{self, ProcSample},
};

#[derive(clap::Args)]
pub struct ApiLoad {
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Object counts to measure at, ascending, comma-separated; the cluster is filled up to
    /// each in turn.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    objects: Vec<usize>,
    /// Pods per namespace (upstream's scalability limit is 3000 per namespace).
    #[arg(long, default_value_t = 3000)]
    per_namespace: usize,
    /// Seconds each of the get, list and update phases runs at each object count.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Watches open on the updated namespace during the update phase.
    #[arg(long, default_value_t = 10)]
    watchers: usize,
    /// Whole cluster-wide lists to time at each object count (one at a time: each is big).
    #[arg(long, default_value_t = 3)]
    cluster_lists: usize,
    /// Process id of the API server (`wasmkube up`), for its memory and disk writes; must run
    /// on this machine.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's store file (`<data-dir>/store.redb`), for its size.
    #[arg(long)]
    store_file: Option<PathBuf>,
    /// Also load a bare etcd at this endpoint (e.g. http://127.0.0.1:2379) for a reference
    /// column; it should be empty and not used by anything else.
    #[arg(long)]
    etcd: Option<String>,
    /// Process id of that etcd, for its memory and disk writes.
    #[arg(long)]
    etcd_pid: Option<u32>,
    /// That etcd's data directory, for its size.
    #[arg(long)]
    etcd_data_dir: Option<PathBuf>,
    #[command(flatten)]
    common: super::Common,
}

/// Upstream SLOs (p99), milliseconds: single-object calls, namespace lists, cluster lists.
const SLO_OBJECT_MS: f64 = 1_000.0;
const SLO_NAMESPACE_LIST_MS: f64 = 5_000.0;
const SLO_CLUSTER_LIST_MS: f64 = 30_000.0;
const PAGE: usize = 500;

/// One line of the table.
struct Row {
    name: String,
    samples: Samples,
    slo_ms: Option<f64>,
}

impl Row {
    fn new(name: impl Into<String>, samples: Samples, slo_ms: Option<f64>) -> Self {
        Self { name: name.into(), samples, slo_ms }
    }

    fn json(&self) -> Value {
        let stat = self.samples.stat();
        json!({"name": self.name, "ops_per_s": self.samples.rate(), "p50_ms": stat.map(|s| s.0),
            "p99_ms": stat.map(|s| s.1), "samples": stat.map_or(0, |s| s.2), "errors": self.samples.errors,
            "slo_p99_ms": self.slo_ms})
    }
}

/// Store and memory figures of one server (ours or etcd) at one object count.
#[derive(Default)]
struct Footprint {
    disk_bytes: u64,
    written_per_create: Option<f64>,
    written_per_update: Option<f64>,
    disk_growth_per_create: Option<f64>,
    after_fill: Option<ProcSample>,
    at_end: Option<ProcSample>,
    /// Before the benchmark stored anything, to tell memory per stored object.
    at_start: Option<ProcSample>,
}

impl Footprint {
    fn json(&self) -> Value {
        json!({"disk_bytes": self.disk_bytes, "written_bytes_per_create": self.written_per_create,
            "written_bytes_per_update": self.written_per_update, "disk_growth_bytes_per_create": self.disk_growth_per_create,
            "after_fill": self.after_fill, "at_end": self.at_end, "at_start": self.at_start})
    }
}

/// Bytes written by `pid` between two readings, per operation.
fn per_op(before: Option<ProcSample>, after: Option<ProcSample>, ops: usize) -> Option<f64> {
    let (b, a) = (before?, after?);
    (ops > 0).then(|| a.write_bytes.saturating_sub(b.write_bytes) as f64 / ops as f64)
}

fn read(pid: Option<u32>) -> anyhow::Result<Option<ProcSample>> {
    pid.map(proc_stats::sample).transpose()
}

impl ApiLoad {
    pub async fn run(self) -> anyhow::Result<()> {
        if self.clients == 0 || self.per_namespace == 0 || !self.objects.is_sorted() {
            return Err(anyhow!("--clients and --per-namespace must be positive and --objects ascending"));
        }
        let clients = (0..self.clients)
            .map(|_| self.common.client.connect().map(|c| c.client))
            .collect::<Result<_, _>>()?;
        let namespace_type = find_by_kind("v1", "Namespace").context("namespaces")?;
        let pods = find_by_kind("v1", "Pod").context("pods")?;
        let run_id = orchestrator::api::meta::random_suffix();
        let mut target = Target { clients, pods, namespaces: Vec::new(), per_namespace: self.per_namespace };
        let duration = Duration::from_secs(self.duration);
        let mut etcd: Option<Etcd> = None;
        let (mut created, mut etcd_created) = (0, 0);
        let mut report = Vec::new();
        let (server_start, etcd_start) = (read(self.server_pid)?, read(self.etcd_pid)?);
        for &count in &self.objects {
            while target.namespaces.len() * self.per_namespace < count {
                let ns = format!("api-load-{run_id}-{}", target.namespaces.len());
                target.clients[0].create(namespace_type, None, &json!({"metadata": {"name": ns}})).await?;
                target.namespaces.push(ns);
            }
            info!(objects = count, clients = self.clients, "filling");
            let mut ours = Footprint { at_start: server_start, ..Default::default() };
            let (before, disk_before) = (read(self.server_pid)?, self.store_size());
            let create = load::create(&target, created, count).await;
            created = count;
            ours.after_fill = read(self.server_pid)?;
            ours.written_per_create = per_op(before, ours.after_fill, create.latencies.len());
            ours.disk_growth_per_create = (!create.latencies.is_empty()).then(|| {
                self.store_size().saturating_sub(disk_before) as f64 / create.latencies.len() as f64
            });
            let sample = target.clients[0].get(pods, Some(&target.namespaces[0]), "pod-0").await?;
            let object_bytes = serde_json::to_vec(&sample)?.len();
            let mut rows = vec![Row::new("create", create, Some(SLO_OBJECT_MS))];
            info!(objects = count, "get");
            rows.push(Row::new("get", load::get(&target, count, duration).await, Some(SLO_OBJECT_MS)));
            let in_ns = self.per_namespace.min(count);
            let ns_path = target.list_path(Some(&target.namespaces[0]));
            info!(objects = count, "list");
            let whole = load::list_whole(&target, &ns_path, in_ns, duration, None).await?;
            rows.push(Row::new(format!("list namespace ({in_ns} pods)"), whole, Some(SLO_NAMESPACE_LIST_MS)));
            let (pages, walks) = load::list_paged(&target, &ns_path, PAGE, duration, false).await;
            rows.push(Row::new(format!("  one page of {PAGE}"), pages, Some(SLO_NAMESPACE_LIST_MS)));
            rows.push(Row::new("  all pages, one after another", walks, None));
            let cluster_path = target.list_path(None);
            let whole =
                load::list_whole(&target, &cluster_path, count, duration, Some(self.cluster_lists)).await?;
            rows.push(Row::new(format!("list cluster ({count} pods)"), whole, Some(SLO_CLUSTER_LIST_MS)));
            let (pages, walks) = load::list_paged(&target, &cluster_path, PAGE, duration, true).await;
            rows.push(Row::new(format!("  one page of {PAGE}"), pages, Some(SLO_CLUSTER_LIST_MS)));
            rows.push(Row::new("  all pages, one after another", walks, None));
            info!(objects = count, watchers = self.watchers, "update and watch");
            let before = read(self.server_pid)?;
            let (update, watch) = load::update_and_watch(&target, self.watchers, duration).await?;
            ours.at_end = read(self.server_pid)?;
            ours.written_per_update = per_op(before, ours.at_end, update.latencies.len());
            ours.disk_bytes = self.store_size();
            rows.push(Row::new("update (merge patch of a label)", update, Some(SLO_OBJECT_MS)));
            rows.push(Row::new(
                format!("watch: PATCH sent -> event at each of {} watchers", self.watchers),
                watch,
                None,
            ));
            let reference = match &self.etcd {
                Some(endpoint) => {
                    let etcd = match &mut etcd {
                        Some(e) => e,
                        None => etcd.insert(Etcd::new(
                            endpoint,
                            self.clients,
                            self.per_namespace,
                            serde_json::to_vec(&sample)?,
                        )?),
                    };
                    info!(objects = count, "etcd reference");
                    let (rows, mut f) = self.etcd_level(etcd, etcd_created, count, in_ns, duration).await?;
                    f.at_start = etcd_start;
                    Some((rows, f))
                }
                None => None,
            };
            etcd_created = count;
            print_level(
                &self,
                count,
                target.namespaces.len(),
                object_bytes,
                &rows,
                &ours,
                reference.as_ref(),
            );
            report.push(json!({"objects": count, "namespaces": target.namespaces.len(), "object_bytes": object_bytes,
                "rows": rows.iter().map(Row::json).collect::<Vec<_>>(), "wasmkube": ours.json(),
                "etcd": reference.as_ref().map(|(rows, f)| json!({"rows": rows.iter().map(Row::json).collect::<Vec<_>>(), "footprint": f.json()}))}));
        }
        if let Some(path) = &self.common.json {
            let doc = json!({"benchmark": "api-load", "build": build_kind(), "clients": self.clients,
                "per_namespace": self.per_namespace, "duration_s": self.duration, "watchers": self.watchers,
                "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "levels": report});
            std::fs::write(path, serde_json::to_string_pretty(&doc)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if !self.common.keep {
            info!("deleting the benchmark's namespaces");
            for ns in &target.namespaces {
                let _ = target.clients[0].delete(namespace_type, None, ns, None).await;
            }
        }
        Ok(())
    }

    fn store_size(&self) -> u64 {
        self.store_file.as_deref().map_or(0, proc_stats::disk_size)
    }

    /// The same phases on etcd: put to `count`, get, range a namespace and the cluster, put over.
    async fn etcd_level(
        &self,
        etcd: &Etcd,
        from: usize,
        count: usize,
        in_ns: usize,
        duration: Duration,
    ) -> anyhow::Result<(Vec<Row>, Footprint)> {
        let size = || self.etcd_data_dir.as_deref().map_or(0, proc_stats::disk_size);
        let mut f = Footprint::default();
        let (before, disk_before) = (read(self.etcd_pid)?, size());
        let put = etcd.fill(from, count).await;
        f.after_fill = read(self.etcd_pid)?;
        f.written_per_create = per_op(before, f.after_fill, put.latencies.len());
        f.disk_growth_per_create = (!put.latencies.is_empty())
            .then(|| size().saturating_sub(disk_before) as f64 / put.latencies.len() as f64);
        let mut rows = vec![Row::new("etcd put (create)", put, Some(SLO_OBJECT_MS))];
        rows.push(Row::new("etcd get", etcd.get(count, duration).await, Some(SLO_OBJECT_MS)));
        let ns = etcd.range(Some(0), duration, 0).await;
        rows.push(Row::new(format!("etcd range namespace ({in_ns} keys)"), ns, Some(SLO_NAMESPACE_LIST_MS)));
        let cluster = etcd.range(None, duration, self.cluster_lists).await;
        rows.push(Row::new(format!("etcd range cluster ({count} keys)"), cluster, Some(SLO_CLUSTER_LIST_MS)));
        let before = read(self.etcd_pid)?;
        let update = etcd.update(count, duration).await;
        f.at_end = read(self.etcd_pid)?;
        f.written_per_update = per_op(before, f.at_end, update.latencies.len());
        f.disk_bytes = size();
        rows.push(Row::new("etcd put (update)", update, Some(SLO_OBJECT_MS)));
        Ok((rows, f))
    }
}

fn build_kind() -> &'static str {
    if cfg!(debug_assertions) { "dev" } else { "release" }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_rows(rows: &[Row]) {
    for r in rows {
        let (p50, p99, n) = r.samples.stat().unwrap_or((f64::NAN, f64::NAN, 0));
        let (slo, under) = match r.slo_ms {
            Some(slo) if n > 0 => {
                let under = slo / p99;
                (
                    format!("{slo:.0} ms"),
                    if under < 10.0 { format!("{under:.1}x") } else { format!("{under:.0}x") },
                )
            }
            Some(slo) => (format!("{slo:.0} ms"), "-".into()),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<52} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>6} {:>9} {:>8}",
            r.name,
            r.samples.rate(),
            p50,
            p99,
            n,
            r.samples.errors,
            slo,
            under
        );
    }
}

fn print_footprint(who: &str, f: &Footprint, object_bytes: usize, count: usize) {
    let kib = |b: f64| b / 1024.0;
    if let (Some(c), Some(u)) = (f.written_per_create, f.written_per_update) {
        println!(
            "{who}: written to disk {:.1} KiB per create ({:.1}x the {object_bytes} B object), {:.1} KiB per update",
            kib(c),
            c / object_bytes as f64,
            kib(u)
        );
    }
    if f.disk_bytes > 0 {
        println!(
            "{who}: data on disk {:.1} MiB, grew {:.2} KiB per create",
            mib(f.disk_bytes),
            kib(f.disk_growth_per_create.unwrap_or(0.0))
        );
    }
    if let (Some(s), Some(a), Some(e)) = (f.at_start, f.after_fill, f.at_end) {
        println!(
            "{who}: RSS {:.0} MiB before, {:.0} MiB after the fill ({:.1} KiB per stored object), {:.0} MiB after the reads, peak {:.0} MiB",
            mib(s.rss),
            mib(a.rss),
            a.rss.saturating_sub(s.rss) as f64 / 1024.0 / count.max(1) as f64,
            mib(e.rss),
            mib(e.peak_rss)
        );
    }
}

fn print_level(
    opts: &ApiLoad,
    count: usize,
    namespaces: usize,
    object_bytes: usize,
    rows: &[Row],
    ours: &Footprint,
    reference: Option<&(Vec<Row>, Footprint)>,
) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "\napi-load at {count} pods ({namespaces} namespaces of up to {}), {} clients, {} build, {cores} cores",
        opts.per_namespace,
        opts.clients,
        build_kind()
    );
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>8} {:>6} {:>9} {:>8}",
        "call", "ops/s", "p50 ms", "p99 ms", "samples", "errors", "SLO p99", "under"
    );
    print_rows(rows);
    if let Some((rows, _)) = reference {
        print_rows(rows);
    }
    print_footprint("wasmkube", ours, object_bytes, count);
    if let Some((_, f)) = reference {
        print_footprint("etcd", f, object_bytes, count);
    }
}
