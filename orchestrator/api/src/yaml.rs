//! YAML in and out (manifests, `-o yaml`, `application/yaml` bodies), through serde-saphyr:
//! safe code, with its default budget against alias bombs and deep nesting.

use serde_json::Value;

/// Parse one YAML document into JSON. Errors say where (line, column) the YAML is wrong.
pub fn from_str_single(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| format!("the YAML is not valid: {e}"))
}

/// Parse a multi-document YAML stream (`---` separated), skipping empty documents.
pub fn from_str_multi(text: &str) -> Result<Vec<Value>, String> {
    let docs =
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| format!("the YAML is not valid: {e}"))?;
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
}
