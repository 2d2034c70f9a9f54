//! The resolv.conf a Linux container gets at /etc/resolv.conf, as kubelet writes it from the
//! pod's `dnsPolicy` and `dnsConfig`:
//!
//! - `ClusterFirst` (the default): the cluster DNS server, the search list `<ns>.svc.<domain>
//!   svc.<domain> <domain>` followed by the node's own search domains, `options ndots:5`;
//!   with `hostNetwork: true` it falls back to `Default`, as upstream's.
//! - `ClusterFirstWithHostNet`: `ClusterFirst` even with the host's network.
//! - `Default`: the node's resolv.conf (nameservers, search, options).
//! - `None`: only what `dnsConfig` says.
//!
//! `dnsConfig` is then merged as kubelet's `appendDNSConfig`: its nameservers after the
//! policy's, its searches before them (duplicates dropped), its options replacing those of
//! the same name. Like kubelet, at most 3 nameservers and 32 search domains are written.

use std::net::IpAddr;

use serde_json::Value;

/// Upstream's limits (kubelet's validation of the result).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// What a resolv.conf says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub searches: Vec<String>,
    /// `name` or `name:value`.
    pub options: Vec<String>,
}

/// Read a resolv.conf (unknown lines and bad addresses are skipped, as libc does).
pub fn parse(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                // An IPv6 address may carry a zone (`fe80::1%eth0`); we cannot use those.
                if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                    conf.nameservers.push(ip);
                }
            }
            // The last `search` or `domain` line wins.
            Some("search" | "domain") => conf.searches = words.map(str::to_string).collect(),
            Some("options") => conf.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    conf
}

impl ResolvConf {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

/// The cluster's DNS as a pod sees it.
#[derive(Debug, Clone)]
pub struct ClusterDns<'a> {
    pub server: IpAddr,
    pub domain: &'a str,
    /// The node's own resolv.conf.
    pub host: &'a ResolvConf,
}

/// The resolv.conf of `pod`, or why its DNS settings are refused.
pub fn for_pod(pod: &Value, dns: &ClusterDns<'_>) -> Result<ResolvConf, String> {
    let spec = &pod["spec"];
    let host_network = spec["hostNetwork"].as_bool().unwrap_or(false);
    let policy = spec["dnsPolicy"].as_str().unwrap_or("ClusterFirst");
    let mut conf = match policy {
        "ClusterFirst" if host_network => dns.host.clone(),
        "ClusterFirst" | "ClusterFirstWithHostNet" => {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
            let domain = dns.domain;
            let mut searches =
                vec![format!("{ns}.svc.{domain}"), format!("svc.{domain}"), domain.to_string()];
            searches.extend(dns.host.searches.iter().cloned());
            ResolvConf { nameservers: vec![dns.server], searches, options: vec!["ndots:5".into()] }
        }
        "Default" => dns.host.clone(),
        "None" => ResolvConf::default(),
        other => return Err(format!("spec.dnsPolicy: Unsupported value: {other:?}")),
    };
    merge(&mut conf, &spec["dnsConfig"])?;
    if policy == "None" && conf.nameservers.is_empty() {
        return Err("spec.dnsConfig.nameservers: Required value: with dnsPolicy None".into());
    }
    conf.nameservers.truncate(MAX_NAMESERVERS);
    conf.searches.truncate(MAX_SEARCHES);
    Ok(conf)
}

/// kubelet's `appendDNSConfig`.
fn merge(conf: &mut ResolvConf, config: &Value) -> Result<(), String> {
    let strings = |field: &str| -> Vec<String> {
        config[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .map(str::to_string)
            .collect()
    };
    for ns in strings("nameservers") {
        let ip: IpAddr = ns.parse().map_err(|_| {
            format!("spec.dnsConfig.nameservers: Invalid value: {ns:?}: must be an IP address")
        })?;
        if !conf.nameservers.contains(&ip) {
            conf.nameservers.push(ip);
        }
    }
    let mut searches = strings("searches");
    searches.append(&mut conf.searches);
    let mut seen = std::collections::HashSet::new();
    conf.searches = searches.into_iter().filter(|s| seen.insert(s.clone())).collect();
    for option in config["options"].as_array().into_iter().flatten() {
        let Some(name) = option["name"].as_str().filter(|n| !n.is_empty()) else { continue };
        let rendered = match option["value"].as_str() {
            Some(value) => format!("{name}:{value}"),
            None => name.to_string(),
        };
        conf.options.retain(|o| o.split(':').next() != Some(name));
        conf.options.push(rendered);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn host() -> ResolvConf {
        parse(
            "# host\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch corp.example\noptions edns0 ndots:1\n",
        )
    }

    fn dns(host: &ResolvConf) -> ClusterDns<'_> {
        ClusterDns { server: "127.16.0.10".parse().unwrap(), domain: "cluster.local", host }
    }

    #[test]
    fn parses_the_hosts_file() {
        let h = host();
        assert_eq!(h.nameservers, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(h.searches, vec!["corp.example"]);
        assert_eq!(h.options, vec!["edns0", "ndots:1"]);
    }

    #[test]
    fn cluster_first_is_the_cluster_server_and_search_list() {
        let h = host();
        let pod = json!({"metadata": {"namespace": "shop"}, "spec": {}});
        let text = for_pod(&pod, &dns(&h)).unwrap().render();
        assert_eq!(
            text,
            "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n\
             nameserver 127.16.0.10\noptions ndots:5\n"
        );
        // With the host's network ClusterFirst means Default, unless asked for explicitly.
        let host_net = json!({"metadata": {"namespace": "shop"}, "spec": {"hostNetwork": true}});
        assert_eq!(for_pod(&host_net, &dns(&h)).unwrap(), h);
        let with = json!({"metadata": {"namespace": "shop"},
            "spec": {"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}});
        assert_eq!(for_pod(&with, &dns(&h)).unwrap().nameservers, vec![dns(&h).server]);
    }

    #[test]
    fn dns_config_merges_as_kubelets() {
        let h = host();
        let pod = json!({"metadata": {"namespace": "a"}, "spec": {"dnsConfig": {
            "nameservers": ["1.2.3.4", "127.16.0.10"],
            "searches": ["my.dns.search.suffix", "svc.cluster.local"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
        }}});
        let conf = for_pod(&pod, &dns(&h)).unwrap();
        assert_eq!(
            conf.nameservers,
            vec!["127.16.0.10".parse::<IpAddr>().unwrap(), "1.2.3.4".parse().unwrap()]
        );
        assert_eq!(
            conf.searches,
            [
                "my.dns.search.suffix",
                "svc.cluster.local",
                "a.svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(conf.options, ["ndots:2", "edns0"]);
    }

    #[test]
    fn default_and_none_policies() {
        let h = host();
        let default = json!({"spec": {"dnsPolicy": "Default"}});
        assert_eq!(for_pod(&default, &dns(&h)).unwrap(), h);
        let none = json!({"spec": {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["9.9.9.9"]}}});
        assert_eq!(for_pod(&none, &dns(&h)).unwrap().render(), "nameserver 9.9.9.9\n");
        let empty = json!({"spec": {"dnsPolicy": "None"}});
        assert!(for_pod(&empty, &dns(&h)).unwrap_err().contains("nameservers"));
        let bad = json!({"spec": {"dnsPolicy": "Sometimes"}});
        assert!(for_pod(&bad, &dns(&h)).is_err());
        let bad_ip = json!({"spec": {"dnsConfig": {"nameservers": ["dns.example"]}}});
        assert!(for_pod(&bad_ip, &dns(&h)).unwrap_err().contains("dns.example"));
    }
}
