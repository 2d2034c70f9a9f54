//! Node IPAM: gives every Node its own pod address range (`spec.podCIDR`), a /16 of the
//! cluster's pod network, so pod IPs are unique across the cluster. On one machine the network
//! is inside 127.0.0.0/8 (default 127.64.0.0/10: 127.64.0.0/16, 127.65.0.0/16, ...); a
//! multi-machine pod network would hand out routable ranges the same way.

use std::{collections::HashSet, sync::Arc};

use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    api::{find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

/// The default pod network.
pub const DEFAULT_POD_NETWORK: &str = "127.64.0.0/10";

/// A pod network split into /16 node ranges.
#[derive(Debug, Clone, Copy)]
pub struct PodNetwork {
    base: u32,
    node_ranges: u32,
}

impl PodNetwork {
    /// Parse an IPv4 CIDR with a prefix of /16 or shorter.
    pub fn parse(cidr: &str) -> Result<Self, String> {
        // Nodes get /16s, so the network is a /16 or larger.
        let (base, bits) = crate::api::cidr::parse(cidr, 1..=16)?;
        Ok(Self { base, node_ranges: 1 << (16 - bits) })
    }

    /// The whole network as `a.b.c.d/n`.
    pub fn cidr(&self) -> String {
        let bits = 16 - self.node_ranges.trailing_zeros();
        format!("{}/{bits}", std::net::Ipv4Addr::from(self.base))
    }

    /// The node ranges, in order.
    pub fn node_ranges(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.node_ranges).map(|i| format!("{}/16", std::net::Ipv4Addr::from(self.base + (i << 16))))
    }
}

/// Run the controller until the process ends.
pub async fn run(client: Client, network: PodNetwork) {
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
                let Some(cidr) = network.node_ranges().find(|c| !taken.contains(c)) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_split_into_node_ranges() {
        let net = PodNetwork::parse("127.64.0.0/14").expect("parse");
        assert_eq!(
            net.node_ranges().collect::<Vec<_>>(),
            ["127.64.0.0/16", "127.65.0.0/16", "127.66.0.0/16", "127.67.0.0/16"]
        );
        assert_eq!(PodNetwork::parse(DEFAULT_POD_NETWORK).expect("default").node_ranges().count(), 64);
        assert!(PodNetwork::parse("127.64.0.0/24").is_err());
        assert!(PodNetwork::parse("nope").is_err());
    }
}
