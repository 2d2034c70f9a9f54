//! One cache of the cluster's Services and EndpointSlices per agent, shared by the node proxy
//! and the DNS server. Each consumer learns of changes through its own clone of a watch
//! channel, so a consumer busy with a round never misses the change that came meanwhile (a
//! shared `Notify` would wake only whoever happened to be waiting).

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::{
    api::find_by_kind,
    client::{Client, informer, informer::Cache},
};

/// The Services and EndpointSlices of the whole cluster, kept current by watches.
#[derive(Clone)]
pub struct ServiceView {
    pub services: Cache,
    pub slices: Cache,
    changes: watch::Receiver<u64>,
}

impl ServiceView {
    /// Start the informers; `None` when the API does not serve both kinds.
    pub fn spawn(client: &Client) -> Option<Self> {
        let service_type = find_by_kind("v1", "Service")?;
        let slice_type = find_by_kind("discovery.k8s.io/v1", "EndpointSlice")?;
        let changed = Arc::new(Notify::new());
        let services = informer::spawn(client.clone(), service_type, None, changed.clone());
        let slices = informer::spawn(client.clone(), slice_type, None, changed.clone());
        let (tx, changes) = watch::channel(0u64);
        tokio::spawn(async move {
            // The informers leave a permit when nobody waits, so no change is lost here.
            loop {
                changed.notified().await;
                tx.send_modify(|n| *n += 1);
                if tx.is_closed() {
                    break;
                }
            }
        });
        Some(Self { services, slices, changes })
    }

    /// Wait until both caches hold their first list.
    pub async fn wait_synced(&self) {
        self.services.wait_synced().await;
        self.slices.wait_synced().await;
    }

    /// Wait for the next change (or the controllers' resync period, as a safety net).
    pub async fn changed(&mut self) {
        tokio::select! {
            _ = self.changes.changed() => {}
            _ = tokio::time::sleep(crate::controllers::RESYNC) => {}
        }
    }
}
