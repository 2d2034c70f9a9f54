//! The agent's side of the Linux fallback: a pulled `linux/amd64` image is unpacked by
//! `wasm_runtime::linux` and its containers run with runc. Restarts, stop and grace period,
//! status and logs are the Wasm path's own (`ContainerTask::supervise`); this file only turns
//! the Pod spec into a [`LinuxSpec`] and says which runtime was chosen and why.

use std::{sync::Mutex, time::Duration};

use serde_json::Value;
use wasm_runtime::linux::{LayerBlob, LinuxImage, LinuxSpec, PreparedImage, ProcessOverrides};

use super::container::{ContainerTask, Grants, StartFailure};
use crate::{api::meta, controllers::events::EventKind};

/// What a pulled image runs as.
#[derive(Clone)]
pub(super) enum Runnable {
    /// A Wasm component in the node's wasmtime engine.
    Wasm(wasm_runtime::LoadedComponent),
    /// A Linux image under runc.
    Linux(PreparedImage),
}

impl ContainerTask {
    /// Unpacks a Linux image (once per node) and tells the user it will run under runc.
    pub(super) async fn prepare_linux(
        &self,
        image: &oci_fetch::PulledImage,
    ) -> Result<Runnable, StartFailure> {
        let oci_fetch::Artifact::Linux { manifest_digest, config_digest, layer_digests } = &image.artifact
        else {
            return Err(StartFailure { reason: "CreateContainerError", message: "not a Linux image".into() });
        };
        let blob = |digest: &str| {
            self.ctx.images.blob_path(digest).map_err(|e| StartFailure {
                reason: "CreateContainerError",
                message: format!("image \"{}\": {e}", self.image()),
            })
        };
        let mut layers = Vec::with_capacity(layer_digests.len());
        for digest in layer_digests {
            layers.push(LayerBlob { digest: digest.clone(), path: blob(digest)? });
        }
        let linux = LinuxImage {
            manifest_digest: manifest_digest.clone(),
            config_path: blob(config_digest)?,
            layers,
        };
        let prepared = self.ctx.linux.prepare(linux).await.map_err(|e| StartFailure {
            reason: "CreateContainerError",
            message: format!("image \"{}\" cannot be unpacked: {e}", self.image()),
        })?;
        self.event(
            EventKind::Normal,
            "RuntimeSelected",
            &format!(
                "image \"{}\" is a linux/amd64 image, not Wasm: running it with runc (host network until pods get their own)",
                self.image()
            ),
        )
        .await;
        Ok(Runnable::Linux(prepared))
    }

    /// One run of a Linux container; the same contract as `run_once` for Wasm.
    pub(super) async fn run_linux(
        &self,
        image: &PreparedImage,
        restart: u32,
        grants: Grants,
        grace: &Mutex<Duration>,
    ) -> Option<(i32, Duration)> {
        let ns = meta::namespace(&self.pod);
        let pod_name = meta::name(&self.pod);
        let uid = meta::uid(&self.pod);
        let log_path = self.ctx.logs.path_for(ns, pod_name, uid, self.name(), restart);
        let id = format!("{uid}-{}-{restart}", self.name());
        let mut mounts = grants.mounts;
        match self.resolv_conf() {
            Ok(mount) => mounts.push(mount),
            Err(message) => {
                let failed = async { Err(wasm_runtime::RuntimeError::Runc(message)) };
                return self.supervise(failed, format!("runc://{id}"), &log_path, grace).await;
            }
        }
        let spec = LinuxSpec {
            id: id.clone(),
            hostname: pod_name.chars().take(63).collect(),
            process: process_overrides(&self.pod, &self.spec, grants.env),
            read_only_rootfs: self.spec["securityContext"]["readOnlyRootFilesystem"]
                .as_bool()
                .unwrap_or(false),
            // The pod's volumes, as bind mounts: the same directories Wasm containers get as
            // preopens, so containers of both kinds share them.
            mounts,
            limits: grants.limits,
            log_path: log_path.clone(),
        };
        let start = self.ctx.linux.start(image, spec);
        self.supervise(start, format!("runc://{id}"), &log_path, grace).await
    }
}

impl ContainerTask {
    /// The pod's resolv.conf (from its dnsPolicy and dnsConfig, see `dns::resolv_conf`),
    /// written beside its volumes and bind-mounted read-only at /etc/resolv.conf.
    fn resolv_conf(&self) -> Result<wasm_runtime::Mount, String> {
        let text = self.ctx.dns.pod_resolv_conf(&self.pod)?;
        let dir = super::volumes::pod_dir(&self.ctx.pods_dir, meta::uid(&self.pod));
        let path = dir.join("resolv.conf");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(wasm_runtime::Mount {
            host_path: path,
            container_path: "/etc/resolv.conf".into(),
            read_only: true,
        })
    }
}

/// command/args/env/workingDir/runAsUser/runAsGroup of a container (the container's
/// securityContext first, then the pod's).
fn process_overrides(pod: &Value, container: &Value, env: Vec<(String, String)>) -> ProcessOverrides {
    let strings = |v: &Value| -> Option<Vec<String>> {
        let list: Vec<String> = v.as_array()?.iter().filter_map(|s| s.as_str().map(str::to_string)).collect();
        (!list.is_empty()).then_some(list)
    };
    let security = |field: &str| {
        container["securityContext"][field]
            .as_u64()
            .or_else(|| pod["spec"]["securityContext"][field].as_u64())
            .and_then(|id| u32::try_from(id).ok())
    };
    ProcessOverrides {
        command: strings(&container["command"]),
        args: strings(&container["args"]),
        env,
        working_dir: container["workingDir"].as_str().filter(|d| !d.is_empty()).map(str::to_string),
        run_as_user: security("runAsUser"),
        run_as_group: security("runAsGroup"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_spec_becomes_process_overrides() {
        let pod = json!({"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000}}});
        let container = json!({
            "command": ["sh", "-c"], "args": ["echo hi"], "workingDir": "/srv",
            "securityContext": {"runAsUser": 2000},
        });
        let o = process_overrides(&pod, &container, vec![("A".into(), "1".into())]);
        assert_eq!(o.command, Some(vec!["sh".to_string(), "-c".to_string()]));
        assert_eq!(o.args, Some(vec!["echo hi".to_string()]));
        assert_eq!((o.run_as_user, o.run_as_group), (Some(2000), Some(3000)));
        assert_eq!(o.working_dir.as_deref(), Some("/srv"));
        let bare = process_overrides(&json!({}), &json!({"command": []}), vec![]);
        assert_eq!((bare.command, bare.args, bare.run_as_user), (None, None, None));
    }
}
