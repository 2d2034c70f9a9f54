//! The Deployment controller's writes to its ReplicaSets: creating the one for the current
//! template, scaling with the Event kubectl users read, keeping the revision and the
//! annotations copied from the Deployment current, and deleting history past
//! `revisionHistoryLimit`.

use serde_json::{Map, Value, json};
use tracing::{info, warn};

use super::{REVISION, replicas, revision, status_count};
use crate::{
    api::{ResourceType, meta, patch::PatchType},
    client::Client,
    controllers::events::{EventKind, record},
};

const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const COMPONENT: &str = "deployment-controller";

/// Deployment annotations a ReplicaSet does not inherit (upstream's `annotationsToSkip`).
fn skipped(key: &str) -> bool {
    matches!(
        key,
        "kubectl.kubernetes.io/last-applied-configuration"
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | "deprecated.deployment.rollback.to"
    )
}

/// The annotations a ReplicaSet of `d` carries besides its revision: the Deployment's own
/// (`kubernetes.io/change-cause` is what `rollout history` shows) and the replica counts.
fn inherited_annotations(d: &Value, max_surge: i64) -> Map<String, Value> {
    let mut out: Map<String, Value> = d["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !skipped(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(DESIRED_REPLICAS.into(), json!(replicas(d).to_string()));
    out.insert(MAX_REPLICAS.into(), json!((replicas(d) + max_surge).to_string()));
    out
}

/// Who writes and what for: the handles every write needs.
pub struct Writer<'a> {
    pub client: &'a Client,
    pub rs_type: &'static ResourceType,
    pub d: &'a Value,
    /// Resolved maxSurge (0 for Recreate), for the max-replicas annotation.
    pub max_surge: i64,
}

impl Writer<'_> {
    /// Create the ReplicaSet for the current template with `count` pods.
    pub async fn create(&self, hash: &str, revision: i64, count: i64) -> Option<Value> {
        let d = self.d;
        let mut template = d["spec"]["template"].clone();
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut annotations = inherited_annotations(d, self.max_surge);
        annotations.insert(REVISION.into(), json!(revision.to_string()));
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{}-{hash}", meta::name(d)), "namespace": meta::namespace(d),
                "labels": template["metadata"]["labels"], "annotations": annotations,
                "ownerReferences": [meta::owner_reference(d)],
            },
            "spec": {"replicas": count, "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector, "template": template},
        });
        match self.client.create(self.rs_type, Some(meta::namespace(d)), &rs).await {
            Ok(created) => {
                info!(replicaset = meta::name(&created), "created replicaset");
                let message = format!("Scaled up replica set {} from 0 to {count}", meta::name(&created));
                record(self.client, d, EventKind::Normal, "ScalingReplicaSet", &message, COMPONENT).await;
                Some(created)
            }
            // Created by an earlier round whose result the cache has not shown yet.
            Err(e) if e.is_conflict() => self
                .client
                .get_opt(self.rs_type, Some(meta::namespace(d)), meta::name(&rs))
                .await
                .ok()
                .flatten(),
            Err(e) => {
                warn!(error = %e, "creating replicaset failed");
                let message = format!("Failed to create new replica set \"{}\": {e}", meta::name(&rs));
                record(self.client, d, EventKind::Warning, "FailedCreate", &message, COMPONENT).await;
                None
            }
        }
    }

    /// Bring the current template's existing ReplicaSet up to date: it becomes the newest
    /// revision (a rollback to an older template reuses its set), inherits the Deployment's
    /// annotations and `minReadySeconds`.
    pub async fn adopt_as_new(&self, rs: &Value, newest_old_revision: i64) -> Option<Value> {
        let d = self.d;
        let mut annotations = Map::new();
        let current = revision(rs);
        if current <= newest_old_revision {
            annotations.insert(REVISION.into(), json!((newest_old_revision + 1).to_string()));
            let history = match rs["metadata"]["annotations"][REVISION_HISTORY].as_str() {
                Some(h) if !h.is_empty() => format!("{h},{current}"),
                _ => current.to_string(),
            };
            annotations.insert(REVISION_HISTORY.into(), json!(history));
        }
        for (k, v) in inherited_annotations(d, self.max_surge) {
            // Replica counts are refreshed when scaling, not on their own.
            if k != DESIRED_REPLICAS && k != MAX_REPLICAS && rs["metadata"]["annotations"][&k] != v {
                annotations.insert(k, v);
            }
        }
        let min_ready = d["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let mut patch = json!({});
        if !annotations.is_empty() {
            patch["metadata"] = json!({"annotations": annotations});
        }
        if rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready {
            patch["spec"] = json!({"minReadySeconds": min_ready});
        }
        if patch.as_object().is_some_and(Map::is_empty) {
            return Some(rs.clone());
        }
        self.patch(rs, &patch, "updating the new replicaset failed").await
    }

    /// Scale `rs` to `count`, with upstream's ScalingReplicaSet Event.
    pub async fn scale(&self, rs: &Value, count: i64) -> Option<Value> {
        let from = replicas(rs);
        if from == count {
            return Some(rs.clone());
        }
        let annotations = json!({
            DESIRED_REPLICAS: replicas(self.d).to_string(),
            MAX_REPLICAS: (replicas(self.d) + self.max_surge).to_string(),
        });
        let patch = json!({"metadata": {"annotations": annotations}, "spec": {"replicas": count}});
        let updated = self.patch(rs, &patch, "scaling replicaset failed").await?;
        let direction = if count > from { "up" } else { "down" };
        let message = format!("Scaled {direction} replica set {} from {from} to {count}", meta::name(rs));
        record(self.client, self.d, EventKind::Normal, "ScalingReplicaSet", &message, COMPONENT).await;
        Some(updated)
    }

    async fn patch(&self, rs: &Value, patch: &Value, failure: &str) -> Option<Value> {
        let ns = Some(meta::namespace(rs));
        match self.client.patch(self.rs_type, ns, meta::name(rs), None, PatchType::Merge, patch).await {
            Ok(updated) => Some(updated),
            Err(e) => {
                warn!(error = %e, replicaset = meta::name(rs), "{failure}");
                None
            }
        }
    }

    /// Delete the oldest scaled-down ReplicaSets beyond `revisionHistoryLimit` (default 10).
    pub async fn clean_up_history(&self, olds: &[&Value]) {
        let limit = self.d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10).max(0) as usize;
        let mut idle: Vec<&Value> = olds
            .iter()
            .copied()
            .filter(|rs| replicas(rs) == 0 && status_count(rs, "replicas") == 0 && !meta::is_terminating(rs))
            .collect();
        if idle.len() <= limit {
            return;
        }
        idle.sort_by_key(|rs| revision(rs));
        for rs in &idle[..idle.len() - limit] {
            match self.client.delete(self.rs_type, Some(meta::namespace(rs)), meta::name(rs), None).await {
                Ok(_) => {
                    info!(replicaset = meta::name(rs), "deleted replicaset past the revision history limit")
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(error = %e, replicaset = meta::name(rs), "deleting old replicaset failed"),
            }
        }
    }
}
