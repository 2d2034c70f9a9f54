//! Starting one container and the handle that waits for or stops it.
//!
//! `start` does everything that can fail before the container is "running": it opens the log,
//! instantiates the component once (so a link error or a trap in a start function is a start
//! error, not a surprise at the first request), and for HTTP binds the port. After that,
//! failures are reported as an [`ExitStatus`] from [`RunningContainer::wait`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::component::{LoadedComponent, Pre, World};
use crate::engine::WasmEngine;
use crate::host::{DeniedLog, GuestConfig};
use crate::limits::{CpuBudget, MemoryBudget, Usage};
use crate::logs::CriLogWriter;
use crate::names::NameResolver;
use crate::network::NetworkPolicy;
use crate::{Mount, ResourceLimits};
use crate::{RuntimeError, command, http};

/// What to run and how: the parts of a Kubernetes container spec the runtime needs. Everything
/// not granted here is denied (see [`Mount`], [`NetworkPolicy`], [`ResourceLimits`]).
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container name; the guest's `argv[0]`.
    pub name: String,
    /// `argv[1..]`.
    pub args: Vec<String>,
    /// The guest's whole environment (nothing is inherited from the host).
    pub env: Vec<(String, String)>,
    /// Where to serve HTTP; required for [`World::HttpProxy`], ignored for commands.
    pub http_listen: Option<SocketAddr>,
    /// The CRI-format log file, appended to (created with its directories if missing).
    pub log_path: PathBuf,
    /// Directories the guest sees (preopens); nothing else of the node's filesystem.
    pub mounts: Vec<Mount>,
    /// What the guest may do on the network.
    pub network: NetworkPolicy,
    /// How the guest's outgoing HTTP requests resolve cluster names (none: by the node's
    /// resolver, as the egress list allows).
    pub names: Option<Arc<dyn NameResolver>>,
    /// The container's own memory and CPU limits.
    pub limits: ResourceLimits,
    /// The pod's shared accounts (its memory limit binds all its containers together).
    pub pod: PodResources,
    /// How long one HTTP request's instance may run before the client gets a 504 and the
    /// instance is torn down.
    pub request_timeout: Duration,
}

/// Default for [`ContainerSpec::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl ContainerSpec {
    /// A container with nothing granted: no mounts, no network, no limits, the default
    /// request timeout.
    pub fn new(name: impl Into<String>, log_path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            args: Vec::new(),
            env: Vec::new(),
            http_listen: None,
            log_path: log_path.into(),
            mounts: Vec::new(),
            network: NetworkPolicy::default(),
            names: None,
            limits: ResourceLimits::default(),
            pod: PodResources::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Accounts shared by every container of one pod. Cheap to clone; create one per pod.
#[derive(Debug, Clone, Default)]
pub struct PodResources {
    memory: MemoryBudget,
}

impl PodResources {
    /// `memory_limit`: the sum of the containers' memory limits when every container has one
    /// (as the pod-level cgroup), else `None`.
    pub fn new(memory_limit: Option<u64>) -> Self {
        Self { memory: MemoryBudget::new(memory_limit) }
    }

    /// Bytes of linear memory and tables the pod's guests hold right now.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.used()
    }
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code: the guest's own, 1 for a trap, 137 for a command stopped by `stop()`,
    /// 0 for an HTTP server stopped by `stop()`.
    pub code: i32,
    /// `"Completed"`, `"Error"`, `"OOMKilled"` or `"Stopped"`, as in a Kubernetes container's terminated state.
    pub reason: String,
    /// Details, e.g. the trap message.
    pub message: Option<String>,
}

/// Exit code of a command cut off by `stop()`: what a container killed by SIGKILL reports.
pub const STOPPED_COMMAND_EXIT_CODE: i32 = 137;

impl ExitStatus {
    pub(crate) fn exited(code: i32) -> Self {
        Self { code, reason: if code == 0 { "Completed" } else { "Error" }.to_string(), message: None }
    }

    pub(crate) fn error(code: i32, message: String) -> Self {
        Self { code, reason: "Error".to_string(), message: Some(message) }
    }

    pub(crate) fn oom_killed(message: String) -> Self {
        Self { code: STOPPED_COMMAND_EXIT_CODE, reason: "OOMKilled".to_string(), message: Some(message) }
    }

    pub(crate) fn stopped(code: i32, message: Option<String>) -> Self {
        Self { code, reason: "Stopped".to_string(), message }
    }

    /// True for a normal, successful end (`Completed` with code 0).
    pub fn success(&self) -> bool {
        self.code == 0 && self.reason == "Completed"
    }
}

/// Reads a container's usage; cheap to clone.
#[derive(Debug, Clone)]
pub struct UsageMeter {
    memory: MemoryBudget,
    cpu: CpuBudget,
}

impl UsageMeter {
    /// Memory held now and CPU used so far.
    pub fn read(&self) -> Usage {
        Usage { memory_bytes: self.memory.used(), cpu: self.cpu.used() }
    }
}

/// A running container. Dropping it without `stop()` kills the container (it never outlives
/// its handle, so no sandbox is ever orphaned).
pub struct RunningContainer {
    world: Option<World>,
    http_addr: Option<SocketAddr>,
    stop_tx: Option<oneshot::Sender<Duration>>,
    task: JoinHandle<ExitStatus>,
    status: Option<ExitStatus>,
    interrupt: Arc<AtomicBool>,
    requests: Option<Arc<http::GuestTasks>>,
    memory: MemoryBudget,
    cpu: CpuBudget,
    denied: watch::Receiver<Option<String>>,
    /// Runs commands inside the container (Linux containers only).
    exec: Option<crate::linux::ExecHandle>,
}

impl RunningContainer {
    pub(crate) fn new(
        world: Option<World>,
        stop_tx: oneshot::Sender<Duration>,
        task: JoinHandle<ExitStatus>,
        guest: &GuestConfig,
    ) -> Self {
        Self {
            world,
            http_addr: None,
            stop_tx: Some(stop_tx),
            task,
            status: None,
            interrupt: guest.interrupt.clone(),
            requests: None,
            memory: guest.memory.clone(),
            cpu: guest.cpu.clone(),
            denied: guest.denied.subscribe(),
            exec: None,
        }
    }

    /// A handle for a container run outside the Wasm sandbox (the Linux fallback): no Wasm
    /// accounts (its limits are cgroup settings) and no policy refusals to report.
    pub(crate) fn without_sandbox(stop_tx: oneshot::Sender<Duration>, task: JoinHandle<ExitStatus>) -> Self {
        Self {
            world: None,
            http_addr: None,
            stop_tx: Some(stop_tx),
            task,
            status: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            requests: None,
            memory: MemoryBudget::default(),
            cpu: CpuBudget::new(None),
            denied: watch::Sender::new(None).subscribe(),
            exec: None,
        }
    }

    /// The same handle, able to run commands inside the container.
    pub(crate) fn with_exec(mut self, exec: crate::linux::ExecHandle) -> Self {
        self.exec = Some(exec);
        self
    }

    /// Runs commands inside the container, for exec probes and hooks: `None` for a Wasm
    /// container (it has no processes to exec into).
    pub fn exec_handle(&self) -> Option<crate::linux::ExecHandle> {
        self.exec.clone()
    }

    /// Memory held by the container's live instances and the Wasm CPU time used so far.
    pub fn usage(&self) -> Usage {
        self.usage_meter().read()
    }

    /// A handle that reads [`RunningContainer::usage`] from elsewhere (e.g. a metrics endpoint),
    /// for as long as anyone holds it.
    pub fn usage_meter(&self) -> UsageMeter {
        UsageMeter { memory: self.memory.clone(), cpu: self.cpu.clone() }
    }

    /// The latest capability use the pod's policy refused (a connect, a bind, an outgoing HTTP
    /// request), as a message; changes each time one is refused.
    pub fn policy_denials(&self) -> watch::Receiver<Option<String>> {
        self.denied.clone()
    }

    /// The world of the running component; `None` for a Linux container (runc).
    pub fn world(&self) -> Option<World> {
        self.world
    }

    /// The address the HTTP server is bound to (the real port when `http_listen` used port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// HTTP requests whose guest instance is still running (always 0 for a command). A gauge
    /// for stats and scale-to-zero decisions.
    pub fn in_flight_requests(&self) -> usize {
        self.requests.as_ref().map_or(0, |r| r.in_flight())
    }

    /// Resolves when the container ends. Cancel-safe; may be called again after it returned.
    pub async fn wait(&mut self) -> ExitStatus {
        if let Some(status) = &self.status {
            return status.clone();
        }
        let status = match (&mut self.task).await {
            Ok(status) => status,
            Err(e) if e.is_panic() => {
                tracing::error!(error = %e, "container task panicked");
                ExitStatus::error(1, format!("the runtime task running this container panicked: {e}"))
            }
            Err(_) => ExitStatus::stopped(STOPPED_COMMAND_EXIT_CODE, Some("cancelled".into())),
        };
        self.status = Some(status.clone());
        status
    }

    /// Asks the container to stop and returns once it has. An HTTP server stops accepting,
    /// lets in-flight requests finish for up to `grace`, then cuts the rest off. A command has
    /// no way to be asked (WASI has no signals), so it is interrupted at once. A container that
    /// already ended keeps its own status.
    pub async fn stop(&mut self, grace: Duration) -> ExitStatus {
        if let Some(stop_tx) = self.stop_tx.take() {
            // An error means the task already ended; `wait` then returns its real status.
            let _ = stop_tx.send(grace);
        }
        self.wait().await
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        if !self.task.is_finished() {
            self.interrupt.store(true, Ordering::Relaxed);
            self.task.abort();
        }
    }
}

/// Starts `component` as the container described by `spec`.
pub async fn start(
    engine: &WasmEngine,
    component: &LoadedComponent,
    spec: ContainerSpec,
) -> Result<RunningContainer, RuntimeError> {
    let guest = guest_config(&spec)?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let span = tracing::info_span!("container", name = %spec.name, digest = component.digest());
    match component.pre() {
        Pre::Command(pre) => {
            let task = command::start(engine.engine(), pre, guest.clone(), stop_rx, span).await?;
            Ok(RunningContainer::new(Some(World::Command), stop_tx, task, &guest))
        }
        Pre::P1(pre) => {
            let task = command::start_p1(engine.engine(), pre, guest.clone(), stop_rx, span).await?;
            Ok(RunningContainer::new(Some(World::Command), stop_tx, task, &guest))
        }
        Pre::Http(pre) => {
            let addr = spec.http_listen.ok_or(RuntimeError::MissingListenAddress { container: spec.name })?;
            let started = http::start(
                engine.engine(),
                engine.local(),
                pre,
                guest.clone(),
                addr,
                spec.request_timeout,
                stop_rx,
                span,
            )
            .await?;
            let mut running = RunningContainer::new(Some(World::HttpProxy), stop_tx, started.task, &guest);
            running.http_addr = Some(started.bound);
            running.requests = Some(started.requests);
            Ok(running)
        }
    }
}

/// What every instance of the container described by `spec` sees; opens its log file.
pub(crate) fn guest_config(spec: &ContainerSpec) -> Result<GuestConfig, RuntimeError> {
    let log = CriLogWriter::open(&spec.log_path)?;
    let mut argv = Vec::with_capacity(spec.args.len() + 1);
    argv.push(spec.name.clone());
    argv.extend(spec.args.iter().cloned());
    Ok(GuestConfig {
        argv,
        env: spec.env.clone(),
        mounts: spec.mounts.clone(),
        network: Arc::new(spec.network.clone()),
        names: spec.names.clone(),
        denied: DeniedLog::new(log.clone()),
        log,
        memory: MemoryBudget::new(spec.limits.memory_bytes),
        pod_memory: spec.pod.memory.clone(),
        cpu: CpuBudget::new(spec.limits.cpu_millis),
        interrupt: Arc::new(AtomicBool::new(false)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node agent keeps these in spawned tasks: they must be `Send` (and the shared ones
    /// `Sync`), and so must the futures of the async API.
    #[test]
    fn handles_and_futures_can_cross_tasks() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<WasmEngine>();
        send_sync::<LoadedComponent>();
        send_sync::<ExitStatus>();
        let _ = |engine: WasmEngine,
                 component: LoadedComponent,
                 spec: ContainerSpec,
                 mut running: RunningContainer| {
            send(&running);
            send(&engine.load_component("x".as_ref(), "x"));
            send(&start(&engine, &component, spec));
            send(&running.stop(Duration::ZERO));
        };
    }
}
