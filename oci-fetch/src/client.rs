//! Builds `oci_client::Client`s: TLS through rustls with the ring provider (oci-client is built
//! with `rustls-tls-no-provider`, so a provider must be installed before the first client),
//! plain HTTP for loopback registries only, and timeouts so a stalled registry fails the pull
//! instead of hanging a pod worker forever.

use std::sync::OnceLock;
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};

use crate::error::error_chain;
use crate::reference::uses_plain_http;

/// The manifest media types we ask registries for (image manifests and indexes, OCI and
/// Docker). Docker schema 1 is deliberately absent: registries convert or refuse it.
pub(crate) const MANIFEST_MEDIA_TYPES: &[&str] = &[
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// Installs ring as the process-wide rustls provider. Losing the race to another installer
/// (ours or the embedding binary's) is fine: any installed provider will do.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One client per scheme, built on first use and then shared (clones share the connection
/// pool and token cache).
#[derive(Default)]
pub(crate) struct Clients {
    http: OnceLock<Result<Client, String>>,
    https: OnceLock<Result<Client, String>>,
}

impl Clients {
    /// The client for `registry` (host[:port]), or why it could not be built.
    pub(crate) fn for_registry(&self, registry: &str) -> Result<Client, String> {
        let plain = uses_plain_http(registry);
        let cell = if plain { &self.http } else { &self.https };
        cell.get_or_init(|| new_client(plain)).clone()
    }
}

/// A fresh client speaking plain HTTP or HTTPS to every registry.
pub(crate) fn new_client(plain_http: bool) -> Result<Client, String> {
    install_crypto_provider();
    let config = ClientConfig {
        protocol: if plain_http { ClientProtocol::Http } else { ClientProtocol::Https },
        // Index entries are chosen by `detect::select_platform` (Wasm first), not by the
        // client's "current platform" default.
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(15)),
        read_timeout: Some(Duration::from_secs(60)),
        ..ClientConfig::default()
    };
    // `Client::new` would log and fall back to a default client on error; we want the error.
    Client::try_from(config).map_err(|e| format!("cannot build the registry client: {}", error_chain(&e)))
}
