//! The OCI runtime bundle's `config.json`, built with `oci-spec` from the planned process and
//! the Pod spec's grants.
//!
//! Isolation: own pid, ipc, uts, mount and cgroup namespaces; **not** a network namespace yet
//! (the container shares the node's network, like `hostNetwork: true`; issue 6 gives pods
//! their own). No new privileges, Docker's default capability set (none ambient or
//! inheritable), every device denied but the defaults runc adds (null, zero, full, tty,
//! random, urandom, pty), runc's masked and read-only `/proc` and `/sys` paths. No user
//! namespace and no seccomp profile yet: root in the container is root on the node with a
//! reduced capability set, as with `docker run` without its seccomp profile.

use std::collections::HashSet;
use std::path::PathBuf;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceType, LinuxResourcesBuilder, MountBuilder, ProcessBuilder, RootBuilder,
    Spec, UserBuilder, get_default_mounts, get_default_namespaces,
};

use super::process::ProcessPlan;
use crate::{Mount, ResourceLimits, RuntimeError};

/// CFS period for the CPU limit: 100 ms, as the kubelet uses.
const CPU_PERIOD_MICROS: u64 = 100_000;

/// The capabilities Docker grants by default.
const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Everything about one container run that goes into `config.json`.
pub(crate) struct BundleConfig<'a> {
    pub process: &'a ProcessPlan,
    pub hostname: &'a str,
    pub read_only_rootfs: bool,
    pub mounts: &'a [Mount],
    pub limits: ResourceLimits,
    /// Cgroup path (relative to each hierarchy's root), unique per container.
    pub cgroups_path: String,
}

/// Builds the spec; `root.path` is `rootfs` (relative to the bundle).
pub(crate) fn build(config: &BundleConfig<'_>) -> Result<Spec, RuntimeError> {
    build_spec(config).map_err(|e| match e {
        SpecError::Mount(message) => RuntimeError::Runc(message),
        SpecError::Oci(e) => RuntimeError::Internal(format!("building config.json: {e}")),
    })
}

enum SpecError {
    Mount(String),
    Oci(OciSpecError),
}

impl From<OciSpecError> for SpecError {
    fn from(e: OciSpecError) -> Self {
        SpecError::Oci(e)
    }
}

fn build_spec(config: &BundleConfig<'_>) -> Result<Spec, SpecError> {
    let plan = config.process;
    let capabilities: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(plan.uid).gid(plan.gid).build()?)
        .args(plan.args.clone())
        .env(plan.env.clone())
        .cwd(plan.cwd.clone())
        .no_new_privileges(true)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(capabilities.clone())
                .effective(capabilities.clone())
                .permitted(capabilities)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()?,
        )
        // No rlimits of our own: the container inherits the agent's, as containerd's do.
        // (oci-spec's default of 1024 open files is too few for servers.)
        .rlimits(Vec::new())
        .build()?;
    let mut mounts = get_default_mounts();
    for mount in config.mounts {
        mounts.push(bind_mount(mount)?);
    }
    let mut namespaces = get_default_namespaces();
    namespaces.retain(|ns| ns.typ() != LinuxNamespaceType::Network);
    let mut resources = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?]);
    if let Some(bytes) = config.limits.memory_bytes {
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
    }
    if let Some(millis) = config.limits.cpu_millis {
        // The kernel refuses quotas under 1 ms; 1m of CPU is a tenth of that.
        let quota = (millis.saturating_mul(CPU_PERIOD_MICROS) / 1000).max(1000);
        let quota = i64::try_from(quota).unwrap_or(i64::MAX);
        resources = resources.cpu(LinuxCpuBuilder::default().quota(quota).period(CPU_PERIOD_MICROS).build()?);
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build()?)
        .cgroups_path(PathBuf::from(&config.cgroups_path))
        .build()?;
    let spec = oci_spec::runtime::SpecBuilder::default()
        .hostname(config.hostname)
        .root(RootBuilder::default().path("rootfs").readonly(config.read_only_rootfs).build()?)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?;
    Ok(spec)
}

/// A volume as a recursive bind mount, read-only when the volumeMount says so.
fn bind_mount(mount: &Mount) -> Result<oci_spec::runtime::Mount, SpecError> {
    let destination = &mount.container_path;
    if !destination.starts_with('/') || destination.split('/').any(|p| p == "..") {
        return Err(SpecError::Mount(format!(
            "mountPath {destination:?} must be an absolute path without `..`"
        )));
    }
    let access = if mount.read_only { "ro" } else { "rw" };
    Ok(MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ("bind")
        .source(mount.host_path.clone())
        .options(vec!["rbind".to_string(), "rprivate".to_string(), access.to_string()])
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ProcessPlan {
        ProcessPlan {
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 1000,
            gid: 1000,
        }
    }

    #[test]
    fn config_json_carries_the_pod_grants() {
        let plan = plan();
        let mounts =
            [Mount { host_path: "/var/data".into(), container_path: "/data".into(), read_only: true }];
        let config = BundleConfig {
            process: &plan,
            hostname: "web-0",
            read_only_rootfs: true,
            mounts: &mounts,
            limits: ResourceLimits { memory_bytes: Some(64 << 20), cpu_millis: Some(250) },
            cgroups_path: "/wasmkube/c1".into(),
        };
        let json = serde_json::to_value(build(&config).expect("builds")).expect("serializes");
        assert_eq!(json["process"]["args"][2], "echo hi");
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["capabilities"]["bounding"].as_array().map(Vec::len), Some(14));
        assert_eq!(json["process"]["capabilities"]["ambient"].as_array().map(Vec::len), Some(0));
        assert_eq!(json["root"], serde_json::json!({"path": "rootfs", "readonly": true}));
        assert_eq!(json["hostname"], "web-0");
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 25_000);
        assert_eq!(json["linux"]["resources"]["cpu"]["period"], 100_000);
        assert_eq!(json["linux"]["cgroupsPath"], "/wasmkube/c1");
        let namespaces: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert!(namespaces.contains(&"pid") && namespaces.contains(&"mount"));
        assert!(!namespaces.contains(&"network"), "host network until issue 6");
        let data = json["mounts"].as_array().expect("mounts").iter().find(|m| m["destination"] == "/data");
        let data = data.expect("volume mounted");
        assert_eq!(data["type"], "bind");
        assert!(data["options"].as_array().expect("options").contains(&"ro".into()));
    }

    #[test]
    fn relative_mount_paths_are_refused() {
        let plan = plan();
        let mounts = [Mount { host_path: "/x".into(), container_path: "data".into(), read_only: false }];
        let config = BundleConfig {
            process: &plan,
            hostname: "h",
            read_only_rootfs: false,
            mounts: &mounts,
            limits: ResourceLimits::default(),
            cgroups_path: "/wasmkube/c".into(),
        };
        assert!(build(&config).is_err());
    }
}
