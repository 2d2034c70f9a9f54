//! Garbage collection of dependents: an object whose controlling owner no longer exists is
//! deleted (the `Background` propagation policy kubectl uses by default). Before deleting, the
//! owner's absence is confirmed with the server, since a cache may lag behind a create.

use std::{collections::HashSet, sync::Arc};

use serde_json::Value;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{ResourceType, find_by_kind, meta},
    client::{Client, informer},
};

/// Which kinds own which: (owner kind, owner apiVersion, dependent kind, dependent apiVersion).
const EDGES: &[(&str, &str, &str, &str)] =
    &[("Deployment", "apps/v1", "ReplicaSet", "apps/v1"), ("ReplicaSet", "apps/v1", "Pod", "v1")];

/// Run the collector until the process ends.
pub async fn run(client: Client) {
    let changed = Arc::new(Notify::new());
    let mut caches = Vec::new();
    for (owner_kind, owner_av, dep_kind, dep_av) in EDGES {
        let (Some(owner), Some(dep)) = (find_by_kind(owner_av, owner_kind), find_by_kind(dep_av, dep_kind))
        else {
            continue;
        };
        let owners = informer::spawn(client.clone(), owner, None, changed.clone());
        let dependents = informer::spawn(client.clone(), dep, None, changed.clone());
        caches.push((owner, owners, dep, dependents));
    }
    for (_, owners, _, deps) in &caches {
        owners.wait_synced().await;
        deps.wait_synced().await;
    }
    loop {
        for (owner_type, owners, dep_type, dependents) in &caches {
            collect(&client, owner_type, &owners.list(), dep_type, &dependents.list()).await;
        }
        crate::controllers::wait_for_change(&changed).await;
    }
}

async fn collect(
    client: &Client,
    owner_type: &ResourceType,
    owners: &[Arc<Value>],
    dep_type: &ResourceType,
    dependents: &[Arc<Value>],
) {
    let live: HashSet<&str> =
        owners.iter().filter(|o| !meta::is_terminating(o)).map(|o| meta::uid(o)).collect();
    for dep in dependents {
        let Some(owner_ref) = meta::controller_ref(dep) else {
            continue;
        };
        if owner_ref["kind"] != owner_type.kind
            || live.contains(owner_ref["uid"].as_str().unwrap_or(""))
            || meta::is_terminating(dep)
        {
            continue;
        }
        let ns = meta::namespace(dep);
        let owner_name = owner_ref["name"].as_str().unwrap_or("");
        // Confirm with the server: the owner may exist but be newer than our cache.
        match client.get_opt(owner_type, Some(ns), owner_name).await {
            Ok(Some(owner))
                if meta::uid(&owner) == owner_ref["uid"].as_str().unwrap_or("")
                    && !meta::is_terminating(&owner) =>
            {
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "checking owner failed");
                continue;
            }
        }
        info!(kind = dep_type.kind, object = %meta::key_of(dep), owner = owner_name, "deleting dependent of a deleted owner");
        match client.delete(dep_type, Some(ns), meta::name(dep), None).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(error = %e, "garbage collection delete failed"),
        }
    }
}
