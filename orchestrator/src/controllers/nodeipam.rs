//! Node IPAM: gives every Node its own pod address range (`spec.podCIDR`), so pod IPs are
//! unique across the cluster. On one machine the ranges are /16s inside 127.0.0.0/8, starting
//! at 127.64.0.0/16; a multi-machine pod network would hand out routable ranges the same way.

use std::{collections::HashSet, sync::Arc};

use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

const FIRST_OCTET: u8 = 64;

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let Some(node_type) = find_by_kind("v1", "Node") else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let nodes = informer::spawn(client.clone(), node_type, None, changed.clone());
    nodes.wait_synced().await;
    loop {
        let all = nodes.list();
        {
            let mut taken: HashSet<String> =
                all.iter().filter_map(|n| n["spec"]["podCIDR"].as_str().map(str::to_string)).collect();
            let mut names: Vec<_> =
                all.iter().filter(|n| n["spec"]["podCIDR"].as_str().is_none_or(str::is_empty)).collect();
            names.sort_by_key(|n| meta::name(n).to_string());
            for node in names {
                let Some(cidr) =
                    (FIRST_OCTET..=254).map(|o| format!("127.{o}.0.0/16")).find(|c| !taken.contains(c))
                else {
                    warn!("no free pod ranges left");
                    return;
                };
                let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
                match client.patch(node_type, None, meta::name(node), None, PatchType::Merge, &patch).await {
                    Ok(_) => {
                        info!(node = meta::name(node), %cidr, "assigned pod range");
                        taken.insert(cidr);
                    }
                    Err(e) => {
                        warn!(node = meta::name(node), error = %e, "assigning pod range failed")
                    }
                }
            }
        }
        crate::controllers::wait_for_change(&changed).await;
    }
}
