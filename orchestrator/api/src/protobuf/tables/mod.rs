//! Which top-level types a protobuf body may carry, and their message tables. Node is served
//! but not here: only our own agents write Nodes, and they speak JSON.

pub mod apps;
pub mod batch;
pub mod container;
pub mod meta;
pub mod networking;
pub mod objects;
pub mod pod;
pub mod pod_status;
pub mod volumes;

use super::schema::Message;

/// A type accepted as a protobuf body.
#[derive(Debug)]
pub struct Root {
    /// `apiVersion` in the envelope.
    pub api_version: &'static str,
    /// `kind` in the envelope.
    pub kind: &'static str,
    /// Its message table.
    pub message: &'static Message,
}

/// Every type accepted as a protobuf body (besides `DeleteOptions`, see [`find`]).
pub static ROOTS: &[Root] = &[
    Root { api_version: "v1", kind: "Namespace", message: &objects::NAMESPACE },
    Root { api_version: "v1", kind: "ConfigMap", message: &objects::CONFIG_MAP },
    Root { api_version: "v1", kind: "Secret", message: &objects::SECRET },
    Root { api_version: "v1", kind: "Service", message: &objects::SERVICE },
    Root { api_version: "v1", kind: "Pod", message: &pod::POD },
    Root { api_version: "v1", kind: "Event", message: &objects::EVENT },
    Root { api_version: "v1", kind: "Binding", message: &objects::BINDING },
    Root { api_version: "apps/v1", kind: "Deployment", message: &apps::DEPLOYMENT },
    Root { api_version: "apps/v1", kind: "ReplicaSet", message: &apps::REPLICA_SET },
    Root { api_version: "autoscaling/v1", kind: "Scale", message: &apps::SCALE },
    Root { api_version: "batch/v1", kind: "Job", message: &batch::JOB },
    Root { api_version: "batch/v1", kind: "CronJob", message: &batch::CRON_JOB },
    Root { api_version: "networking.k8s.io/v1", kind: "Ingress", message: &networking::INGRESS },
    Root { api_version: "networking.k8s.io/v1", kind: "IngressClass", message: &networking::INGRESS_CLASS },
];

/// The message for an envelope's type. `DeleteOptions` is registered in every group-version
/// (a typed client for apps/v1 sends it as `apps/v1`), so any version is accepted for it.
pub fn find(api_version: &str, kind: &str) -> Option<&'static Message> {
    if kind == "DeleteOptions" {
        return Some(&meta::DELETE_OPTIONS);
    }
    ROOTS.iter().find(|r| r.api_version == api_version && r.kind == kind).map(|r| r.message)
}
