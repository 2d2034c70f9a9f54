//! How deeply JSON values nest, and the limit every stored object keeps to. The store writes
//! objects as JSON and reads them back with serde_json, whose recursion limit refuses more than
//! [`MAX_NESTING`] nested arrays/objects: anything deeper would be accepted once and then be
//! unreadable. Request bodies already meet the limit (the same decoder reads them); what can
//! exceed it is what the server builds from them, chiefly JSON Patch results.

use serde_json::Value;

/// The most nested arrays/objects serde_json reads back (its recursion limit is 128 and the
/// outermost container uses one level). `[]` nests 1 deep, `{"a":[1]}` 2.
pub const MAX_NESTING: usize = 127;

/// Whether `value` nests deeper than `limit`. Walks without recursion and stops at the first
/// container past the limit, so it is safe and cheap on hostile values.
pub fn nests_deeper_than(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 1usize)];
    while let Some((v, level)) = stack.pop() {
        if (v.is_array() || v.is_object()) && level > limit {
            return true;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, level + 1))),
            _ => {}
        }
    }
    false
}

/// The error message for an object over the limit, naming what was too deep.
pub fn too_deep(what: &str) -> String {
    format!("{what} nests objects and arrays more than {MAX_NESTING} levels deep")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn limit_is_what_serde_json_reads_back() {
        let at_limit: Value = serde_json::from_str(&nested(MAX_NESTING)).expect("at the limit");
        assert!(!nests_deeper_than(&at_limit, MAX_NESTING));
        assert!(serde_json::from_str::<Value>(&nested(MAX_NESTING + 1)).is_err(), "serde_json's limit moved");
        let deeper = Value::Array(vec![at_limit]);
        assert!(nests_deeper_than(&deeper, MAX_NESTING));
    }

    #[test]
    fn counts_containers_not_scalars() {
        let v = serde_json::json!({"a": [1, {"b": "c"}], "d": 2});
        assert!(!nests_deeper_than(&v, 3));
        assert!(nests_deeper_than(&v, 2));
        assert!(!nests_deeper_than(&serde_json::json!("scalar"), 0));
    }
}
