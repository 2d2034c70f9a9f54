//! Merging an apply configuration into the live object, as structured-merge-diff's
//! `TypedValue.Merge`: the configuration wins on leaves, objects merge field by field,
//! associative lists and sets merge item by item, atomic lists and objects are replaced.
//! Item order follows the configuration for the items it names, with live-only items kept
//! where they stood. The configuration must already have passed `walk::field_set`.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::ApplyError;
use super::fieldset::PathElement;
use super::walk::{Shape, config_elements, live_elements, shape};
use crate::schema::ListType;

/// `config` merged into `live`. Nulls in the configuration stay in the result as nulls (the
/// caller drops them once ownership is settled).
pub(super) fn merge(live: &Value, config: &Value) -> Result<Value, ApplyError> {
    merge_value(None, Some(live), config, &mut Vec::new(), &mut Vec::new())
}

fn merge_value(
    field: Option<&str>,
    lhs: Option<&Value>,
    rhs: &Value,
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
) -> Result<Value, ApplyError> {
    let Some(lhs) = lhs else {
        return Ok(rhs.clone());
    };
    let (l_shape, r_shape) = (shape(names, field, lhs), shape(names, field, rhs));
    if l_shape != r_shape {
        return Ok(rhs.clone());
    }
    if let Some(f) = field {
        names.push(f.to_string());
    }
    let merged = match (r_shape, lhs, rhs) {
        (Shape::Map, Value::Object(l), Value::Object(r)) => merge_maps(l, r, names, path).map(Value::Object),
        (Shape::List(list), Value::Array(l), Value::Array(r)) => {
            merge_lists(list, l, r, names, path).map(Value::Array)
        }
        _ => Ok(rhs.clone()),
    };
    if field.is_some() {
        names.pop();
    }
    merged
}

fn merge_maps(
    lhs: &Map<String, Value>,
    rhs: &Map<String, Value>,
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
) -> Result<Map<String, Value>, ApplyError> {
    let mut out = lhs.clone();
    for (key, r) in rhs {
        path.push(PathElement::Field(key.clone()));
        let merged = merge_value(Some(key), lhs.get(key), r, names, path);
        path.pop();
        out.insert(key.clone(), merged?);
    }
    Ok(out)
}

/// Upstream's list merge (`mergingWalker.visitListItems`): walk both lists together; items in
/// both are merged in the configuration's order, live-only items keep their place.
fn merge_lists(
    list: ListType,
    lhs: &[Value],
    rhs: &[Value],
    names: &mut Vec<String>,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, ApplyError> {
    let l_pes = live_elements(list, lhs);
    let r_pes = config_elements(list, rhs, path)?;
    let mut observed_l: HashMap<&PathElement, &Value> = HashMap::new();
    for (pe, item) in l_pes.iter().zip(lhs) {
        observed_l.entry(pe).or_insert(item);
    }
    let observed_r: HashMap<&PathElement, &Value> = r_pes.iter().zip(rhs).collect();
    let mut shared: VecDeque<&PathElement> = r_pes.iter().filter(|pe| observed_l.contains_key(pe)).collect();
    let mut next_shared = shared.pop_front();
    let mut merged_r: HashSet<&PathElement> = HashSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let item = |pe: &PathElement, r: &Value, names: &mut Vec<String>, path: &mut Vec<PathElement>| {
        path.push(pe.clone());
        let merged = merge_value(None, observed_l.get(pe).copied(), r, names, path);
        path.pop();
        merged
    };
    let (mut li, mut ri) = (0, 0);
    while li < l_pes.len() || ri < r_pes.len() {
        if li < l_pes.len() && ri < r_pes.len() {
            let pe = &l_pes[li];
            if *pe == r_pes[ri] {
                merged_r.insert(pe);
                out.push(item(pe, &rhs[ri], names, path)?);
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if observed_r.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                // A shared item, but not the one due next: it is placed when the
                // configuration reaches it.
                li += 1;
                continue;
            }
        }
        if li < l_pes.len() {
            let pe = &l_pes[li];
            if !observed_r.contains_key(pe) {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            }
            if merged_r.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < r_pes.len() {
            let pe = &r_pes[ri];
            merged_r.insert(pe);
            out.push(item(pe, &rhs[ri], names, path)?);
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configuration_wins_on_leaves_and_objects_merge() {
        let live = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1, "paused": true,
            "selector": {"matchLabels": {"x": "y", "old": "z"}}}});
        let config = json!({"metadata": {"labels": {"a": "9"}}, "spec": {"replicas": 3, "selector": {"matchLabels": {"x": "y"}}}});
        let out = merge(&live, &config).expect("merge");
        assert_eq!(out["metadata"]["labels"], json!({"a": "9", "b": "2"}));
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["spec"]["paused"], true);
        assert_eq!(out["spec"]["selector"], json!({"matchLabels": {"x": "y"}}), "selectors are atomic");
    }

    #[test]
    fn associative_lists_merge_by_key_and_atomic_lists_are_replaced() {
        let live = json!({"spec": {"containers": [
            {"name": "side", "image": "s"},
            {"name": "web", "image": "w:1", "imagePullPolicy": "Always", "args": ["x", "y"],
             "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]}});
        let config = json!({"spec": {"containers": [
            {"name": "web", "image": "w:2", "args": ["z"], "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "new", "image": "n"}]}});
        let out = merge(&live, &config).expect("merge");
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["side", "web", "new"], "live-only items keep their place");
        let web = &out["spec"]["containers"][1];
        assert_eq!(web["image"], "w:2");
        assert_eq!(web["imagePullPolicy"], "Always", "fields the configuration does not name are kept");
        assert_eq!(web["args"], json!(["z"]));
        assert_eq!(
            web["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http", "hostPort": 8080}]),
            "ports without protocol are keyed as TCP"
        );
    }

    #[test]
    fn shared_items_follow_the_configuration_order() {
        let live = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let config = json!({"metadata": {"finalizers": ["c", "a", "d"]}});
        let out = merge(&live, &config).expect("merge");
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c", "a", "d"]));
    }

    #[test]
    fn nulls_survive_and_shapes_can_change() {
        let live = json!({"spec": {"replicas": 2, "template": {"x": 1}}});
        let config = json!({"spec": {"replicas": null, "template": "scalar"}});
        let out = merge(&live, &config).expect("merge");
        assert_eq!(out["spec"], json!({"replicas": null, "template": "scalar"}));
    }
}
