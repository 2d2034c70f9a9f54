//! One pod on this node: give it an IP, run a task per container, push its status whenever a
//! container changes, and tear it down when the pod is deleted (stop containers within the
//! grace period, then remove the pod object for good) or the agent stops.

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use super::{
    NodeContext,
    container::ContainerTask,
    grants,
    status::{self, ContainerState},
    volumes::{self, PodVolumes},
};
use crate::api::{find_by_kind, meta, patch::PatchType};

/// How long containers get to stop when the agent itself shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Run the worker for the pod in `updates` until the pod is gone or the agent stops.
#[instrument(skip_all, fields(pod = %updates.borrow().as_ref().map(meta::key_of).unwrap_or_default()))]
pub async fn run(
    ctx: NodeContext,
    mut updates: watch::Receiver<Option<Value>>,
    agent_stop: CancellationToken,
) {
    let Some(pod) = updates.borrow_and_update().clone() else {
        return;
    };
    let ns = meta::namespace(&pod).to_string();
    let name = meta::name(&pod).to_string();
    let uid = meta::uid(&pod).to_string();
    if meta::is_terminating(&pod) || matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
        // Nothing to run: a finished pod stays finished; a deleted one is finalized.
        finish(&ctx, &pod, &mut updates, &agent_stop).await;
        return;
    }
    let preferred = pod["status"]["podIP"].as_str().and_then(|ip| ip.parse::<Ipv4Addr>().ok());
    let Some(pod_ip) = ctx.ips.allocate(preferred) else {
        warn!("no free pod IPs on this node");
        return;
    };
    let host_ip = ctx.node_ip.to_string();
    let start_time = pod["status"]["startTime"].as_str().map(str::to_string).unwrap_or_else(meta::now);
    let dirty = Arc::new(Notify::new());
    let containers_stop = CancellationToken::new();
    let grace = Arc::new(Mutex::new(Duration::from_secs(
        pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30),
    )));
    let volumes = Arc::new(PodVolumes::new(&ctx.pods_dir, &pod));
    if let Ok(v) = volumes.as_ref()
        && v.has_projections()
    {
        tokio::spawn(sync_volumes(ctx.clone(), volumes.clone(), containers_stop.clone()));
    }
    let resources = wasm_runtime::PodResources::new(grants::pod_memory_limit(&pod));
    let mut states = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for spec in pod["spec"]["containers"].as_array().cloned().unwrap_or_default() {
        let shared = Arc::new(Mutex::new(ContainerState::new(
            spec["name"].as_str().unwrap_or(""),
            spec["image"].as_str().unwrap_or(""),
        )));
        states.push(shared.clone());
        let task = ContainerTask {
            ctx: ctx.clone(),
            pod: pod.clone(),
            spec,
            pod_ip,
            shared,
            dirty: dirty.clone(),
            stop: containers_stop.clone(),
            volumes: volumes.clone(),
            resources: resources.clone(),
        };
        tasks.spawn(task.run(grace.clone()));
    }
    let target =
        StatusTarget { ns: ns.clone(), name: name.clone(), pod_ip: pod_ip.to_string(), host_ip, start_time };
    let mut current = pod.clone();
    target.push(&ctx, &current, &snapshot(&states)).await;
    let mut last_pushed = String::new();
    loop {
        tokio::select! {
            _ = dirty.notified() => {
                let containers = snapshot(&states);
                let fingerprint = format!("{containers:?}");
                if fingerprint != last_pushed {
                    last_pushed = fingerprint;
                    target.push(&ctx, &current, &containers).await;
                }
            }
            changed = updates.changed() => {
                let next = if changed.is_ok() { updates.borrow_and_update().clone() } else { None };
                match next {
                    Some(p) if !meta::is_terminating(&p) => current = p,
                    Some(p) => {
                        let g = p["metadata"]["deletionGracePeriodSeconds"].as_u64().unwrap_or(30);
                        *grace.lock().unwrap_or_else(|e| e.into_inner()) = Duration::from_secs(g);
                        info!(grace_seconds = g, "pod deleted: stopping containers");
                        containers_stop.cancel();
                        while tasks.join_next().await.is_some() {}
                        target.push(&ctx, &p, &snapshot(&states)).await;
                        ctx.ips.release(pod_ip);
                        finalize(&ctx, &p).await;
                        return;
                    }
                    None => {
                        containers_stop.cancel();
                        while tasks.join_next().await.is_some() {}
                        ctx.ips.release(pod_ip);
                        ctx.logs.remove_pod(&ns, &name, &uid);
                        remove_pod_dir(&ctx, &uid);
                        return;
                    }
                }
            }
            _ = agent_stop.cancelled() => {
                *grace.lock().unwrap_or_else(|e| e.into_inner()) = SHUTDOWN_GRACE;
                containers_stop.cancel();
                while tasks.join_next().await.is_some() {}
                return;
            }
        }
    }
}

fn snapshot(states: &[Arc<Mutex<ContainerState>>]) -> Vec<ContainerState> {
    states.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect()
}

/// Where and what a worker reports as pod status.
struct StatusTarget {
    ns: String,
    name: String,
    pod_ip: String,
    host_ip: String,
    start_time: String,
}

impl StatusTarget {
    async fn push(&self, ctx: &NodeContext, pod: &Value, containers: &[ContainerState]) {
        let Some(pod_type) = find_by_kind("v1", "Pod") else {
            return;
        };
        let status = status::pod_status(pod, containers, &self.pod_ip, &self.host_ip, &self.start_time);
        if let Err(e) = ctx
            .client
            .patch(
                pod_type,
                Some(&self.ns),
                &self.name,
                Some("status"),
                PatchType::Merge,
                &json!({"status": status}),
            )
            .await
        {
            if !e.is_not_found() {
                warn!(error = %e, "pushing pod status failed");
            }
        }
    }
}

/// A pod that will not run again: wait for its deletion (finalize it) or the agent's stop.
async fn finish(
    ctx: &NodeContext,
    pod: &Value,
    updates: &mut watch::Receiver<Option<Value>>,
    stop: &CancellationToken,
) {
    let mut latest = pod.clone();
    loop {
        if meta::is_terminating(&latest) {
            finalize(ctx, &latest).await;
            return;
        }
        tokio::select! {
            changed = updates.changed() => match (changed, updates.borrow_and_update().clone()) {
                (Ok(()), Some(p)) => latest = p,
                _ => return,
            },
            _ = stop.cancelled() => return,
        }
    }
}

/// Remove a terminated pod's object for good (grace 0), as the kubelet does.
async fn finalize(ctx: &NodeContext, pod: &Value) {
    let Some(pod_type) = find_by_kind("v1", "Pod") else {
        return;
    };
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": meta::uid(pod)}});
    let path = crate::client::Client::path(pod_type, Some(meta::namespace(pod)), Some(meta::name(pod)), None);
    match ctx.client.request(reqwest::Method::DELETE, &path, Some(("application/json", &body)), None).await {
        Ok(_) => info!("pod removed"),
        Err(e) if e.is_not_found() || e.is_conflict() => {}
        Err(e) => warn!(error = %e, "removing pod failed"),
    }
    ctx.logs.remove_pod(meta::namespace(pod), meta::name(pod), meta::uid(pod));
    remove_pod_dir(ctx, meta::uid(pod));
}

/// The pod's volumes (emptyDirs, projections) go with the pod.
fn remove_pod_dir(ctx: &NodeContext, uid: &str) {
    if uid.is_empty() || uid.contains(['/', '.']) {
        return;
    }
    let dir = volumes::pod_dir(&ctx.pods_dir, uid);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(error = %e, dir = %dir.display(), "removing the pod's volumes failed");
        }
    }
}

/// Keeps ConfigMap and Secret volumes current while the pod's containers run.
async fn sync_volumes(ctx: NodeContext, volumes: Arc<Result<PodVolumes, String>>, stop: CancellationToken) {
    let Ok(v) = volumes.as_ref() else { return };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(volumes::SYNC_PERIOD) => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = v.sync(&ctx.client).await {
            warn!(error = %e, "refreshing the pod's ConfigMap/Secret volumes failed");
        }
    }
}
