//! Ingress routing (pure, no IO): which Service port a request for `host` + `path` goes to,
//! from every Ingress of our class merged into one table, as ingress-nginx merges them:
//! - the rules of the request's exact host if any Ingress names it, else those of a matching
//!   wildcard host (`*.example.com` covers one more label), else the rules without a host;
//! - among them an `Exact` path first, then the longest `Prefix` (matched per path element:
//!   `/a` covers `/a` and `/a/b`, not `/ab`; `ImplementationSpecific` counts as `Prefix`);
//!   equal paths go to the oldest Ingress;
//! - with no match, the oldest `spec.defaultBackend`; else nothing (the caller answers 404).

use std::{collections::BTreeMap, sync::Arc};

use serde_json::Value;

use crate::api::meta;

/// A Service port an Ingress sends to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    /// `port.number`, or `port.name`.
    pub port: BackendPort,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendPort {
    Number(u16),
    Name(String),
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.port {
            BackendPort::Number(n) => write!(f, "{}/{}:{n}", self.namespace, self.service),
            BackendPort::Name(n) => write!(f, "{}/{}:{n}", self.namespace, self.service),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PathRule {
    path: String,
    exact: bool,
    backend: Backend,
    /// The Ingress's creation time and name, for "oldest wins".
    age: (String, String),
}

/// Every rule of every Ingress we serve.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngressTable {
    /// Host ("" for rules without one, `*.x` for wildcards) → its rules.
    hosts: BTreeMap<String, Vec<PathRule>>,
    default: Option<(String, Backend)>,
    /// TLS hosts → (namespace, Secret name), first Ingress (by age) wins.
    pub tls: BTreeMap<String, (String, String)>,
}

impl IngressTable {
    /// Merge `ingresses` (already filtered to ours).
    pub fn build(ingresses: &[Arc<Value>]) -> Self {
        let mut sorted: Vec<&Arc<Value>> = ingresses.iter().collect();
        sorted.sort_by_key(|i| age(i));
        let mut table = Self::default();
        for ingress in sorted {
            let namespace = meta::namespace(ingress).to_string();
            let spec = &ingress["spec"];
            if table.default.is_none() {
                if let Some(b) = backend(&namespace, &spec["defaultBackend"]) {
                    table.default = Some((meta::name(ingress).to_string(), b));
                }
            }
            for tls in spec["tls"].as_array().into_iter().flatten() {
                let Some(secret) = tls["secretName"].as_str() else { continue };
                for host in tls["hosts"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    let entry = (namespace.clone(), secret.to_string());
                    table.tls.entry(host.to_ascii_lowercase()).or_insert(entry);
                }
            }
            for rule in spec["rules"].as_array().into_iter().flatten() {
                let host = rule["host"].as_str().unwrap_or("").to_ascii_lowercase();
                for path in rule["http"]["paths"].as_array().into_iter().flatten() {
                    let Some(backend) = backend(&namespace, &path["backend"]) else { continue };
                    table.hosts.entry(host.clone()).or_default().push(PathRule {
                        path: path["path"].as_str().unwrap_or("/").to_string(),
                        exact: path["pathType"] == "Exact",
                        backend,
                        age: age(ingress),
                    });
                }
            }
        }
        table
    }

    /// Where a request for `host` (without port) and `path` (without query) goes.
    pub fn route(&self, host: &str, path: &str) -> Option<&Backend> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let wildcard = host.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        let rules = self
            .hosts
            .get(&host)
            .or_else(|| wildcard.and_then(|w| self.hosts.get(&w)))
            .or_else(|| self.hosts.get(""));
        let chosen = rules.and_then(|rules| {
            let exact = rules.iter().filter(|r| r.exact && r.path == path).min_by(|a, b| a.age.cmp(&b.age));
            exact.or_else(|| {
                rules
                    .iter()
                    .filter(|r| !r.exact && prefix_matches(&r.path, path))
                    .min_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.age.cmp(&b.age)))
            })
        });
        chosen.map(|r| &r.backend).or(self.default.as_ref().map(|(_, b)| b))
    }

    /// Every backend the table can send to.
    pub fn backends(&self) -> impl Iterator<Item = &Backend> {
        self.hosts.values().flatten().map(|r| &r.backend).chain(self.default.iter().map(|(_, b)| b))
    }
}

fn age(ingress: &Value) -> (String, String) {
    let created = ingress["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string();
    (created, format!("{}/{}", meta::namespace(ingress), meta::name(ingress)))
}

fn backend(namespace: &str, b: &Value) -> Option<Backend> {
    let service = &b["service"];
    let name = service["name"].as_str()?;
    let port = match (service["port"]["number"].as_u64(), service["port"]["name"].as_str()) {
        (Some(n), _) => BackendPort::Number(u16::try_from(n).ok()?),
        (None, Some(name)) => BackendPort::Name(name.to_string()),
        (None, None) => return None,
    };
    Some(Backend { namespace: namespace.to_string(), service: name.to_string(), port })
}

/// Prefix matching by path elements: `/a/b` covers `/a/b` and `/a/b/c`, not `/a/bc`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ingress(name: &str, created: &str, spec: Value) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "spec": spec}),
        )
    }

    fn to(service: &str) -> Value {
        json!({"service": {"name": service, "port": {"number": 80}}})
    }

    fn routed<'a>(t: &'a IngressTable, host: &str, path: &str) -> Option<&'a str> {
        t.route(host, path).map(|b| b.service.as_str())
    }

    #[test]
    fn paths_match_exact_first_then_the_longest_prefix_by_element() {
        let t = IngressTable::build(&[ingress(
            "site",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"http": {"paths": [
                {"path": "/a", "pathType": "Prefix", "backend": to("a")},
                {"path": "/a/admin", "pathType": "Prefix", "backend": to("admin")},
                {"path": "/a/exact", "pathType": "Exact", "backend": to("exact")},
                {"path": "/b", "pathType": "ImplementationSpecific", "backend": to("b")},
            ]}}]}),
        )]);
        assert_eq!(routed(&t, "any.host", "/a"), Some("a"));
        assert_eq!(routed(&t, "any.host", "/a/x"), Some("a"));
        assert_eq!(routed(&t, "any.host", "/a/admin/users"), Some("admin"));
        assert_eq!(routed(&t, "any.host", "/a/exact"), Some("exact"));
        assert_eq!(routed(&t, "any.host", "/a/exact/more"), Some("a"));
        assert_eq!(routed(&t, "any.host", "/ab"), None);
        assert_eq!(routed(&t, "any.host", "/b/c"), Some("b"));
    }

    #[test]
    fn hosts_pick_their_own_rules_then_wildcards_then_the_catch_all_and_default() {
        let t = IngressTable::build(&[
            ingress(
                "old",
                "2026-01-01T00:00:00Z",
                json!({"defaultBackend": to("fallback"), "rules": [
                    {"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("shop")}]}},
                    {"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("wild")}]}},
                ]}),
            ),
            ingress(
                "new",
                "2026-02-01T00:00:00Z",
                json!({"defaultBackend": to("ignored"), "rules": [
                    {"http": {"paths": [{"path": "/api", "pathType": "Prefix", "backend": to("api")}]}},
                    {"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": to("newer")}]}},
                ]}),
            ),
        ]);
        assert_eq!(routed(&t, "shop.example.com", "/cart"), Some("shop"), "the oldest Ingress wins a tie");
        assert_eq!(routed(&t, "SHOP.example.com.", "/"), Some("shop"));
        assert_eq!(routed(&t, "blog.example.com", "/"), Some("wild"));
        assert_eq!(routed(&t, "a.b.example.com", "/api"), Some("api"), "a wildcard covers one label");
        assert_eq!(routed(&t, "other", "/nothing"), Some("fallback"));
    }
}
