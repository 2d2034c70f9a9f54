//! `wasmkube bench instantiate`: what one HTTP request's fresh instance costs in our runtime,
//! with the pooling allocator and with on-demand allocation, using wasm-runtime directly (no
//! cluster). Times store set-up, instantiation and tear-down one instance at a time, then whole
//! requests at concurrency 1 through the runtime's HTTP server and, as the reference, through
//! `wasmtime serve` on the same component. Prints a table and writes JSON; asserts nothing.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use serde_json::{Value, json};
use wasm_runtime::{ContainerSpec, EngineConfig, InstanceTiming, WasmEngine};

use super::{
    http_client::{self, WasmtimeServe},
    proc_stats,
};

#[derive(clap::Args)]
pub struct Instantiate {
    /// A wasi:http/proxy component.
    #[arg(long, default_value = "sample-apps/fixtures/hello-http.wasm")]
    component: PathBuf,
    /// Instances to time per allocator (after the warm-up).
    #[arg(long, default_value_t = 5000)]
    instances: usize,
    /// Whole requests to time per server, one at a time on one keep-alive connection.
    #[arg(long, default_value_t = 3000)]
    requests: usize,
    /// Untimed instances (and requests) first, so caches, the pool and the allocator are warm.
    #[arg(long, default_value_t = 300)]
    warmup: usize,
    /// Also time requests through `wasmtime serve` of the same component (needs `wasmtime` on PATH).
    #[arg(long)]
    wasmtime: bool,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// p50, p99 (microseconds) and samples.
type Micros = Option<(f64, f64, usize)>;

/// The figures for one allocator.
struct Allocator {
    name: String,
    new_store: Micros,
    instantiate: Micros,
    drop: Micros,
    total: Micros,
    request: Micros,
}

impl Instantiate {
    pub async fn run(self) -> anyhow::Result<()> {
        let work =
            std::env::temp_dir().join(format!("wasmkube-bench-{}", orchestrator::api::meta::random_suffix()));
        let result = self.measure(&work).await;
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    async fn measure(&self, work: &Path) -> anyhow::Result<()> {
        let (mem_total, _) = proc_stats::memory()?;
        let config = EngineConfig { cache_dir: work.join("compiled"), allocatable_memory: Some(mem_total) };
        let slots = config.instance_slots();
        let pooling = WasmEngine::new(config.clone())?;
        let pooled_name = if pooling.uses_pooling_allocator() {
            format!("pooling ({} slots)", pooling.pool_slots())
        } else {
            format!("pooling refused here ({slots} slots asked), on-demand")
        };
        let pooled = self.allocator(pooled_name, pooling, work).await?;
        let on_demand = self.allocator("on-demand".into(), WasmEngine::new_on_demand(config)?, work).await?;
        let wasmtime = if self.wasmtime { Some(self.reference().await?) } else { None };
        print_table(&self.component, self.instances, &[&pooled, &on_demand], &wasmtime);
        if let Some(path) = &self.json {
            let fmt = |m: Micros| m.map(|(p50, p99, n)| json!({"p50_us": p50, "p99_us": p99, "samples": n}));
            let alloc = |a: &Allocator| -> Value {
                json!({"allocator": a.name, "new_store": fmt(a.new_store), "instantiate": fmt(a.instantiate),
                       "drop": fmt(a.drop), "instance_total": fmt(a.total), "request_c1": fmt(a.request)})
            };
            let report = json!({"component": self.component, "allocators": [alloc(&pooled), alloc(&on_demand)],
                "wasmtime_serve": wasmtime.as_ref().map(|(v, m)| json!({"version": v, "request_c1": fmt(*m)}))});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        Ok(())
    }

    /// Instances one at a time, then whole requests through a container of this engine.
    async fn allocator(&self, name: String, engine: WasmEngine, work: &Path) -> anyhow::Result<Allocator> {
        eprintln!("instantiate: {name}: {} instances, then {} requests", self.instances, self.requests);
        let component = engine
            .load_component(&self.component, "bench")
            .await
            .with_context(|| format!("loading {}", self.component.display()))?;
        let mut spec = ContainerSpec::new(
            "hello-http",
            work.join("logs").join(format!("{}.log", name.split(' ').next().unwrap_or("x"))),
        );
        spec.http_listen = Some(http_client::free_local_addr()?);
        wasm_runtime::time_instances(&engine, &component, &spec, self.warmup).await?;
        let timings = wasm_runtime::time_instances(&engine, &component, &spec, self.instances).await?;
        let pick = |f: fn(&InstanceTiming) -> Duration| micros(timings.iter().map(f).collect());
        let mut running = wasm_runtime::start(&engine, &component, spec).await?;
        let addr = running.http_addr().context("the HTTP container has no address")?;
        http_client::sequential(addr, self.warmup).await?;
        let request = micros(http_client::sequential(addr, self.requests).await?);
        running.stop(Duration::from_secs(1)).await;
        Ok(Allocator {
            name,
            new_store: pick(|t| t.new_store),
            instantiate: pick(|t| t.instantiate),
            drop: pick(|t| t.drop),
            total: pick(InstanceTiming::total),
            request,
        })
    }

    /// Whole requests through `wasmtime serve`, the same way.
    async fn reference(&self) -> anyhow::Result<(String, Micros)> {
        let version = WasmtimeServe::version().unwrap_or_else(|| "wasmtime".into());
        eprintln!("instantiate: {version} serve: {} requests", self.requests);
        let server = WasmtimeServe::start(&self.component).await?;
        http_client::sequential(server.addr, self.warmup).await?;
        let request = micros(http_client::sequential(server.addr, self.requests).await?);
        Ok((version, request))
    }
}

/// p50 and p99 in microseconds.
fn micros(samples: Vec<Duration>) -> Micros {
    super::percentiles(samples).map(|(p50, p99, n)| (p50 * 1000.0, p99 * 1000.0, n))
}

fn print_table(
    component: &Path,
    instances: usize,
    allocators: &[&Allocator],
    wasmtime: &Option<(String, Micros)>,
) {
    println!("instantiate: {}, {instances} instances per allocator, one at a time (µs)", component.display());
    println!("{:<70} {:>9} {:>9} {:>8}", "measurement", "p50 µs", "p99 µs", "samples");
    let row = |name: &str, v: Micros| match v {
        Some((p50, p99, n)) => println!("{name:<70} {p50:>9.1} {p99:>9.1} {n:>8}"),
        None => println!("{name:<70} {:>9} {:>9} {:>8}", "-", "-", 0),
    };
    for a in allocators {
        row(&format!("{}: new store", a.name), a.new_store);
        row(&format!("{}: instantiate", a.name), a.instantiate);
        row(&format!("{}: drop store", a.name), a.drop);
        row(&format!("{}: all three (per request)", a.name), a.total);
    }
    for a in allocators {
        row(&format!("whole request, 1 connection: wasmkube runtime, {}", a.name), a.request);
    }
    match wasmtime {
        Some((version, m)) => row(&format!("whole request, 1 connection: {version} serve"), *m),
        None => println!("(wasmtime serve not measured: pass --wasmtime with wasmtime on PATH)"),
    }
}
