//! The node-wide wasmtime engine: configuration, the epoch ticker, and loading components.
//!
//! One `Engine` serves every pod on the node so compiled code, the instance pool and the epoch
//! counter are shared. Epoch interruption is always on: a ticker thread bumps the epoch every
//! [`EPOCH_TICK`], and each store yields to tokio on every tick (see `host::new_store`), which
//! keeps a busy guest from starving the executor and lets `stop()` cut it off.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::RuntimeError;
use crate::compile_cache::{CompileCache, CompileOutcome, Compiled, Kind, sha256_hex};
use crate::component::{LoadedComponent, Pre};
use crate::error::wasmtime_message;
use crate::host::{Host, P1Host};

/// How often the engine's epoch advances: the longest a guest runs before yielding to tokio.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of the node's memory one pooled instance slot stands for: the pool holds one
/// component instance per this many bytes of allocatable memory. A slot costs nothing until it
/// is used (it is virtual address space: a 4 GiB memory reservation plus guard), and a small
/// Rust component runs in 1-2 MiB, so this lets a node fill its memory with small instances.
pub const BYTES_PER_INSTANCE_SLOT: u64 = 2 << 20;
/// Fewest instance slots the pool is sized for, even on a tiny node.
pub const MIN_INSTANCE_SLOTS: u32 = 128;
/// Most instance slots: 10,000 memory slots reserve about 40 TiB of the 128 TiB user address
/// space of x86-64, which leaves room for everything else.
pub const MAX_INSTANCE_SLOTS: u32 = 10_000;

/// Settings for a [`WasmEngine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled components are cached; created if missing.
    pub cache_dir: PathBuf,
    /// Memory the node gives to pods (its allocatable memory), which sizes the instance pool;
    /// `None` sizes it for [`MIN_INSTANCE_SLOTS`].
    pub allocatable_memory: Option<u64>,
}

impl EngineConfig {
    /// The number of component instances (running commands plus in-flight HTTP requests) the
    /// pool is sized for.
    pub fn instance_slots(&self) -> u32 {
        let by_memory = self.allocatable_memory.map_or(0, |m| m / BYTES_PER_INSTANCE_SLOT);
        by_memory.clamp(u64::from(MIN_INSTANCE_SLOTS), u64::from(MAX_INSTANCE_SLOTS)) as u32
    }
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
    /// Linked code of the components loaded so far, by sha256 of their bytes, for as long as
    /// any container still holds it: a second pod of an image shares the first one's code
    /// mapping and pre-instance instead of mapping the cache file and linking again.
    live: Mutex<HashMap<String, Weak<Pre>>>,
    /// Instance slots of the pooling allocator; 0 when allocating on demand.
    pool_slots: u32,
    /// The HTTP containers running on this engine, by listening address.
    local: crate::http::LocalServers,
}

impl WasmEngine {
    /// Creates the engine (pooling allocator if it can reserve its pools, else on-demand),
    /// starts its epoch ticker thread and prepares the compile cache directory.
    pub fn new(config: EngineConfig) -> Result<Self, RuntimeError> {
        let (engine, pool_slots) = build_engine(config.instance_slots())?;
        Self::with_engine(engine, pool_slots, config.cache_dir)
    }

    /// Like [`WasmEngine::new`], but never pools: each instance's memories, tables and stack
    /// are mapped when it is created and unmapped when it is dropped. This is what `new` falls
    /// back to where the pool's address space cannot be reserved; it exists so a benchmark can
    /// put both allocators side by side on the same machine (`wasmkube bench instantiate`).
    pub fn new_on_demand(config: EngineConfig) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&base_config()).map_err(|e| RuntimeError::Engine(wasmtime_message(&e)))?;
        Self::with_engine(engine, 0, config.cache_dir)
    }

    fn with_engine(engine: Engine, pool_slots: u32, cache_dir: PathBuf) -> Result<Self, RuntimeError> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| crate::name_lookup::add_to_linker(&mut linker))
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
        let cache = CompileCache::new(cache_dir, &engine)?;
        spawn_epoch_ticker(engine.weak())?;
        tracing::info!(pool_slots, "wasm engine ready");
        let live = Mutex::new(HashMap::new());
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                p1_linker,
                cache,
                live,
                pool_slots,
                local: Default::default(),
            }),
        })
    }

    /// Compiles the component at `wasm_path`, or loads it from the on-disk cache (key: sha256 of
    /// the Wasm bytes + the engine's compatibility hash), then detects its world and links it.
    ///
    /// Loading the same bytes again while a container still holds the first load neither maps
    /// the cache file nor links again: the new handle shares the linked code (and says `Cached`).
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
        self.inner.pool_slots > 0
    }

    /// How many component instances the pool holds (0: on-demand allocation, no fixed limit).
    pub fn pool_slots(&self) -> u32 {
        self.inner.pool_slots
    }

    pub(crate) fn local(&self) -> &crate::http::LocalServers {
        &self.inner.local
    }

    /// The HTTP container of this engine listening on `addr`, to hand it requests in-process
    /// (the node proxy's shortcut to local Wasm pods); `None` when no running container serves
    /// there (another node's pod, a Linux pod, a stopping container).
    pub fn local_http(&self, addr: SocketAddr) -> Option<crate::http::LocalHttp> {
        self.inner.local.get(addr)
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
        if let Some(pre) = self.live().get(&sha).and_then(Weak::upgrade) {
            tracing::debug!(%label, "wasm already loaded; sharing its code");
            return Ok(LoadedComponent::from_shared(digest, CompileOutcome::Cached, pre));
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
        let mut live = self.live();
        live.retain(|_, pre| pre.strong_count() > 0);
        live.insert(sha, Arc::downgrade(loaded.shared_pre()));
        Ok(loaded)
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, Weak<Pre>>> {
        // The map only ever holds complete entries; a panic elsewhere cannot corrupt it.
        self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// Tries the pooling allocator with `slots` instance slots, then with a quarter as many each
/// time the address space cannot hold the reservation (e.g. under `ulimit -v`), down to
/// [`MIN_INSTANCE_SLOTS`], then on-demand allocation.
fn build_engine(slots: u32) -> Result<(Engine, u32), RuntimeError> {
    let mut slots = slots.max(MIN_INSTANCE_SLOTS);
    loop {
        match Engine::new(&pooled_config(slots)) {
            Ok(engine) => return Ok((engine, slots)),
            Err(e) if slots > MIN_INSTANCE_SLOTS => {
                tracing::warn!(slots, error = %wasmtime_message(&e), "instance pool too large for this address space; trying a smaller one");
                slots = (slots / 4).max(MIN_INSTANCE_SLOTS);
            }
            Err(e) => {
                tracing::warn!(error = %wasmtime_message(&e), "pooling allocator unavailable; using on-demand allocation");
                return Engine::new(&base_config())
                    .map(|engine| (engine, 0))
                    .map_err(|e| RuntimeError::Engine(wasmtime_message(&e)));
            }
        }
    }
}

fn pooled_config(slots: u32) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    // A Rust-std component has a handful of core instances (main module plus adapter shims)
    // but usually one memory and one table; HTTP instances come and go, so leave headroom.
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(8))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(2))
        .total_stacks(slots);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
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
