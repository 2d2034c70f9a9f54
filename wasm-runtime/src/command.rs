//! Running a `wasi:cli/command` component: one instance, `wasi:cli/run` called once.
//!
//! Exit mapping: `run` returning ok is code 0 "Completed"; `wasi:cli/exit` with code N is N
//! ("Completed" if 0, else "Error"); `run` returning its error result is 1 "Error"; a trap is
//! 1 "Error" with the trap text as the message; `stop()` is 137 "Stopped".

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::{Command, CommandPre};

use crate::RuntimeError;
use crate::container::{ExitStatus, STOPPED_COMMAND_EXIT_CODE};
use crate::error::wasmtime_message;
use crate::host::{GuestConfig, Host, new_store};

/// Longest trap message kept in an `ExitStatus` (Kubernetes caps termination messages too).
const MAX_MESSAGE_BYTES: usize = 4096;

/// Instantiates the command now (so failures are start errors) and runs it on its own task.
pub(crate) async fn start(
    engine: &Engine,
    pre: &CommandPre<Host>,
    guest: GuestConfig,
    stop_rx: oneshot::Receiver<Duration>,
    span: tracing::Span,
) -> Result<JoinHandle<ExitStatus>, RuntimeError> {
    let mut store = new_store(engine, &guest);
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
    let status = tokio::select! {
        result = command.wasi_cli_run().call_run(&mut store) => exit_status(result),
        // A dropped sender means the handle is gone, which also means stop.
        _ = stop_rx => {
            // Belt and braces: trap at the next epoch tick should the future still be polled;
            // leaving this branch drops the `call_run` future, which ends the guest now.
            guest.interrupt.store(true, Ordering::Relaxed);
            ExitStatus::stopped(STOPPED_COMMAND_EXIT_CODE, Some("stopped by the runtime".into()))
        }
    };
    // Dropping the store flushes any half line the guest left in its stdout/stderr buffers,
    // so the log is complete before `wait()` returns.
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
            } else {
                ExitStatus::error(1, trap_message(&e))
            }
        }
    }
}

/// The trap's own description if there is one (the full error also carries a multi-line wasm
/// backtrace, which belongs in the agent's log, not in the pod status).
pub(crate) fn trap_message(e: &wasmtime::Error) -> String {
    let mut message = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => wasmtime_message(e).lines().next().unwrap_or("unknown error").to_string(),
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
