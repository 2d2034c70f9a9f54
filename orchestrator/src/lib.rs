//! wasmkube's control plane and node agent as a library; `main.rs` is the thin `wasmkube`
//! binary. See DESIGN.md §1 for how the pieces talk: everything goes through the API.

/// The sans-IO API object layer lives in its own crate (`orchestrator/api`) so fuzz targets and
/// unit tests of it build without the runtime; `crate::api` keeps its old name.
pub use wasmkube_api as api;
pub mod apiserver;
pub mod auth;
pub mod client;
pub mod store;

/// Install the process-wide rustls crypto provider (ring) once; reqwest and oci-client are
/// built without one so a single provider serves the whole binary.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub mod cluster;
pub mod controllers;
pub mod node;
pub mod scheduler;
pub mod tls;
