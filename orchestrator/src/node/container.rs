//! One container's life on the node: pull its image, compile it, resolve its environment,
//! start it in the Wasm sandbox, wait for it, and restart it under the pod's restartPolicy
//! with back-off. Every step reports its state (and an Event) so `kubectl get/describe` say
//! what is happening and why.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};

use super::{
    NodeContext,
    backoff::Backoff,
    env, grants,
    linux::Runnable,
    probes::Probes,
    status::{ContainerState, State},
    volumes::PodVolumes,
};
use crate::{
    api::meta,
    controllers::events::{EventKind, emit},
};

/// What one container task needs.
pub struct ContainerTask {
    pub ctx: NodeContext,
    pub pod: Value,
    pub spec: Value,
    pub pod_ip: Ipv4Addr,
    pub shared: Arc<Mutex<ContainerState>>,
    pub dirty: Arc<Notify>,
    pub stop: CancellationToken,
    /// The pod's volumes, or why they cannot be set up.
    pub volumes: Arc<Result<PodVolumes, String>>,
    /// The pod's shared accounts (its memory limit binds its containers together).
    pub resources: wasm_runtime::PodResources,
}

/// Everything the Pod spec grants one run of the container. The Linux fallback uses the env,
/// mounts and limits; the network policy and request timeout are the Wasm sandbox's.
pub(super) struct Grants {
    pub env: Vec<(String, String)>,
    pub mounts: Vec<wasm_runtime::Mount>,
    pub limits: wasm_runtime::ResourceLimits,
    pub network: wasm_runtime::NetworkPolicy,
    pub request_timeout: Duration,
}

/// Why a step before running failed: the waiting reason and message to report.
pub(super) struct StartFailure {
    pub(super) reason: &'static str,
    pub(super) message: String,
}

impl ContainerTask {
    pub(super) fn name(&self) -> &str {
        self.spec["name"].as_str().unwrap_or("")
    }

    pub(super) fn image(&self) -> &str {
        self.spec["image"].as_str().unwrap_or("")
    }

    pub(super) fn set(&self, f: impl FnOnce(&mut ContainerState)) {
        {
            let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut s);
        }
        self.dirty.notify_one();
    }

    pub(super) async fn event(&self, kind: EventKind, reason: &str, message: &str) {
        let mut involved = self.pod.clone();
        involved["apiVersion"] = "v1".into();
        involved["kind"] = "Pod".into();
        emit(&self.ctx.client, &involved, kind, reason, message, "wasmkube-agent");
    }

    /// Sleep for a back-off, or return false if stopped meanwhile.
    async fn wait(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    /// Run until the container is done under its restart policy, or stopped.
    #[instrument(skip_all, fields(pod = %meta::key_of(&self.pod), container = self.name()))]
    pub async fn run(self, grace: Arc<Mutex<Duration>>) {
        let policy = self.pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string();
        let mut pull_backoff = Backoff::default();
        let mut crash_backoff = Backoff::default();
        let mut prepared: Option<(oci_fetch::PulledImage, Runnable)> = None;
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let (image, runnable) = match prepared.clone() {
                Some(p) => p,
                None => match self.prepare().await {
                    Ok(p) => {
                        pull_backoff.reset();
                        prepared = Some(p.clone());
                        p
                    }
                    Err(f) => {
                        let pull_failure = f.reason == "ErrImagePull" || f.reason == "ErrImageNeverPull";
                        self.set(|s| {
                            s.state =
                                State::Waiting { reason: f.reason.into(), message: Some(f.message.clone()) }
                        });
                        self.event(EventKind::Warning, "Failed", &f.message).await;
                        let delay = pull_backoff.next_delay();
                        if pull_failure {
                            let message = format!("Back-off pulling image \"{}\"", self.image());
                            self.set(|s| {
                                s.state = State::Waiting {
                                    reason: "ImagePullBackOff".into(),
                                    message: Some(message.clone()),
                                }
                            });
                            self.event(EventKind::Normal, "BackOff", &message).await;
                        }
                        if !self.wait(delay).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            // A missing ConfigMap/Secret is not a crash: the container waits (restartCount
            // unchanged, whatever the restart policy) until the source exists.
            let grants = match self.grants().await {
                Ok(grants) => grants,
                Err(message) => {
                    self.set(|s| {
                        s.state = State::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(message.clone()),
                        }
                    });
                    self.event(EventKind::Warning, "Failed", &format!("Error: {message}")).await;
                    if !self.wait(pull_backoff.next_delay()).await {
                        return;
                    }
                    continue;
                }
            };
            let restart = self.shared.lock().map(|s| s.restart_count).unwrap_or(0);
            let ended = match &runnable {
                Runnable::Wasm(component) => self.run_once(&image, component, restart, grants, &grace).await,
                Runnable::Linux(linux) => self.run_linux(linux, restart, grants, &grace).await,
            };
            let Some((exit, ran_for)) = ended else { return };
            let again = match policy.as_str() {
                "Never" => false,
                "OnFailure" => exit != 0,
                _ => true,
            };
            if !again {
                self.set(|s| s.done = true);
                return;
            }
            crash_backoff.ran_for(ran_for);
            let delay = crash_backoff.next_delay();
            let message = format!(
                "back-off {}s restarting failed container={} pod={}",
                delay.as_secs(),
                self.name(),
                meta::name(&self.pod)
            );
            self.set(|s| {
                s.last_state = Some(s.state.clone());
                s.state =
                    State::Waiting { reason: "CrashLoopBackOff".into(), message: Some(message.clone()) };
            });
            self.event(
                EventKind::Warning,
                "BackOff",
                &format!(
                    "Back-off restarting failed container {} in pod {}",
                    self.name(),
                    meta::name(&self.pod)
                ),
            )
            .await;
            if !self.wait(delay).await {
                return;
            }
            self.set(|s| s.restart_count += 1);
        }
    }

    /// What the Pod spec grants this container: env, volume mounts, limits, network.
    async fn grants(&self) -> Result<Grants, String> {
        // As kubelet, only once the Services have been read: the variables name them.
        self.ctx.services.wait_synced().await;
        let service_vars = super::service_env::for_pod(&self.pod, &self.ctx.services.services.list());
        let ips = (self.pod_ip.to_string(), self.ctx.node_ip.to_string());
        let env =
            env::resolve(&self.ctx.client, &self.pod, &self.spec, (&ips.0, &ips.1), service_vars).await?;
        let volumes = self.volumes.as_ref().as_ref().map_err(Clone::clone)?;
        volumes.sync(&self.ctx.client).await?;
        Ok(Grants {
            env,
            mounts: volumes.mounts_for(&self.spec)?,
            limits: grants::limits(&self.spec)?,
            network: grants::network(&self.pod, &self.spec, self.pod_ip.into(), &self.ctx.cluster_networks)
                .await?,
            request_timeout: grants::request_timeout(&self.pod)?,
        })
    }

    /// Pull and compile (Wasm) or unpack (Linux) the image.
    async fn prepare(&self) -> Result<(oci_fetch::PulledImage, Runnable), StartFailure> {
        let image = self.pull().await?;
        self.set(|s| s.image_id = image_id(&image));
        let oci_fetch::Artifact::Wasm { path, digest, layout } = &image.artifact else {
            let linux = self.prepare_linux(&image).await?;
            return Ok((image, linux));
        };
        let component = self.ctx.engine.load_component(path, digest).await.map_err(|e| StartFailure {
            reason: "CreateContainerError",
            message: format!("image \"{}\" cannot run as a Wasm component: {e}", self.image()),
        })?;
        let packaging = match layout {
            oci_fetch::WasmLayout::CncfArtifact => "a Wasm OCI artifact (one Wasm layer)",
            oci_fetch::WasmLayout::WasiImage => "a wasi/wasm image (the .wasm its entrypoint names)",
        };
        let message = format!(
            "Running {} in the Wasm sandbox (wasmtime): the image is {packaging}",
            component.kind_description()
        );
        self.event(EventKind::Normal, "RuntimeSelected", &message).await;
        Ok((image, Runnable::Wasm(component)))
    }

    async fn pull(&self) -> Result<oci_fetch::PulledImage, StartFailure> {
        let image = self.image().to_string();
        let policy = self.spec["imagePullPolicy"].as_str().unwrap_or("IfNotPresent");
        let cached = self.ctx.images.lookup(&image).map_err(|e| StartFailure {
            reason: "ErrImagePull",
            message: format!("reading the image cache: {e}"),
        })?;
        match (policy, cached) {
            ("Never", Some(img)) | ("IfNotPresent", Some(img)) => {
                self.event(
                    EventKind::Normal,
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                )
                .await;
                return Ok(img);
            }
            ("Never", None) => {
                return Err(StartFailure {
                    reason: "ErrImageNeverPull",
                    message: format!("Container image \"{image}\" is not present with pull policy of Never"),
                });
            }
            _ => {}
        }
        self.event(EventKind::Normal, "Pulling", &format!("Pulling image \"{image}\"")).await;
        let started = Instant::now();
        let name = image.clone();
        let progress = move |p: oci_fetch::PullProgress| {
            tracing::debug!(image = %name, layer = %p.layer_digest, done = p.done_bytes, total = ?p.total_bytes, "pulling");
        };
        match self.ctx.puller.pull(&image, &progress).await {
            Ok(img) => {
                self.event(
                    EventKind::Normal,
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{image}\" in {:.3}s",
                        started.elapsed().as_secs_f64()
                    ),
                )
                .await;
                Ok(img)
            }
            Err(e) => Err(StartFailure {
                reason: "ErrImagePull",
                message: format!("Failed to pull image \"{image}\": {e}"),
            }),
        }
    }

    /// Start one run; wait for it to end (Some(exit code, how long it ran)) or be stopped (None).
    async fn run_once(
        &self,
        image: &oci_fetch::PulledImage,
        component: &wasm_runtime::LoadedComponent,
        restart: u32,
        grants: Grants,
        grace: &Mutex<Duration>,
    ) -> Option<(i32, Duration)> {
        let ns = meta::namespace(&self.pod);
        let pod_name = meta::name(&self.pod);
        let log_path = self.ctx.logs.path_for(ns, pod_name, meta::uid(&self.pod), self.name(), restart);
        if let Some(dir) = log_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let port = self.spec["ports"][0]["containerPort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(8080);
        let mut spec = wasm_runtime::ContainerSpec::new(self.name(), log_path.clone());
        spec.args = ["command", "args"]
            .iter()
            .flat_map(|k| self.spec[*k].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        spec.env = grants.env;
        spec.http_listen = (component.world() == wasm_runtime::World::HttpProxy)
            .then_some(SocketAddr::from((self.pod_ip, port)));
        spec.mounts = grants.mounts;
        spec.limits = grants.limits;
        spec.network = grants.network;
        spec.names = Some(Arc::new(super::dns::PodNames::new(self.ctx.names.clone(), &self.pod)));
        spec.request_timeout = grants.request_timeout;
        spec.pod = self.resources.clone();
        let id = format!("wasm://{}", image.image_id.trim_start_matches("sha256:").get(..12).unwrap_or(""));
        let start = wasm_runtime::start(&self.ctx.engine, component, spec);
        self.supervise(start, id, &log_path, grace).await
    }

    /// Start a run (Wasm or Linux), report it Running, run its probes, wait for it to end or be
    /// stopped (Some(exit code for the restart policy, how long it ran), or None when stopped),
    /// and report how it ended.
    pub(super) async fn supervise(
        &self,
        start: impl Future<Output = Result<wasm_runtime::RunningContainer, wasm_runtime::RuntimeError>>,
        id: String,
        log_path: &Path,
        grace: &Mutex<Duration>,
    ) -> Option<(i32, Duration)> {
        let started_at = meta::now();
        let started = Instant::now();
        self.ctx.logs.set_active(log_path, true);
        let mut running = match start.await {
            Ok(r) => r,
            Err(e) => {
                self.ctx.logs.set_active(log_path, false);
                let message = format!("the container failed to start: {e}");
                warn!(%message);
                self.set(|s| {
                    s.state = State::Terminated {
                        exit_code: 128,
                        reason: "StartError".into(),
                        message: Some(message.clone()),
                        started_at: started_at.clone(),
                        finished_at: meta::now(),
                    };
                });
                self.event(EventKind::Warning, "Failed", &message).await;
                return Some((128, started.elapsed()));
            }
        };
        let exec = running.exec_handle();
        let probes = Probes::from_spec(&self.spec, exec.as_ref());
        self.set(|s| {
            s.state = State::Running { started_at: started_at.clone() };
            s.container_id = Some(id);
            // Without probes a running container is started and ready; with them, the probes
            // say so.
            s.started = probes.is_empty();
            s.ready = probes.is_empty();
        });
        info!(world = ?running.world(), "container started");
        self.event(EventKind::Normal, "Started", &format!("Started container {}", self.name())).await;
        let denials = self.report_denials(running.policy_denials());
        let at = super::stats::ContainerRef {
            namespace: meta::namespace(&self.pod).to_string(),
            pod: meta::name(&self.pod).to_string(),
            uid: meta::uid(&self.pod).to_string(),
            container: self.name().to_string(),
        };
        let _metered = self.ctx.usage.register(at, running.usage_meter());
        let mut probe_killed = false;
        let (exit, stopped) = tokio::select! {
            exit = running.wait() => (exit, false),
            _ = self.stop.cancelled() => {
                // Read the grace period now: a delete may have shortened it.
                let grace = *grace.lock().unwrap_or_else(|p| p.into_inner());
                let grace = self.pre_stop(grace, exec.as_ref()).await;
                (running.stop(grace).await, true)
            }
            kill = self.run_probes(&probes, started) => {
                // A failed liveness or startup probe: stop this run; the restart policy decides
                // what comes next, as for any other exit.
                info!(message = %kill.message, "stopping the container for its probe");
                probe_killed = true;
                let grace = kill.grace.unwrap_or_else(|| *grace.lock().unwrap_or_else(|p| p.into_inner()));
                let stopping = async { running.stop(self.pre_stop(grace, exec.as_ref()).await).await };
                tokio::select! {
                    exit = stopping => (exit, false),
                    // A delete meanwhile shortens nothing already under way, but is still a stop.
                    _ = self.stop.cancelled() => (running.stop(Duration::ZERO).await, true),
                }
            }
        };
        denials.abort();
        self.ctx.logs.set_active(log_path, false);
        info!(code = exit.code, reason = %exit.reason, "container ended");
        if exit.reason == "OOMKilled" {
            let message = exit.message.clone().unwrap_or_default();
            self.event(
                EventKind::Warning,
                "OOMKilled",
                &format!("Container {} was OOM-killed: {message}", self.name()),
            )
            .await;
        }
        self.set(|s| {
            s.state = State::Terminated {
                exit_code: exit.code,
                reason: exit.reason.clone(),
                message: exit.message.clone(),
                started_at: started_at.clone(),
                finished_at: meta::now(),
            };
        });
        if stopped {
            return None;
        }
        // A run ended by its probe failed, whatever its exit code: OnFailure restarts it too.
        let code = if probe_killed && exit.code == 0 { 1 } else { exit.code };
        Some((code, started.elapsed()))
    }
}

impl ContainerTask {
    /// Turns what the sandbox refused (a connect, a bind, an outgoing request) into Warning
    /// Events, a few per run so a guest retrying in a loop does not flood the API.
    fn report_denials(
        &self,
        mut denials: tokio::sync::watch::Receiver<Option<String>>,
    ) -> tokio::task::JoinHandle<()> {
        const MAX_EVENTS_PER_RUN: usize = 5;
        let mut involved = self.pod.clone();
        involved["apiVersion"] = "v1".into();
        involved["kind"] = "Pod".into();
        let client = self.ctx.client.clone();
        let container = self.name().to_string();
        tokio::spawn(async move {
            for _ in 0..MAX_EVENTS_PER_RUN {
                if denials.changed().await.is_err() {
                    return;
                }
                let Some(what) = denials.borrow_and_update().clone() else { continue };
                let message = format!("Container {container}: {what}");
                emit(&client, &involved, EventKind::Warning, "PolicyDenied", &message, "wasmkube-agent");
            }
        })
    }
}

/// Kubernetes' imageID: `repository@sha256:...`.
fn image_id(image: &oci_fetch::PulledImage) -> String {
    let repo = image
        .reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(image.reference.as_str(), |(r, _)| r);
    let repo = repo.split('@').next().unwrap_or(repo);
    format!("{repo}@{}", image.image_id)
}
