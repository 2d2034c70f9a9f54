//! YAML in and out (manifests, `-o yaml`, `application/yaml` bodies), through serde-saphyr:
//! safe code, with a budget against alias bombs, deep nesting and alias-inflated text.

use serde_json::Value;

use crate::{nesting::MAX_NESTING, validate::MAX_BODY_BYTES};

/// The deepest YAML we read (serde-saphyr's default, set here so an upgrade cannot loosen it).
/// Well inside what stored JSON may nest, so any YAML object is storable.
pub const MAX_YAML_NESTING: usize = 64;
const _: () = assert!(MAX_YAML_NESTING <= MAX_NESTING);

/// Parser options. serde-saphyr's default budget already caps nodes (250,000), aliases and
/// documents; on top, aliases may repeat scalar text to at most twice the input (3 MiB at
/// least): the default allowed 64 MiB, so a 3 MiB body of one long anchored string and its
/// aliases became a 64 MiB object, twenty times the body limit.
fn options(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_YAML_NESTING;
    budget.max_total_scalar_bytes = text.len().saturating_mul(2).max(MAX_BODY_BYTES);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Parse one YAML document into JSON. Errors say where (line, column) the YAML is wrong.
pub fn from_str_single(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str_with_options::<Value>(text, options(text))
        .map_err(|e| format!("the YAML is not valid: {e}"))
}

/// Parse a multi-document YAML stream (`---` separated), skipping empty documents.
pub fn from_str_multi(text: &str) -> Result<Vec<Value>, String> {
    let docs = serde_saphyr::from_multiple_with_options::<Value>(text, options(text))
        .map_err(|e| format!("the YAML is not valid: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Render JSON as YAML.
pub fn to_string(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# could not render YAML: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_errors() {
        let docs = from_str_multi("a: 1\n---\n---\nb: [x, z]\n").expect("parse");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"][1], "z");
        let err = from_str_single("a: [1,\n").expect_err("unclosed");
        assert!(err.contains("line") || err.contains("YAML"), "{err}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..12 {
            bomb.push_str(&format!(
                "{}: &{} [*{},*{},*{},*{},*{},*{},*{},*{},*{},*{}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char,
                (b'a' + i - 1) as char
            ));
        }
        assert!(from_str_single(&bomb).is_err(), "10^12 expansions must hit the budget");
    }

    #[test]
    fn round_trip() {
        let v = serde_json::json!({"kind": "Pod", "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(from_str_single(&to_string(&v)).expect("parse"), v);
    }

    #[test]
    fn aliases_cannot_inflate_text_past_twice_the_input() {
        let long = "x".repeat(1024 * 1024);
        let mut text = format!("a: &a {long}\nb:\n");
        for _ in 0..20 {
            text.push_str("- *a\n");
        }
        let err = from_str_single(&text).expect_err("21 MiB from 1 MiB");
        assert!(err.contains("budget"), "{err}");
        // A few repeats of a short anchor, as manifests use them, are fine.
        let ok = from_str_single("base: &b {image: x, pull: Never}\nc1: *b\nc2: *b\n").expect("aliases");
        assert_eq!(ok["c2"]["image"], "x");
    }

    #[test]
    fn nesting_is_limited_for_single_and_multi_documents() {
        let nested = |levels: usize| format!("{}x{}", "[".repeat(levels), "]".repeat(levels));
        assert!(from_str_single(&nested(MAX_YAML_NESTING)).is_ok());
        assert!(from_str_single(&nested(MAX_YAML_NESTING + 1)).is_err());
        let block: String = (0..=MAX_YAML_NESTING).map(|i| format!("{}k:\n", "  ".repeat(i))).collect();
        assert!(from_str_multi(&format!("a: 1\n---\n{block}")).is_err());
    }
}
