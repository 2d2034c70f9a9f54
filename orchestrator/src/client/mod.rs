//! The API client every other component uses: controllers, scheduler, node agent and CLI all
//! talk to the API server over HTTP with a bearer token, so the same code runs in one process
//! or across machines.

pub mod informer;

use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::api::{ApiError, ResourceType, patch::PatchType};

/// How many plain requests (not watches or streams) one client has in flight at once, and how
/// many idle connections it keeps. Over HTTP/1.1 every overlapping request needs its own
/// connection: without a cap a burst of thousands of pod starts opened thousands of TLS
/// connections from the agent to its own API server and ran the process out of open files
/// (measured: ~2,500 connections, 2 fds each in one process, idle for 90 s afterwards).
/// client-go keeps 25 idle connections per host for the same reason.
const MAX_IN_FLIGHT: usize = 32;

/// A connection to the API server. Clones share the connection pool and the in-flight cap.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    in_flight: Arc<Semaphore>,
}

/// One event of a watch stream.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
    pub event_type: String,
    /// The object (a Status for ERROR).
    pub object: Value,
}

fn transport(e: reqwest::Error) -> ApiError {
    // reqwest's own message ("error sending request for url") hides the cause; name it.
    let mut message = format!("cannot reach the API server: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    ApiError::unavailable(message)
}

impl Client {
    /// A client for `server` (e.g. `https://127.0.0.1:6443`) presenting `token`, trusting
    /// the cluster CA `ca_pem` (when given) for HTTPS.
    pub fn new(server: &str, token: &str, ca_pem: Option<&str>) -> Result<Self, ApiError> {
        crate::install_crypto_provider();
        // The User-Agent names the field manager of our components' writes (`wasmkube`).
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .user_agent(concat!("wasmkube/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca_pem {
            let cert = reqwest::Certificate::from_pem(ca.as_bytes()).map_err(|e| {
                ApiError::bad_request(format!("the cluster CA certificate is not valid PEM: {e}"))
            })?;
            builder = builder.tls_certs_only([cert]);
        }
        let http =
            builder.build().map_err(|e| ApiError::internal(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            base: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// The bearer token this client presents.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The path of a collection or object.
    pub fn path(rt: &ResourceType, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>) -> String {
        let mut p = rt.gv_path();
        if let Some(ns) = namespace.filter(|_| rt.namespaced) {
            p.push_str(&format!("/namespaces/{ns}"));
        }
        p.push('/');
        p.push_str(rt.plural);
        if let Some(n) = name {
            p.push('/');
            p.push_str(n);
        }
        if let Some(s) = sub {
            p.push('/');
            p.push_str(s);
        }
        p
    }

    /// Send a request and decode a JSON answer; non-2xx answers become the server's Status.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, &Value)>,
        accept: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(a) = accept {
            req = req.header(reqwest::header::ACCEPT, a);
        }
        if let Some((content_type, body)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        // Held until the answer is read, so the connection is back in the pool for the next.
        // The semaphore is never closed.
        let _permit = self.in_flight.acquire().await;
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(transport)?;
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"message": text}));
        if (200..300).contains(&status) { Ok(value) } else { Err(ApiError::from_status(status, &value)) }
    }

    /// GET one object.
    pub async fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.request(reqwest::Method::GET, &Self::path(rt, ns, Some(name), None), None, None).await
    }

    /// GET one object, None when it does not exist.
    pub async fn get_opt(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        match self.get(rt, ns, name).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// LIST, with optional selectors; returns the items and the list's resourceVersion.
    pub async fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let mut path = Self::path(rt, ns, None, None);
        let mut params = Vec::new();
        if let Some(l) = label_selector {
            params.push(format!("labelSelector={}", encode(l)));
        }
        if let Some(f) = field_selector {
            params.push(format!("fieldSelector={}", encode(f)));
        }
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        let list = self.request(reqwest::Method::GET, &path, None, None).await?;
        let rv = list["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        Ok((items, rv))
    }

    /// GET a path asking for a server-side Table.
    pub async fn get_table(&self, path: &str) -> Result<Value, ApiError> {
        self.request(
            reqwest::Method::GET,
            path,
            None,
            Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
        )
        .await
    }

    /// POST a new object.
    pub async fn create(&self, rt: &ResourceType, ns: Option<&str>, obj: &Value) -> Result<Value, ApiError> {
        self.request(
            reqwest::Method::POST,
            &Self::path(rt, ns, None, None),
            Some(("application/json", obj)),
            None,
        )
        .await
    }

    /// PUT an object (or its `status` with `sub`).
    pub async fn replace(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ApiError> {
        self.request(
            reqwest::Method::PUT,
            &Self::path(rt, ns, Some(name), sub),
            Some(("application/json", obj)),
            None,
        )
        .await
    }

    /// PATCH an object or subresource.
    pub async fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Option<&str>,
        kind: PatchType,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        let content_type = match kind {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
        };
        self.request(
            reqwest::Method::PATCH,
            &Self::path(rt, ns, Some(name), sub),
            Some((content_type, patch)),
            None,
        )
        .await
    }

    /// DELETE an object with a propagation policy (`Background`, `Foreground`, `Orphan`).
    pub async fn delete_with_policy(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        policy: &str,
    ) -> Result<Value, ApiError> {
        let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
        self.request(
            reqwest::Method::DELETE,
            &Self::path(rt, ns, Some(name), None),
            Some(("application/json", &body)),
            None,
        )
        .await
    }

    /// DELETE an object, optionally with a grace period.
    pub async fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        grace_seconds: Option<i64>,
    ) -> Result<Value, ApiError> {
        let mut body =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
        if let Some(g) = grace_seconds {
            body["gracePeriodSeconds"] = json!(g);
        }
        self.request(
            reqwest::Method::DELETE,
            &Self::path(rt, ns, Some(name), None),
            Some(("application/json", &body)),
            None,
        )
        .await
    }

    /// Open a watch after `resource_version`; the stream ends when the server closes it.
    pub async fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        resource_version: u64,
        field_selector: Option<&str>,
    ) -> Result<impl Stream<Item = Result<WatchEvent, ApiError>> + use<>, ApiError> {
        let mut path = format!(
            "{}?watch=true&allowWatchBookmarks=true&resourceVersion={resource_version}&timeoutSeconds=600",
            Self::path(rt, ns, None, None)
        );
        if let Some(f) = field_selector {
            path.push_str(&format!("&fieldSelector={}", encode(f)));
        }
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body: Value = resp.json().await.unwrap_or(json!({}));
            return Err(ApiError::from_status(status, &body));
        }
        Ok(lines(resp.bytes_stream()).map(|line| {
            let line = line?;
            let v: Value = serde_json::from_slice(&line)
                .map_err(|e| ApiError::internal(format!("bad watch event: {e}")))?;
            Ok(WatchEvent {
                event_type: v["type"].as_str().unwrap_or("").to_string(),
                object: v["object"].clone(),
            })
        }))
    }

    /// A raw streaming GET (pod logs).
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ApiError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(resp);
        }
        let body: Value = resp.json().await.unwrap_or(json!({}));
        Err(ApiError::from_status(status, &body))
    }
}

/// Split a byte stream into lines.
fn lines(
    stream: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
) -> impl Stream<Item = Result<Vec<u8>, ApiError>> + Send {
    futures::stream::unfold(
        (Box::pin(stream), Vec::<u8>::new(), false),
        |(mut stream, mut buf, done)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.len() > 1 {
                        return Some((Ok(line[..line.len() - 1].to_vec()), (stream, buf, done)));
                    }
                    continue;
                }
                if done {
                    return None;
                }
                match stream.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(transport(e)), (stream, buf, true))),
                    None => {
                        if buf.is_empty() {
                            return None;
                        }
                        let rest = std::mem::take(&mut buf);
                        return Some((Ok(rest), (stream, buf, true)));
                    }
                }
            }
        },
    )
}

/// Percent-encode a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
