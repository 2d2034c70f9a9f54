//! Service writes: cluster IPs and node ports are unique across the cluster, so the API server
//! writes Services one at a time. A write takes the lock, reads which addresses and ports the
//! other stored Services hold, and lets admission pick free ones (`api::services`). Deleting a
//! Service frees its address with it: the stored Services are the only record of what is taken.
//! One API server serializes its own writes; several servers over one etcd would need the
//! allocation stored with the object (upstream's IPAddress objects), which is not done.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{ApiState, blocking};
use crate::api::{
    ApiError, ResourceType,
    services::{self, ServiceNetworks, Used},
};

/// The service network and the lock all Service writes take.
#[derive(Debug)]
pub struct ServiceWrites {
    networks: ServiceNetworks,
    pod_network: String,
    lock: Arc<Mutex<()>>,
}

impl ServiceWrites {
    /// Allocate from `networks`; `pod_network` is only told to joining nodes.
    pub fn new(networks: ServiceNetworks, pod_network: String) -> Self {
        Self { networks, pod_network, lock: Arc::new(Mutex::new(())) }
    }

    /// The cluster's pod network, as a CIDR.
    pub fn pod_network(&self) -> &str {
        &self.pod_network
    }

    /// The cluster's service network.
    pub fn networks(&self) -> &ServiceNetworks {
        &self.networks
    }
}

/// A Service write in progress: holds the lock until dropped, after the store write.
pub struct Allocation {
    _turn: OwnedMutexGuard<()>,
    used: Used,
    networks: ServiceNetworks,
    namespace: String,
    name: String,
}

impl Allocation {
    /// Admit the Service `new` (replacing `old`, if any): keep, check or allocate its address
    /// and node ports.
    pub fn admit(&self, old: Option<&Value>, new: &mut Value) -> Result<(), ApiError> {
        services::admit(old, new, &self.used, &self.networks, (&self.namespace, &self.name))
            .map_err(|m| ApiError::invalid("Service", &self.name, m))
    }
}

/// For a write to a Service's main endpoint: wait for the turn and read what the other Services
/// hold. Other kinds (and `/status` writes) get `None`.
pub async fn begin(
    state: &ApiState,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    status_only: bool,
) -> Result<Option<Allocation>, ApiError> {
    if rt.kind != "Service" || rt.group != "" || status_only {
        return Ok(None);
    }
    let turn = state.services.lock.clone().lock_owned().await;
    let store = state.store.clone();
    let prefix = rt.key_prefix();
    let (all, _) = blocking(move || store.list(&prefix)).await??;
    let used = Used::from_services(&all, (namespace, name));
    Ok(Some(Allocation {
        _turn: turn,
        used,
        networks: state.services.networks.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }))
}
