//! Label and field selectors as they arrive in `labelSelector=` / `fieldSelector=` query
//! parameters: parsed once, then matched against stored objects.

use serde_json::Value;

use super::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

/// Split on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

fn parse_set(key: &str, rest: &str, raw: &str) -> Result<(String, Vec<String>), ApiError> {
    let rest = rest.trim();
    let inner = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unable to parse requirement: {raw:?}: expected a parenthesised value list"
        ))
    })?;
    let values = inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    Ok((key.trim().to_string(), values))
}

impl LabelSelector {
    /// Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let req = if let Some(key) = part.strip_prefix('!') {
                LabelReq::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                let (k, vs) = parse_set(k, rest, part)?;
                LabelReq::NotIn(k, vs)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                let (k, vs) = parse_set(k, rest, part)?;
                LabelReq::In(k, vs)
            } else if part.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                LabelReq::Exists(part.to_string())
            } else {
                return Err(ApiError::bad_request(format!("unable to parse requirement: {part:?}")));
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// A selector requiring every given label.
    pub fn from_map(labels: &serde_json::Map<String, Value>) -> Self {
        Self(
            labels
                .iter()
                .map(|(k, v)| LabelReq::Eq(k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect(),
        )
    }

    /// Whether it selects nothing in particular (matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Does the object's `metadata.labels` satisfy every requirement?
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `field=value` / `field!=value` terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// The JSON path of a selectable field, per kind, as kube-apiserver allows them.
fn field_path(kind: &str, field: &str) -> Option<&'static [&'static str]> {
    Some(match (kind, field) {
        (_, "metadata.name") => &["metadata", "name"],
        (_, "metadata.namespace") => &["metadata", "namespace"],
        ("Pod", "spec.nodeName") => &["spec", "nodeName"],
        ("Pod", "spec.restartPolicy") => &["spec", "restartPolicy"],
        ("Pod", "spec.schedulerName") => &["spec", "schedulerName"],
        ("Pod", "status.phase") => &["status", "phase"],
        ("Pod", "status.podIP") => &["status", "podIP"],
        ("Event", "involvedObject.kind") => &["involvedObject", "kind"],
        ("Event", "involvedObject.namespace") => &["involvedObject", "namespace"],
        ("Event", "involvedObject.name") => &["involvedObject", "name"],
        ("Event", "involvedObject.uid") => &["involvedObject", "uid"],
        ("Event", "involvedObject.apiVersion") => &["involvedObject", "apiVersion"],
        ("Event", "involvedObject.fieldPath") => &["involvedObject", "fieldPath"],
        ("Event", "reason") => &["reason"],
        ("Event", "type") => &["type"],
        ("Namespace", "status.phase") => &["status", "phase"],
        ("Secret", "type") => &["type"],
        _ => return None,
    })
}

impl FieldSelector {
    /// Whether it selects nothing in particular (matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parse and check every field is selectable for `kind`.
    pub fn parse(s: &str, kind: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for part in split_top_level(s) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector {part:?}: expected field=value or field!=value"
                )));
            };
            let field = field.trim();
            if field_path(kind, field).is_none() {
                return Err(ApiError::bad_request(format!(
                    "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    /// The name this selector pins (`metadata.name=x`), if any: lets the server skip a scan.
    pub fn pinned_name(&self) -> Option<&str> {
        self.0.iter().find(|(f, eq, _)| f == "metadata.name" && *eq).map(|(_, _, v)| v.as_str())
    }

    /// Does the object satisfy every term?
    pub fn matches(&self, kind: &str, obj: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let mut cur = obj;
            for seg in field_path(kind, field).unwrap_or(&[]) {
                cur = &cur[*seg];
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default", "labels": labels}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_operators() {
        let p = pod(json!({"app": "web", "tier": "front"}));
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web,api)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier in (back)", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).expect(sel).matches(&p), want, "{sel}");
        }
    }

    #[test]
    fn field_selectors() {
        let p = pod(json!({}));
        let sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed", "Pod").expect("parse");
        assert!(sel.matches("Pod", &p));
        assert!(!FieldSelector::parse("metadata.name=q", "Pod").expect("parse").matches("Pod", &p));
        let err = FieldSelector::parse("spec.nodeName=n1", "ConfigMap").expect_err("not selectable");
        assert_eq!(err.code, 400);
    }
}
