//! The crate's error type: everything that can go wrong before a container is running.
//!
//! Once a container runs, its failures are not errors but an [`ExitStatus`](crate::ExitStatus)
//! (a trap is how a guest program fails, not a fault of the runtime).
//!
//! `wasmtime::Error` is not a `std::error::Error` in wasmtime 48, so wasmtime failures are kept
//! as their rendered text (`{:#}`: the message plus its chain of causes on one line).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the runtime could not load or start a container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A file or directory the runtime needs could not be read, written or created.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the runtime was doing, e.g. "reading Wasm file".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file does not start with the Wasm magic bytes.
    #[error(
        "{path} is not a WebAssembly binary (no \\0asm header); the image's Wasm layer must hold a compiled .wasm component"
    )]
    NotWasm {
        /// The file that was checked.
        path: PathBuf,
    },

    /// The file is Wasm, but not a kind this runtime can run (e.g. a core module).
    #[error("{path}: {reason}")]
    UnsupportedModule {
        /// The file that was checked.
        path: PathBuf,
        /// What kind it is and what to do instead.
        reason: String,
    },

    /// The component exports neither `wasi:http/incoming-handler` nor `wasi:cli/run`.
    #[error(
        "it exports neither wasi:http/incoming-handler (wasi:http/proxy world) nor wasi:cli/run (wasi:cli/command world) nor _start (a WASI preview 1 command); its exports are: [{}]",
        exports.join(", ")
    )]
    UnknownWorld {
        /// The names the component does export.
        exports: Vec<String>,
    },

    /// wasmtime could not create the engine with any allocator configuration.
    #[error("creating the wasmtime engine failed: {0}")]
    Engine(String),

    /// Cranelift compilation of the component failed (usually an invalid component).
    #[error("compiling component {digest} failed: {message}")]
    Compile {
        /// sha256 of the Wasm bytes.
        digest: String,
        /// wasmtime's message.
        message: String,
    },

    /// The component's imports cannot be satisfied by the WASI interfaces this runtime provides.
    #[error(
        "component {digest} cannot be linked: {message} (wasmkube provides WASI 0.2 cli, clocks, random, filesystem, sockets, io and http)"
    )]
    Link {
        /// sha256 of the Wasm bytes.
        digest: String,
        /// wasmtime's message, naming the missing or mistyped import.
        message: String,
    },

    /// Instantiating the component (running its start functions) failed or trapped.
    #[error("instantiating the component failed: {0}")]
    Instantiate(String),

    /// An HTTP component was started without a listen address.
    #[error(
        "container {container:?} is a wasi:http/proxy component and needs an HTTP listen address (declare a containerPort)"
    )]
    MissingListenAddress {
        /// The container name.
        container: String,
    },

    /// The HTTP listen address could not be bound (e.g. the port is in use).
    #[error("binding HTTP listener on {addr} failed: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A volume's directory could not be given to the guest (missing, not a directory, no access).
    #[error("mounting {path} at {container_path} failed: {message}")]
    Mount {
        /// The directory on the node.
        path: PathBuf,
        /// Where the container was to see it.
        container_path: String,
        /// Why.
        message: String,
    },

    /// A layer of a Linux image holds something the unpacker refuses (a path outside the rootfs,
    /// a device node, a broken archive). Nothing of the image is used.
    #[error("layer {layer} of the Linux image is refused: entry {entry:?}: {reason}")]
    Layer {
        /// `sha256:` digest of the layer blob.
        layer: String,
        /// The entry's name as stored in the tar (empty when the archive itself is unreadable).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The image config (or the Pod spec applied to it) does not give a runnable process.
    #[error("the Linux image {image} cannot run: {reason}")]
    ImageConfig {
        /// Manifest digest of the image.
        image: String,
        /// What is missing or invalid, and what to do.
        reason: String,
    },

    /// runc is missing, failed, or refused the container.
    #[error("runc: {0}")]
    Runc(String),

    /// An internal task ended unexpectedly (a bug in the runtime, reported instead of panicking).
    #[error("internal runtime error: {0}")]
    Internal(String),
}

impl RuntimeError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RuntimeError::Io { action, path: path.into(), source }
    }
}

/// Renders a `wasmtime::Error` with its causes on one line.
pub(crate) fn wasmtime_message(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}
