//! Objects seen through the schema table: the field set an object (an apply configuration)
//! sets, the comparison of two versions of an object (added / modified / removed paths), and
//! the removal of a set of paths from an object. These are structured-merge-diff's
//! `ToFieldSet`, `Compare` and `RemoveItems` over JSON values.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::ApplyError;
use super::fieldset::{FieldSet, PathElement, path_string};
use crate::schema::{ListType, is_atomic_object, list_type};

/// What a value is, as far as merging goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Compared and replaced whole: scalars, atomic lists, atomic objects.
    Leaf,
    /// Merged field by field.
    Map,
    /// Merged item by item.
    List(ListType),
}

/// The shape of `value` found under `field` of an object at `names` (`field` is None for the
/// root and for list items).
pub(super) fn shape(names: &[String], field: Option<&str>, value: &Value) -> Shape {
    match (value, field) {
        (Value::Object(_), Some(f)) if is_atomic_object(names, f) => Shape::Leaf,
        (Value::Object(_), _) => Shape::Map,
        (Value::Array(_), Some(f)) => match list_type(names, f) {
            ListType::Atomic => Shape::Leaf,
            granular => Shape::List(granular),
        },
        _ => Shape::Leaf,
    }
}

/// The shape two versions of a value share; a change of shape is a change of a leaf.
fn common_shape(names: &[String], field: Option<&str>, lhs: Option<&Value>, rhs: Option<&Value>) -> Shape {
    match (lhs.map(|v| shape(names, field, v)), rhs.map(|v| shape(names, field, v))) {
        (Some(l), Some(r)) if l == r => l,
        (Some(s), None) | (None, Some(s)) => s,
        _ => Shape::Leaf,
    }
}

/// The element naming a list item: its key fields (with their defaults) for associative
/// lists, its value for sets. None when an associative item lacks a key field.
pub(super) fn item_element(list: ListType, item: &Value) -> Option<PathElement> {
    match list {
        ListType::Map { keys, .. } => {
            let mut found = Map::new();
            for key in keys {
                let value = match item.get(key.name).filter(|v| !v.is_null()) {
                    Some(v) => v.clone(),
                    None => Value::String(key.default?.to_string()),
                };
                found.insert(key.name.to_string(), value);
            }
            Some(PathElement::key(found))
        }
        ListType::Set { .. } if !item.is_object() && !item.is_array() => Some(PathElement::value(item)),
        _ => None,
    }
}

/// Elements of live list items; an item without its keys is named by position, so odd stored
/// data never stops a write.
pub(super) fn live_elements(list: ListType, items: &[Value]) -> Vec<PathElement> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| item_element(list, item).unwrap_or(PathElement::Index(i)))
        .collect()
}

/// Elements of an apply configuration's list items: every item needs its keys, once.
pub(super) fn config_elements(
    list: ListType,
    items: &[Value],
    path: &[PathElement],
) -> Result<Vec<PathElement>, ApplyError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pe = item_element(list, item).ok_or_else(|| {
            let what = match list {
                ListType::Map { keys, .. } => {
                    let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
                    format!("an item lacks its key field(s) {}", names.join(", "))
                }
                _ => "items of this set must be scalars".to_string(),
            };
            ApplyError::Invalid { field: path_string(path), message: what }
        })?;
        if !seen.insert(pe.clone()) {
            return Err(ApplyError::Invalid {
                field: path_string(path),
                message: format!("duplicate entries for key {pe}"),
            });
        }
        out.push(pe);
    }
    Ok(out)
}

/// The paths an apply configuration sets, and those it sets to null.
#[derive(Debug, Default)]
pub(super) struct ConfigFields {
    /// Leaves, list items (themselves and their fields), empty objects and nulls.
    pub set: FieldSet,
    /// The paths whose value is null: owned, then dropped from the object.
    pub nulls: FieldSet,
}

/// The fields of an apply configuration. Fails on list items without keys or with duplicate
/// keys.
pub(super) fn field_set(config: &Value) -> Result<ConfigFields, ApplyError> {
    let mut out = ConfigFields::default();
    if let Value::Object(map) = config {
        fields_of_map(map, &mut Vec::new(), &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

fn fields_of_map(
    map: &Map<String, Value>,
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
    out: &mut ConfigFields,
) -> Result<(), ApplyError> {
    for (key, value) in map {
        path.push(PathElement::Field(key.clone()));
        let result = fields_of_value(key, value, names, path, out);
        path.pop();
        result?;
    }
    Ok(())
}

fn fields_of_value(
    field: &str,
    value: &Value,
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
    out: &mut ConfigFields,
) -> Result<(), ApplyError> {
    match (shape(names, Some(field), value), value) {
        (Shape::Map, Value::Object(map)) if !map.is_empty() => {
            names.push(field.to_string());
            let result = fields_of_map(map, names, path, out);
            names.pop();
            result
        }
        (Shape::List(list), Value::Array(items)) => {
            let elements = config_elements(list, items, path)?;
            names.push(field.to_string());
            for (pe, item) in elements.into_iter().zip(items) {
                path.push(pe);
                out.set.insert(path);
                let result = match item {
                    Value::Object(map) => fields_of_map(map, names, path, out),
                    _ => Ok(()),
                };
                path.pop();
                result?;
            }
            names.pop();
            Ok(())
        }
        (_, Value::Null) => {
            out.set.insert(path);
            out.nulls.insert(path);
            Ok(())
        }
        _ => {
            out.set.insert(path);
            Ok(())
        }
    }
}

/// How one version of an object differs from another.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    /// Paths only in the new version.
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Paths only in the old version.
    pub removed: FieldSet,
}

impl Comparison {
    /// Added or modified: what the writer took over.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

/// Compare two versions of an object.
pub(super) fn compare(old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    compare_value(None, Some(old), Some(new), &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn compare_value(
    field: Option<&str>,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let is_empty = |v: Option<&Value>| match v {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    let shape = common_shape(names, field, lhs, rhs);
    // Both empty: a leaf, so `{}` versus absent still counts.
    if shape == Shape::Leaf || (is_empty(lhs) && is_empty(rhs)) {
        match (lhs, rhs) {
            (None, Some(_)) => out.added.insert(path),
            (Some(_), None) => out.removed.insert(path),
            (Some(l), Some(r)) if l != r => out.modified.insert(path),
            _ => {}
        }
        return;
    }
    if let Some(f) = field {
        names.push(f.to_string());
    }
    match shape {
        Shape::Map => {
            compare_maps(lhs.and_then(Value::as_object), rhs.and_then(Value::as_object), names, path, out)
        }
        Shape::List(list) => {
            let empty = Vec::new();
            let l = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_array).unwrap_or(&empty);
            compare_lists(list, l, r, names, path, out);
        }
        Shape::Leaf => {}
    }
    if field.is_some() {
        names.pop();
    }
    match (lhs, rhs) {
        (None, _) => out.added.insert(path),
        (_, None) => out.removed.insert(path),
        _ => {}
    }
}

fn compare_maps(
    lhs: Option<&Map<String, Value>>,
    rhs: Option<&Map<String, Value>>,
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    for (key, l) in lhs.into_iter().flatten() {
        path.push(PathElement::Field(key.clone()));
        compare_value(Some(key), Some(l), rhs.and_then(|r| r.get(key)), names, path, out);
        path.pop();
    }
    for (key, r) in rhs.into_iter().flatten() {
        if lhs.is_some_and(|l| l.contains_key(key)) {
            continue;
        }
        path.push(PathElement::Field(key.clone()));
        compare_value(Some(key), None, Some(r), names, path, out);
        path.pop();
    }
}

fn compare_lists(
    list: ListType,
    lhs: &[Value],
    rhs: &[Value],
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
    out: &mut Comparison,
) {
    let l_pes = live_elements(list, lhs);
    let r_pes = live_elements(list, rhs);
    // The first item of each key, as upstream indexes lists (a hash: lists may be long).
    let mut r_items: HashMap<&PathElement, &Value> = HashMap::with_capacity(r_pes.len());
    for (pe, item) in r_pes.iter().zip(rhs) {
        r_items.entry(pe).or_insert(item);
    }
    let mut done = HashSet::new();
    for (pe, l) in l_pes.iter().zip(lhs) {
        if !done.insert(pe.clone()) {
            continue;
        }
        path.push(pe.clone());
        compare_value(None, Some(l), r_items.get(pe).copied(), names, path, out);
        path.pop();
    }
    for (pe, r) in r_pes.iter().zip(rhs) {
        if !done.insert(pe.clone()) {
            continue;
        }
        path.push(pe.clone());
        compare_value(None, None, Some(r), names, path, out);
        path.pop();
    }
}

/// Remove the members of `set` from `value` (a member takes its whole subtree); an object or
/// list left empty by the removal goes too.
pub(super) fn remove_items(value: &mut Value, set: &FieldSet) {
    if let Value::Object(map) = value {
        remove_from_map(map, set, &mut Vec::new());
    }
}

fn remove_from_map(map: &mut Map<String, Value>, set: &FieldSet, names: &mut Vec<String>) {
    for pe in set.members() {
        if let PathElement::Field(key) = pe {
            map.remove(key);
        }
    }
    for (pe, below) in set.children() {
        let PathElement::Field(key) = pe else { continue };
        let Some(child) = map.get_mut(key) else { continue };
        let emptied = match (shape(names, Some(key), child), child) {
            (Shape::Map, Value::Object(inner)) if !inner.is_empty() => {
                names.push(key.clone());
                remove_from_map(inner, below, names);
                names.pop();
                inner.is_empty()
            }
            (Shape::List(list), Value::Array(items)) if !items.is_empty() => {
                names.push(key.clone());
                remove_from_list(list, items, below, names);
                names.pop();
                items.is_empty()
            }
            _ => false,
        };
        if emptied {
            map.remove(key);
        }
    }
}

fn remove_from_list(list: ListType, items: &mut Vec<Value>, set: &FieldSet, names: &mut Vec<String>) {
    let elements = live_elements(list, items);
    let mut kept = Vec::with_capacity(items.len());
    for (pe, mut item) in elements.into_iter().zip(items.drain(..)) {
        if set.has(std::slice::from_ref(&pe)) {
            continue;
        }
        if let (Some(below), Value::Object(map)) = (set.child(&pe), &mut item) {
            remove_from_map(map, below, names);
        }
        kept.push(item);
    }
    *items = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(set: &FieldSet) -> Vec<String> {
        set.paths().iter().map(|p| path_string(p)).collect()
    }

    fn deployment(image: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": image, "ports": [{"containerPort": 80}], "args": ["a", "b"]}]}}}})
    }

    #[test]
    fn field_set_of_a_configuration_is_what_upstream_owns() {
        let set = field_set(&deployment("i:1", 2)).expect("valid").set;
        let v1 = set.to_fields_v1();
        assert_eq!(v1["f:spec"]["f:selector"], json!({}), "atomic selector is one leaf");
        let web = &v1["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"web"}"#];
        assert_eq!(web["."], json!({}), "list items are members");
        assert_eq!(web["f:args"], json!({}), "atomic list is one leaf");
        assert_eq!(
            web["f:ports"][r#"k:{"containerPort":80,"protocol":"TCP"}"#]["f:containerPort"],
            json!({})
        );
        assert!(v1["f:spec"].get(".").is_none(), "non-empty objects are not members");
        let empty =
            field_set(&json!({"spec": {"securityContext": {}, "x": null, "finalizers": []}})).expect("ok");
        assert_eq!(paths(&empty.set), [".spec.finalizers", ".spec.securityContext", ".spec.x"]);
        assert_eq!(paths(&empty.nulls), [".spec.x"]);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = field_set(&dup).expect_err("duplicate");
        assert!(err.to_string().contains(r#"duplicate entries for key [name="a"]"#), "{err}");
        let keyless = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(field_set(&keyless).expect_err("no key").to_string().contains(".spec.containers"));
    }

    #[test]
    fn compare_finds_added_modified_removed() {
        let old = deployment("i:1", 2);
        let mut new = deployment("i:2", 2);
        new["metadata"]["annotations"] = json!({"a": "b"});
        new["metadata"]["labels"].as_object_mut().expect("labels").remove("app");
        let cmp = compare(&old, &new);
        assert_eq!(paths(&cmp.modified), [r#".spec.template.spec.containers[name="web"].image"#]);
        assert_eq!(paths(&cmp.added), [".metadata.annotations", ".metadata.annotations.a"]);
        assert_eq!(paths(&cmp.removed), [".metadata.labels.app"]);
        let same = compare(&old, &old);
        assert!(same.added.is_empty() && same.modified.is_empty() && same.removed.is_empty());
    }

    #[test]
    fn compare_list_items_by_key() {
        let old = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "x", "image": "1"}]}});
        let new = json!({"metadata": {"finalizers": ["b", "c"]}, "spec": {"containers": [{"name": "y", "image": "1"}, {"name": "x", "image": "1"}]}});
        let cmp = compare(&old, &new);
        assert_eq!(
            paths(&cmp.added),
            [
                r#".metadata.finalizers[="c"]"#,
                r#".spec.containers[name="y"]"#,
                r#".spec.containers[name="y"].image"#,
                r#".spec.containers[name="y"].name"#
            ]
        );
        assert_eq!(paths(&cmp.removed), [r#".metadata.finalizers[="a"]"#]);
        assert!(cmp.modified.is_empty(), "reordering is not a change");
    }

    #[test]
    fn remove_items_drops_fields_items_and_emptied_parents() {
        let mut obj = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2", "args": ["z"]}]}});
        let mut set = FieldSet::default();
        let f = |s: &str| PathElement::Field(s.into());
        set.insert(&[f("metadata"), f("labels"), f("a")]);
        set.insert(&[f("metadata"), f("finalizers"), PathElement::value(&json!("x"))]);
        set.insert(&[
            f("spec"),
            f("containers"),
            PathElement::key(json!({"name": "a"}).as_object().cloned().unwrap_or_default()),
        ]);
        set.insert(&[
            f("spec"),
            f("containers"),
            PathElement::key(json!({"name": "b"}).as_object().cloned().unwrap_or_default()),
            f("args"),
        ]);
        remove_items(&mut obj, &set);
        assert_eq!(
            obj,
            json!({"metadata": {"finalizers": ["y"]}, "spec": {"containers": [{"name": "b", "image": "2"}]}})
        );
    }
}
