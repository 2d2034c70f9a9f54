//! Which kinds own which (ownerReferences the garbage collector follows), shared by the API
//! server (should a Foreground/Orphan delete wait for dependents?) and the collector itself.

/// Ownership edges: (owner apiVersion, owner kind, dependent apiVersion, dependent kind).
pub const EDGES: &[(&str, &str, &str, &str)] = &[
    ("apps/v1", "Deployment", "apps/v1", "ReplicaSet"),
    ("apps/v1", "ReplicaSet", "v1", "Pod"),
    ("apps/v1", "DaemonSet", "v1", "Pod"),
    ("apps/v1", "DaemonSet", "apps/v1", "ControllerRevision"),
    ("v1", "ReplicationController", "v1", "Pod"),
    ("batch/v1", "Job", "v1", "Pod"),
    ("batch/v1", "CronJob", "batch/v1", "Job"),
    ("v1", "Service", "discovery.k8s.io/v1", "EndpointSlice"),
];

/// The finalizer a Foreground delete puts on the owner until its dependents are gone.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer an Orphan delete puts on the owner until its dependents no longer point at it.
pub const ORPHAN: &str = "orphan";

/// Can objects of this kind have dependents the collector tracks?
pub fn is_owner_kind(kind: &str) -> bool {
    EDGES.iter().any(|(_, owner, _, _)| *owner == kind)
}

/// The dependent kinds of an owner kind.
pub fn dependents_of(kind: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    EDGES.iter().filter(move |(_, owner, _, _)| *owner == kind).map(|(_, _, av, k)| (*av, *k))
}
