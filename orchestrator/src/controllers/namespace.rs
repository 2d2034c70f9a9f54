//! The namespace controller: empties a terminating namespace (every namespaced kind, pods
//! gracefully through their agents) and then clears its `kubernetes` finalizer through
//! `/finalize`, which removes it. While a namespace is terminating it re-checks every second,
//! since the pods it waits for leave through other components.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{find_by_kind, meta, resources::RESOURCES},
    client::{Client, informer},
};

/// How often a terminating namespace is re-checked for remaining content.
const RECHECK: Duration = Duration::from_secs(1);

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let Some(rt) = find_by_kind("v1", "Namespace") else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let namespaces = informer::spawn(client.clone(), rt, None, changed.clone());
    namespaces.wait_synced().await;
    loop {
        let terminating: Vec<Arc<Value>> =
            namespaces.list().into_iter().filter(|ns| meta::is_terminating(ns)).collect();
        for ns in &terminating {
            if has_kubernetes_finalizer(ns) {
                empty(&client, meta::name(ns)).await;
            }
        }
        if terminating.is_empty() {
            crate::controllers::wait_for_change(&changed).await;
        } else {
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }
}

fn has_kubernetes_finalizer(ns: &Value) -> bool {
    ns["spec"]["finalizers"].as_array().is_some_and(|l| l.iter().any(|f| f == "kubernetes"))
}

/// Delete what is left in `ns`; once nothing is, release the namespace.
async fn empty(client: &Client, ns: &str) {
    let mut remaining = 0usize;
    for rt in RESOURCES.iter().filter(|r| r.namespaced) {
        let items = match client.list(rt, Some(ns), None, None).await {
            Ok((items, _)) => items,
            Err(e) => {
                warn!(error = %e, namespace = ns, kind = rt.kind, "listing namespace content failed");
                remaining += 1;
                continue;
            }
        };
        for obj in items {
            remaining += 1;
            if meta::is_terminating(&obj) {
                continue;
            }
            match client.delete(rt, Some(ns), meta::name(&obj), None).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    warn!(error = %e, object = %meta::key_of(&obj), "deleting namespace content failed")
                }
            }
        }
    }
    if remaining > 0 {
        return;
    }
    info!(namespace = ns, "namespace is empty, finalizing");
    let Some(rt) = find_by_kind("v1", "Namespace") else {
        return;
    };
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": []}});
    let path = format!("{}/finalize", crate::client::Client::path(rt, None, Some(ns), None));
    if let Err(e) = client.request(reqwest::Method::PUT, &path, Some(("application/json", &body)), None).await
    {
        if !e.is_not_found() {
            warn!(error = %e, namespace = ns, "finalizing namespace failed");
        }
    }
}
