//! Serving one frontend: accept connections and carry them to endpoints. A plain TCP port gets
//! one endpoint per connection, bytes copied both ways. An HTTP port is balanced per request:
//! the proxy speaks HTTP/1.1 to the client and keeps a pool of connections to each endpoint,
//! so a keep-alive client still spreads over all endpoints and stops reaching a pod the moment
//! it leaves the endpoints. With no endpoint to send to, HTTP clients get a 503 that says why.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{Either, Empty, Full};
use hyper::{body::Incoming, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::balance::Backends;

/// The body sent to an endpoint: the client's, or nothing on a retry of a bodiless request.
type UpBody = Either<Incoming, Empty<Bytes>>;
/// The body sent back to the client: the endpoint's, the proxy's own error page, or a local
/// Wasm container's.
pub type DownBody = Either<Either<Incoming, Full<Bytes>>, wasm_runtime::HttpResponseBody>;

/// Idle HTTP/1.1 connections to endpoints, shared by every frontend of the node, and the
/// node's Wasm engine, whose HTTP containers take requests in-process.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<HashMap<SocketAddr, Vec<SendRequest<UpBody>>>>>,
    local: Option<wasm_runtime::WasmEngine>,
}

/// Most idle connections kept per endpoint.
const IDLE_PER_ENDPOINT: usize = 64;

impl Pool {
    /// A pool that hands requests for `engine`'s own HTTP containers to them in-process.
    pub fn with_local(engine: wasm_runtime::WasmEngine) -> Self {
        Self { idle: Arc::default(), local: Some(engine) }
    }

    /// A ready connection to `addr`: an idle one, else a new one. A failure here means nothing
    /// was sent, so the caller may try another endpoint.
    async fn connection(&self, addr: SocketAddr) -> std::io::Result<SendRequest<UpBody>> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&addr).and_then(Vec::pop);
            match idle {
                Some(sender) if sender.is_ready() => return Ok(sender),
                Some(_) => continue,
                None => break,
            }
        }
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%addr, error = %e, "endpoint connection ended");
            }
        });
        Ok(sender)
    }

    /// Put a connection back once its response has been read through.
    fn give_back(&self, addr: SocketAddr, mut sender: SendRequest<UpBody>) {
        let idle = self.idle.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
                let list = idle.entry(addr).or_default();
                if list.len() < IDLE_PER_ENDPOINT {
                    list.push(sender);
                }
            }
        });
    }
}

/// Accept connections on `listener` until `stop`; connections already open carry on (a
/// frontend going away drains, it does not cut).
pub async fn serve(listener: TcpListener, backends: Arc<Backends>, pool: Pool, stop: CancellationToken) {
    while let Some((stream, peer)) = accept(&listener, &stop).await {
        let backends = backends.clone();
        if backends.route().http {
            tokio::spawn(serve_http(stream, peer.ip(), backends, pool.clone()));
        } else {
            tokio::spawn(carry_tcp(stream, peer.ip(), backends));
        }
    }
}

/// The next connection, or `None` once `stop` fires.
pub async fn accept(listener: &TcpListener, stop: &CancellationToken) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, peer));
            }
            Err(e) => {
                // Out of descriptors and the like: back off a little instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// One TCP connection to one endpoint; an endpoint that refuses is skipped for the next.
async fn carry_tcp(mut client: TcpStream, client_ip: IpAddr, backends: Arc<Backends>) {
    let mut failed = Vec::new();
    while let Some(addr) = backends.pick(client_ip, &failed) {
        match TcpStream::connect(addr).await {
            Ok(mut upstream) => {
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            Err(e) => {
                debug!(%addr, error = %e, "endpoint refused a connection");
                failed.push(addr);
            }
        }
    }
    debug!(route = %backends.route().key, "no endpoint for a connection; closing it");
}

async fn serve_http(stream: TcpStream, client_ip: IpAddr, backends: Arc<Backends>, pool: Pool) {
    let service = hyper::service::service_fn(move |req| {
        let (backends, pool) = (backends.clone(), pool.clone());
        async move { Ok::<_, Infallible>(forward_request(req, client_ip, &backends, &pool).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        debug!(error = %e, "client connection ended");
    }
}

/// Headers that belong to one hop, not to the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Send one request to an endpoint, trying the next one when a connection cannot be made.
pub async fn forward_request(
    req: Request<Incoming>,
    client_ip: IpAddr,
    backends: &Backends,
    pool: &Pool,
) -> Response<DownBody> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let forwarded = match parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {client_ip}"),
        None => client_ip.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        parts.headers.insert("x-forwarded-for", value);
    }
    let bodiless = hyper::body::Body::is_end_stream(&body);
    let mut body = Some(body);
    let mut failed = Vec::new();
    let mut resent = 0;
    loop {
        let Some(addr) = backends.pick(client_ip, &failed) else {
            return unavailable(backends, failed.len());
        };
        // A Wasm pod of this node: no socket, no second HTTP parse (its listener stays for
        // everyone else). Needs the request body, so not for a resend.
        if let Some(local) = pool.local.as_ref().and_then(|engine| engine.local_http(addr))
            && let Some(body) = body.take()
        {
            let response = local.handle(Request::from_parts(parts, body)).await;
            let (mut head, body) = response.into_parts();
            strip_hop_by_hop(&mut head.headers);
            return Response::from_parts(head, Either::Right(body));
        }
        let mut sender = match pool.connection(addr).await {
            Ok(s) => s,
            Err(e) => {
                debug!(%addr, error = %e, "endpoint refused a connection");
                failed.push(addr);
                continue;
            }
        };
        let up_body = match body.take() {
            Some(b) => Either::Left(b),
            None => Either::Right(Empty::new()),
        };
        let request = Request::from_parts(parts.clone(), up_body);
        match sender.send_request(request).await {
            Ok(response) => {
                pool.give_back(addr, sender);
                let (mut head, body) = response.into_parts();
                strip_hop_by_hop(&mut head.headers);
                return Response::from_parts(head, Either::Left(Either::Left(body)));
            }
            // A pooled connection the endpoint had just closed: a request without a body can
            // be sent again; one whose body is gone cannot.
            Err(e) if bodiless && resent < 3 && (e.is_canceled() || e.is_incomplete_message()) => {
                debug!(%addr, error = %e, "resending a bodiless request");
                resent += 1;
            }
            Err(e) => {
                debug!(%addr, error = %e, "endpoint failed a request");
                return error_page(StatusCode::BAD_GATEWAY, format!("{addr} failed the request: {e}\n"));
            }
        }
    }
}

fn unavailable(backends: &Backends, refused: usize) -> Response<DownBody> {
    let route = backends.route();
    let why = if refused > 0 {
        format!("no endpoint of service {} accepted a connection ({refused} tried)\n", route.key)
    } else if route.endpoints.is_empty() {
        format!("service {} has no endpoints\n", route.key)
    } else {
        format!("service {} has no ready endpoints ({} not ready)\n", route.key, route.endpoints.len())
    };
    error_page(StatusCode::SERVICE_UNAVAILABLE, why)
}

pub fn error_page(status: StatusCode, body: String) -> Response<DownBody> {
    let mut response = Response::new(Either::Left(Either::Right(Full::new(Bytes::from(body)))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
