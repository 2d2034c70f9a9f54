//! The Linux fallback: standard `linux/amd64` images run with `runc`.
//!
//! 1. [`LinuxRuntime::prepare`] unpacks the image's verified layer blobs once into a shared
//!    rootfs keyed by manifest digest (gzip/zstd/tar, whiteouts, hard links; hostile entries
//!    refused, see [`unpack`]) and reads its config (Entrypoint, Cmd, Env, WorkingDir, User).
//! 2. [`LinuxRuntime::start`] gives the run its own copy of that rootfs, writes `config.json`
//!    with `oci-spec` from the image config and the Pod spec ([`LinuxSpec`]), and runs it with
//!    `runc run` in the foreground; stdout/stderr go to the same CRI log files as Wasm
//!    containers, and the handle is the same [`RunningContainer`] (`wait`, `stop(grace)`,
//!    killed on drop) with the same [`ExitStatus`](crate::ExitStatus).
//!
//! Not isolated yet: the network. Containers share the node's network namespace (as with
//! `hostNetwork: true`) until pods get their own (issue 6). The bundle's other settings are
//! listed in `bundle.rs`; the contract is `spec/runtime.md`, "Linux fallback".
//!
//! ```text
//! <state>/rootfs/<manifest hex>/   shared unpacked images
//! <state>/containers/<id>/         one run's bundle: config.json, rootfs/, runc.log, pid
//! <state>/runc/                    runc's own state (`runc --root`)
//! ```

mod bundle;
mod exec;
mod kernel_log;
mod process;
mod rootfs;
mod runc;
mod safe_path;
mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;

pub use exec::{ExecHandle, ExecOutput};
pub use process::ProcessOverrides;
pub use unpack::LayerBlob;

use crate::container::RunningContainer;
use crate::logs::CriLogWriter;
use crate::{Mount, ResourceLimits, RuntimeError};

/// Where Debian's `runc` package installs the runtime.
pub const DEFAULT_RUNC: &str = "/usr/sbin/runc";

/// How the Linux runtime is set up on a node.
#[derive(Debug, Clone)]
pub struct LinuxConfig {
    /// Directory for unpacked images, bundles and runc state (created if missing).
    pub state_dir: PathBuf,
    /// The `runc` binary.
    pub runc: PathBuf,
}

/// A pulled Linux image: everything is already verified in the image cache.
#[derive(Debug, Clone)]
pub struct LinuxImage {
    /// `sha256:` digest of the platform manifest: the key of the unpacked rootfs.
    pub manifest_digest: String,
    /// The image config blob (JSON).
    pub config_path: PathBuf,
    /// The layer blobs, bottom first.
    pub layers: Vec<LayerBlob>,
}

/// An image unpacked and ready to start containers from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    manifest_digest: String,
    rootfs: PathBuf,
    defaults: process::ImageDefaults,
}

impl PreparedImage {
    /// The image's manifest digest.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// The shared, unpacked rootfs (read-only by convention).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }
}

/// One container run: the parts of a Kubernetes container spec runc needs.
#[derive(Debug, Clone, Default)]
pub struct LinuxSpec {
    /// Unique id of this run (`[A-Za-z0-9_.-]`, at most 128 bytes): the runc container id and
    /// the bundle's directory name.
    pub id: String,
    /// The container's hostname (Kubernetes: the pod name).
    pub hostname: String,
    /// command, args, env, workingDir, runAsUser/runAsGroup.
    pub process: ProcessOverrides,
    /// `securityContext.readOnlyRootFilesystem`.
    pub read_only_rootfs: bool,
    /// The pod's volumes, bind-mounted.
    pub mounts: Vec<Mount>,
    /// `resources.limits`, as cgroup settings.
    pub limits: ResourceLimits,
    /// The CRI-format log file, appended to (created with its directories if missing).
    pub log_path: PathBuf,
}

/// The node's Linux runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LinuxRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rootfs: rootfs::RootfsCache,
    containers: PathBuf,
    runc: runc::Runc,
}

impl LinuxRuntime {
    /// Sets up the state directory and removes what a crashed agent left (containers in its
    /// runc root, their bundles, half-unpacked images). A missing runc is not an error here:
    /// Wasm pods still run, and starting a Linux container says what is missing.
    pub fn new(config: LinuxConfig) -> Result<Self, RuntimeError> {
        let containers = config.state_dir.join("containers");
        let runc_root = config.state_dir.join("runc");
        for dir in [&containers, &runc_root] {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io("creating directory", dir, e))?;
        }
        let runc = runc::Runc { bin: config.runc, root: runc_root };
        if runc.bin.exists() {
            runc.delete_all_blocking();
        }
        if let Ok(entries) = std::fs::read_dir(&containers) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let rootfs = rootfs::RootfsCache::open(config.state_dir.join("rootfs"))?;
        Ok(Self { inner: Arc::new(Inner { rootfs, containers, runc }) })
    }

    /// Unpacks the image (once per manifest digest; later calls return at once) and reads
    /// its config.
    pub async fn prepare(&self, image: LinuxImage) -> Result<PreparedImage, RuntimeError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let defaults = process::ImageDefaults::read(&image.config_path, &image.manifest_digest)?;
            let rootfs = inner.rootfs.get_or_unpack(&image.manifest_digest, &image.layers)?;
            Ok(PreparedImage { manifest_digest: image.manifest_digest, rootfs, defaults })
        })
        .await
        .map_err(|e| RuntimeError::Internal(format!("unpacking task failed: {e}")))?
    }

    /// Starts a container from `image`; returns once its process runs.
    pub async fn start(
        &self,
        image: &PreparedImage,
        spec: LinuxSpec,
    ) -> Result<RunningContainer, RuntimeError> {
        if !self.inner.runc.bin.exists() {
            return Err(RuntimeError::Runc(format!(
                "{} is missing: install Debian's runc package (apt-get install runc) to run Linux images",
                self.inner.runc.bin.display()
            )));
        }
        validate_id(&spec.id)?;
        let log = CriLogWriter::open(&spec.log_path)?;
        let bundle = self.inner.containers.join(&spec.id);
        let span = tracing::info_span!("linux_container", id = %spec.id, image = %image.manifest_digest);
        let (image, spec_for_bundle) = (image.clone(), spec.clone());
        let bundle_dir = bundle.clone();
        let written =
            tokio::task::spawn_blocking(move || write_bundle(&image, &spec_for_bundle, &bundle_dir))
                .await
                .map_err(|e| RuntimeError::Internal(format!("bundle task failed: {e}")));
        if let Err(e) = written.and_then(|r| r) {
            let _ = std::fs::remove_dir_all(&bundle);
            return Err(e);
        }
        let oom_cgroup = spec.limits.memory_bytes.map(|_| cgroup_path(&spec.id));
        let exec = ExecHandle::new(self.inner.runc.clone(), spec.id.clone());
        let prepared = runc::Prepared { runc: self.inner.runc.clone(), id: spec.id, bundle, log, oom_cgroup };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = runc::start(prepared, stop_rx, span).await?;
        Ok(RunningContainer::without_sandbox(stop_tx, task).with_exec(exec))
    }
}

/// The container's cgroup, below each hierarchy's root.
fn cgroup_path(id: &str) -> String {
    format!("/wasmkube/{id}")
}

/// Writes the bundle: the rootfs copy, then `config.json`. Blocking.
fn write_bundle(image: &PreparedImage, spec: &LinuxSpec, bundle: &Path) -> Result<(), RuntimeError> {
    if bundle.exists() {
        return Err(RuntimeError::Runc(format!("a container with id {} already exists", spec.id)));
    }
    std::fs::create_dir_all(bundle).map_err(|e| RuntimeError::io("creating bundle", bundle, e))?;
    let started = std::time::Instant::now();
    rootfs::copy_tree(&image.rootfs, &bundle.join("rootfs"))?;
    tracing::debug!(elapsed = ?started.elapsed(), "rootfs copied");
    let rootfs = bundle.join("rootfs");
    let plan = process::plan(&image.defaults, &spec.process, &rootfs, &image.manifest_digest)?;
    let config = bundle::BundleConfig {
        process: &plan,
        hostname: &spec.hostname,
        read_only_rootfs: spec.read_only_rootfs,
        mounts: &spec.mounts,
        limits: spec.limits,
        cgroups_path: cgroup_path(&spec.id),
    };
    let path = bundle.join("config.json");
    bundle::build(&config)?
        .save(&path)
        .map_err(|e| RuntimeError::Internal(format!("writing {}: {e}", path.display())))
}

fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok { Ok(()) } else { Err(RuntimeError::Internal(format!("invalid container id {id:?}"))) }
}

#[cfg(test)]
#[path = "runc_tests.rs"]
mod runc_tests;
