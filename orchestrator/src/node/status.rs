//! What a pod worker knows about its containers, and how that becomes `status` on the wire:
//! phase, conditions and containerStatuses with every field clients require.

use serde_json::{Value, json};

use crate::api::meta;

/// The state of one container, as Kubernetes reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not running: pulling, backing off, or unable to start.
    Waiting {
        /// ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff, ...
        reason: String,
        /// Details for the user.
        message: Option<String>,
    },
    /// Running since a time.
    Running {
        /// RFC 3339.
        started_at: String,
    },
    /// Finished.
    Terminated {
        /// Exit code.
        exit_code: i32,
        /// Completed, Error, ...
        reason: String,
        /// Details (trap message).
        message: Option<String>,
        /// RFC 3339.
        started_at: String,
        /// RFC 3339.
        finished_at: String,
    },
}

impl State {
    fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated { exit_code, reason, message, started_at, finished_at } => {
                let mut t = json!({"exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": finished_at});
                if let Some(m) = message {
                    t["message"] = json!(m);
                }
                json!({"terminated": t})
            }
        }
    }
}

/// Everything reported about one container.
#[derive(Debug, Clone)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// Image as written in the spec.
    pub image: String,
    /// Resolved image (`repo@sha256:...`), once pulled.
    pub image_id: String,
    /// Current state.
    pub state: State,
    /// The previous run's end, if any.
    pub last_state: Option<State>,
    /// Restarts so far.
    pub restart_count: u32,
    /// True when it will not run again (finished under its restart policy).
    pub done: bool,
    /// Which runtime runs it, for containerID.
    pub container_id: Option<String>,
    /// The startup probe passed this run (or there is none).
    pub started: bool,
    /// The readiness probe passes this run (or there is none).
    pub ready: bool,
}

impl ContainerState {
    /// A container about to be created.
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            state: State::Waiting { reason: "ContainerCreating".into(), message: None },
            last_state: None,
            restart_count: 0,
            done: false,
            container_id: None,
            started: false,
            ready: false,
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn is_ready(&self) -> bool {
        self.running() && self.ready
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name, "image": self.image, "imageID": self.image_id,
            "ready": self.is_ready(), "started": self.running() && self.started, "restartCount": self.restart_count,
            "state": self.state.to_json(),
            "lastState": self.last_state.as_ref().map(State::to_json).unwrap_or(json!({})),
        });
        if let Some(id) = &self.container_id {
            v["containerID"] = json!(id);
        }
        v
    }
}

/// The pod phase from its containers.
pub fn phase(containers: &[ContainerState]) -> &'static str {
    if !containers.is_empty() && containers.iter().all(|c| c.done) {
        let all_ok = containers.iter().all(|c| matches!(c.state, State::Terminated { exit_code: 0, .. }));
        return if all_ok { "Succeeded" } else { "Failed" };
    }
    let ever_ran = containers
        .iter()
        .any(|c| c.running() || c.restart_count > 0 || matches!(c.state, State::Terminated { .. }));
    if ever_ran { "Running" } else { "Pending" }
}

/// The full `status` for the pod.
pub fn pod_status(
    pod: &Value,
    containers: &[ContainerState],
    pod_ip: &str,
    host_ip: &str,
    start_time: &str,
) -> Value {
    let all_ready = !containers.is_empty() && containers.iter().all(ContainerState::is_ready);
    let old = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let now = meta::now();
    let condition = |kind: &str, ok: bool| {
        let status = if ok { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c["type"] == kind && c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(&now)
            .to_string();
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since})
    };
    // A phase never goes back: a pod that was Running before its node's agent restarted is
    // still Running while its containers are started again (as with kubelet restarts).
    let mut current = phase(containers);
    if current == "Pending" && pod["status"]["phase"] == "Running" {
        current = "Running";
    }
    json!({
        "phase": current,
        "conditions": [condition("PodScheduled", true), condition("Initialized", true), condition("ContainersReady", all_ready), condition("Ready", all_ready)],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "qosClass": "BestEffort",
        "containerStatuses": containers.iter().map(ContainerState::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminated(code: i32) -> State {
        State::Terminated {
            exit_code: code,
            reason: "x".into(),
            message: None,
            started_at: String::new(),
            finished_at: String::new(),
        }
    }

    #[test]
    fn phases() {
        let mut c = ContainerState::new("c", "i");
        assert_eq!(phase(std::slice::from_ref(&c)), "Pending");
        c.state = State::Running { started_at: meta::now() };
        assert_eq!(phase(std::slice::from_ref(&c)), "Running");
        c.state = terminated(0);
        c.done = true;
        assert_eq!(phase(std::slice::from_ref(&c)), "Succeeded");
        c.state = terminated(2);
        assert_eq!(phase(std::slice::from_ref(&c)), "Failed");
        c.done = false;
        c.state = State::Waiting { reason: "CrashLoopBackOff".into(), message: None };
        c.restart_count = 1;
        assert_eq!(phase(std::slice::from_ref(&c)), "Running");
    }

    #[test]
    fn required_fields_are_present() {
        let s = pod_status(&json!({}), &[ContainerState::new("c", "img")], "127.64.0.2", "127.0.0.1", "t");
        let cs = &s["containerStatuses"][0];
        for field in ["name", "image", "imageID", "ready", "restartCount"] {
            assert!(!cs[field].is_null(), "{field}");
        }
        assert_eq!(cs["state"]["waiting"]["reason"], "ContainerCreating");
    }
}
