//! Running one bundle with `runc run` in the foreground, and the task that supervises it.
//!
//! Foreground mode (no `--detach`, no terminal) keeps the agent the parent of runc, so the
//! container's exit status is runc's (a signal N comes back as 128+N) and the container's
//! stdout/stderr are runc's own pipes, which the agent turns into CRI log lines exactly as it
//! does for Wasm guests. runc's own messages go to `runc.log` in the bundle (`--log`, JSON),
//! where a failed start is explained from. `--pid-file` is written once the user's process
//! runs: until it appears the container is starting, and a runc exit before then is a start
//! error (e.g. the command is not in the image), not a container exit.
//!
//! Stopping sends SIGTERM through `runc kill`, waits for the grace period, then SIGKILLs every
//! process; `runc delete --force` and the bundle's removal always follow, also when the task is
//! dropped mid-way (the [`Cleanup`] guard), so no container outlives its handle.
//!
//! OOM: with a memory limit, a SIGKILL exit is `OOMKilled` when the kernel log records the OOM
//! kill of the container's cgroup or process ([`KernelLog`], read from before `runc run`, so
//! no kill is missed), or when `runc events` (which watches the cgroup's OOM notifications on
//! cgroup v1 and v2, but only once it has started) reported an `oom`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::kernel_log::KernelLog;
use crate::RuntimeError;
use crate::container::ExitStatus;
use crate::logs::{CriLogWriter, Stream};

/// How long a container may take from `runc run` to its process running.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the pid file is looked for while starting.
const START_POLL: Duration = Duration::from_millis(2);
/// How long to wait for a SIGKILLed container to be reaped before giving up on it.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long output may keep arriving after runc exited (a process that escaped the pid
/// namespace's teardown could hold the pipe open forever).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The runc binary and its state directory.
#[derive(Debug, Clone)]
pub(crate) struct Runc {
    pub bin: PathBuf,
    pub root: PathBuf,
}

impl Runc {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.arg("--root").arg(&self.root).env_remove("NOTIFY_SOCKET").stdin(Stdio::null());
        command
    }

    /// Runs a short runc subcommand (`kill`, `delete`); its failure is only logged, as the
    /// container may well be gone already.
    async fn quietly(&self, args: &[&str]) {
        let output = self.command().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).output().await;
        match output {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                tracing::debug!(?args, stderr = %String::from_utf8_lossy(&o.stderr).trim(), "runc failed")
            }
            Err(e) => tracing::warn!(?args, error = %e, "could not run runc"),
        }
    }

    /// Removes every container in this runc root (left by a crashed agent).
    pub(crate) fn delete_all_blocking(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            tracing::info!(container = %id, "removing a container left from an earlier run");
            let _ = std::process::Command::new(&self.bin)
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One prepared container run: its id and its bundle directory (config.json, rootfs/).
pub(crate) struct Prepared {
    pub runc: Runc,
    pub id: String,
    pub bundle: PathBuf,
    pub log: CriLogWriter,
    /// The container's cgroup path when it has a memory limit (then OOM kills are watched for).
    pub oom_cgroup: Option<String>,
}

/// Removes the container and its bundle when dropped, whatever happened before.
struct Cleanup {
    runc: Runc,
    id: String,
    bundle: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Synchronous on purpose: it also runs when the supervising task is aborted, and a
        // container must not outlive its handle. `runc delete` takes a few milliseconds.
        let _ = std::process::Command::new(&self.runc.bin)
            .arg("--root")
            .arg(&self.runc.root)
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = std::fs::remove_dir_all(&self.bundle) {
            tracing::warn!(bundle = %self.bundle.display(), error = %e, "removing the bundle failed");
        }
    }
}

/// Starts the container; returns once its process runs, with the task that supervises it.
pub(crate) async fn start(
    prepared: Prepared,
    stop_rx: oneshot::Receiver<Duration>,
    span: tracing::Span,
) -> Result<JoinHandle<ExitStatus>, RuntimeError> {
    let Prepared { runc, id, bundle, log, oom_cgroup } = prepared;
    // Positioned before the container exists, so its OOM kill cannot come before it.
    let kernel_log = oom_cgroup.as_ref().and_then(|_| KernelLog::open_at_end());
    let cleanup = Cleanup { runc: runc.clone(), id: id.clone(), bundle: bundle.clone() };
    let pid_file = bundle.join("pid");
    let mut child = runc
        .command()
        .arg("--log")
        .arg(bundle.join("runc.log"))
        .args(["--log-format", "json", "run", "--bundle"])
        .arg(&bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&id)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RuntimeError::Runc(format!("cannot run {}: {e}", runc.bin.display())))?;
    let pumps = [
        child.stdout.take().map(|out| pump(out, &log, Stream::Stdout)),
        child.stderr.take().map(|err| pump(err, &log, Stream::Stderr)),
    ];
    let started = tokio::time::timeout(START_TIMEOUT, wait_started(&mut child, &pid_file)).await;
    match started {
        Ok(Ok(())) => {}
        Ok(Err(status)) => {
            drain(pumps).await;
            return Err(RuntimeError::Runc(start_failure(&bundle, status)));
        }
        Err(_) => {
            return Err(RuntimeError::Runc(format!("the container did not start within {START_TIMEOUT:?}")));
        }
    }
    let reported = Arc::new(AtomicBool::new(false));
    let oom = OomWatch {
        pid: std::fs::read_to_string(&pid_file).ok().and_then(|pid| pid.trim().parse().ok()),
        events: oom_cgroup.as_ref().and_then(|_| watch_oom_events(&runc, &id, reported.clone())),
        reported,
        kernel_log,
        cgroup: oom_cgroup,
    };
    let supervised = Supervised { child, runc, id, pumps, oom, cleanup };
    Ok(tokio::spawn(supervised.run(stop_rx).instrument(span)))
}

/// Resolves when the pid file exists (the process runs), or with runc's exit status if runc
/// ended first.
async fn wait_started(child: &mut Child, pid_file: &Path) -> Result<(), std::process::ExitStatus> {
    loop {
        if std::fs::metadata(pid_file).is_ok_and(|m| m.len() > 0) {
            return Ok(());
        }
        tokio::select! {
            status = child.wait() => {
                // A container that ran and ended within one poll still wrote its pid file.
                return match status {
                    Ok(_) if std::fs::metadata(pid_file).is_ok() => Ok(()),
                    Ok(status) => Err(status),
                    Err(_) => Err(std::os::unix::process::ExitStatusExt::from_raw(1 << 8)),
                };
            }
            _ = tokio::time::sleep(START_POLL) => {}
        }
    }
}

/// Why runc could not start the container: the last error it logged.
fn start_failure(bundle: &Path, status: std::process::ExitStatus) -> String {
    let log = std::fs::read_to_string(bundle.join("runc.log")).unwrap_or_default();
    let last_error = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["level"] == "error")
        .filter_map(|entry| entry["msg"].as_str().map(str::to_string))
        .next_back();
    match last_error {
        Some(message) => message,
        None => format!("runc exited with {status} before the container started"),
    }
}

/// Copies one of runc's output pipes into the log, line by line.
fn pump(pipe: impl AsyncRead + Unpin + Send + 'static, log: &CriLogWriter, stream: Stream) -> JoinHandle<()> {
    let mut output = log.guest_output(stream);
    tokio::spawn(async move {
        let mut pipe = pipe;
        if let Err(e) = tokio::io::copy(&mut pipe, &mut output).await {
            tracing::debug!(error = %e, stream = stream.as_str(), "container output ended");
        }
        // Dropping `output` writes a last line that had no newline.
    })
}

async fn drain(pumps: [Option<JoinHandle<()>>; 2]) {
    for pump in pumps.into_iter().flatten() {
        let abort = pump.abort_handle();
        if tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err() {
            abort.abort();
        }
    }
}

/// Follows `runc events` for an `oom` event; `None` if it cannot be started (then OOM kills
/// show as plain SIGKILL exits).
fn watch_oom_events(runc: &Runc, id: &str, oom: Arc<AtomicBool>) -> Option<Child> {
    let mut child = runc
        .command()
        .args(["events", "--interval", "1h", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| tracing::warn!(error = %e, "cannot watch for OOM kills"))
        .ok()?;
    let stdout = child.stdout.take()?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["type"] == "oom" {
                oom.store(true, Ordering::SeqCst);
            }
        }
    });
    Some(child)
}

/// A started container and what it takes to end it.
struct Supervised {
    child: Child,
    runc: Runc,
    id: String,
    pumps: [Option<JoinHandle<()>>; 2],
    oom: OomWatch,
    cleanup: Cleanup,
}

/// What tells an OOM kill of a container with a memory limit from any other SIGKILL.
struct OomWatch {
    /// The container's cgroup path; `None` without a memory limit (nothing is watched).
    cgroup: Option<String>,
    /// The container's first process, as the kernel log names it.
    pid: Option<u32>,
    kernel_log: Option<KernelLog>,
    /// Set by the `runc events` reader.
    reported: Arc<AtomicBool>,
    events: Option<Child>,
}

impl OomWatch {
    /// Whether the container that ended with `code` was OOM-killed.
    async fn was_oom_killed(&mut self, code: i32) -> bool {
        let Some(cgroup) = self.cgroup.clone() else {
            return false;
        };
        let mut oom = self.reported.load(Ordering::SeqCst);
        if code == 137 && !oom {
            if let Some(mut kernel_log) = self.kernel_log.take() {
                let pid = self.pid;
                oom = tokio::task::spawn_blocking(move || kernel_log.reports_oom_kill(&cgroup, pid))
                    .await
                    .unwrap_or(false);
            } else if self.events.is_some() {
                // Without the kernel log, the notification and the exit race; give the
                // event reader a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Some(mut events) = self.events.take() {
            let _ = events.kill().await;
        }
        oom || self.reported.load(Ordering::SeqCst)
    }
}

impl Supervised {
    async fn run(mut self, stop_rx: oneshot::Receiver<Duration>) -> ExitStatus {
        tracing::info!(container = %self.id, "linux container running");
        let status = tokio::select! {
            status = self.child.wait() => status,
            // A dropped sender (the handle is gone) also means stop, at once.
            grace = stop_rx => self.stop(grace.unwrap_or(Duration::ZERO)).await,
        };
        let code = match &status {
            Ok(status) => exit_code(*status),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for runc failed");
                1
            }
        };
        let oom_killed = self.oom.was_oom_killed(code).await;
        drain(std::mem::take(&mut self.pumps)).await;
        let exit = if oom_killed {
            ExitStatus {
                code,
                reason: "OOMKilled".into(),
                message: Some("the container went over its memory limit and was killed".into()),
            }
        } else {
            ExitStatus::exited(code)
        };
        tracing::info!(code = exit.code, reason = %exit.reason, "linux container ended");
        let cleanup = self.cleanup;
        // runc delete and removing the copied rootfs block: keep them off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(cleanup)).await;
        exit
    }

    /// SIGTERM, the grace period, then SIGKILL to every process of the container.
    async fn stop(&mut self, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
        tracing::info!(container = %self.id, ?grace, "stopping linux container");
        self.runc.quietly(&["kill", &self.id, "TERM"]).await;
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            return status;
        }
        self.runc.quietly(&["kill", "--all", &self.id, "KILL"]).await;
        match tokio::time::timeout(KILL_TIMEOUT, self.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                // runc itself is stuck: kill it; `Cleanup` force-deletes the container.
                let _ = self.child.kill().await;
                self.child.wait().await
            }
        }
    }
}

/// The container's exit code: runc's own, which is the process's, or 128+N for a signal
/// (runc reports a signalled container that way; if runc itself was signalled, the same rule).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}
