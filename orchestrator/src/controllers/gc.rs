//! Garbage collection of dependents along the ownership edges of `api::ownership`:
//! - Background: an object whose controlling owner no longer exists is deleted. Before
//!   deleting, the owner's absence is confirmed with the server, since a cache may lag.
//! - Foreground: an owner held by the `foregroundDeletion` finalizer has its dependents deleted
//!   (themselves in the foreground, so a Deployment waits for its pods), and loses the finalizer
//!   once none is left.
//! - Orphan: an owner held by the `orphan` finalizer has its ownerReference removed from every
//!   dependent, then loses the finalizer.

use std::{collections::HashMap, sync::Arc};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{ResourceType, find_by_kind, meta, ownership, patch::PatchType},
    client::{Client, informer},
};

/// Run the collector until the process ends.
pub async fn run(client: Client) {
    let changed = Arc::new(Notify::new());
    let mut caches: HashMap<&'static str, (&'static ResourceType, informer::Cache)> = HashMap::new();
    for (owner_av, owner_kind, dep_av, dep_kind) in ownership::EDGES {
        for (av, kind) in [(owner_av, owner_kind), (dep_av, dep_kind)] {
            if caches.contains_key(kind) {
                continue;
            }
            if let Some(rt) = find_by_kind(av, kind) {
                caches.insert(rt.kind, (rt, informer::spawn(client.clone(), rt, None, changed.clone())));
            }
        }
    }
    for (_, cache) in caches.values() {
        cache.wait_synced().await;
    }
    let mut rounds = crate::controllers::Rounds::new();
    loop {
        rounds
            .timed(async {
                for (_, owner_kind, _, dep_kind) in ownership::EDGES {
                    let (Some((owner_type, owners)), Some((dep_type, deps))) =
                        (caches.get(owner_kind), caches.get(dep_kind))
                    else {
                        continue;
                    };
                    let (owners, deps) = (owners.list(), deps.list());
                    collect_orphaned(&client, owner_type, &owners, dep_type, &deps).await;
                }
                for (rt, owners) in caches.values().filter(|(rt, _)| ownership::is_owner_kind(rt.kind)) {
                    for owner in owners.list().iter().filter(|o| meta::is_terminating(o)) {
                        let deps: Vec<(&ResourceType, Vec<Arc<Value>>)> = ownership::dependents_of(rt.kind)
                            .filter_map(|(_, kind)| caches.get(kind))
                            .map(|(dt, cache)| (*dt, dependents_of(owner, &cache.list())))
                            .collect();
                        if has_finalizer(owner, ownership::FOREGROUND) {
                            delete_in_foreground(&client, rt, owner, &deps).await;
                        }
                        if has_finalizer(owner, ownership::ORPHAN) {
                            orphan(&client, rt, owner, &deps).await;
                        }
                    }
                }
            })
            .await;
        rounds.next(&changed).await;
    }
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"].as_array().is_some_and(|l| l.iter().any(|x| x == f))
}

/// Objects with an ownerReference (controlling or not) to `owner`'s uid.
fn dependents_of(owner: &Value, candidates: &[Arc<Value>]) -> Vec<Arc<Value>> {
    let uid = meta::uid(owner);
    candidates
        .iter()
        .filter(|d| meta::namespace(d) == meta::namespace(owner))
        .filter(|d| {
            d["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .cloned()
        .collect()
}

/// Background: delete dependents whose controlling owner is gone. An owner that still exists
/// (even terminating) keeps its dependents: Foreground and Orphan deal with those.
async fn collect_orphaned(
    client: &Client,
    owner_type: &ResourceType,
    owners: &[Arc<Value>],
    dep_type: &ResourceType,
    dependents: &[Arc<Value>],
) {
    let live: std::collections::HashSet<&str> = owners.iter().map(|o| meta::uid(o)).collect();
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
            Ok(Some(owner)) if meta::uid(&owner) == owner_ref["uid"].as_str().unwrap_or("") => continue,
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "checking owner failed");
                continue;
            }
        }
        info!(kind = dep_type.kind, object = %meta::key_of(dep), owner = owner_name, "deleting dependent of a deleted owner");
        delete(client, dep_type, dep, "Background").await;
    }
}

async fn delete(client: &Client, rt: &ResourceType, obj: &Value, policy: &str) {
    match client.delete_with_policy(rt, Some(meta::namespace(obj)), meta::name(obj), policy).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => warn!(error = %e, object = %meta::key_of(obj), "garbage collection delete failed"),
    }
}

/// Foreground: delete the owner's dependents; once none is left, release the owner.
async fn delete_in_foreground(
    client: &Client,
    rt: &ResourceType,
    owner: &Value,
    deps: &[(&ResourceType, Vec<Arc<Value>>)],
) {
    let mut waiting = false;
    for (dep_type, list) in deps {
        for dep in list {
            waiting = true;
            if !meta::is_terminating(dep) {
                // Dependents that own things themselves go in the foreground too, as upstream.
                let policy =
                    if ownership::is_owner_kind(dep_type.kind) { "Foreground" } else { "Background" };
                delete(client, dep_type, dep, policy).await;
            }
        }
    }
    if !waiting {
        info!(kind = rt.kind, object = %meta::key_of(owner), "dependents deleted, releasing owner");
        remove_finalizer(client, rt, owner, ownership::FOREGROUND).await;
    }
}

/// Orphan: remove the owner's reference from each dependent, then release the owner.
async fn orphan(
    client: &Client,
    rt: &ResourceType,
    owner: &Value,
    deps: &[(&ResourceType, Vec<Arc<Value>>)],
) {
    let uid = meta::uid(owner);
    let mut waiting = false;
    for (dep_type, list) in deps {
        for dep in list {
            waiting = true;
            let refs: Vec<&Value> = dep["metadata"]["ownerReferences"]
                .as_array()
                .map(|r| r.iter().filter(|r| r["uid"] != uid).collect())
                .unwrap_or_default();
            // The resourceVersion makes the patch conditional: a concurrent change is retried
            // on the next pass rather than overwritten.
            let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": dep["metadata"]["resourceVersion"]}});
            let ns = Some(meta::namespace(dep));
            match client.patch(dep_type, ns, meta::name(dep), None, PatchType::Merge, &patch).await {
                Ok(_) => info!(kind = dep_type.kind, object = %meta::key_of(dep), "orphaned dependent"),
                Err(e) if e.is_not_found() || e.code == 409 => {}
                Err(e) => warn!(error = %e, "orphaning dependent failed"),
            }
        }
    }
    if !waiting {
        remove_finalizer(client, rt, owner, ownership::ORPHAN).await;
    }
}

async fn remove_finalizer(client: &Client, rt: &ResourceType, owner: &Value, finalizer: &str) {
    let remaining: Vec<&Value> = owner["metadata"]["finalizers"]
        .as_array()
        .map(|l| l.iter().filter(|f| *f != finalizer).collect())
        .unwrap_or_default();
    let patch = json!({"metadata": {"finalizers": remaining, "resourceVersion": owner["metadata"]["resourceVersion"]}});
    match client
        .patch(rt, Some(meta::namespace(owner)), meta::name(owner), None, PatchType::Merge, &patch)
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() || e.code == 409 => {}
        Err(e) => warn!(error = %e, object = %meta::key_of(owner), "removing finalizer failed"),
    }
}
