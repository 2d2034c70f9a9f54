//! The cluster's own PKI and HTTPS serving. On first start the control plane generates a CA
//! (kept in `<data-dir>/pki`); every start issues a fresh serving certificate from it for the
//! addresses the API listens on. The kubeconfig carries the CA, so kubectl verifies the server
//! (and, unlike plain HTTP, client-go sends the bearer token).

use std::{net::IpAddr, path::Path, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Key or certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// Files could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file is damaged.
    #[error("{0} is not valid PEM; delete the pki directory to start over with a new CA")]
    BadPem(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The CA and the current serving certificate, PEM-encoded.
pub struct ClusterPki {
    /// The CA certificate (goes into kubeconfigs and agents).
    pub ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "wasmkube-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io { path: path.display().to_string(), source })
}

impl ClusterPki {
    /// Load the CA from `dir` (creating it on first start) and issue a serving certificate for
    /// `localhost`, 127.0.0.1 and `extra_ips`.
    pub fn load_or_create(dir: &Path, extra_ips: &[IpAddr]) -> Result<Self, TlsError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let (ca_cert_path, ca_key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (ca_pem, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
            let key = KeyPair::from_pem(&read(&ca_key_path)?)
                .map_err(|_| TlsError::BadPem(ca_key_path.display().to_string()))?;
            (read(&ca_cert_path)?, key)
        } else {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            crate::cluster::write_private(&ca_key_path, key.serialize_pem().as_bytes())
                .map_err(io(&ca_key_path))?;
            std::fs::write(&ca_cert_path, cert.pem()).map_err(io(&ca_cert_path))?;
            (cert.pem(), key)
        };
        // The issuer is rebuilt from the same parameters and key, so certificates chain to the
        // stored CA certificate.
        let issuer = Issuer::new(ca_params()?, ca_key);
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(extra_ips.iter().map(ToString::to_string));
        names.dedup();
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, "wasmkube-apiserver");
        let server_key = KeyPair::generate()?;
        let server_cert = params.signed_by(&server_key, &issuer)?;
        Ok(Self { ca_pem, server_cert_pem: server_cert.pem(), server_key_pem: server_key.serialize_pem() })
    }

    /// A rustls server configuration for the API.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        crate::install_crypto_provider();
        let certs = vec![
            CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes())
                .map_err(|_| TlsError::BadPem("the serving certificate".into()))?,
        ];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .map_err(|_| TlsError::BadPem("the serving key".into()))?;
        let mut config =
            rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serve `app` over TLS on `listener` until `stop` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    stop: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;

    #[test]
    fn ca_survives_restarts_and_certs_chain_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ClusterPki::load_or_create(dir.path(), &[]).expect("first");
        let second =
            ClusterPki::load_or_create(dir.path(), &["127.0.0.2".parse().expect("ip")]).expect("second");
        assert_eq!(first.ca_pem, second.ca_pem, "the CA must not change between starts");
        assert_ne!(first.server_cert_pem, second.server_cert_pem);
        second.server_config().expect("rustls accepts the pair");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(first.ca_pem.as_bytes()).expect("ca")).expect("add");
        let verifier =
            rustls::client::WebPkiServerVerifier::builder(Arc::new(roots)).build().expect("verifier");
        let leaf = CertificateDer::from_pem_slice(second.server_cert_pem.as_bytes()).expect("leaf");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.2").expect("name");
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], rustls::pki_types::UnixTime::now())
            .expect("chains to the CA");
    }
}
