//! Running a `wasi:cli/command` component: one instance, `wasi:cli/run` called once.
//!
//! Exit mapping: `run` returning ok is code 0 "Completed"; `wasi:cli/exit` with code N is N
//! ("Completed" if 0, else "Error"); `run` returning its error result is 1 "Error"; a trap is
//! 1 "Error" with the trap text as the message; a refused memory growth is 137 "OOMKilled";
//! `stop()` is 137 "Stopped".

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;
use wasmtime::{Engine, InstancePre, Store, Trap};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::{Command, CommandPre};

use crate::RuntimeError;
use crate::container::{ExitStatus, STOPPED_COMMAND_EXIT_CODE};
use crate::error::wasmtime_message;
use crate::host::{GuestConfig, Host, P1Host, new_p1_store, new_store};
use crate::limits::memory::{MemoryLimitExceeded, is_memory_limit};

/// Longest trap message kept in an `ExitStatus` (Kubernetes caps termination messages too).
const MAX_MESSAGE_BYTES: usize = 4096;

/// Instantiates a preview 1 module now and runs its `_start` on its own task; exits map as for
/// components (`proc_exit(N)` is code N).
pub(crate) async fn start_p1(
    engine: &Engine,
    pre: &InstancePre<P1Host>,
    guest: GuestConfig,
    stop_rx: oneshot::Receiver<Duration>,
    span: tracing::Span,
) -> Result<JoinHandle<ExitStatus>, RuntimeError> {
    let mut store = new_p1_store(engine, &guest)?;
    let instance = pre
        .instantiate_async(&mut store)
        .instrument(span.clone())
        .await
        .map_err(|e| RuntimeError::Instantiate(wasmtime_message(&e)))?;
    let entry = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(|e| {
        RuntimeError::Instantiate(format!("the module has no usable `_start`: {}", wasmtime_message(&e)))
    })?;
    let task = async move {
        tracing::info!("preview 1 command started");
        let status = until_stopped(
            async { exit_status(entry.call_async(&mut store, ()).await.map(Ok)) },
            &guest,
            stop_rx,
        )
        .await;
        finish(store, status)
    };
    Ok(tokio::spawn(task.instrument(span)))
}

/// Instantiates the command now (so failures are start errors) and runs it on its own task.
pub(crate) async fn start(
    engine: &Engine,
    pre: &CommandPre<Host>,
    guest: GuestConfig,
    stop_rx: oneshot::Receiver<Duration>,
    span: tracing::Span,
) -> Result<JoinHandle<ExitStatus>, RuntimeError> {
    let mut store = new_store(engine, &guest)?;
    let command = pre
        .instantiate_async(&mut store)
        .instrument(span.clone())
        .await
        .map_err(|e| RuntimeError::Instantiate(wasmtime_message(&e)))?;
    Ok(tokio::spawn(run(store, command, guest, stop_rx).instrument(span)))
}

async fn run(
    mut store: Store<Host>,
    command: Command,
    guest: GuestConfig,
    stop_rx: oneshot::Receiver<Duration>,
) -> ExitStatus {
    tracing::info!("command started");
    let status = until_stopped(
        async { exit_status(command.wasi_cli_run().call_run(&mut store).await) },
        &guest,
        stop_rx,
    )
    .await;
    finish(store, status)
}

/// Runs the guest's entry point until it ends or `stop_rx` fires (a dropped sender means the
/// handle is gone, which also means stop).
async fn until_stopped(
    run: impl Future<Output = ExitStatus>,
    guest: &GuestConfig,
    stop_rx: oneshot::Receiver<Duration>,
) -> ExitStatus {
    tokio::select! {
        status = run => status,
        _ = stop_rx => {
            // Belt and braces: trap at the next epoch tick should the future still be polled;
            // leaving this branch drops the guest's future, which ends the guest now.
            guest.interrupt.store(true, Ordering::Relaxed);
            ExitStatus::stopped(STOPPED_COMMAND_EXIT_CODE, Some("stopped by the runtime".into()))
        }
    }
}

/// Dropping the store flushes any half line the guest left in its stdout/stderr buffers, so
/// the log is complete before `wait()` returns.
fn finish<T>(store: Store<T>, status: ExitStatus) -> ExitStatus {
    drop(store);
    tracing::info!(code = status.code, reason = %status.reason, "command ended");
    status
}

fn exit_status(result: wasmtime::Result<Result<(), ()>>) -> ExitStatus {
    match result {
        Ok(Ok(())) => ExitStatus::exited(0),
        Ok(Err(())) => ExitStatus::error(1, "wasi:cli/run returned an error".into()),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                ExitStatus::exited(exit.0)
            } else if is_memory_limit(&e) {
                ExitStatus::oom_killed(trap_message(&e))
            } else {
                ExitStatus::error(1, trap_message(&e))
            }
        }
    }
}

/// The trap's own description if there is one (the full error also carries a multi-line wasm
/// backtrace, which belongs in the agent's log, not in the pod status).
pub(crate) fn trap_message(e: &wasmtime::Error) -> String {
    let limit = e.chain().find_map(|cause| cause.downcast_ref::<MemoryLimitExceeded>());
    let mut message = match (limit, e.downcast_ref::<Trap>()) {
        (Some(limit), _) => limit.to_string(),
        (None, Some(trap)) => trap.to_string(),
        // The outermost context is "error while executing at wasm backtrace: ..."; the root
        // cause says what actually happened.
        (None, None) => e.root_cause().to_string().lines().next().unwrap_or("unknown error").to_string(),
    };
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    tracing::warn!(error = ?e, "guest trapped");
    message
}
