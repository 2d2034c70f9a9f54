//! The per-instance host state (`Store<Host>` data) and how a store is set up.
//!
//! Every guest instance, the one long-lived instance of a command or the fresh instance per HTTP
//! request, gets a `Host` built from the container's [`GuestConfig`]: exactly the pod's argv and
//! environment, stdout/stderr into the container's CRI log, the pod's volume mounts as
//! preopened directories, the network the pod spec allows (see `network`), and the container's
//! memory and CPU accounts (see `limits`). WASI is deny-by-default; nothing else is granted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::limits::cpu::RunClock;
use crate::limits::memory::StoreLimiter;
use crate::limits::{CpuBudget, MemoryBudget};
use crate::logs::{CriLogWriter, Stream};
use crate::names::{self, Destination, NameResolver};
use crate::network::{NetworkPolicy, socket_check};
use crate::{Mount, RuntimeError};

/// Store data for every component instance.
pub(crate) struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: EgressHttp,
    pub(crate) limiter: StoreLimiter,
}

impl Host {
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The container's cluster names, if the agent gave it any.
    pub(crate) fn names(&self) -> Option<&dyn NameResolver> {
        self.hooks.names.as_deref()
    }

    pub(crate) fn network(&self) -> &NetworkPolicy {
        &self.hooks.network
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// What every instance of one container sees.
#[derive(Clone)]
pub(crate) struct GuestConfig {
    /// argv, including argv[0].
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub network: Arc<NetworkPolicy>,
    /// Cluster names for outgoing HTTP (see `names`).
    pub names: Option<Arc<dyn NameResolver>>,
    pub log: CriLogWriter,
    pub denied: DeniedLog,
    pub memory: MemoryBudget,
    pub pod_memory: MemoryBudget,
    pub cpu: CpuBudget,
    /// Set by `stop()`: the next epoch tick traps the guest instead of letting it continue.
    pub interrupt: Arc<AtomicBool>,
}

impl GuestConfig {
    /// The WASI context for one instance: argv, env, stdio, preopens and sockets.
    pub(crate) fn wasi_builder(&self) -> Result<WasiCtxBuilder, RuntimeError> {
        let mut builder = WasiCtx::builder();
        builder
            .args(&self.argv)
            .envs(&self.env)
            .stdout(self.log.guest_output(Stream::Stdout))
            .stderr(self.log.guest_output(Stream::Stderr))
            .allow_tcp(self.network.allows_sockets())
            .allow_udp(self.network.allows_sockets())
            .allow_ip_name_lookup(self.network.allows_name_lookup())
            .socket_addr_check(socket_check(self.network.clone(), self.denied.clone()));
        for mount in &self.mounts {
            let perms = if mount.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
            builder.preopened_dir(&mount.host_path, &mount.container_path, perms).map_err(|e| {
                RuntimeError::Mount {
                    path: mount.host_path.clone(),
                    container_path: mount.container_path.clone(),
                    message: format!("{e:#}"),
                }
            })?;
        }
        Ok(builder)
    }

    fn limiter(&self) -> StoreLimiter {
        StoreLimiter::new(self.memory.clone(), self.pod_memory.clone())
    }
}

/// Builds a store for one component instance.
pub(crate) fn new_store(engine: &Engine, config: &GuestConfig) -> Result<Store<Host>, RuntimeError> {
    let host = Host {
        wasi: config.wasi_builder()?.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        hooks: EgressHttp {
            network: config.network.clone(),
            names: config.names.clone(),
            denied: config.denied.clone(),
        },
        limiter: config.limiter(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    schedule(&mut store, config);
    Ok(store)
}

/// Epoch scheduling for any store: the engine's ticker bumps the epoch every few milliseconds;
/// on each tick a running guest is charged for the time it ran and yields to tokio (or pauses
/// longer when over its CPU budget), so a busy loop cannot starve other pods on the same worker
/// thread and its future can be dropped at the next tick; once `interrupt` is set it traps.
pub(crate) fn schedule<T: 'static>(store: &mut Store<T>, config: &GuestConfig) {
    let interrupt = config.interrupt.clone();
    let cpu = config.cpu.clone();
    let clock = RunClock::start();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if interrupt.load(Ordering::Relaxed) {
            return Ok(UpdateDeadline::Interrupt);
        }
        let pause = cpu.charge(clock.ran());
        let clock = clock.clone();
        // `yield_now` rather than `Yield`: tokio defers it until the runtime has polled its IO
        // and timer drivers. A plain self-wake would let a spinning guest run 61 slices (tokio's
        // event interval, ~0.6 s at 10 ms ticks) between driver polls on its thread.
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                if pause.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(pause).await;
                }
                clock.resume();
            }),
        ))
    });
}

/// Where refused capability uses are reported: a line in the container's log (so `kubectl
/// logs` shows why a connect failed) and a channel the agent turns into Events.
#[derive(Clone)]
pub(crate) struct DeniedLog {
    log: CriLogWriter,
    count: Arc<AtomicU64>,
    latest: watch::Sender<Option<String>>,
}

/// Log lines per container about refusals, so a guest retrying in a loop cannot fill the disk.
const MAX_DENIAL_LOG_LINES: u64 = 20;

impl DeniedLog {
    pub(crate) fn new(log: CriLogWriter) -> Self {
        Self { log, count: Arc::new(AtomicU64::new(0)), latest: watch::Sender::new(None) }
    }

    /// Records that the guest was refused `what` (e.g. "connect tcp 1.2.3.4:80").
    pub(crate) fn note(&self, what: &str) {
        let message = format!("denied by the pod's policy: {what}");
        tracing::info!(%message, "capability refused");
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if n < MAX_DENIAL_LOG_LINES {
            let _ = self.log.write_entry(Stream::Stderr, false, format!("[wasmkube] {message}").as_bytes());
        }
        self.latest.send_replace(Some(message));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.latest.subscribe()
    }
}

/// Outgoing `wasi:http` requests bypass `wasi:sockets`, so the egress policy is applied here,
/// after cluster names are resolved (see `names`).
struct EgressHttp {
    network: Arc<NetworkPolicy>,
    names: Option<Arc<dyn NameResolver>>,
    denied: DeniedLog,
}

type SendResult = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                hyper::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressHttp {
    fn send_request(
        &mut self,
        mut request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendResult {
        if let Err(e) = self.route(&mut request) {
            return Box::new(async { Err(e) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
    }
}

impl EgressHttp {
    /// Points `request` at where it goes (a cluster name's address, an ExternalName's host),
    /// or refuses it by the egress policy. The guest's authority stays in the Host header.
    fn route(&self, request: &mut hyper::Request<WasiBody>) -> wasmtime_wasi_http::Result<()> {
        use wasmtime_wasi_http::Error;
        let uri = request.uri().clone();
        let authority = match names::destination(self.names.as_deref(), &uri) {
            Destination::AsWritten if self.network.allows_http_host(uri.host().unwrap_or("")) => {
                return Ok(());
            }
            Destination::Address(addr) if self.network.may_reach(addr.ip()) => addr.to_string(),
            Destination::Alias(target) if self.network.allows_http_host(&target) => match uri.port_u16() {
                Some(port) => format!("{target}:{port}"),
                None => target,
            },
            Destination::Missing => {
                return Err(Error::DnsError { rcode: Some("NXDOMAIN".into()), info_code: None });
            }
            _ => {
                self.denied.note(&format!("outgoing http request to {uri}"));
                return Err(Error::HttpRequestDenied);
            }
        };
        *request.uri_mut() = names::with_authority(&uri, &authority).ok_or(Error::HttpRequestUriInvalid)?;
        Ok(())
    }
}

/// Store data for a WASI preview 1 core module: the same grants through the preview 1 API.
/// Preview 1 has no socket creation and no HTTP, so only argv, env, stdio and preopens matter.
pub(crate) struct P1Host {
    pub(crate) wasi: wasmtime_wasi::p1::WasiP1Ctx,
    limiter: StoreLimiter,
}

/// Builds a store for one preview 1 module instance.
pub(crate) fn new_p1_store(engine: &Engine, config: &GuestConfig) -> Result<Store<P1Host>, RuntimeError> {
    let host = P1Host { wasi: config.wasi_builder()?.build_p1(), limiter: config.limiter() };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    schedule(&mut store, config);
    Ok(store)
}
