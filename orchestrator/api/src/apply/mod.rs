//! Server-side apply and field ownership (`metadata.managedFields`), as kube-apiserver does it
//! with structured-merge-diff, over JSON objects and the list knowledge of `schema`.
//!
//! [`apply`] merges an apply configuration into the live object for one manager: fields it
//! applied before and no longer applies are removed unless someone else owns them, and a field
//! whose value it would change while another manager owns it is a conflict, unless forced (then
//! the field changes hands). [`track_update`] records ordinary creates, updates and patches.

mod fieldset;
mod managed;
mod merge;
mod walk;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

pub use fieldset::{FieldSet, PathElement, path_string};
pub use managed::{FieldManager, MAX_UPDATE_MANAGERS, track_update};

use crate::{ApiError, meta};
use managed::{Entry, ManagerId, Managers, Operation, system_fields, trackable};

/// The annotation of client-side apply, kept in step when kubectl applies server-side.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A field another manager owns and the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager, as messages name it (`"kubectl" with subresource "scale" using apps/v1`).
    pub manager: String,
    /// The field, `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be merged: list items without keys or with duplicate keys.
    #[error("{field}: {message}")]
    Invalid {
        /// Where, `.spec.containers`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The request itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
}

/// kube-apiserver's wording: one line for one conflict, a list per manager for more.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [one] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {}: {}", one.manager, one.field);
    }
    let mut lines = Vec::new();
    let mut last: Option<&str> = None;
    for c in conflicts {
        if last != Some(c.manager.as_str()) {
            lines.push(format!("conflicts with {}:", c.manager));
            last = Some(&c.manager);
        }
        lines.push(format!("- {}", c.field));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

impl ApplyError {
    /// The `Status` error for the wire; conflicts carry one `FieldManagerConflict` cause per
    /// field, which kubectl prints with its `--force-conflicts` advice.
    pub fn into_api_error(self, kind: &str, name: &str) -> ApiError {
        match self {
            Self::Conflicts(conflicts) => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| {
                        json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field})
                    })
                    .collect();
                ApiError {
                    code: 409,
                    reason: "Conflict",
                    message: conflict_message(&conflicts),
                    details: Some(json!({"causes": causes})),
                }
            }
            Self::Invalid { field, message } => ApiError::invalid(kind, name, format!("{field}: {message}")),
            Self::BadRequest(message) => ApiError::bad_request(message),
        }
    }
}

/// Apply `config` for `who` to `current` (None: the object does not exist yet) and return the
/// new object with its managedFields. `force` moves conflicting fields to `who` instead of
/// failing. The caller has checked the configuration's kind, name and namespace; admission
/// (defaults, validation) comes after.
pub fn apply(
    current: Option<&Value>,
    config: &Value,
    who: &FieldManager,
    force: bool,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::BadRequest("the apply configuration must be an object".into()));
    }
    if config.pointer("/metadata/managedFields").is_some_and(|v| !v.is_null()) {
        return Err(ApplyError::BadRequest("metadata.managedFields must be nil".into()));
    }
    let live = current.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut managers = Managers::of(current);
    let fields = walk::field_set(config)?;
    let mut merged = merge::merge(&live, config)?;
    let id = ManagerId::new(who, Operation::Apply);
    let previous = managers.take(&id);
    managers.put(Entry {
        id: id.clone(),
        api_version: who.api_version.clone(),
        time: previous.as_ref().and_then(|p| p.time.clone()),
        set: trackable(&fields.set, who),
    });
    if let Some(previous) = &previous {
        prune(&mut merged, &managers, &previous.set);
    }
    settle_ownership(&live, &merged, &mut managers, &id, who, force)?;
    walk::remove_items(&mut merged, &fields.nulls);
    if let Some(entry) = managers.get_mut(&id).filter(|_| merged != live) {
        entry.time = Some(who.now.clone());
    }
    sync_last_applied(&mut merged, config, who);
    managers.finish();
    managers.write_to(&mut merged);
    Ok(merged)
}

/// Remove what `who` applied last time and no longer does, unless some manager (`who` included,
/// through another path) still owns it. A field with owned parts below it stays; system
/// metadata always stays.
fn prune(merged: &mut Value, managers: &Managers, last: &FieldSet) {
    let owned = managers.owned().with_fields_as_members();
    let remove = last.with_fields_as_members().difference(&owned).difference(&system_fields());
    walk::remove_items(merged, &remove);
}

/// Compare the live object with the merged one: fields the apply changes that other managers
/// own are conflicts (an error unless `force`, else theirs no more); removed fields leave
/// everyone's sets.
fn settle_ownership(
    live: &Value,
    merged: &Value,
    managers: &mut Managers,
    id: &ManagerId,
    who: &FieldManager,
    force: bool,
) -> Result<(), ApplyError> {
    let cmp = walk::compare(live, merged);
    let changed = trackable(&cmp.changed(), who);
    let removed = trackable(&cmp.removed, who);
    let mut conflicts: Vec<Conflict> = managers
        .iter()
        .filter(|e| e.id != *id)
        .flat_map(|e| {
            let manager = e.id.describe();
            e.set
                .intersection(&changed)
                .paths()
                .into_iter()
                .map(move |p| Conflict { manager: manager.clone(), field: path_string(&p) })
        })
        .collect();
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for e in managers.iter_mut().filter(|e| e.id != *id) {
        e.set = e.set.difference(&changed).difference(&removed);
    }
    Ok(())
}

/// kubectl's server-side apply keeps a client-side apply annotation up to date, so switching
/// back to client-side apply sees what was applied last (upstream's lastAppliedUpdater).
fn sync_last_applied(merged: &mut Value, config: &Value, who: &FieldManager) {
    let has_annotation = merged.pointer("/metadata/annotations").and_then(|a| a.get(LAST_APPLIED)).is_some();
    if who.name != "kubectl" || !has_annotation {
        return;
    }
    let mut applied = config.clone();
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    meta::set_annotation(merged, LAST_APPLIED, &format!("{applied}\n"));
}
