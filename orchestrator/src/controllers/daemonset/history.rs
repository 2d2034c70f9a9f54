//! A DaemonSet's history: one ControllerRevision per pod template, named `<ds>-<hash>`, whose
//! `data` is the strategic merge patch that restores that template (`{"spec": {"template":
//! {..., "$patch": "replace"}}}`): `kubectl rollout undo` applies it as it is, and
//! `rollout history` reads the template back out of it. A template that comes back (an undo)
//! reuses its revision object with a new, highest `revision` number, as upstream's
//! `dedupCurHistories`/`constructHistory` do, so history never holds the same template twice.

use std::{collections::HashSet, sync::Arc};

use serde_json::{Value, json};
use tracing::{info, warn};

use super::placement::REVISION_HASH;
use crate::{
    api::{ResourceType, meta, patch::PatchType},
    client::Client,
    controllers::template_hash,
};

/// The restoring patch of the DaemonSet's current template.
pub fn patch_of(ds: &Value) -> Value {
    let mut template = ds["spec"]["template"].clone();
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// A revision's number.
pub fn number(cr: &Value) -> i64 {
    cr["revision"].as_i64().unwrap_or(0)
}

/// The hash a revision's pods are labelled with.
pub fn hash_of(cr: &Value) -> &str {
    cr["metadata"]["labels"][REVISION_HASH].as_str().unwrap_or("")
}

/// The revisions `ds` controls.
pub fn owned<'a>(ds: &Value, all: &'a [Arc<Value>]) -> Vec<&'a Value> {
    let uid = meta::uid(ds);
    all.iter()
        .map(|cr| &**cr)
        .filter(|cr| meta::controller_ref(cr).is_some_and(|r| r["uid"] == uid) && !meta::is_terminating(cr))
        .collect()
}

/// Make sure the current template has the highest revision; returns its hash.
pub async fn sync_current(
    client: &Client,
    cr_type: &ResourceType,
    ds: &Value,
    owned: &[&Value],
) -> Option<String> {
    let data = patch_of(ds);
    let max = owned.iter().map(|cr| number(cr)).max().unwrap_or(0);
    if let Some(existing) = owned.iter().find(|cr| cr["data"] == data) {
        if number(existing) < max {
            bump(client, cr_type, existing, max + 1).await;
        }
        let hash = hash_of(existing);
        return Some(if hash.is_empty() { template_hash(&ds["spec"]["template"]) } else { hash.to_string() });
    }
    let hash = template_hash(&ds["spec"]["template"]);
    let mut labels = ds["spec"]["template"]["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(REVISION_HASH.into(), json!(hash));
    let name = format!("{}-{hash}", meta::name(ds));
    let cr = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        // The DaemonSet's annotations, as upstream copies them: `kubernetes.io/change-cause`
        // is the CHANGE-CAUSE column of `rollout history`.
        "metadata": {"name": name, "namespace": meta::namespace(ds), "labels": labels,
            "annotations": ds["metadata"]["annotations"].as_object().cloned().unwrap_or_default(),
            "ownerReferences": [meta::owner_reference(ds)]},
        "data": data, "revision": max + 1,
    });
    match client.create(cr_type, Some(meta::namespace(ds)), &cr).await {
        Ok(_) => {
            info!(revision = max + 1, name, "created controller revision");
            Some(hash)
        }
        // Created by an earlier round the cache does not show yet: the same template.
        Err(e) if e.is_conflict() || e.code == 409 => {
            match client.get(cr_type, Some(meta::namespace(ds)), &name).await {
                Ok(found) if found["data"] == data => Some(hash),
                Ok(_) => {
                    warn!(name, "a controller revision of another template has this name");
                    None
                }
                Err(e) => {
                    warn!(error = %e, name, "reading controller revision failed");
                    None
                }
            }
        }
        Err(e) => {
            warn!(error = %e, name, "creating controller revision failed");
            None
        }
    }
}

/// An older template became current again: give its revision the next number.
async fn bump(client: &Client, cr_type: &ResourceType, cr: &Value, revision: i64) {
    let patch = json!({"revision": revision});
    match client
        .patch(cr_type, Some(meta::namespace(cr)), meta::name(cr), None, PatchType::Merge, &patch)
        .await
    {
        Ok(_) => info!(name = meta::name(cr), revision, "template is current again"),
        Err(e) => warn!(error = %e, name = meta::name(cr), "renumbering controller revision failed"),
    }
}

/// The old revisions to delete beyond `limit`, oldest first, sparing any a live pod still runs.
pub fn beyond_limit<'a>(
    owned: &[&'a Value],
    current: &str,
    live: &HashSet<&str>,
    limit: usize,
) -> Vec<&'a Value> {
    let mut old: Vec<&Value> = owned.iter().copied().filter(|cr| hash_of(cr) != current).collect();
    let Some(excess) = old.len().checked_sub(limit).filter(|n| *n > 0) else {
        return Vec::new();
    };
    old.sort_by_key(|cr| number(cr));
    old.into_iter().filter(|cr| !live.contains(hash_of(cr))).take(excess).collect()
}

/// Delete revisions past the DaemonSet's `revisionHistoryLimit`.
pub async fn truncate(client: &Client, cr_type: &ResourceType, ds: &Value, doomed: Vec<&Value>) {
    for cr in doomed {
        match client.delete(cr_type, Some(meta::namespace(ds)), meta::name(cr), None).await {
            Ok(_) => info!(name = meta::name(cr), "deleted old controller revision"),
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(error = %e, name = meta::name(cr), "deleting controller revision failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(hash: &str, revision: i64) -> Value {
        json!({"metadata": {"name": hash, "labels": {REVISION_HASH: hash}}, "revision": revision})
    }

    #[test]
    fn the_patch_replaces_the_whole_template() {
        let ds = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}, "updateStrategy": {}}});
        assert_eq!(
            patch_of(&ds),
            json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}, "$patch": "replace"}}})
        );
    }

    #[test]
    fn history_past_the_limit_goes_oldest_first_unless_a_pod_runs_it() {
        let (a, b, c, d) = (cr("a", 1), cr("b", 2), cr("c", 3), cr("d", 4));
        let owned = [&a, &b, &c, &d];
        let names = |v: Vec<&Value>| v.iter().map(|cr| meta::name(cr).to_string()).collect::<Vec<_>>();
        assert_eq!(names(beyond_limit(&owned, "d", &HashSet::new(), 1)), ["a", "b"]);
        assert_eq!(names(beyond_limit(&owned, "d", &HashSet::from(["a"]), 1)), ["b", "c"]);
        assert!(beyond_limit(&owned, "d", &HashSet::new(), 3).is_empty());
        assert_eq!(names(beyond_limit(&owned, "d", &HashSet::new(), 0)), ["a", "b", "c"]);
    }
}
