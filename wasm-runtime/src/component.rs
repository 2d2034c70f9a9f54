//! A compiled component ready to run: which world it targets and its pre-instantiated form.
//!
//! World detection looks only at exports, as runwasi does: `wasi:http/incoming-handler` means
//! the `wasi:http/proxy` world (serve HTTP, one instance per request), `wasi:cli/run` means the
//! `wasi:cli/command` world (run once, exit code is the container's). Imports do not decide the
//! world: a Rust-std HTTP component also imports `wasi:cli/*`, and the linker provides those.
//! Version suffixes (`@0.2.0`, `@0.2.12`, ...) are ignored here; wasmtime's linker matches 0.2.x
//! semver-compatibly.

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::RuntimeError;
use crate::compile_cache::CompileOutcome;
use crate::error::wasmtime_message;
use crate::host::{Host, P1Host};

const HTTP_HANDLER: &str = "wasi:http/incoming-handler";
const CLI_RUN: &str = "wasi:cli/run";

/// The WASI world a component targets, which decides how it is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// `wasi:http/proxy`: exports `wasi:http/incoming-handler`; served over HTTP.
    HttpProxy,
    /// `wasi:cli/command`: exports `wasi:cli/run`; runs once like a process.
    Command,
}

/// A component compiled by a [`WasmEngine`](crate::WasmEngine), linked and pre-instantiated.
/// Cheap to clone; one `LoadedComponent` can start any number of containers.
#[derive(Clone)]
pub struct LoadedComponent {
    inner: Arc<Inner>,
}

struct Inner {
    digest: String,
    outcome: CompileOutcome,
    /// Shared by every load of the same bytes while any of them lives (see `WasmEngine`).
    pre: Arc<Pre>,
}

/// The typed pre-instance for each world: imports resolved and exports looked up once.
#[derive(Clone)]
pub(crate) enum Pre {
    Http(ProxyPre<Host>),
    Command(CommandPre<Host>),
    /// A WASI preview 1 core module: always a command (`_start`).
    P1(wasmtime::InstancePre<P1Host>),
}

impl LoadedComponent {
    /// Detects the world and pre-instantiates `component` against `linker`.
    pub(crate) fn new(
        engine: &Engine,
        linker: &Linker<Host>,
        component: &Component,
        digest: String,
        outcome: CompileOutcome,
    ) -> Result<Self, RuntimeError> {
        let world = detect_world(engine, component)?;
        let link_error =
            |e: wasmtime::Error| RuntimeError::Link { digest: digest.clone(), message: wasmtime_message(&e) };
        let instance_pre = linker.instantiate_pre(component).map_err(link_error)?;
        let pre = match world {
            World::HttpProxy => Pre::Http(ProxyPre::new(instance_pre).map_err(link_error)?),
            World::Command => Pre::Command(CommandPre::new(instance_pre).map_err(link_error)?),
        };
        Ok(Self::from_shared(digest, outcome, Arc::new(pre)))
    }

    /// Another handle on already linked code (a second pod of the same image).
    pub(crate) fn from_shared(digest: String, outcome: CompileOutcome, pre: Arc<Pre>) -> Self {
        Self { inner: Arc::new(Inner { digest, outcome, pre }) }
    }

    /// The linked code, to share with later loads of the same bytes.
    pub(crate) fn shared_pre(&self) -> &Arc<Pre> {
        &self.inner.pre
    }

    /// Pre-instantiates a WASI preview 1 core module, which must export `_start` (a command).
    pub(crate) fn new_module(
        linker: &wasmtime::Linker<P1Host>,
        module: &wasmtime::Module,
        digest: String,
        outcome: CompileOutcome,
    ) -> Result<Self, RuntimeError> {
        if module.get_export("_start").is_none() {
            let exports = module.exports().map(|e| e.name().to_string()).collect();
            return Err(RuntimeError::UnknownWorld { exports });
        }
        let pre = linker
            .instantiate_pre(module)
            .map_err(|e| RuntimeError::Link { digest: digest.clone(), message: wasmtime_message(&e) })?;
        Ok(Self::from_shared(digest, outcome, Arc::new(Pre::P1(pre))))
    }

    /// What the binary is, in words for users: "wasi:http/proxy component",
    /// "wasi:cli/command component" or "WASI preview 1 module".
    pub fn kind_description(&self) -> &'static str {
        match *self.inner.pre {
            Pre::Http(_) => "wasi:http/proxy component",
            Pre::Command(_) => "wasi:cli/command component",
            Pre::P1(_) => "WASI preview 1 module",
        }
    }

    /// The world this component targets.
    pub fn world(&self) -> World {
        match *self.inner.pre {
            Pre::Http(_) => World::HttpProxy,
            Pre::Command(_) | Pre::P1(_) => World::Command,
        }
    }

    /// `sha256:<hex>` of the Wasm bytes, as computed by the runtime.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Whether loading compiled the component or used the disk cache.
    pub fn compile_outcome(&self) -> CompileOutcome {
        self.inner.outcome
    }

    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }
}

/// Decides the world from the component's exports.
pub(crate) fn detect_world(engine: &Engine, component: &Component) -> Result<World, RuntimeError> {
    let exports: Vec<String> =
        component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
    let exports_interface = |wanted: &str| exports.iter().any(|name| name.split('@').next() == Some(wanted));
    // A component exporting both is served as HTTP: that is the long-running role the
    // orchestrator gives ports to.
    if exports_interface(HTTP_HANDLER) {
        Ok(World::HttpProxy)
    } else if exports_interface(CLI_RUN) {
        Ok(World::Command)
    } else {
        Err(RuntimeError::UnknownWorld { exports })
    }
}
