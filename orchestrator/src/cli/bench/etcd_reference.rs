//! The reference column of `bench api-load`: the same load on a bare etcd (the store behind
//! kube-apiserver) through its JSON gateway, with the same keys, the same value bytes (the pod
//! JSON our server stored) and the same number of HTTP/1.1 clients. etcd does no admission,
//! defaulting or object encoding, so its figures are a floor for our store path, not a
//! kube-apiserver to race; the gateway's base64/JSON costs something that gRPC would not.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::Rng;
use serde_json::{Value, json};

use super::load::{Samples, for_duration, workers};

/// An etcd to load, and where the benchmark's objects go in it.
pub struct Etcd {
    /// One HTTP client per concurrent worker.
    pub clients: Vec<reqwest::Client>,
    /// e.g. `http://127.0.0.1:2379`.
    pub endpoint: String,
    pub per_namespace: usize,
    /// The value every put stores.
    pub value: Vec<u8>,
}

/// Upstream's key layout: `/registry/pods/<namespace>/<name>`.
fn key(per_namespace: usize, i: usize) -> String {
    format!("/registry/pods/ns-{}/pod-{i}", i / per_namespace)
}

fn namespace_prefix(ns: usize) -> String {
    format!("/registry/pods/ns-{ns}/")
}

/// The key just past every key starting with `prefix` (etcd's `range_end` for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

impl Etcd {
    pub fn new(endpoint: &str, clients: usize, per_namespace: usize, value: Vec<u8>) -> anyhow::Result<Self> {
        let clients = (0..clients)
            .map(|_| reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { clients, endpoint: endpoint.trim_end_matches('/').to_string(), per_namespace, value })
    }

    async fn call(&self, client: &reqwest::Client, op: &str, body: Value) -> Result<(), String> {
        let resp = client
            .post(format!("{}/v3/kv/{op}", self.endpoint))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("etcd {op}: {e}"))?;
        let status = resp.status();
        // Read to the last byte, as the API calls are timed.
        let bytes = resp.bytes().await.map_err(|e| format!("etcd {op}: {e}"))?;
        if !status.is_success() {
            return Err(format!("etcd {op}: {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        Ok(())
    }

    fn put_body(&self, i: usize) -> Value {
        json!({"key": STANDARD.encode(key(self.per_namespace, i)), "value": STANDARD.encode(&self.value)})
    }

    /// Put keys `from..to` (creates).
    pub async fn fill(&self, from: usize, to: usize) -> Samples {
        let next = std::sync::atomic::AtomicUsize::new(from);
        let more = || {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (i < to).then_some(i)
        };
        workers(&self.clients, more, |c, i| async move {
            let t = Instant::now();
            ("etcd put", t, self.call(&c, "put", self.put_body(i)).await)
        })
        .await
    }

    /// Put over random existing keys (updates) for `duration`.
    pub async fn update(&self, count: usize, duration: Duration) -> Samples {
        workers(&self.clients, for_duration(duration), |c, _| async move {
            let body = self.put_body(rand::rng().random_range(0..count));
            let t = Instant::now();
            ("etcd put", t, self.call(&c, "put", body).await)
        })
        .await
    }

    /// Range-get one random key among the first `count` for `duration`.
    pub async fn get(&self, count: usize, duration: Duration) -> Samples {
        workers(&self.clients, for_duration(duration), |c, _| async move {
            let body =
                json!({"key": STANDARD.encode(key(self.per_namespace, rand::rng().random_range(0..count)))});
            let t = Instant::now();
            ("etcd get", t, self.call(&c, "range", body).await)
        })
        .await
    }

    /// Range over a whole prefix: namespace 0 by every client for `duration`, or the whole
    /// cluster `times` times by one client.
    pub async fn range(&self, namespace: Option<usize>, duration: Duration, times: usize) -> Samples {
        let prefix = namespace.map_or_else(|| "/registry/pods/".to_string(), namespace_prefix);
        let body =
            json!({"key": STANDARD.encode(&prefix), "range_end": STANDARD.encode(prefix_end(&prefix))});
        let body = &body;
        let call = |c: reqwest::Client, _| async move {
            let t = Instant::now();
            ("etcd range", t, self.call(&c, "range", body.clone()).await)
        };
        match namespace {
            Some(_) => workers(&self.clients, for_duration(duration), call).await,
            None => {
                let left = std::sync::atomic::AtomicUsize::new(times);
                let more = || {
                    left.fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |l| l.checked_sub(1),
                    )
                    .ok()
                };
                workers(&self.clients[..1], more, call).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_upstream_layout() {
        assert_eq!(key(3000, 3001), "/registry/pods/ns-1/pod-3001");
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
    }
}
