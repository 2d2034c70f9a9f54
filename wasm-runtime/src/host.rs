//! The per-instance host state (`Store<Host>` data) and how a store is set up.
//!
//! Every guest instance, the one long-lived instance of a command or the fresh instance per HTTP
//! request, gets a `Host` with exactly the pod's argv and environment, stdout/stderr into the
//! container's CRI log, no preopened directories and no network: WASI is deny-by-default, and
//! the agent grants capabilities from the pod spec (later work: volumes, ports, egress).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::logs::{CriLogWriter, Stream};

/// Store data for every guest instance.
pub(crate) struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: DenyOutgoingHttp,
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
    pub log: CriLogWriter,
    /// Set by `stop()`: the next epoch tick traps the guest instead of letting it continue.
    pub interrupt: Arc<AtomicBool>,
}

/// Builds a store for one guest instance.
pub(crate) fn new_store(engine: &Engine, config: &GuestConfig) -> Store<Host> {
    let mut builder = WasiCtx::builder();
    builder
        .args(&config.argv)
        .envs(&config.env)
        .stdout(config.log.guest_output(Stream::Stdout))
        .stderr(config.log.guest_output(Stream::Stderr))
        // Explicit, although these are the defaults: no sockets until the pod spec grants them.
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let host = Host {
        wasi: builder.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        hooks: DenyOutgoingHttp,
    };
    let mut store = Store::new(engine, host);

    // The engine's ticker bumps the epoch every few milliseconds. On each tick a running guest
    // yields to tokio, so a busy loop cannot starve other pods on the same worker thread and its
    // future can be dropped at the next tick; once `interrupt` is set it traps instead.
    let interrupt = config.interrupt.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if interrupt.load(Ordering::Relaxed) {
            Ok(UpdateDeadline::Interrupt)
        } else {
            // `yield_now` rather than `Yield`: tokio defers it until the runtime has polled its
            // IO and timer drivers. A plain self-wake would let a spinning guest run 61 slices
            // (tokio's event interval, ~0.6 s at 10 ms ticks) between driver polls on its thread.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        }
    });
    store
}

/// Outgoing `wasi:http` requests bypass `wasi:sockets`, so they are refused here until pods
/// get an egress policy.
struct DenyOutgoingHttp;

impl WasiHttpHooks for DenyOutgoingHttp {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    hyper::Response<WasiBody>,
                    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                )>,
            > + Send,
    > {
        tracing::debug!(uri = %request.uri(), "denied outgoing HTTP request from guest");
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
