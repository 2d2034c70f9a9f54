//! `wasmkube bench service-throughput`: wrk through a Service's cluster IP and through an
//! Ingress on the node's HTTP port to 1, 2 and 4 hello-http replicas, and in the same run, with
//! the same wrk settings, against `wasmtime serve` of the same component. Rounds alternate
//! between the paths so a neighbour's load hits all alike; the best round of each counts. The
//! goal (printed, not asserted): lose less than 10% to the proxy.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, anyhow};
use orchestrator::{api::find_by_kind, client::Client};
use serde_json::{Value, json};

use super::{
    http_client::{self, WasmtimeServe},
    http_throughput::{Run, WrkOptions, best, measured},
    pods,
    wrk::WrkLoad,
};

#[derive(clap::Args)]
pub struct ServiceThroughput {
    /// A wasi:http image already in the node's cache (`up --demo` loads wasmkube.local/hello-http:demo).
    #[arg(long, default_value = "wasmkube.local/hello-http:demo")]
    image: String,
    /// Replica counts to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    replicas: Vec<u32>,
    /// The node's Ingress HTTP port (`up --ingress-http-port`).
    #[arg(long, default_value_t = 8080)]
    ingress_port: u16,
    #[command(flatten)]
    wrk: WrkOptions,
    #[command(flatten)]
    common: super::Common,
}

impl ServiceThroughput {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.common.client.connect()?.client;
        let ns = pods::create_namespace(&client, "bench-svc").await?;
        let result = self.measure(&client, &ns).await;
        if !self.common.keep {
            pods::delete_namespace(&client, &ns).await;
        }
        result
    }

    async fn measure(&self, client: &Client, ns: &str) -> anyhow::Result<()> {
        let (service_ip, node_ip) = self.deploy(client, ns).await?;
        let service: SocketAddr = format!("{service_ip}:80").parse()?;
        let ingress: SocketAddr = format!("{node_ip}:{}", self.ingress_port).parse()?;
        let wasmtime = self.wrk.reference().await?;
        let load = self.wrk.load();
        let rounds = self.wrk.rounds;
        let mut rows: Vec<(String, Option<Run>)> = Vec::new();
        let mut reference = Vec::new();
        for &replicas in &self.replicas {
            scale(client, ns, replicas).await?;
            http_client::wait_for_200(service, Duration::from_secs(30)).await?;
            http_client::wait_for_200(ingress, Duration::from_secs(30)).await?;
            let (mut via_service, mut via_ingress) = (Vec::new(), Vec::new());
            for round in 1..=rounds {
                eprintln!(
                    "service-throughput: {replicas} replicas, round {round}/{}: wrk {}",
                    rounds,
                    load.describe()
                );
                via_service.push(measured(&load, service, self.wrk.server_pid).await?);
                via_ingress.push(measured(&load, ingress, self.wrk.server_pid).await?);
                if let Some(server) = &wasmtime {
                    reference.push(measured(&load, server.addr, server.pid()).await?);
                }
            }
            rows.push((format!("Service {service} → {replicas} pod(s)"), best(&via_service)));
            rows.push((format!("Ingress {ingress} → {replicas} pod(s)"), best(&via_ingress)));
        }
        let version = wasmtime.as_ref().and(WasmtimeServe::version());
        print_table(&load, &rows, best(&reference), version.as_deref(), rounds);
        if let Some(path) = &self.common.json {
            let paths: Vec<Value> =
                rows.iter().map(|(name, run)| json!({"path": name, "best": run})).collect();
            let report = json!({"wrk": load, "rounds": rounds, "paths": paths,
                "wasmtime_serve": wasmtime.as_ref().map(|_| json!({"version": version, "best": best(&reference)}))});
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
        Ok(())
    }

    /// The Deployment, its Service and an Ingress to it; the Service's cluster IP and the
    /// node's address.
    async fn deploy(&self, client: &Client, ns: &str) -> anyhow::Result<(String, String)> {
        let kind = |v, k| find_by_kind(v, k).ok_or_else(|| anyhow!("{k} is not served"));
        let labels = json!({"app": "hello"});
        let deployment = json!({"metadata": {"name": "hello"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "hello", "image": self.image,
                "imagePullPolicy": "Never", "ports": [{"name": "http", "containerPort": 8080}]}]}}}});
        client.create(kind("apps/v1", "Deployment")?, Some(ns), &deployment).await?;
        let service = json!({"metadata": {"name": "hello"}, "spec": {"selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
        let service = client.create(kind("v1", "Service")?, Some(ns), &service).await?;
        let ingress = json!({"metadata": {"name": "hello"}, "spec": {"ingressClassName": "wasmkube", "rules": [{"http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "hello", "port": {"number": 80}}}}]}}]}});
        client.create(kind("networking.k8s.io/v1", "Ingress")?, Some(ns), &ingress).await?;
        let (nodes, _) = client.list(kind("v1", "Node")?, None, None, None).await?;
        let node_ip = nodes
            .iter()
            .flat_map(|n| n["status"]["addresses"].as_array().cloned().unwrap_or_default())
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str().map(str::to_string))
            .context("no node has an InternalIP")?;
        let ip = service["spec"]["clusterIP"].as_str().context("the Service got no cluster IP")?.to_string();
        Ok((ip, node_ip))
    }
}

/// Scale to `replicas` and wait until the Service has that many ready endpoints.
async fn scale(client: &Client, ns: &str, replicas: u32) -> anyhow::Result<()> {
    let deployments =
        find_by_kind("apps/v1", "Deployment").ok_or_else(|| anyhow!("deployments not served"))?;
    let slices =
        find_by_kind("discovery.k8s.io/v1", "EndpointSlice").ok_or_else(|| anyhow!("no EndpointSlices"))?;
    let patch = json!({"spec": {"replicas": replicas}});
    client
        .patch(deployments, Some(ns), "hello", None, orchestrator::api::patch::PatchType::Merge, &patch)
        .await?;
    eprintln!("service-throughput: waiting for {replicas} ready endpoints");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (items, _) =
            client.list(slices, Some(ns), Some("kubernetes.io/service-name=hello"), None).await?;
        let ready = items
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["conditions"]["ready"] == true)
            .count();
        if ready == replicas as usize {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!("{ready} of {replicas} endpoints ready after 120 s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_table(
    load: &WrkLoad,
    rows: &[(String, Option<Run>)],
    reference: Option<Run>,
    version: Option<&str>,
    rounds: usize,
) {
    println!(
        "service-throughput: wrk {} on this machine, best of {rounds} alternating rounds",
        load.describe()
    );
    println!(
        "{:<44} {:>9} {:>8} {:>8} {:>7} {:>11} {:>15}",
        "path", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "vs wasmtime"
    );
    let row = |name: &str, run: Option<Run>| match run {
        Some(Run { wrk, cpu_us_per_request }) => println!(
            "{name:<44} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>11} {:>15}",
            wrk.requests_per_s,
            wrk.p50_ms,
            wrk.p99_ms,
            wrk.errors,
            cpu_us_per_request.map_or("-".into(), |c| format!("{c:.1}")),
            reference.map_or("-".into(), |r| format!(
                "{:.2}x, p99 {:.2}x",
                wrk.requests_per_s / r.wrk.requests_per_s,
                wrk.p99_ms / r.wrk.p99_ms
            )),
        ),
        None => println!("{name:<44} {:>9}", "-"),
    };
    for (name, run) in rows {
        row(name, *run);
    }
    match version {
        Some(v) => row(&format!("{v} serve -Scli=y"), reference),
        None => println!("(wasmtime serve not measured: pass --wasmtime-component with wasmtime on PATH)"),
    }
}
