//! What the Pod spec grants a container, in the runtime's own terms: the directories it sees
//! (volume mounts) and the resources it may use. The node agent builds these from the pod; both
//! sandboxes read them: the Wasm sandbox as preopened directories and store limits, the Linux
//! fallback (runc) as bind mounts and cgroup settings.

use std::path::PathBuf;

/// One directory of the node given to a container (a `volumeMounts` entry, resolved by the
/// agent to the volume's directory on the node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory on the node (emptyDir, hostPath, or the agent's projection of a
    /// ConfigMap / Secret).
    pub host_path: PathBuf,
    /// Where the container sees it (`mountPath`, absolute).
    pub container_path: String,
    /// `readOnly`: the container may read but never create, change or delete anything below.
    pub read_only: bool,
}

/// `resources.limits` of a container, already parsed from Kubernetes quantities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `limits.memory` in bytes.
    pub memory_bytes: Option<u64>,
    /// `limits.cpu` in millicores (1000 = one core).
    pub cpu_millis: Option<u64>,
}
