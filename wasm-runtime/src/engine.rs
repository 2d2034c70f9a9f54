//! The node-wide wasmtime engine: configuration, the epoch ticker, and loading components.
//!
//! One `Engine` serves every pod on the node so compiled code, the instance pool and the epoch
//! counter are shared. Epoch interruption is always on: a ticker thread bumps the epoch every
//! [`EPOCH_TICK`], and each store yields to tokio on every tick (see `host::new_store`), which
//! keeps a busy guest from starving the executor and lets `stop()` cut it off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::RuntimeError;
use crate::compile_cache::{CompileCache, Compiled, Kind, sha256_hex};
use crate::component::LoadedComponent;
use crate::error::wasmtime_message;
use crate::host::{Host, P1Host};

/// How often the engine's epoch advances: the longest a guest runs before yielding to tokio.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Pool sizes for the pooling allocator. Small on purpose: every slot reserves virtual address
/// space (a 4 GiB memory slot plus guards), and `wasmtime serve`'s default of 1000 would reserve
/// several TiB. 128 concurrent component instances (running commands plus in-flight HTTP
/// requests) per node is enough for now; exhausting the pool fails that one instantiation.
const POOL_COMPONENT_INSTANCES: u32 = 128;
/// A Rust-std component has a handful of core instances (main module plus adapter shims).
const POOL_CORE_INSTANCES: u32 = POOL_COMPONENT_INSTANCES * 8;
const POOL_MEMORIES: u32 = POOL_COMPONENT_INSTANCES * 2;
const POOL_TABLES: u32 = POOL_COMPONENT_INSTANCES * 2;
const POOL_STACKS: u32 = POOL_COMPONENT_INSTANCES;

/// Settings for a [`WasmEngine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled components are cached; created if missing.
    pub cache_dir: PathBuf,
}

/// The shared Wasm engine of a node. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct WasmEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// WASI 0.2 (all of it, including `wasi:cli/*`) plus `wasi:http`, shared by both worlds.
    linker: Linker<Host>,
    /// WASI preview 1 for core modules.
    p1_linker: wasmtime::Linker<P1Host>,
    cache: CompileCache,
    pooling: bool,
}

impl WasmEngine {
    /// Creates the engine (pooling allocator if it can reserve its pools, else on-demand),
    /// starts its epoch ticker thread and prepares the compile cache directory.
    pub fn new(config: EngineConfig) -> Result<Self, RuntimeError> {
        let (engine, pooling) = build_engine()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .map_err(|e| {
                RuntimeError::Engine(format!("setting up the WASI linker: {}", wasmtime_message(&e)))
            })?;
        let mut p1_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, |host: &mut P1Host| &mut host.wasi).map_err(
            |e| {
                RuntimeError::Engine(format!(
                    "setting up the WASI preview 1 linker: {}",
                    wasmtime_message(&e)
                ))
            },
        )?;
        let cache = CompileCache::new(config.cache_dir, &engine)?;
        spawn_epoch_ticker(engine.weak())?;
        tracing::info!(pooling, "wasm engine ready");
        Ok(Self { inner: Arc::new(Inner { engine, linker, p1_linker, cache, pooling }) })
    }

    /// Compiles the component at `wasm_path`, or loads it from the on-disk cache (key: sha256 of
    /// the Wasm bytes + the engine's compatibility hash), then detects its world and links it.
    ///
    /// `digest` is the caller's name for the content (e.g. the OCI layer digest) and is used in
    /// logs only: the cache key is always the sha256 computed here, so a wrong or differently
    /// computed digest can never load the wrong code.
    ///
    /// Non-Wasm bytes are [`RuntimeError::NotWasm`]; a core module is
    /// [`RuntimeError::UnsupportedModule`].
    pub async fn load_component(
        &self,
        wasm_path: &Path,
        digest: &str,
    ) -> Result<LoadedComponent, RuntimeError> {
        let inner = self.inner.clone();
        let path = wasm_path.to_path_buf();
        let label = digest.to_string();
        // Reading, hashing and compiling are blocking and CPU-bound.
        tokio::task::spawn_blocking(move || inner.load_blocking(&path, &label))
            .await
            .map_err(|e| RuntimeError::Internal(format!("component loading task failed: {e}")))?
    }

    /// Whether the pooling allocator is in use (false after falling back to on-demand).
    pub fn uses_pooling_allocator(&self) -> bool {
        self.inner.pooling
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

impl Inner {
    fn load_blocking(&self, path: &Path, label: &str) -> Result<LoadedComponent, RuntimeError> {
        let wasm = std::fs::read(path).map_err(|e| RuntimeError::io("reading Wasm file", path, e))?;
        let kind = wasm_kind(path, &wasm)?;
        let sha = sha256_hex(&wasm);
        let digest = format!("sha256:{sha}");
        if label != digest {
            tracing::debug!(label, %digest, "caller's digest differs from the Wasm content hash");
        }
        let (compiled, outcome) = self.cache.load_or_compile(&self.engine, &wasm, &sha, kind)?;
        let loaded = match compiled {
            Compiled::Component(component) => {
                LoadedComponent::new(&self.engine, &self.linker, &component, digest, outcome)?
            }
            Compiled::Module(module) => {
                LoadedComponent::new_module(&self.p1_linker, &module, digest, outcome)?
            }
        };
        tracing::info!(%label, kind = loaded.kind_description(), ?outcome, "wasm loaded");
        Ok(loaded)
    }
}

/// Reads the 8-byte Wasm header: magic, then version and layer (component: 0x0d, layer 1; core
/// module: version 1, layer 0, which is what WASI preview 1 programs are).
fn wasm_kind(path: &Path, wasm: &[u8]) -> Result<Kind, RuntimeError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(RuntimeError::NotWasm { path: path.to_path_buf() });
    }
    match [wasm[4], wasm[5], wasm[6], wasm[7]] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(Kind::Component),
        [0x01, 0x00, 0x00, 0x00] => Ok(Kind::Module),
        [v0, v1, layer0, layer1] => Err(RuntimeError::UnsupportedModule {
            path: path.to_path_buf(),
            reason: format!(
                "unknown Wasm binary version {} layer {}; expected a component (version 13, layer 1) or a core module (version 1)",
                u16::from_le_bytes([v0, v1]),
                u16::from_le_bytes([layer0, layer1])
            ),
        }),
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config
}

/// Tries the pooling allocator first, then on-demand allocation (e.g. under a `ulimit -v` that
/// cannot hold the pools' address-space reservation).
fn build_engine() -> Result<(Engine, bool), RuntimeError> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_COMPONENT_INSTANCES)
        .total_core_instances(POOL_CORE_INSTANCES)
        .total_memories(POOL_MEMORIES)
        .total_tables(POOL_TABLES)
        .total_stacks(POOL_STACKS);
    let mut pooled = base_config();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok((engine, true)),
        Err(e) => {
            tracing::warn!(error = %wasmtime_message(&e), "pooling allocator unavailable; using on-demand allocation");
            Engine::new(&base_config())
                .map(|engine| (engine, false))
                .map_err(|e| RuntimeError::Engine(wasmtime_message(&e)))
        }
    }
}

/// One thread per engine; it holds only a weak reference so it ends (within one tick) once the
/// engine and everything compiled with it are gone.
fn spawn_epoch_ticker(engine: EngineWeak) -> Result<(), RuntimeError> {
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| RuntimeError::Engine(format!("starting the epoch ticker thread: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_tells_kinds_apart() {
        let p = Path::new("x.wasm");
        assert!(matches!(wasm_kind(p, b"hello world"), Err(RuntimeError::NotWasm { .. })));
        assert!(matches!(wasm_kind(p, b"\0asm"), Err(RuntimeError::NotWasm { .. })));
        assert_eq!(wasm_kind(p, b"\0asm\x01\0\0\0").unwrap(), Kind::Module);
        assert_eq!(wasm_kind(p, b"\0asm\x0d\0\x01\0").unwrap(), Kind::Component);
        assert!(matches!(wasm_kind(p, b"\0asm\x02\0\0\0"), Err(RuntimeError::UnsupportedModule { .. })));
    }
}
