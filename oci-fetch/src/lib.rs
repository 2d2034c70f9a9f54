//! `oci-fetch`: gets images from OCI registries onto the node, verified, and says what they are.
//!
//! - [`Puller::pull`] resolves a reference (Docker defaults: `docker.io/library/…:latest`),
//!   follows a platform index (Wasm entries first, else linux/amd64), streams every blob into
//!   the [`ImageCache`] while checking its size and sha256 digest, and decides once what the
//!   image is: a CNCF Wasm artifact, a wasi/wasm image whose `.wasm` it extracts, or a
//!   linux/amd64 image ([`Artifact`]).
//! - [`ImageCache::lookup`] answers "do we have it?" without the network (imagePullPolicy
//!   `IfNotPresent`/`Never`); [`ImageCache::load_wasm_file`] side-loads a local `.wasm`.
//! - [`push_wasm`] publishes a `.wasm` in the CNCF Wasm artifact layout.
//!
//! Registries on loopback (`localhost`, `127.0.0.0/8`, `[::1]`) are spoken to over plain HTTP,
//! as Docker does; every other registry over HTTPS. Only anonymous access is supported so far.
//! The accepted shapes and the cache layout are specified in `spec/oci-packaging.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), oci_fetch::FetchError> {
//! use oci_fetch::{Artifact, ImageCache, Puller};
//! let puller = Puller::new(ImageCache::open("/var/lib/wasmkube/images".as_ref())?);
//! let image = puller.pull("127.0.0.1:5000/hello-http:1", &|p| {
//!     tracing::debug!(layer = %p.layer_digest, done = p.done_bytes, "pulling");
//! }).await?;
//! if let Artifact::Wasm { path, .. } = &image.artifact {
//!     println!("{} is Wasm at {}", image.image_id, path.display());
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

use std::path::PathBuf;

mod cache;
mod client;
mod cncf;
mod detect;
mod error;
mod extract;
mod pull;
mod push;
mod reference;
mod wasm_header;

pub use cache::ImageCache;
pub use detect::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
pub use error::FetchError;
pub use pull::Puller;
pub use push::push_wasm;

/// Download progress of one blob (config or layer), reported as its bytes arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Digest of the blob being downloaded.
    pub layer_digest: String,
    /// Bytes received so far for this blob.
    pub done_bytes: u64,
    /// Expected size (from the manifest, else the `Content-Length`), when known.
    pub total_bytes: Option<u64>,
}

/// An image that is in the cache, ready to run.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The normalized reference, e.g. `127.0.0.1:5000/hello-http:1` or
    /// `docker.io/library/busybox:latest`.
    pub reference: String,
    /// `sha256:<hex>` digest of the manifest the reference resolved to (of the index, when it
    /// resolved to a platform index): what Kubernetes shows as `imageID`.
    pub image_id: String,
    /// What the image is, and where its runnable content is.
    pub artifact: Artifact,
}

/// What a pulled image is. Decided once per pull.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A WebAssembly program.
    Wasm {
        /// The `.wasm` file in the cache (read-only; shared by every pod using it).
        path: PathBuf,
        /// `sha256:<hex>` of the Wasm bytes: a key for compiled-code caches.
        digest: String,
        /// Which packaging it came in.
        layout: WasmLayout,
    },
    /// A linux/amd64 container image for the runc shim. All blobs are in the cache (see
    /// [`ImageCache::blob_path`]); unpacking the rootfs is the shim's job.
    Linux {
        /// `sha256:` digest of the platform manifest (differs from the image ID for an index).
        manifest_digest: String,
        /// `sha256:` digest of the image config (Entrypoint, Cmd, Env, WorkingDir, User).
        config_digest: String,
        /// `sha256:` digests of the rootfs layers, bottom first.
        layer_digests: Vec<String>,
    },
}

/// How a Wasm program was packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmLayout {
    /// A CNCF TAG-Runtime Wasm OCI artifact (or another single-Wasm-layer artifact).
    CncfArtifact,
    /// A "wasi/wasm" platform image: the `.wasm` named by the entrypoint, inside a rootfs.
    WasiImage,
}
