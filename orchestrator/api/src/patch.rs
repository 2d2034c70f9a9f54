//! The three PATCH flavours kubectl and client libraries send: JSON Patch (RFC 6902), JSON merge
//! patch (RFC 7386) and Kubernetes strategic merge patch (lists merged by key, `$patch`,
//! `$setElementOrder`, `$retainKeys`, `$deleteFromPrimitiveList` directives). Merge keys follow
//! the upstream `patchMergeKey` tags for the kinds we serve (the table in `schema`).

use serde_json::{Map, Value};

use super::ApiError;
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

/// Apply `patch` of type `kind` to `target`, returning the patched object.
pub fn apply(kind: PatchType, target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON Patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::invalid("patch", "", format!("the JSON Patch could not be applied: {e}"))
            })?;
        }
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
    Ok(doc)
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
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        obj.retain(|k, _| keep.contains(&k.as_str()) || patch.contains_key(k));
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (obj.get_mut(field), value) {
                list.retain(|v| !remove.contains(v));
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
                    for item in items {
                        if !current.contains(item) {
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

fn merge_keyed_list(
    mut current: Vec<Value>,
    patch: &[Value],
    key: &str,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    for item in patch {
        let Value::Object(fields) = item else {
            return Err(ApiError::bad_request(format!(
                "strategic merge patch: items of {} must be objects",
                path.join(".")
            )));
        };
        if fields.get("$patch").and_then(Value::as_str) == Some("replace") {
            // `$patch: replace` inside a list replaces the whole list with the other items.
            return Ok(patch.iter().filter(|i| i.get("$patch").is_none()).cloned().collect());
        }
        let id = fields.get(key);
        let pos = id.and_then(|id| current.iter().position(|c| c.get(key) == Some(id)));
        if fields.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(pos) = pos {
                current.remove(pos);
            }
            continue;
        }
        match pos {
            Some(pos) => strategic_merge(&mut current[pos], fields, path)?,
            None => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, fields, path)?;
                current.push(fresh);
            }
        }
    }
    Ok(current)
}

fn reorder(items: Vec<Value>, order: &[Value], key: &str) -> Vec<Value> {
    let rank = |item: &Value| order.iter().position(|o| o.get(key) == item.get(key)).unwrap_or(usize::MAX);
    let mut items = items;
    items.sort_by_key(rank);
    items
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
}
