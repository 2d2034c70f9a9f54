//! Container logs on the node: where each container run writes its CRI-format log
//! (`<logs>/<ns>_<pod>_<uid>/<container>/<restart>.log`, the kubelet's layout), and the small
//! HTTP server the API server proxies `kubectl logs` to (tail, since, timestamps, previous,
//! limitBytes, follow).

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use serde_json::json;
use tokio::{io::AsyncReadExt, sync::mpsc};
use tokio_util::sync::CancellationToken;

/// Where logs live, and which log files are still being written.
#[derive(Clone)]
pub struct LogRegistry {
    root: PathBuf,
    active: Arc<Mutex<HashSet<PathBuf>>>,
}

impl LogRegistry {
    /// Logs under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root, active: Arc::new(Mutex::new(HashSet::new())) }
    }

    fn pod_dir(&self, ns: &str, pod: &str, uid: &str) -> PathBuf {
        self.root.join(format!("{ns}_{pod}_{uid}"))
    }

    /// The log file of one run of a container.
    pub fn path_for(&self, ns: &str, pod: &str, uid: &str, container: &str, restart: u32) -> PathBuf {
        self.pod_dir(ns, pod, uid).join(container).join(format!("{restart}.log"))
    }

    /// Mark a log file as being written (followers keep waiting for more).
    pub fn set_active(&self, path: &Path, active: bool) {
        let mut set = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if active {
            set.insert(path.to_path_buf());
        } else {
            set.remove(path);
        }
    }

    fn is_active(&self, path: &Path) -> bool {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).contains(path)
    }

    /// Remove a deleted pod's logs.
    pub fn remove_pod(&self, ns: &str, pod: &str, uid: &str) {
        let _ = std::fs::remove_dir_all(self.pod_dir(ns, pod, uid));
    }

    /// The newest pod directory for `ns/pod` (a pod recreated under the same name has a new uid).
    fn find_pod_dir(&self, ns: &str, pod: &str) -> Option<PathBuf> {
        let prefix = format!("{ns}_{pod}_");
        std::fs::read_dir(&self.root)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .map(|e| e.path())
    }
}

#[derive(Clone)]
struct ServerState {
    logs: LogRegistry,
    token: Arc<String>,
    usage: super::stats::UsageRegistry,
    node_name: Arc<String>,
}

/// Serve `/containerLogs/{ns}/{pod}/{container}` and `/stats/summary` (see `stats`) until
/// stopped. Both need the API server's token.
pub async fn serve(
    listener: tokio::net::TcpListener,
    logs: LogRegistry,
    usage: super::stats::UsageRegistry,
    node_name: String,
    token: String,
    stop: CancellationToken,
) {
    let app = Router::new()
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .route("/stats/summary", get(stats_summary))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(ServerState { logs, token: Arc::new(token), usage, node_name: Arc::new(node_name) });
    let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Options of a log request, as `kubectl logs` sends them.
#[derive(Debug, Default)]
struct LogOptions {
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
    since_seconds: Option<i64>,
}

impl LogOptions {
    fn parse(q: &HashMap<String, String>) -> Result<Self, String> {
        let flag = |k: &str| q.get(k).is_some_and(|v| v == "true" || v == "1");
        let num = |k: &str| -> Result<Option<i64>, String> {
            q.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| v.parse::<i64>().map_err(|_| format!("{k} must be an integer, got {v:?}")))
                .transpose()
        };
        Ok(Self {
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            tail_lines: num("tailLines")?.map(|n| n.max(0) as usize),
            limit_bytes: num("limitBytes")?.map(|n| n.max(1) as usize),
            since_seconds: num("sinceSeconds")?,
        })
    }
}

async fn stats_summary(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.token) {
        return status(401, "Unauthorized", "Unauthorized".into());
    }
    let body = state.usage.summary(&state.node_name);
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// Only the API server (which proxies for users) may read logs and stats.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == token)
}

async fn container_logs(
    State(state): State<ServerState>,
    UrlPath((ns, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &state.token) {
        return status(401, "Unauthorized", "Unauthorized".into());
    }
    let opts = match LogOptions::parse(&q) {
        Ok(o) => o,
        Err(m) => return status(400, "BadRequest", m),
    };
    let waiting = || {
        status(
            400,
            "BadRequest",
            format!("container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"),
        )
    };
    let Some(dir) = state.logs.find_pod_dir(&ns, &pod).map(|d| d.join(&container)) else {
        return waiting();
    };
    let mut runs: Vec<u32> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name().to_string_lossy().strip_suffix(".log").and_then(|n| n.parse().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    runs.sort_unstable();
    let pick = if opts.previous { runs.len().checked_sub(2).map(|i| runs[i]) } else { runs.last().copied() };
    let Some(run) = pick else {
        return if opts.previous {
            status(
                400,
                "BadRequest",
                format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"),
            )
        } else {
            waiting()
        };
    };
    let path = dir.join(format!("{run}.log"));
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(stream_log(state.logs.clone(), path, opts, tx));
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (StatusCode::OK, [("content-type", "text/plain")], body).into_response()
}

/// Render one CRI line for the client, honouring `timestamps` and `since`.
fn render(line: &str, opts: &LogOptions, since: Option<jiff::Timestamp>) -> Option<String> {
    let parsed = wasm_runtime::logs::parse_cri_line(line)?;
    if since.is_some_and(|since| parsed.timestamp < since) {
        return None;
    }
    let mut out = String::new();
    if opts.timestamps {
        out.push_str(&parsed.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string());
        out.push(' ');
    }
    out.push_str(&parsed.content);
    if !parsed.partial {
        out.push('\n');
    }
    Some(out)
}

async fn stream_log(
    logs: LogRegistry,
    path: PathBuf,
    opts: LogOptions,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let since = opts
        .since_seconds
        .and_then(|s| jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(s)).ok());
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return;
    };
    let mut pending = String::new();
    let mut raw = Vec::new();
    let _ = file.read_to_end(&mut raw).await;
    pending.push_str(&String::from_utf8_lossy(&raw));
    let mut budget = opts.limit_bytes.unwrap_or(usize::MAX);
    // Whole lines read so far; the remainder waits for its newline.
    let cut = pending.rfind('\n').map_or(0, |i| i + 1);
    let mut lines: Vec<String> = pending[..cut].lines().filter_map(|l| render(l, &opts, since)).collect();
    pending.drain(..cut);
    if let Some(n) = opts.tail_lines {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    for l in lines {
        if !send_limited(&tx, l, &mut budget).await {
            return;
        }
    }
    if !opts.follow {
        return;
    }
    loop {
        raw.clear();
        let _ = file.read_to_end(&mut raw).await;
        if raw.is_empty() {
            if !logs.is_active(&path) || tx.is_closed() {
                return;
            }
            // The writer is another task in this process; polling a local file is cheap.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        pending.push_str(&String::from_utf8_lossy(&raw));
        let cut = pending.rfind('\n').map_or(0, |i| i + 1);
        let lines: Vec<String> = pending[..cut].lines().filter_map(|l| render(l, &opts, since)).collect();
        pending.drain(..cut);
        for l in lines {
            if !send_limited(&tx, l, &mut budget).await {
                return;
            }
        }
    }
}

async fn send_limited(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    line: String,
    budget: &mut usize,
) -> bool {
    if *budget == 0 {
        return false;
    }
    let mut bytes = line.into_bytes();
    if bytes.len() > *budget {
        bytes.truncate(*budget);
    }
    *budget -= bytes.len();
    tx.send(Ok(Bytes::from(bytes))).await.is_ok() && *budget > 0
}
