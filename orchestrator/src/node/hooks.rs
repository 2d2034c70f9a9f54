//! The `preStop` lifecycle hook, run when a container is about to be stopped (the pod is
//! deleted, or a probe ends the run): `sleep`, `httpGet` or `tcpSocket`, all within the
//! termination grace period, as kubelet does. What a rolling update needs: a pod leaving the
//! endpoints keeps serving requests routed to it before everyone saw it go.
//!
//! `exec` hooks run in Linux containers (`runc exec`); a Wasm container has no process to run a
//! command in, so there they fail with an Event saying so, and the stop goes on. `postStart` is
//! not run yet.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::info;

use wasm_runtime::linux::ExecHandle;

use super::{container::ContainerTask, probes::run_handler};
use crate::controllers::events::EventKind;

/// The least time the container gets to stop after a hook used up the grace period (kubelet's
/// `minimumGracePeriodInSeconds`).
const MIN_GRACE_AFTER_HOOK: Duration = Duration::from_secs(2);

impl ContainerTask {
    /// Run the container's `preStop` hook, if any, within `grace`; returns the grace left for
    /// stopping the container itself.
    pub(super) async fn pre_stop(&self, grace: Duration, exec: Option<&ExecHandle>) -> Duration {
        let hook = &self.spec["lifecycle"]["preStop"];
        if !hook.is_object() {
            return grace;
        }
        let began = Instant::now();
        let run = self.run_pre_stop(hook, grace, exec);
        let outcome = match tokio::time::timeout(grace, run).await {
            Ok(result) => result,
            Err(_) => Err(format!("the hook did not finish within the grace period of {}s", grace.as_secs())),
        };
        if let Err(message) = outcome {
            info!(%message, "preStop hook failed");
            self.event(EventKind::Warning, "FailedPreStopHook", &format!("PreStopHook failed: {message}"))
                .await;
        }
        if grace.is_zero() {
            return grace;
        }
        grace.saturating_sub(began.elapsed()).max(MIN_GRACE_AFTER_HOOK)
    }

    async fn run_pre_stop(
        &self,
        hook: &Value,
        grace: Duration,
        exec: Option<&ExecHandle>,
    ) -> Result<(), String> {
        if let Some(sleep) = hook.get("sleep") {
            let seconds =
                sleep["seconds"].as_u64().ok_or("sleep.seconds must be a whole number of seconds")?;
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            return Ok(());
        }
        if ["httpGet", "tcpSocket", "exec"].iter().any(|h| hook.get(*h).is_some()) {
            return run_handler(hook, &self.spec, exec, self.pod_ip, grace).await;
        }
        Err("the hook has no handler (sleep, httpGet, tcpSocket or exec)".into())
    }
}
