//! Serving a `wasi:http/proxy` component: HTTP/1.1 with hyper, one fresh instance per request.
//!
//! `ProxyPre` is prepared once per component; each request gets a new store (so requests share
//! no guest state, like `wasmtime serve`) whose stdout/stderr go to the container log. The guest
//! runs on its own task because it may keep streaming the body after handing over the response.
//! Stopping: stop accepting, let open connections finish their current request and the guest
//! tasks end (up to the grace period), then interrupt and drop whatever is left.
//!
//! Each request's instance runs under the container's request timeout: past it the client gets
//! a 504 (if it has no response yet) and the instance is dropped. An instance that goes over the
//! container's memory limit ends the whole container as `OOMKilled`, as the kernel would end
//! the process of a Linux container.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tracing::Instrument;
use wasmtime::Engine;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::RuntimeError;
use crate::command::trap_message;
use crate::container::ExitStatus;
use crate::error::wasmtime_message;
use crate::host::{GuestConfig, Host, new_store};
use crate::limits::memory::is_memory_limit;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The HTTP containers of one engine by listening address, so the node proxy can hand a
/// request to a local Wasm pod in-process (`WasmEngine::local_http`) instead of a TCP round
/// trip to the pod's own loopback listener: the same handler, limits and drain, minus one
/// HTTP parse and two socket copies per request.
#[derive(Clone, Default)]
pub(crate) struct LocalServers(Arc<std::sync::RwLock<HashMap<SocketAddr, std::sync::Weak<Server>>>>);

impl LocalServers {
    fn insert(&self, addr: SocketAddr, server: &Arc<Server>) {
        if let Ok(mut map) = self.0.write() {
            map.retain(|_, s| s.strong_count() > 0);
            map.insert(addr, Arc::downgrade(server));
        }
    }

    /// Forget `addr` if it is still `server`'s (a stopping server takes no new request).
    fn remove(&self, addr: SocketAddr, server: &Arc<Server>) {
        if let Ok(mut map) = self.0.write() {
            if map.get(&addr).is_some_and(|s| std::ptr::eq(s.as_ptr(), Arc::as_ptr(server))) {
                map.remove(&addr);
            }
        }
    }

    pub(crate) fn get(&self, addr: SocketAddr) -> Option<LocalHttp> {
        self.0.read().ok()?.get(&addr)?.upgrade().map(LocalHttp)
    }
}

/// A local HTTP container, reached in-process.
pub struct LocalHttp(Arc<Server>);

impl LocalHttp {
    /// Handle one request exactly as a request on the container's listener would be.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        match handle(self.0.clone(), req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// What `start` hands back for the container handle.
pub(crate) struct Started {
    pub task: JoinHandle<ExitStatus>,
    pub bound: SocketAddr,
    pub requests: Arc<GuestTasks>,
}

/// Instantiates once to fail fast, binds `addr`, and starts the server task.
pub(crate) async fn start(
    engine: &Engine,
    local: &LocalServers,
    pre: &ProxyPre<Host>,
    guest: GuestConfig,
    addr: SocketAddr,
    request_timeout: Duration,
    stop_rx: oneshot::Receiver<Duration>,
    span: tracing::Span,
) -> Result<Started, RuntimeError> {
    // A component that cannot be instantiated would otherwise fail on every request.
    let mut store = new_store(engine, &guest)?;
    pre.instantiate_async(&mut store)
        .instrument(span.clone())
        .await
        .map_err(|e| RuntimeError::Instantiate(wasmtime_message(&e)))?;
    drop(store);

    let listener = TcpListener::bind(addr).await.map_err(|source| RuntimeError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| RuntimeError::Bind { addr, source })?;
    let requests = Arc::new(GuestTasks::default());
    let server = Arc::new(Server {
        engine: engine.clone(),
        pre: pre.clone(),
        guest,
        guests: requests.clone(),
        request_timeout,
        oom: Arc::new(Notify::new()),
    });
    local.insert(bound, &server);
    let task = tokio::spawn(serve(listener, server, stop_rx, (local.clone(), bound)).instrument(span));
    Ok(Started { task, bound, requests })
}

struct Server {
    engine: Engine,
    pre: ProxyPre<Host>,
    guest: GuestConfig,
    guests: Arc<GuestTasks>,
    request_timeout: Duration,
    /// Signalled when an instance went over the memory limit: the container ends.
    oom: Arc<Notify>,
}

/// Accepts until stopped, then drains.
async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    mut stop_rx: oneshot::Receiver<Duration>,
    (local, bound): (LocalServers, SocketAddr),
) -> ExitStatus {
    tracing::info!(addr = ?listener.local_addr().ok(), "http server started");
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut oom_killed = false;
    let grace = loop {
        tokio::select! {
            // A dropped sender means the handle is gone: stop without waiting.
            stop = &mut stop_rx => break stop.unwrap_or(Duration::ZERO),
            () = server.oom.notified() => {
                oom_killed = true;
                break Duration::ZERO;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(&server, &graceful, stream).in_current_span());
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting an http connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next() => {}
        }
    };
    drop(listener);
    local.remove(bound, &server);
    let stopped = drain(&server, graceful, connections, grace).await;
    if oom_killed {
        let limit = server.guest.memory.limit().or(server.guest.pod_memory.limit()).unwrap_or(0);
        return ExitStatus::oom_killed(format!(
            "a request's instance went over the memory limit of {limit} bytes"
        ));
    }
    stopped
}

/// One HTTP/1.1 connection, watched by `graceful` so stopping can let it finish its request.
fn serve_connection(
    server: &Arc<Server>,
    graceful: &GracefulShutdown,
    stream: TcpStream,
) -> impl Future<Output = ()> + Send + 'static {
    // Responses are often small; do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let server = server.clone();
    let service = hyper::service::service_fn(move |req| handle(server.clone(), req));
    let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "http connection ended with an error");
        }
    }
}

async fn drain(
    server: &Server,
    graceful: GracefulShutdown,
    mut connections: JoinSet<()>,
    grace: Duration,
) -> ExitStatus {
    tracing::info!(grace_ms = grace.as_millis() as u64, "http server stopping");
    let finished = tokio::time::timeout(grace, async {
        graceful.shutdown().await;
        server.guests.wait_idle().await;
    })
    .await;
    let message = match finished {
        Ok(()) => None,
        Err(_) => {
            server.guest.interrupt.store(true, Ordering::Relaxed);
            let cut = server.guests.abort_all();
            Some(format!(
                "grace period of {grace:?} ended with {cut} request(s) still running; they were cut off"
            ))
        }
    };
    connections.shutdown().await;
    // Aborted guest tasks drop their stores (flushing their log buffers) when they unwind.
    server.guests.wait_idle().await;
    tracing::info!("http server stopped");
    ExitStatus::stopped(0, message)
}

type HttpResult = Result<Response<HyperOutgoingBody>, Infallible>;

/// Handles one request with a fresh instance.
async fn handle(server: Arc<Server>, req: Request<Incoming>) -> HttpResult {
    let mut store = match new_store(&server.engine, &server.guest) {
        Ok(store) => store,
        Err(e) => return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
    };
    let (sender, receiver) = oneshot::channel();
    let incoming = match store.data_mut().http().new_incoming_request(Scheme::Http, req) {
        Ok(incoming) => incoming,
        // The only request-dependent failure is a request without a Host header or authority.
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, &wasmtime_message(&e))),
    };
    let out = match store.data_mut().http().new_response_outparam(sender) {
        Ok(out) => out,
        Err(e) => return Ok(internal_error(&e)),
    };
    let pre = server.pre.clone();
    let timeout = server.request_timeout;
    let oom = server.oom.clone();
    let guest_task = server.guests.spawn(
        async move {
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, out).await
            };
            // Past the deadline the instance (and its store) is dropped, even mid-body.
            let result = match tokio::time::timeout(timeout, run).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Error::new(RequestTimedOut(timeout))),
            };
            if result.as_ref().is_err_and(is_memory_limit) {
                oom.notify_one();
            }
            result
        }
        .in_current_span(),
    );

    let answer = match tokio::time::timeout(timeout, receiver).await {
        Ok(answer) => answer,
        Err(_) => {
            guest_task.abort();
            tracing::warn!(?timeout, "request ran past its deadline; instance torn down");
            return Ok(plain(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("the component did not answer within the request timeout of {timeout:?}"),
            ));
        }
    };
    match answer {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => {
            tracing::warn!(?code, "guest answered the request with an error");
            Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("guest error: {code:?}")))
        }
        // The guest dropped the outparam without setting it: it returned, trapped, or was cut off.
        Err(_) => Ok(match guest_task.await {
            Ok(Ok(())) => {
                plain(StatusCode::INTERNAL_SERVER_ERROR, "the component returned without sending a response")
            }
            Ok(Err(e)) if e.is::<RequestTimedOut>() => plain(StatusCode::GATEWAY_TIMEOUT, &e.to_string()),
            Ok(Err(e)) => internal_error(&e),
            Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"),
        }),
    }
}

/// A request's instance ran past the container's request timeout.
#[derive(Debug, thiserror::Error)]
#[error("the component did not finish within the request timeout of {0:?}")]
struct RequestTimedOut(Duration);

fn internal_error(e: &wasmtime::Error) -> Response<HyperOutgoingBody> {
    // `trap_message` logs the full error with its wasm backtrace.
    let message = trap_message(e);
    plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("internal server error: {message}"))
}

fn plain(status: StatusCode, text: &str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(format!("{text}\n"))).map_err(|never| match never {}).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The guest tasks of one server, so stopping can wait for them or cut them off. (A guest task
/// is not tied to its connection: it may still be finishing after the client has its response.)
#[derive(Default)]
pub(crate) struct GuestTasks {
    next_id: AtomicU64,
    running: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    idle: Arc<Notify>,
}

type GuestResult = wasmtime::Result<()>;

impl GuestTasks {
    fn spawn(&self, guest: impl Future<Output = GuestResult> + Send + 'static) -> JoinHandle<GuestResult> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let done = Deregister { id, running: self.running.clone(), idle: self.idle.clone() };
        // Held across `spawn` so the task cannot deregister before it is registered.
        let mut running = lock(&self.running);
        let task = tokio::spawn(async move {
            // Locals drop in reverse order, also when the task is aborted: the guest future
            // (and its store, which flushes the log buffers) goes before the registry entry.
            let _done = done;
            let guest = guest;
            let result = guest.await;
            if let Err(e) = &result {
                tracing::warn!(error = %wasmtime_message(e), "guest failed while handling a request");
            }
            result
        });
        running.insert(id, task.abort_handle());
        task
    }

    /// Requests whose guest is still running.
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.running).len()
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register interest before checking, so a notification in between is not lost.
            notified.as_mut().enable();
            if lock(&self.running).is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn abort_all(&self) -> usize {
        let running = lock(&self.running);
        for task in running.values() {
            task.abort();
        }
        running.len()
    }
}

/// Removes a guest task from the registry when the task finishes or is dropped.
struct Deregister {
    id: u64,
    running: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    idle: Arc<Notify>,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        running.remove(&self.id);
        if running.is_empty() {
            self.idle.notify_waiters();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked; keep serving.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
