//! The endpoints controller: for every Service with a selector (not ExternalName) it publishes
//! the pods behind it, as `discovery.k8s.io/v1` EndpointSlices (`slices`, what the node proxy
//! reads) and as a core/v1 Endpoints (`subsets`, for older clients and `kubectl describe`).
//! Services without a selector are left to their users. Each round reads the caches (pods
//! indexed by namespace), plans each Service's objects from scratch and writes only the
//! differences, so a pod's readiness flipping rewrites one slice and nothing else.
//!
//! The load-balancer status controller (`loadbalancer`) runs beside it.

mod backends;
mod loadbalancer;
mod overlay;
mod slices;
mod subsets;

use std::{collections::HashMap, sync::Arc};

use serde_json::Value;
use tokio::sync::Notify;
use tracing::{debug, info, instrument, warn};

use self::{backends::Backend, overlay::Overlay};
use crate::{
    api::{ApiError, ResourceType, find_by_kind, meta},
    client::{Client, informer},
};

pub use self::{
    loadbalancer::{INGRESS_CLASS, INGRESS_CONTROLLER},
    slices::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL},
};

/// Run the endpoints and load-balancer controllers until the process ends.
pub async fn run(client: Client) {
    tokio::join!(run_endpoints(client.clone()), loadbalancer::run(client));
}

struct Controller {
    client: Client,
    ep_type: &'static ResourceType,
    slice_type: &'static ResourceType,
    /// Endpoints written, over the Endpoints cache.
    endpoints: Overlay,
    /// EndpointSlices written, over the slice cache.
    slices: Overlay,
}

/// What one round reads, indexed.
struct World {
    /// Pods by namespace.
    pods: HashMap<String, Vec<Arc<Value>>>,
    /// Our EndpointSlices by `namespace/service`.
    slices: HashMap<String, Vec<Arc<Value>>>,
    /// Endpoints by `namespace/name`.
    endpoints: HashMap<String, Arc<Value>>,
}

async fn run_endpoints(client: Client) {
    let (Some(svc_type), Some(pod_type), Some(ep_type), Some(slice_type)) = (
        find_by_kind("v1", "Service"),
        find_by_kind("v1", "Pod"),
        find_by_kind("v1", "Endpoints"),
        find_by_kind("discovery.k8s.io/v1", "EndpointSlice"),
    ) else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let services = informer::spawn(client.clone(), svc_type, None, changed.clone());
    let pods = informer::spawn(client.clone(), pod_type, None, changed.clone());
    let endpoints = informer::spawn(client.clone(), ep_type, None, changed.clone());
    let slices = informer::spawn(client.clone(), slice_type, None, changed.clone());
    for cache in [&services, &pods, &endpoints, &slices] {
        cache.wait_synced().await;
    }
    let mut controller =
        Controller { client, ep_type, slice_type, endpoints: Overlay::default(), slices: Overlay::default() };
    let mut rounds = crate::controllers::Rounds::new();
    loop {
        controller.endpoints.prune(&endpoints);
        controller.slices.prune(&slices);
        let world = World::index(
            pods.list(),
            controller.slices.over(slices.list()),
            controller.endpoints.over(endpoints.list()),
        );
        let all = services.list();
        rounds
            .timed(async {
                for svc in &all {
                    controller.reconcile(svc, &world).await;
                }
                controller.remove_leftover_endpoints(&all, &world).await;
            })
            .await;
        rounds.next(&changed).await;
    }
}

impl World {
    fn index(pods: Vec<Arc<Value>>, slices: Vec<Arc<Value>>, endpoints: Vec<Arc<Value>>) -> Self {
        let mut by_ns: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
        for pod in pods {
            by_ns.entry(meta::namespace(&pod).to_string()).or_default().push(pod);
        }
        let mut by_service: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
        for slice in slices.into_iter().filter(|s| slices::is_managed(s)) {
            if let Some(service) = slice["metadata"]["labels"][SERVICE_NAME_LABEL].as_str() {
                by_service
                    .entry(format!("{}/{service}", meta::namespace(&slice)))
                    .or_default()
                    .push(slice.clone());
            }
        }
        let endpoints = endpoints.into_iter().map(|e| (meta::key_of(&e), e)).collect();
        World { pods: by_ns, slices: by_service, endpoints }
    }
}

impl Controller {
    #[instrument(skip_all, fields(service = %meta::key_of(svc)))]
    async fn reconcile(&mut self, svc: &Value, world: &World) {
        let Some(selector) = backends::managed_selector(svc) else { return };
        let pods = world.pods.get(meta::namespace(svc)).map(Vec::as_slice).unwrap_or_default();
        let found: Vec<Backend> = backends::backends(selector, pods);
        let trigger = backends::trigger_time(svc, &found);
        let key = meta::key_of(svc);
        let existing = world.slices.get(&key).map(Vec::as_slice).unwrap_or_default();
        let plan = slices::plan(svc, &found, existing, &trigger);
        self.write_slices(plan).await;
        let current = world.endpoints.get(&key).map(|e| &**e);
        if let Some(ep) = subsets::plan(svc, &found, current, &trigger) {
            self.write_endpoints(ep, current.is_some()).await;
        }
    }

    async fn write_slices(&mut self, plan: slices::Plan) {
        let rt = self.slice_type;
        for slice in plan.create {
            let ns = meta::namespace(&slice).to_string();
            match self.client.create(rt, Some(&ns), &slice).await {
                Ok(created) => {
                    debug!(slice = meta::name(&created), "created EndpointSlice");
                    self.slices.wrote(created);
                }
                Err(e) => skip_stale(e, "creating an EndpointSlice failed"),
            }
        }
        for slice in plan.update {
            let (ns, name) = (meta::namespace(&slice).to_string(), meta::name(&slice).to_string());
            match self.client.replace(rt, Some(&ns), &name, None, &slice).await {
                Ok(updated) => self.slices.wrote(updated),
                Err(e) => skip_stale(e, "updating an EndpointSlice failed"),
            }
        }
        for slice in plan.delete {
            match self.client.delete(rt, Some(meta::namespace(&slice)), meta::name(&slice), None).await {
                Ok(_) => self.slices.deleted(&slice),
                Err(e) if e.is_not_found() => self.slices.deleted(&slice),
                Err(e) => warn!(error = %e, slice = meta::name(&slice), "deleting an EndpointSlice failed"),
            }
        }
    }

    async fn write_endpoints(&mut self, ep: Value, exists: bool) {
        let (ns, name) = (meta::namespace(&ep).to_string(), meta::name(&ep).to_string());
        let written = if exists {
            self.client.replace(self.ep_type, Some(&ns), &name, None, &ep).await
        } else {
            self.client.create(self.ep_type, Some(&ns), &ep).await
        };
        match written {
            Ok(obj) => self.endpoints.wrote(obj),
            // Gone since the cache saw it: the next round creates it afresh.
            Err(e) if e.is_not_found() => self.endpoints.deleted(&ep),
            Err(e) => skip_stale(e, "writing Endpoints failed"),
        }
    }

    /// Delete the Endpoints this controller wrote for Services that no longer exist (the
    /// slices go with their Service through the garbage collector).
    async fn remove_leftover_endpoints(&mut self, services: &[Arc<Value>], world: &World) {
        let live: std::collections::HashSet<String> = services.iter().map(|s| meta::key_of(s)).collect();
        for (key, ep) in &world.endpoints {
            if live.contains(key) || !subsets::is_ours(ep) {
                continue;
            }
            match self.client.delete(self.ep_type, Some(meta::namespace(ep)), meta::name(ep), None).await {
                Ok(_) => {
                    info!(endpoints = %key, "deleted the Endpoints of a deleted Service");
                    self.endpoints.deleted(ep);
                }
                Err(e) if e.is_not_found() => self.endpoints.deleted(ep),
                Err(e) => warn!(error = %e, endpoints = %key, "deleting Endpoints failed"),
            }
        }
    }
}

/// A write that lost a race (conflict, already exists) is retried by the next round from a
/// fresher cache, and a terminating namespace refuses new objects (403) until it is gone;
/// anything else is worth a warning.
fn skip_stale(e: ApiError, what: &str) {
    if matches!(e.code, 403 | 409) {
        debug!(error = %e, "{what}; retrying next round");
    } else {
        warn!(error = %e, "{what}");
    }
}
