//! Per-container resource usage on this node, kept for metrics and served as the kubelet's
//! Summary API (`GET /stats/summary` on the agent's port, the shape metrics-server reads):
//! per pod and container, CPU as `usageCoreNanoSeconds` (cumulative) and `usageNanoCores`
//! (the rate since the previous read), memory as `workingSetBytes` / `usageBytes` (the linear
//! memories and tables of the container's live Wasm instances).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::{Value, json};
use wasm_runtime::UsageMeter;

/// Identifies one running container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
}

/// The meters of the containers running now. Cheap to clone.
#[derive(Clone, Default)]
pub struct UsageRegistry {
    inner: Arc<Mutex<BTreeMap<ContainerRef, Entry>>>,
}

struct Entry {
    meter: UsageMeter,
    /// The previous read (when, cumulative CPU nanoseconds), for the rate.
    last: Option<(Instant, u128)>,
}

impl UsageRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ContainerRef, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts reporting a container; returns a guard that stops it when dropped.
    pub fn register(&self, at: ContainerRef, meter: UsageMeter) -> Registration {
        self.lock().insert(at.clone(), Entry { meter, last: None });
        Registration { registry: self.clone(), at }
    }

    /// The Summary API document for `node_name`.
    pub fn summary(&self, node_name: &str) -> Value {
        let now = Instant::now();
        let time = crate::api::meta::now();
        let mut pods: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
        for (at, entry) in self.lock().iter_mut() {
            let usage = entry.meter.read();
            let cpu_nanos = usage.cpu.as_nanos();
            let rate = entry.last.map(|(then, before)| {
                let elapsed = now.duration_since(then).as_nanos().max(1);
                cpu_nanos.saturating_sub(before) * 1_000_000_000 / elapsed
            });
            entry.last = Some((now, cpu_nanos));
            let mut cpu = json!({"time": time, "usageCoreNanoSeconds": cpu_nanos as u64});
            if let Some(rate) = rate {
                cpu["usageNanoCores"] = json!(rate as u64);
            }
            let container = json!({
                "name": at.container,
                "startTime": time,
                "cpu": cpu,
                "memory": {"time": time, "workingSetBytes": usage.memory_bytes, "usageBytes": usage.memory_bytes},
            });
            pods.entry((at.namespace.clone(), at.pod.clone(), at.uid.clone())).or_default().push(container);
        }
        let pods: Vec<Value> = pods
            .into_iter()
            .map(|((namespace, name, uid), containers)| {
                let sum = |path: &[&str]| -> u64 {
                    containers.iter().map(|c| path.iter().fold(c, |v, k| &v[*k]).as_u64().unwrap_or(0)).sum()
                };
                json!({
                    "podRef": {"name": name, "namespace": namespace, "uid": uid},
                    "cpu": {"time": time, "usageCoreNanoSeconds": sum(&["cpu", "usageCoreNanoSeconds"]), "usageNanoCores": sum(&["cpu", "usageNanoCores"])},
                    "memory": {"time": time, "workingSetBytes": sum(&["memory", "workingSetBytes"])},
                    "containers": containers,
                })
            })
            .collect();
        json!({"node": {"nodeName": node_name}, "pods": pods})
    }
}

/// Keeps a container in the registry while it lives.
pub struct Registration {
    registry: UsageRegistry,
    at: ContainerRef,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.at);
    }
}
