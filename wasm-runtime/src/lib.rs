//! wasm-runtime runs one container's WebAssembly component in a shared wasmtime engine.
//!
//! The node agent creates one [`WasmEngine`] per node, loads each image's component with
//! [`WasmEngine::load_component`] (compiled once, then served from an on-disk cache), and
//! [`start`]s containers from it. Two WASI 0.2 worlds are supported, detected from the
//! component's exports:
//!
//! - `wasi:http/proxy` ([`World::HttpProxy`]): served over HTTP/1.1 on the container's port,
//!   one fresh instance per request;
//! - `wasi:cli/command` ([`World::Command`]): run once; its exit code is the container's.
//!
//! WASI preview 1 core modules run as commands. Standard `linux/amd64` images run through the
//! [`linux`] fallback (runc), with the same [`RunningContainer`] handle, [`ExitStatus`] and log
//! files.
//!
//! The [`ContainerSpec`] is the guest's whole world, deny by default: its argv and environment,
//! the directories it is given ([`Mount`]), the network it may use ([`NetworkPolicy`]) and its
//! memory and CPU limits ([`ResourceLimits`], pod-wide through [`PodResources`]). Its stdout and
//! stderr are written to a log file in the Kubernetes CRI log format (see [`logs`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), wasm_runtime::RuntimeError> {
//! use wasm_runtime::{ContainerSpec, EngineConfig, WasmEngine};
//! let engine = WasmEngine::new(EngineConfig {
//!     cache_dir: "/var/lib/wasmkube/compiled".into(),
//!     allocatable_memory: Some(8 << 30),
//! })?;
//! let component = engine.load_component("app.wasm".as_ref(), "sha256:...").await?;
//! let mut spec = ContainerSpec::new("app", "/var/log/pods/default_app_uid/app/0.log");
//! spec.env = vec![("GREETING".into(), "hi".into())];
//! spec.http_listen = Some("127.0.0.1:8080".parse().expect("valid address"));
//! let mut running = wasm_runtime::start(&engine, &component, spec).await?;
//! let status = running.stop(std::time::Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod command;
mod compile_cache;
mod component;
mod container;
mod engine;
mod error;
mod host;
mod http;
mod limits;
pub mod linux;
mod log_file;
pub mod logs;
mod name_lookup;
mod names;
mod network;
mod policy;
mod probe;

pub use compile_cache::CompileOutcome;
pub use component::{LoadedComponent, World};
pub use container::{
    ContainerSpec, DEFAULT_REQUEST_TIMEOUT, ExitStatus, PodResources, RunningContainer,
    STOPPED_COMMAND_EXIT_CODE, UsageMeter, start,
};
pub use engine::{EPOCH_TICK, EngineConfig, WasmEngine};
pub use http::LocalHttp;
/// The body of a response a Wasm HTTP container gives ([`LocalHttp::handle`]).
pub type HttpResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;
pub use error::RuntimeError;
pub use limits::{CpuBudget, MemoryBudget, MemoryLimitExceeded, Usage};
pub use names::{ClusterName, NameResolver};
pub use network::{NetworkPolicy, Protocol};
pub use policy::{Mount, ResourceLimits};
pub use probe::{InstanceTiming, time_instances};
