//! The three PATCH flavours kubectl and client libraries send: JSON Patch (RFC 6902), JSON merge
//! patch (RFC 7386) and Kubernetes strategic merge patch (lists merged by key, `$patch`,
//! `$setElementOrder`, `$retainKeys`, `$deleteFromPrimitiveList` directives). Merge keys follow
//! the upstream `patchMergeKey` tags for the kinds we serve (the table in `schema`).

use std::collections::{HashMap, HashSet, VecDeque};

use json_patch::PatchOperation;
use serde_json::{Map, Value};

use super::{
    ApiError,
    nesting::{self, MAX_NESTING, nests_deeper_than},
    validate::MAX_BODY_BYTES,
};
use crate::schema::{smp_merge_key as merge_key, smp_merges_primitives};

/// The patch flavour named by the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
}

impl PatchType {
    /// From a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            _ => None,
        }
    }
}

/// Most operations one JSON Patch may carry (kube-apiserver's limit too).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Apply `patch` of type `kind` to `target`, returning the patched object. The result nests no
/// deeper than [`MAX_NESTING`], so it can be stored and read back.
pub fn apply(kind: PatchType, target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchType::Json => json_patch(&mut doc, patch)?,
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::Strategic => {
            let Value::Object(patch) = patch else {
                return Err(ApiError::bad_request("a strategic merge patch must be a JSON object"));
            };
            strategic_merge(&mut doc, patch, &mut Vec::new())?;
        }
    }
    // Merge results nest no deeper than their inputs; this catches a target stored before the
    // limit existed.
    if nests_deeper_than(&doc, MAX_NESTING) {
        return Err(ApiError::invalid("patch", "", nesting::too_deep("the patched object")));
    }
    Ok(doc)
}

fn json_patch_error(message: String) -> ApiError {
    ApiError::invalid("patch", "", format!("the JSON Patch could not be applied: {message}"))
}

/// RFC 6902, one operation at a time on `doc`, a copy the caller drops on error. json-patch's
/// own all-or-nothing `patch` is not used: undoing after a failed `move` panics in json-patch 5
/// (the failed move has already removed its source), and a copy needs no undo.
fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON Patch: {e}")))?;
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(json_patch_error(format!(
            "it has {} operations, the most allowed is {MAX_JSON_PATCH_OPERATIONS}",
            ops.len()
        )));
    }
    let mut budget = CopyBudget(MAX_BODY_BYTES);
    for (n, op) in ops.iter().enumerate() {
        check_growth(doc, op, &mut budget)
            .map_err(|m| json_patch_error(format!("operation '/{n}' at path '{}': {m}", op.path())))?;
        json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = n;
            json_patch_error(e.to_string())
        })?;
    }
    Ok(())
}

/// What `copy` operations of one JSON Patch may duplicate, in about JSON bytes (the request
/// body limit): without it, each `copy` of the root doubles the object, and thirty of them ask
/// for gigabytes.
struct CopyBudget(usize);

impl CopyBudget {
    /// Charge the size of `value`, walking it only as far as the budget reaches.
    fn charge(&mut self, value: &Value) -> Result<(), String> {
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            let size = match v {
                Value::String(s) => s.len() + 2,
                Value::Array(items) => {
                    stack.extend(items);
                    2 + items.len()
                }
                Value::Object(map) => {
                    stack.extend(map.values());
                    2 + map.keys().map(|k| k.len() + 4).sum::<usize>()
                }
                _ => 8,
            };
            self.0 = self.0.checked_sub(size).ok_or_else(|| {
                format!("copies would duplicate more than {MAX_BODY_BYTES} bytes in one patch")
            })?;
        }
        Ok(())
    }
}

/// Refuse an operation that would nest the document deeper than [`MAX_NESTING`] before it runs,
/// so that no intermediate document grows deep enough to be costly (or to overflow the stack
/// when it is cloned or dropped). The document is within the limit before every operation; a
/// value placed at `path` ends up `path.count()` levels down.
fn check_growth(doc: &Value, op: &PatchOperation, budget: &mut CopyBudget) -> Result<(), String> {
    let (path, value, from_depth) = match op {
        PatchOperation::Add(op) => (&op.path, &op.value, None),
        PatchOperation::Replace(op) => (&op.path, &op.value, None),
        PatchOperation::Copy(op) => match doc.pointer(op.from.as_str()) {
            Some(source) => {
                budget.charge(source)?;
                (&op.path, source, None)
            }
            None => return Ok(()), // json-patch reports the bad `from`
        },
        PatchOperation::Move(op) => match doc.pointer(op.from.as_str()) {
            Some(source) => (&op.path, source, Some(op.from.count())),
            None => return Ok(()),
        },
        PatchOperation::Remove(_) | PatchOperation::Test(_) => return Ok(()),
    };
    // A moved value nests at most MAX_NESTING - from.count() deep where it is now, so moving it
    // no deeper is safe without walking it (moves may repeat thousands of times).
    if from_depth.is_some_and(|from| path.count() <= from) {
        return Ok(());
    }
    let room = MAX_NESTING.saturating_sub(path.count());
    if path.count() > MAX_NESTING || nests_deeper_than(value, room) {
        return Err(nesting::too_deep("the patched object"));
    }
    Ok(())
}

/// A JSON value as a hashable identity. List merging compares items and merge keys this way
/// through hash maps, because comparing every patch item with every list item is quadratic: a
/// 3 MiB patch against a long list would take minutes. serde_json sorts object keys, so equal
/// values have equal text (only -0.0 and 0.0 differ, which no merge key uses).
fn identity(value: &Value) -> String {
    value.to_string()
}

fn strategic_merge(
    target: &mut Value,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(obj) = target else {
        return Ok(());
    };
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: HashSet<&str> = keep.iter().filter_map(Value::as_str).collect();
        obj.retain(|k, _| keep.contains(k.as_str()) || patch.contains_key(k));
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (obj.get_mut(field), value) {
                let remove: HashSet<String> = remove.iter().map(identity).collect();
                list.retain(|v| !remove.contains(&identity(v)));
            }
            continue;
        }
        match value {
            Value::Null => {
                obj.remove(key);
            }
            Value::Object(sub) => {
                path.push(key.clone());
                let entry = obj.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, sub, path)?;
                path.pop();
            }
            Value::Array(items) => {
                let merged = if let Some(mk) = merge_key(path, key) {
                    path.push(key.clone());
                    let current = obj.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
                    let merged = merge_keyed_list(current, items, mk, path)?;
                    path.pop();
                    merged
                } else if smp_merges_primitives(path, key) {
                    let mut current = obj.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
                    let mut seen: HashSet<String> = current.iter().map(identity).collect();
                    for item in items {
                        if seen.insert(identity(item)) {
                            current.push(item.clone());
                        }
                    }
                    current
                } else {
                    items.clone()
                };
                let order = patch.get(&format!("$setElementOrder/{key}")).and_then(Value::as_array);
                let merged = match (order, merge_key(path, key)) {
                    (Some(order), Some(mk)) => reorder(merged, order, mk),
                    _ => merged,
                };
                obj.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                obj.insert(key.clone(), scalar.clone());
            }
        }
    }
    Ok(())
}

/// Merge the items of a patch list into `current` by their merge `key`: an item with a known
/// key merges into the first list item with that key (or deletes it, with `$patch: delete`),
/// any other item is appended.
fn merge_keyed_list(
    current: Vec<Value>,
    patch: &[Value],
    key: &str,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    for item in patch {
        if !item.is_object() {
            return Err(ApiError::bad_request(format!(
                "strategic merge patch: items of {} must be objects",
                path.join(".")
            )));
        }
        if item.get("$patch").and_then(Value::as_str) == Some("replace") {
            // `$patch: replace` inside a list replaces the whole list with the other items.
            return Ok(patch.iter().filter(|i| i.get("$patch").is_none()).cloned().collect());
        }
    }
    // Deleted items leave a hole (None) so that positions stay valid; `by_key` lists, per merge
    // key, the positions of the items that have it, first first.
    let mut slots: Vec<Option<Value>> = current.into_iter().map(Some).collect();
    let mut by_key: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (pos, item) in slots.iter().enumerate() {
        if let Some(id) = item.as_ref().and_then(|i| i.get(key)) {
            by_key.entry(identity(id)).or_default().push_back(pos);
        }
    }
    for fields in patch.iter().filter_map(Value::as_object) {
        let id = fields.get(key).map(identity);
        let pos = id.as_ref().and_then(|id| by_key.get(id)).and_then(|positions| positions.front().copied());
        if fields.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let (Some(pos), Some(positions)) = (pos, id.and_then(|id| by_key.get_mut(&id))) {
                slots[pos] = None;
                positions.pop_front();
            }
            continue;
        }
        let (pos, previous_id) = match pos {
            Some(pos) => (pos, id),
            None => {
                slots.push(Some(Value::Object(Map::new())));
                (slots.len() - 1, None)
            }
        };
        let Some(item) = slots[pos].as_mut() else { continue };
        strategic_merge(item, fields, path)?;
        // Merging keeps the key's value, except that a null key is dropped; keep `by_key` true.
        let now = item.get(key).map(identity);
        if now != previous_id {
            if let Some(positions) = previous_id.and_then(|p| by_key.get_mut(&p)) {
                positions.pop_front();
            }
            if let Some(now) = now {
                let positions = by_key.entry(now).or_default();
                let at = positions.partition_point(|&p| p < pos);
                positions.insert(at, pos);
            }
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Sort `items` (stably) by where their merge key first appears in a `$setElementOrder` list;
/// items it does not name go last.
fn reorder(items: Vec<Value>, order: &[Value], key: &str) -> Vec<Value> {
    let mut rank: HashMap<Option<String>, usize> = HashMap::new();
    for (n, o) in order.iter().enumerate() {
        rank.entry(o.get(key).map(identity)).or_insert(n);
    }
    let mut ranked: Vec<(usize, Value)> = items
        .into_iter()
        .map(|item| (rank.get(&item.get(key).map(identity)).copied().unwrap_or(usize::MAX), item))
        .collect();
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
             "ports": [{"containerPort": 80}, {"containerPort": 81}]},
            {"name": "b", "image": "b:1"}
        ]}}}, "metadata": {"finalizers": ["f1"]}})
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "$patch": "delete"}],
                            "$setElementOrder/ports": [{"containerPort": 80}], "ports": [{"containerPort": 81, "$patch": "delete"}]}]}}},
            "metadata": {"finalizers": ["f2"]}});
        let out = apply(PatchType::Strategic, &deployment(), &patch).expect("patch");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "b");
        assert_eq!(containers[1]["image"], "a:2");
        assert_eq!(containers[1]["env"], json!([{"name": "X", "value": "1"}]));
        assert_eq!(containers[1]["ports"], json!([{"containerPort": 80}]));
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn strategic_null_removes_and_lists_without_key_replace() {
        let target = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["x", "y"], "image": "i"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"], "image": null}]}}}});
        let out = apply(PatchType::Strategic, &target, &patch).expect("patch");
        assert_eq!(out["spec"]["template"]["spec"]["containers"][0], json!({"name": "a", "args": ["z"]}));
    }

    #[test]
    fn merge_and_json_patch() {
        let out = apply(PatchType::Merge, &deployment(), &json!({"spec": {"replicas": 3}})).expect("merge");
        assert_eq!(out["spec"]["replicas"], 3);
        let out = apply(
            PatchType::Json,
            &deployment(),
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]),
        )
        .expect("json");
        assert_eq!(out["spec"]["replicas"], 5);
        let err = apply(PatchType::Json, &deployment(), &json!([{"op": "remove", "path": "/nope"}]))
            .expect_err("missing path");
        assert_eq!(err.code, 422);
        assert_eq!(apply(PatchType::Merge, &deployment(), &json!([1])).expect_err("array").code, 400);
    }

    /// Run `f` on another thread and fail if it takes longer than `secs`: the inputs below take
    /// about a second with the fix and many minutes without it.
    fn finishes_within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(secs)).expect("still running: quadratic again?")
    }

    #[test]
    fn json_patch_failed_move_leaves_target_and_does_not_panic() {
        // Found by fuzzing (patch_json): json-patch's undo after a move whose destination is
        // missing panicked, because the move had already removed its source.
        let target = json!({"spec": {"containers": [{"name": "c", "image": "c:1"}]}});
        let patch = json!([
            {"op": "add", "path": "/spec/containers/0", "value": {"name": "f"}},
            {"op": "replace", "path": "/spec/containers/1/image", "value": "c:2"},
            {"op": "move", "from": "/spec/containers/0", "path": "/missing/-"}
        ]);
        let err = apply(PatchType::Json, &target, &patch).expect_err("destination missing");
        assert_eq!(err.code, 422);
        assert!(err.message.contains("operation '/2'"), "{}", err.message);
    }

    #[test]
    fn json_patch_copies_are_bounded() {
        // Each copy of the root doubles the object: 40 of them would ask for 2^40 copies.
        let copy_root: Vec<Value> =
            (0..40).map(|i| json!({"op": "copy", "from": "", "path": format!("/k{i}")})).collect();
        let err = finishes_within(30, move || {
            apply(PatchType::Json, &json!({"a": "x".repeat(1000)}), &Value::Array(copy_root))
        })
        .expect_err("doubling forever");
        assert!(err.message.contains("duplicate more than"), "{}", err.message);
        // Ordinary copies pass.
        let ok = json!([{"op": "copy", "from": "/metadata/labels", "path": "/spec/selector"}]);
        let out = apply(PatchType::Json, &json!({"metadata": {"labels": {"a": "b"}}, "spec": {}}), &ok);
        assert_eq!(out.expect("small copy")["spec"]["selector"], json!({"a": "b"}));
    }

    #[test]
    fn json_patch_cannot_nest_past_what_the_store_reads_back() {
        let deep = |levels: usize| (0..levels).fold(json!(1), |v, _| json!({"a": v}));
        let path = |levels: usize| "/a".repeat(levels);
        // A value nested 100 deep added 50 levels down: each part parses, the result would not.
        let add = json!([{"op": "add", "path": format!("{}/b", path(49)), "value": deep(100)}]);
        let err = apply(PatchType::Json, &deep(60), &add).expect_err("too deep");
        assert!(err.message.contains("127 levels"), "{}", err.message);
        // Chaining the root into its own tip doubles the depth per operation; refused at once.
        let copy = json!([{"op": "copy", "from": "", "path": format!("{}/b", path(100))}]);
        assert!(apply(PatchType::Json, &deep(101), &copy).is_err());
        // Moving a deep branch below another one; moving it back up needs no walk.
        let target = json!({"x": deep(100), "y": deep(100)});
        let down = json!([{"op": "move", "from": "/x", "path": format!("/y{}/b", path(30))}]);
        assert!(apply(PatchType::Json, &target, &down).is_err());
        let up = json!([{"op": "move", "from": "/x/a/a", "path": "/z"}]);
        assert!(!nests_deeper_than(&apply(PatchType::Json, &target, &up).expect("up"), 101));
        // At the limit exactly is fine.
        let fits = json!([{"op": "add", "path": "/a", "value": deep(MAX_NESTING - 2)}]);
        assert!(apply(PatchType::Json, &json!({}), &fits).is_ok());
    }

    #[test]
    fn json_patch_operation_count_is_limited() {
        let ops = vec![json!({"op": "test", "path": "", "value": {}}); MAX_JSON_PATCH_OPERATIONS + 1];
        let err = apply(PatchType::Json, &json!({}), &Value::Array(ops)).expect_err("too many");
        assert!(err.message.contains("10000"), "{}", err.message);
    }

    #[test]
    fn strategic_merge_of_long_lists_is_not_quadratic() {
        // Every list directive used to compare each patch item with each list item: lists a
        // tenth of what fits in a 3 MiB body took minutes.
        const N: usize = 30_000;
        let names = |prefix: &str| -> Vec<Value> {
            (0..N).map(|i| json!({"name": format!("{prefix}{i}")})).collect()
        };
        let strings =
            |prefix: &str| -> Vec<Value> { (0..N).map(|i| json!(format!("{prefix}{i}"))).collect() };
        let target = json!({"metadata": {"finalizers": strings("f")}, "spec": {"containers": names("c")}});
        let mut order = names("d");
        order.extend(names("c"));
        let patch = json!({
            "metadata": {"finalizers": strings("g"), "$deleteFromPrimitiveList/finalizers": strings("f")},
            "spec": {"$setElementOrder/containers": order, "containers": names("d"), "$retainKeys": strings("k")},
        });
        let out = finishes_within(60, move || apply(PatchType::Strategic, &target, &patch)).expect("patch");
        let containers = out["spec"]["containers"].as_array().expect("list");
        assert_eq!(containers.len(), 2 * N);
        assert_eq!((&containers[0]["name"], &containers[N]["name"]), (&json!("d0"), &json!("c0")));
        assert_eq!(out["metadata"]["finalizers"].as_array().map(Vec::len), Some(N));
    }

    #[test]
    fn strategic_keyed_merge_keeps_first_match_semantics() {
        // Duplicate keys in the stored list: merges and deletes apply to the first one still
        // there, as a linear scan would find it.
        let target =
            json!({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}, {"value": "no key"}]});
        let patch = json!({"env": [{"name": "A", "$patch": "delete"}, {"name": "A", "value": "3"}, {"name": "B"}, {"name": "B", "value": "4"}]});
        let out = apply(PatchType::Strategic, &target, &patch).expect("patch");
        assert_eq!(
            out["env"],
            json!([{"name": "A", "value": "3"}, {"value": "no key"}, {"name": "B", "value": "4"}])
        );
        // Null keys: the merged item loses its key, so the next one does not match it.
        let target = json!({"env": [{"name": null, "v": 1}]});
        let patch = json!({"env": [{"name": null, "w": 2}, {"name": null, "x": 3}]});
        let out = apply(PatchType::Strategic, &target, &patch).expect("patch");
        assert_eq!(out["env"], json!([{"v": 1, "w": 2}, {"x": 3}]));
    }
}
