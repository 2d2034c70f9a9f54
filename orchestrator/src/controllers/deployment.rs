//! The Deployment controller: one ReplicaSet per pod template (named by its template hash),
//! scaled to the desired count, older ReplicaSets scaled down as the new one becomes available,
//! and the Deployment's status and revision annotation kept current.
//!
//! Rolling-update tuning (maxSurge/maxUnavailable, progress deadlines, pause) is a later step:
//! here the new ReplicaSet gets the full count at once and old ones keep only what is needed to
//! cover pods of the new one that are not yet available.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tracing::{info, instrument, warn};

use super::{
    events::{EventKind, record},
    template_hash,
};
use crate::{
    api::{ResourceType, find_by_kind, meta, patch::PatchType},
    client::{Client, informer},
};

const REVISION: &str = "deployment.kubernetes.io/revision";

/// Run the controller until the process ends.
pub async fn run(client: Client) {
    let (Some(deploy_type), Some(rs_type)) =
        (find_by_kind("apps/v1", "Deployment"), find_by_kind("apps/v1", "ReplicaSet"))
    else {
        return;
    };
    let changed = Arc::new(Notify::new());
    let deployments = informer::spawn(client.clone(), deploy_type, None, changed.clone());
    let replicasets = informer::spawn(client.clone(), rs_type, None, changed.clone());
    deployments.wait_synced().await;
    replicasets.wait_synced().await;
    loop {
        let sets = replicasets.list();
        for d in deployments.list().iter().filter(|d| !meta::is_terminating(d)) {
            reconcile(&client, deploy_type, rs_type, d, &sets).await;
        }
        crate::controllers::wait_for_change(&changed).await;
    }
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION].as_str().and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn status_count(obj: &Value, field: &str) -> i64 {
    obj["status"][field].as_i64().unwrap_or(0)
}

#[instrument(skip_all, fields(deployment = %meta::key_of(d)))]
async fn reconcile(
    client: &Client,
    deploy_type: &ResourceType,
    rs_type: &ResourceType,
    d: &Value,
    all_sets: &[Arc<Value>],
) {
    let ns = meta::namespace(d);
    let uid = meta::uid(d);
    let owned: Vec<&Value> = all_sets
        .iter()
        .map(|rs| &**rs)
        .filter(|rs| meta::controller_ref(rs).is_some_and(|r| r["uid"] == uid) && !meta::is_terminating(rs))
        .collect();
    let hash = template_hash(&d["spec"]["template"]);
    let desired = replicas(d);
    let max_revision = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0);
    let new_rs = owned
        .iter()
        .find(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str())
        .map(|rs| (*rs).clone());
    let new_rs = match new_rs {
        Some(rs) => {
            let is_latest = revision(&rs) == max_revision;
            let mut patch = json!({});
            if replicas(&rs) != desired {
                patch["spec"] = json!({"replicas": desired});
            }
            if !is_latest {
                // Rolling back to an older template makes its ReplicaSet the newest revision.
                patch["metadata"] = json!({"annotations": {REVISION: (max_revision + 1).to_string()}});
            }
            if patch.as_object().is_some_and(|p| p.is_empty()) {
                rs
            } else {
                match client.patch(rs_type, Some(ns), meta::name(&rs), None, PatchType::Merge, &patch).await {
                    Ok(updated) => {
                        if replicas(&rs) != desired {
                            record(
                                client,
                                d,
                                EventKind::Normal,
                                "ScalingReplicaSet",
                                &format!(
                                    "Scaled {} replica set {} from {} to {desired}",
                                    if desired > replicas(&rs) { "up" } else { "down" },
                                    meta::name(&rs),
                                    replicas(&rs)
                                ),
                                "deployment-controller",
                            )
                            .await;
                        }
                        updated
                    }
                    Err(e) => {
                        warn!(error = %e, "scaling replicaset failed");
                        return;
                    }
                }
            }
        }
        None => match create_replicaset(client, rs_type, d, &hash, max_revision + 1).await {
            Some(rs) => rs,
            None => return,
        },
    };
    // Old ReplicaSets keep just enough pods to cover the new one's unavailable ones.
    let mut allowance = (desired - status_count(&new_rs, "availableReplicas")).max(0);
    let mut olds: Vec<&&Value> = owned.iter().filter(|rs| meta::uid(rs) != meta::uid(&new_rs)).collect();
    olds.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
    for old in olds {
        let keep = allowance.min(status_count(old, "availableReplicas")).min(replicas(old));
        allowance -= keep;
        if replicas(old) != keep {
            let patch = json!({"spec": {"replicas": keep}});
            match client.patch(rs_type, Some(ns), meta::name(old), None, PatchType::Merge, &patch).await {
                Ok(_) => {
                    record(
                        client,
                        d,
                        EventKind::Normal,
                        "ScalingReplicaSet",
                        &format!(
                            "Scaled down replica set {} from {} to {keep}",
                            meta::name(old),
                            replicas(old)
                        ),
                        "deployment-controller",
                    )
                    .await
                }
                Err(e) => warn!(error = %e, "scaling down old replicaset failed"),
            }
        }
    }
    update_status(client, deploy_type, d, &new_rs, &owned).await;
}

async fn create_replicaset(
    client: &Client,
    rs_type: &ResourceType,
    d: &Value,
    hash: &str,
    revision: i64,
) -> Option<Value> {
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", meta::name(d)), "namespace": meta::namespace(d), "labels": labels,
            "ownerReferences": [meta::owner_reference(d)],
            "annotations": {REVISION: revision.to_string(), "deployment.kubernetes.io/desired-replicas": replicas(d).to_string()},
        },
        "spec": {"replicas": replicas(d), "selector": selector, "template": template},
    });
    match client.create(rs_type, Some(meta::namespace(d)), &rs).await {
        Ok(created) => {
            info!(replicaset = meta::name(&created), "created replicaset");
            record(
                client,
                d,
                EventKind::Normal,
                "ScalingReplicaSet",
                &format!("Scaled up replica set {} from 0 to {}", meta::name(&created), replicas(d)),
                "deployment-controller",
            )
            .await;
            Some(created)
        }
        Err(e) if e.is_conflict() => {
            client.get_opt(rs_type, Some(meta::namespace(d)), meta::name(&rs)).await.ok().flatten()
        }
        Err(e) => {
            warn!(error = %e, "creating replicaset failed");
            None
        }
    }
}

async fn update_status(
    client: &Client,
    deploy_type: &ResourceType,
    d: &Value,
    new_rs: &Value,
    owned: &[&Value],
) {
    let desired = replicas(d);
    let sum = |field: &str| owned.iter().map(|rs| status_count(rs, field)).sum::<i64>();
    let total = sum("replicas");
    let available = sum("availableReplicas");
    let updated = status_count(new_rs, "replicas");
    let complete = updated == desired && total == desired && available == desired;
    let now = meta::now();
    let old_conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let condition = |kind: &str, status: &str, reason: &str, message: String| {
        let previous = old_conditions.iter().find(|c| c["type"] == kind);
        let transition = previous
            .filter(|c| c["status"] == status)
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(&now)
            .to_string();
        json!({"type": kind, "status": status, "reason": reason, "message": message, "lastUpdateTime": now, "lastTransitionTime": transition})
    };
    let available_condition = if available >= desired {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let progressing = if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{}\" has successfully progressed.", meta::name(new_rs)),
        )
    } else {
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{}\" is progressing.", meta::name(new_rs)),
        )
    };
    let status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "replicas": total, "updatedReplicas": updated, "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available, "unavailableReplicas": (total - available).max(0),
        "conditions": [available_condition, progressing],
    });
    let same = |k: &str| d["status"][k] == status[k];
    let conditions_same = old_conditions
        .iter()
        .map(|c| (c["type"].clone(), c["status"].clone(), c["reason"].clone()))
        .collect::<Vec<_>>()
        == status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| (c["type"].clone(), c["status"].clone(), c["reason"].clone()))
            .collect::<Vec<_>>();
    let revision_annotation = new_rs["metadata"]["annotations"][REVISION].clone();
    if [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ]
    .iter()
    .all(|k| same(k))
        && conditions_same
        && d["metadata"]["annotations"][REVISION] == revision_annotation
    {
        return;
    }
    let ns = meta::namespace(d);
    if d["metadata"]["annotations"][REVISION] != revision_annotation {
        let patch = json!({"metadata": {"annotations": {REVISION: revision_annotation}}});
        if let Err(e) =
            client.patch(deploy_type, Some(ns), meta::name(d), None, PatchType::Merge, &patch).await
        {
            warn!(error = %e, "annotating deployment revision failed");
        }
    }
    if let Err(e) = client
        .patch(
            deploy_type,
            Some(ns),
            meta::name(d),
            Some("status"),
            PatchType::Merge,
            &json!({"status": status}),
        )
        .await
    {
        if !e.is_not_found() {
            warn!(error = %e, "updating deployment status failed");
        }
    }
}
