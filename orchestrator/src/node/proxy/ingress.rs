//! Serving Ingress on the node's HTTP and HTTPS ports: each request is routed by host and path
//! (`ingress_rules`) to a Service port and balanced over its ready endpoints like any HTTP
//! Service port. HTTPS picks the certificate by SNI from the `kubernetes.io/tls` Secrets the
//! Ingresses name.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use base64::Engine as _;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{
    balance::Backends,
    forward::{self, Pool},
    ingress_rules::{Backend, BackendPort, IngressTable},
    table,
};
use crate::{
    api::{find_by_kind, meta},
    client::Client,
};

/// The routing table with a balancer per backend, swapped whole on every change.
#[derive(Default)]
pub struct Routes {
    table: IngressTable,
    backends: HashMap<Backend, Arc<Backends>>,
}

impl Routes {
    /// Build from the merged Ingress table, resolving each backend to its Service port and
    /// keeping the balancers of `previous` where the backend is the same.
    pub fn build(
        table: IngressTable,
        services: &[Arc<Value>],
        slices: &table::SliceIndex,
        previous: &Routes,
    ) -> Self {
        let by_name: HashMap<(&str, &str), &Value> =
            services.iter().map(|s| ((meta::namespace(s), meta::name(s)), &**s)).collect();
        let mut backends = HashMap::new();
        for backend in table.backends() {
            let Some(svc) = by_name.get(&(backend.namespace.as_str(), backend.service.as_str())) else {
                continue;
            };
            let Some(port) =
                svc["spec"]["ports"].as_array().into_iter().flatten().find(|p| match &backend.port {
                    BackendPort::Number(n) => p["port"].as_u64() == Some(u64::from(*n)),
                    BackendPort::Name(name) => p["name"] == name.as_str(),
                })
            else {
                continue;
            };
            let route = Arc::new(table::route(svc, port, slices.of(svc)));
            let balancer = match previous.backends.get(backend) {
                Some(b) => {
                    b.update(route);
                    b.clone()
                }
                None => Arc::new(Backends::new(route)),
            };
            backends.insert(backend.clone(), balancer);
        }
        Self { table, backends }
    }
}

/// What both Ingress listeners share.
#[derive(Clone, Default)]
pub struct IngressState {
    routes: Arc<RwLock<Arc<Routes>>>,
    pub certificates: Certificates,
}

impl IngressState {
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn set_routes(&self, routes: Routes) {
        if let Ok(mut r) = self.routes.write() {
            *r = Arc::new(routes);
        }
    }
}

/// Serve plain HTTP Ingress on `listener` until `stop`.
pub async fn serve_http(listener: TcpListener, state: IngressState, pool: Pool, stop: CancellationToken) {
    while let Some((stream, peer)) = forward::accept(&listener, &stop).await {
        tokio::spawn(serve_connection(stream, peer.ip(), state.clone(), pool.clone()));
    }
}

/// Serve HTTPS Ingress on `listener` until `stop`, the certificate chosen by SNI.
pub async fn serve_https(listener: TcpListener, state: IngressState, pool: Pool, stop: CancellationToken) {
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(state.certificates.clone()));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    while let Some((stream, peer)) = forward::accept(&listener, &stop).await {
        let (acceptor, state, pool) = (acceptor.clone(), state.clone(), pool.clone());
        tokio::spawn(async move {
            match acceptor.accept(stream).await {
                Ok(tls) => serve_connection(tls, peer.ip(), state, pool).await,
                Err(e) => debug!(%peer, error = %e, "TLS handshake failed"),
            }
        });
    }
}

async fn serve_connection<S>(stream: S, client_ip: IpAddr, state: IngressState, pool: Pool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (state, pool) = (state.clone(), pool.clone());
        async move { Ok::<_, Infallible>(route_request(req, client_ip, &state, &pool).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        debug!(error = %e, "ingress client connection ended");
    }
}

async fn route_request(
    req: Request<Incoming>,
    client_ip: IpAddr,
    state: &IngressState,
    pool: &Pool,
) -> Response<forward::DownBody> {
    let host = req
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map(host_only))
        .unwrap_or_default();
    let routes = state.routes();
    let Some(backend) = routes.table.route(&host, req.uri().path()) else {
        let why = format!("no Ingress rule for host {host:?} and path {:?}\n", req.uri().path());
        return forward::error_page(StatusCode::NOT_FOUND, why);
    };
    match routes.backends.get(backend) {
        Some(backends) => forward::forward_request(req, client_ip, backends, pool).await,
        None => forward::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the Ingress backend {backend} is not a Service port\n"),
        ),
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `::1`.
fn host_only(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string()
}

/// Certificates by TLS host, loaded from Secrets; refreshed at most every `REFRESH`.
#[derive(Clone, Default, Debug)]
pub struct Certificates {
    by_host: Arc<RwLock<HashMap<String, Arc<CertifiedKey>>>>,
    loaded: Arc<RwLock<HashMap<(String, String), (Instant, Option<Arc<CertifiedKey>>)>>>,
}

const REFRESH: Duration = Duration::from_secs(30);

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        let by_host = self.by_host.read().ok()?;
        let wildcard = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        by_host.get(&name).or_else(|| wildcard.and_then(|w| by_host.get(&w))).cloned()
    }
}

impl Certificates {
    /// Load the Secrets `tls` names (host → (namespace, Secret)), reusing recent loads.
    pub async fn refresh(&self, client: &Client, tls: &std::collections::BTreeMap<String, (String, String)>) {
        let Some(secrets) = find_by_kind("v1", "Secret") else { return };
        let mut by_host = HashMap::new();
        for (host, (namespace, name)) in tls {
            let key = (namespace.clone(), name.clone());
            let cached = self.loaded.read().ok().and_then(|l| l.get(&key).cloned());
            let cert = match cached {
                Some((at, cert)) if at.elapsed() < REFRESH => cert,
                _ => {
                    let cert = match client.get(secrets, Some(namespace), name).await {
                        Ok(secret) => certified_key(&secret)
                            .map_err(|why| warn!(secret = %format!("{namespace}/{name}"), %why, "cannot serve TLS"))
                            .ok(),
                        Err(e) => {
                            warn!(secret = %format!("{namespace}/{name}"), error = %e, "cannot read a TLS Secret");
                            None
                        }
                    };
                    if let Ok(mut l) = self.loaded.write() {
                        l.insert(key, (Instant::now(), cert.clone()));
                    }
                    cert
                }
            };
            if let Some(cert) = cert {
                by_host.insert(host.clone(), cert);
            }
        }
        if let Ok(mut current) = self.by_host.write() {
            *current = by_host;
        }
    }
}

/// The certificate and key of a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, PEM).
fn certified_key(secret: &Value) -> Result<Arc<CertifiedKey>, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let text = secret["data"][name].as_str().ok_or_else(|| format!("the Secret has no {name}"))?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("{name}: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&field("tls.crt")?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if certs.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&field("tls.key")?).map_err(|e| format!("tls.key: {e}"))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("tls.key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(certs, signer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(host_only("example.com:8080"), "example.com");
        assert_eq!(host_only("example.com"), "example.com");
        assert_eq!(host_only("[::1]:80"), "::1");
    }

    #[test]
    fn bad_tls_secrets_are_refused_with_a_reason() {
        let missing = serde_json::json!({"data": {}});
        assert_eq!(certified_key(&missing).err().as_deref(), Some("the Secret has no tls.crt"));
        let junk = serde_json::json!({"data": {"tls.crt": "bm90IHBlbQ==", "tls.key": "bm90IHBlbQ=="}});
        assert!(certified_key(&junk).is_err());
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap().self_signed(&key).unwrap();
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        let good =
            serde_json::json!({"data": {"tls.crt": b64(cert.pem()), "tls.key": b64(key.serialize_pem())}});
        assert!(certified_key(&good).is_ok());
    }
}
