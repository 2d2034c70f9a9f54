//! `metadata.managedFields`: who owns which fields. Decoding and encoding the entries (sorted as
//! kube-apiserver sorts them), the fields nobody owns (system metadata, and what an endpoint does
//! not write), and the bookkeeping of ordinary writes ([`track_update`]): what a create, update
//! or patch changed becomes its manager's and is taken from every other manager.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, PathElement};
use super::walk;
use crate::meta;

/// Update entries kept before the oldest are folded into one (upstream's default).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager the oldest update entries are folded into.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Who writes, through which endpoint, and when.
#[derive(Debug, Clone)]
pub struct FieldManager {
    /// The `fieldManager` of the request (or the User-Agent prefix); "" becomes `unknown`.
    pub name: String,
    /// `status` or `scale` for writes through a subresource.
    pub subresource: Option<String>,
    /// The apiVersion the fields are tracked in (`apps/v1`).
    pub api_version: String,
    /// Whether the kind writes `status` only through `/status` (so the main endpoint owns none).
    pub status_subresource: bool,
    /// The write's time, as `metav1.Time`.
    pub now: String,
}

/// How an entry came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// What makes two entries the same manager: name, operation, subresource, and for updates the
/// apiVersion (an applier keeps its entry whatever version it applies in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ManagerId {
    manager: String,
    operation: Operation,
    api_version: String,
    subresource: String,
}

impl ManagerId {
    pub(super) fn new(who: &FieldManager, operation: Operation) -> Self {
        Self::from_parts(&who.name, operation, &who.api_version, who.subresource.as_deref().unwrap_or(""))
    }

    fn from_parts(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Self {
        Self {
            manager: if manager.is_empty() { "unknown".into() } else { manager.into() },
            operation,
            api_version: if operation == Operation::Apply { String::new() } else { api_version.into() },
            subresource: subresource.into(),
        }
    }

    /// As conflict messages name it: `"kubectl" with subresource "scale" using apps/v1`.
    pub(super) fn describe(&self) -> String {
        let mut out = json!(self.manager).to_string();
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {}", json!(self.subresource)));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub id: ManagerId,
    pub api_version: String,
    pub time: Option<String>,
    pub set: FieldSet,
}

/// All entries of an object.
#[derive(Debug, Clone, Default)]
pub(super) struct Managers {
    entries: Vec<Entry>,
}

impl Managers {
    /// Parse `metadata.managedFields` (absent or null: none). An entry with another operation,
    /// no apiVersion, another fieldsType or malformed fields makes the whole list invalid.
    pub(super) fn decode(value: Option<&Value>) -> Result<Self, String> {
        let mut out = Self::default();
        let list = match value {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Array(list)) => list,
            Some(_) => return Err("managedFields must be a list".into()),
        };
        for (i, entry) in list.iter().enumerate() {
            let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or("");
            let operation = match text("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err(format!("managedFields[{i}]: operation must be `Apply` or `Update`")),
            };
            if text("apiVersion").is_empty() {
                return Err(format!("managedFields[{i}]: apiVersion must not be empty"));
            }
            if text("fieldsType") != "FieldsV1" {
                return Err(format!("managedFields[{i}]: fieldsType must be FieldsV1"));
            }
            let set = match entry.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::default(),
                Some(v1) => FieldSet::from_fields_v1(v1).map_err(|e| format!("managedFields[{i}]: {e}"))?,
            };
            out.put(Entry {
                id: ManagerId::from_parts(
                    text("manager"),
                    operation,
                    text("apiVersion"),
                    text("subresource"),
                ),
                api_version: text("apiVersion").to_string(),
                time: entry.get("time").and_then(Value::as_str).map(str::to_string),
                set,
            });
        }
        Ok(out)
    }

    /// The live object's entries; what cannot be read is dropped rather than failing a write
    /// (only this module writes them, so that means a bug or a hand-edited store).
    pub(super) fn of(obj: Option<&Value>) -> Self {
        Self::decode(obj.and_then(|o| o.pointer("/metadata/managedFields"))).unwrap_or_default()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Take an entry out.
    pub(super) fn take(&mut self, id: &ManagerId) -> Option<Entry> {
        let pos = self.entries.iter().position(|e| e.id == *id)?;
        Some(self.entries.remove(pos))
    }

    /// Add an entry, replacing one of the same manager.
    pub(super) fn put(&mut self, entry: Entry) {
        self.take(&entry.id);
        self.entries.push(entry);
    }

    pub(super) fn get_mut(&mut self, id: &ManagerId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == *id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }

    /// Everything anyone owns.
    pub(super) fn owned(&self) -> FieldSet {
        self.entries.iter().fold(FieldSet::default(), |acc, e| acc.union(&e.set))
    }

    /// Drop system fields from every set, then the entries left with nothing.
    pub(super) fn finish(&mut self) {
        let system = system_fields();
        for e in &mut self.entries {
            e.set = e.set.difference(&system);
        }
        self.entries.retain(|e| !e.set.is_empty());
        self.cap_updates(MAX_UPDATE_MANAGERS);
    }

    /// Fold the oldest update entries into `ancient-changes` until at most `max` are left, so
    /// writers with ever-new names cannot grow the object without bound.
    fn cap_updates(&mut self, max: usize) {
        let is_bucket = |e: &Entry| e.id.manager == ANCIENT_CHANGES && e.id.subresource.is_empty();
        while self.entries.iter().filter(|e| e.id.operation == Operation::Update).count() > max {
            let Some(oldest) = self.oldest_update(is_bucket) else { return };
            let folded = self.entries.remove(oldest);
            let mut bucket = match self.entries.iter().position(is_bucket) {
                Some(pos) => self.entries.remove(pos),
                None => {
                    let Some(next) = self.oldest_update(is_bucket) else {
                        self.entries.push(folded);
                        return;
                    };
                    let second = self.entries.remove(next);
                    Entry {
                        id: ManagerId::from_parts(
                            ANCIENT_CHANGES,
                            Operation::Update,
                            &second.api_version,
                            "",
                        ),
                        api_version: second.api_version,
                        time: second.time,
                        set: second.set,
                    }
                }
            };
            bucket.set = bucket.set.union(&folded.set);
            if seconds(folded.time.as_deref()) > seconds(bucket.time.as_deref()) {
                bucket.time = folded.time;
            }
            self.entries.push(bucket);
        }
    }

    /// The index of the oldest update entry that is not the bucket.
    fn oldest_update(&self, is_bucket: impl Fn(&Entry) -> bool) -> Option<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].id.operation == Operation::Update && !is_bucket(&self.entries[i]))
            .min_by_key(|&i| seconds(self.entries[i].time.as_deref()))
    }

    /// Write the entries into `obj.metadata.managedFields` (removed when there are none),
    /// sorted as upstream sorts them: appliers first, then by time, manager, version.
    pub(super) fn write_to(mut self, obj: &mut Value) {
        if !obj.is_object() {
            return;
        }
        self.entries.sort_by(|a, b| {
            (a.id.operation, seconds(a.time.as_deref()), &a.id.manager, &a.api_version, &a.id.subresource)
                .cmp(&(
                    b.id.operation,
                    seconds(b.time.as_deref()),
                    &b.id.manager,
                    &b.api_version,
                    &b.id.subresource,
                ))
        });
        let list: Vec<Value> = self.entries.iter().map(encode_entry).collect();
        let metadata = meta::metadata_mut(obj);
        if list.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn encode_entry(e: &Entry) -> Value {
    let mut out = Map::new();
    out.insert("manager".into(), json!(e.id.manager));
    out.insert("operation".into(), json!(e.id.operation.as_str()));
    out.insert("apiVersion".into(), json!(e.api_version));
    if let Some(t) = &e.time {
        out.insert("time".into(), json!(t));
    }
    out.insert("fieldsType".into(), json!("FieldsV1"));
    out.insert("fieldsV1".into(), e.set.to_fields_v1());
    if !e.id.subresource.is_empty() {
        out.insert("subresource".into(), json!(e.id.subresource));
    }
    Value::Object(out)
}

fn seconds(time: Option<&str>) -> i64 {
    time.and_then(meta::parse_time).map_or(0, |t| t.as_second())
}

fn field(name: &str) -> PathElement {
    PathElement::Field(name.into())
}

/// What the server sets and nobody owns (upstream's strip set): type meta, the `metadata`
/// object itself and its system fields.
pub(super) fn system_fields() -> FieldSet {
    let mut set = FieldSet::default();
    for top in ["apiVersion", "kind", "metadata"] {
        set.insert(&[field(top)]);
    }
    for m in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[field("metadata"), field(m)]);
    }
    set
}

/// The part of `set` a manager can own through its endpoint: the main endpoint of a kind with a
/// status subresource never writes `status`; `/status` writes only status, labels and
/// annotations (what admission keeps of such a write).
pub(super) fn trackable(set: &FieldSet, who: &FieldManager) -> FieldSet {
    let mut ignored = FieldSet::default();
    match who.subresource.as_deref() {
        None if who.status_subresource => ignored.insert(&[field("status")]),
        Some("status") => {
            let tops = set.members().chain(set.children().map(|(pe, _)| pe));
            for pe in tops.filter(|pe| **pe != field("status") && **pe != field("metadata")) {
                ignored.insert(std::slice::from_ref(pe));
            }
            if let Some(metadata) = set.child(&field("metadata")) {
                let inner = metadata.members().chain(metadata.children().map(|(pe, _)| pe));
                for pe in inner.filter(|pe| **pe != field("labels") && **pe != field("annotations")) {
                    ignored.insert(&[field("metadata"), pe.clone()]);
                }
            }
        }
        _ => {}
    }
    set.recursive_difference(&ignored)
}

/// What a create compares against: the empty object with the nested objects the upstream Go
/// types always carry, so they are not counted as added themselves (keeps the `fieldsV1` of a
/// create close to upstream's).
fn creation_baseline(new: &Value) -> Value {
    let mut base = json!({"metadata": {}});
    if new["spec"].is_object() {
        base["spec"] = json!({});
        if new["spec"]["template"].is_object() {
            base["spec"]["template"] = json!({"metadata": {}, "spec": {}});
        }
        if new["spec"]["strategy"].is_object() {
            base["spec"]["strategy"] = json!({});
        }
    }
    base
}

/// Did the client ask to clear managedFields (`[]` or `[{}]`)?
fn is_reset(sent: Option<&Value>) -> bool {
    match sent {
        Some(Value::Array(list)) => {
            list.is_empty() || (list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// Record an ordinary write (create: `old` is None; update; patch) in `new`'s managedFields.
///
/// The entries start from the live object's, or from what the client sent when it sent valid,
/// non-empty ones (`[]` or `[{}]` clears them; writes through a subresource never set them).
/// What changed is added to `who`'s Update entry (time set) and taken from every other entry;
/// what was removed is taken from everyone; entries left empty go.
pub fn track_update(old: Option<&Value>, new: &mut Value, who: &FieldManager) {
    let sent = new.pointer("/metadata/managedFields").cloned();
    let mut managers = if who.subresource.is_some() {
        Managers::of(old)
    } else if is_reset(sent.as_ref()) {
        Managers::default()
    } else {
        match Managers::decode(sent.as_ref()) {
            Ok(m) if !m.is_empty() => m,
            _ => Managers::of(old),
        }
    };
    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    let cmp = match old {
        Some(old) => walk::compare(old, new),
        None => walk::compare(&creation_baseline(new), new),
    };
    let changed = trackable(&cmp.changed(), who);
    let removed = trackable(&cmp.removed, who);
    for e in managers.iter_mut() {
        e.set = e.set.difference(&changed).difference(&removed);
    }
    if !changed.difference(&system_fields()).is_empty() {
        let id = ManagerId::new(who, Operation::Update);
        let previous = managers.take(&id).map(|e| e.set).unwrap_or_default();
        managers.put(Entry {
            id,
            api_version: who.api_version.clone(),
            time: Some(who.now.clone()),
            set: previous.union(&changed),
        });
    }
    managers.finish();
    managers.write_to(new);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn who(name: &str, subresource: Option<&str>) -> FieldManager {
        FieldManager {
            name: name.into(),
            subresource: subresource.map(str::to_string),
            api_version: "apps/v1".into(),
            status_subresource: true,
            now: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "1", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "i:1"}]}}},
            "status": {"replicas": 1}})
    }

    fn entries(obj: &Value) -> Vec<(String, String)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|e| {
                        (
                            e["manager"].as_str().unwrap_or("").to_string(),
                            e["subresource"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn create_owns_every_field_but_system_ones() {
        let mut obj = deployment();
        track_update(None, &mut obj, &who("kubectl-create", None));
        let e = &obj["metadata"]["managedFields"][0];
        assert_eq!(
            (e["manager"].as_str(), e["operation"].as_str()),
            (Some("kubectl-create"), Some("Update"))
        );
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["time"], "2026-01-01T00:00:00Z");
        let v1 = &e["fieldsV1"];
        assert_eq!(
            v1["f:metadata"],
            json!({"f:labels": {".": {}, "f:app": {}}}),
            "no name, uid, resourceVersion"
        );
        assert!(v1.get("f:status").is_none() && v1.get("f:apiVersion").is_none());
        assert_eq!(v1["f:spec"]["f:replicas"], json!({}));
        assert!(v1["f:spec"].get(".").is_none(), "spec exists in the Go zero value");
        assert_eq!(v1["f:spec"]["f:selector"], json!({}));
    }

    #[test]
    fn an_update_takes_changed_fields_from_other_managers() {
        let mut obj = deployment();
        track_update(None, &mut obj, &who("creator", None));
        let old = obj.clone();
        obj["spec"]["replicas"] = json!(5);
        track_update(Some(&old), &mut obj, &who("kubectl", Some("scale")));
        assert_eq!(entries(&obj), [("creator".into(), "".into()), ("kubectl".into(), "scale".into())]);
        let mf = &obj["metadata"]["managedFields"];
        assert!(mf[0]["fieldsV1"]["f:spec"].get("f:replicas").is_none(), "taken from the creator");
        assert_eq!(mf[1]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        // Removing a field takes it from everyone.
        let old = obj.clone();
        obj["metadata"]["labels"] = json!({});
        track_update(Some(&old), &mut obj, &who("editor", None));
        assert!(
            obj["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]
                .get("f:labels")
                .is_none_or(|l| l.get("f:app").is_none())
        );
    }

    #[test]
    fn no_change_keeps_entries_and_times() {
        let mut obj = deployment();
        track_update(None, &mut obj, &who("creator", None));
        let old = obj.clone();
        let mut later = who("other", None);
        later.now = "2027-01-01T00:00:00Z".into();
        track_update(Some(&old), &mut obj, &later);
        assert_eq!(obj["metadata"]["managedFields"], old["metadata"]["managedFields"]);
    }

    #[test]
    fn clients_can_reset_but_not_corrupt_managed_fields() {
        let mut obj = deployment();
        track_update(None, &mut obj, &who("creator", None));
        let old = obj.clone();
        for reset in [json!([]), json!([{}])] {
            let mut cleared = old.clone();
            cleared["metadata"]["managedFields"] = reset;
            track_update(Some(&old), &mut cleared, &who("x", None));
            assert!(cleared["metadata"].get("managedFields").is_none(), "{cleared}");
        }
        for garbage in [
            json!([{"manager": "m", "operation": "Delete"}]),
            json!("nope"),
            json!([{"operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"zz": {}}}]),
        ] {
            let mut bad = old.clone();
            bad["metadata"]["managedFields"] = garbage;
            track_update(Some(&old), &mut bad, &who("x", None));
            assert_eq!(
                bad["metadata"]["managedFields"], old["metadata"]["managedFields"],
                "malformed: live kept"
            );
        }
        // Valid entries a client sends replace the live ones.
        let mut replaced = old.clone();
        replaced["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Apply", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}]);
        track_update(Some(&old), &mut replaced, &who("x", None));
        assert_eq!(entries(&replaced), [("m".into(), "".into())]);
        // Through a subresource, what the client sent is ignored.
        let mut status = old.clone();
        status["metadata"]["managedFields"] = json!([]);
        status["status"]["replicas"] = json!(3);
        track_update(Some(&old), &mut status, &who("agent", Some("status")));
        // Same time: sorted by manager name.
        assert_eq!(entries(&status), [("agent".into(), "status".into()), ("creator".into(), "".into())]);
        assert_eq!(
            status["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:status": {"f:replicas": {}}})
        );
    }

    #[test]
    fn main_endpoint_never_owns_status() {
        let mut obj = deployment();
        track_update(None, &mut obj, &who("creator", None));
        let old = obj.clone();
        obj["status"]["replicas"] = json!(7);
        track_update(Some(&old), &mut obj, &who("sneaky", None));
        assert_eq!(entries(&obj), [("creator".into(), "".into())]);
    }

    #[test]
    fn update_managers_are_capped() {
        let mut obj = deployment();
        for i in 0..14 {
            let old = obj.clone();
            obj["metadata"]["labels"][format!("l{i}")] = json!("x");
            let mut w = who(&format!("writer-{i}"), None);
            w.now = format!("2026-01-01T00:00:{i:02}Z");
            track_update(Some(&old), &mut obj, &w);
        }
        let names: Vec<String> = entries(&obj).into_iter().map(|(m, _)| m).collect();
        assert_eq!(names.len(), MAX_UPDATE_MANAGERS);
        assert!(
            names.contains(&ANCIENT_CHANGES.to_string()) && names.contains(&"writer-13".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"writer-0".to_string()));
    }

    #[test]
    fn manager_descriptions_match_upstream() {
        assert_eq!(
            ManagerId::new(&who("kubectl", Some("scale")), Operation::Update).describe(),
            r#""kubectl" with subresource "scale" using apps/v1"#
        );
        assert_eq!(ManagerId::new(&who("kubectl", None), Operation::Apply).describe(), r#""kubectl""#);
        assert_eq!(
            ManagerId::new(&who("", None), Operation::Update).describe(),
            r#""unknown" using apps/v1"#
        );
    }
}
