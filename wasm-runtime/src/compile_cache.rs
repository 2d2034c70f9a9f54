//! The on-disk cache of compiled components.
//!
//! Cranelift takes seconds for a large component; a node restarts pods far more often than it
//! sees new images. So compiled code is written once to `<cache_dir>/<sha256>-<engine>.cwasm` and
//! later loads map that file instead of compiling. The key holds the sha256 of the Wasm bytes
//! (computed here, never trusted from the caller) and a hash of everything in the engine's
//! configuration that affects generated code (`Engine::precompile_compatibility_hash`), so a
//! wasmtime upgrade or a config change simply misses the cache rather than loading stale code.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::RuntimeError;
use crate::error::wasmtime_message;

/// Whether loading a component compiled it or found it in the disk cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileOutcome {
    /// Compiled now (and written to the cache).
    Compiled,
    /// Loaded from the disk cache without compiling.
    Cached,
}

/// What a Wasm binary is: a component (WASI 0.2) or a core module (WASI preview 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Component,
    Module,
}

/// Compiled code, ready to link.
pub(crate) enum Compiled {
    Component(Component),
    Module(Module),
}

/// Cache location for one engine configuration.
pub(crate) struct CompileCache {
    dir: PathBuf,
    /// Hex of the engine's compatibility hash, fixed for the engine's lifetime.
    engine_key: String,
}

/// Makes temp file names unique within the process; the pid makes them unique across processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CompileCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| RuntimeError::io("creating compile cache directory", &dir, e))?;
        Ok(Self { dir, engine_key: engine_key(engine) })
    }

    /// Loads `wasm` (whose sha256 hex is `digest`) from the cache, compiling it on a miss.
    /// Blocking and CPU-heavy: call from a blocking thread.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &str,
        kind: Kind,
    ) -> Result<(Compiled, CompileOutcome), RuntimeError> {
        let path = self.dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if path.exists() {
            match deserialize_own_file(engine, &path, kind) {
                Ok(component) => return Ok((component, CompileOutcome::Cached)),
                // A truncated or foreign file: recompile over it rather than fail the pod.
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %wasmtime_message(&e),
                    "discarding unusable compile cache entry"
                ),
            }
        }

        let started = std::time::Instant::now();
        let compiled = match kind {
            Kind::Component => engine.precompile_component(wasm),
            Kind::Module => engine.precompile_module(wasm),
        }
        .map_err(|e| RuntimeError::Compile { digest: digest.to_string(), message: wasmtime_message(&e) })?;
        tracing::info!(digest, ?kind, elapsed_ms = started.elapsed().as_millis() as u64, "compiled");
        self.write_atomically(&path, &compiled)?;
        let component = deserialize_own_file(engine, &path, kind).map_err(|e| RuntimeError::Compile {
            digest: digest.to_string(),
            message: format!("loading freshly compiled code: {}", wasmtime_message(&e)),
        })?;
        Ok((component, CompileOutcome::Compiled))
    }

    /// Writes to a temp file in the same directory and renames it into place, so a crash leaves
    /// either no entry or a complete one, and concurrent writers of the same key never interleave.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(".tmp-{}-{n}.cwasm", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(RuntimeError::io("writing compile cache entry", path, e));
        }
        Ok(())
    }
}

/// Maps compiled code from our own cache directory.
#[allow(unsafe_code)]
fn deserialize_own_file(engine: &Engine, path: &Path, kind: Kind) -> wasmtime::Result<Compiled> {
    // SAFETY: `Component::deserialize_file` trusts the file to be wasmtime-compiled code, since
    // it maps it as executable. Files in the cache directory are written only by
    // `CompileCache::write_atomically` above, from `Engine::precompile_component` output, and
    // are named by the sha256 of their source plus the engine's compatibility hash; wasmtime
    // additionally checks the file's header against this engine and rejects a mismatch. The
    // cache directory belongs to the node agent and is not writable by guests or pods.
    // The same holds for modules (`Engine::precompile_module` output); a component file
    // loaded as a module (or the reverse) is rejected by wasmtime's header check.
    match kind {
        Kind::Component => unsafe { Component::deserialize_file(engine, path) }.map(Compiled::Component),
        Kind::Module => unsafe { Module::deserialize_file(engine, path) }.map(Compiled::Module),
    }
}

/// Lower-case hex sha256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stable short string for the engine's compatibility hash. `DefaultHasher` is not stable
/// across Rust releases, so the `Hash` output is fed into sha256 instead.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        // Only `finalize` on the inner hasher is used; `Hash` impls never call `finish`.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
