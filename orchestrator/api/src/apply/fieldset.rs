//! Field sets, the `fieldsV1` of `metadata.managedFields`: a tree of path elements (`f:name`
//! fields, `k:{...}` associative-list items, `v:...` set items, `i:N` list indexes) where a node
//! is a *member* when the path itself is owned and not only paths below it (the `".": {}`
//! marker). The set algebra follows structured-merge-diff's `fieldpath.Set`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of an object.
    Field(String),
    /// An item of an associative list, by its key fields: compact JSON of an object whose keys
    /// are sorted, so equal keys compare equal.
    Key(String),
    /// An item of a set-like list, by its value (compact JSON).
    Value(String),
    /// An item of a list by position (live items lacking their key fields).
    Index(usize),
}

impl PathElement {
    /// The associative-list element for key fields `keys`.
    pub fn key(keys: Map<String, Value>) -> Self {
        Self::Key(Value::Object(keys).to_string())
    }

    /// The set element for `value`.
    pub fn value(value: &Value) -> Self {
        Self::Value(value.to_string())
    }

    /// The `fieldsV1` key: `f:name`, `k:{...}`, `v:...`, `i:N`.
    fn encode(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(json) => format!("k:{json}"),
            Self::Value(json) => format!("v:{json}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parse a `fieldsV1` key, normalising JSON so equal keys compare equal.
    fn decode(text: &str) -> Result<Self, String> {
        let bad = |what: &str| format!("invalid fieldsV1 key {text:?}: {what}");
        let (prefix, rest) = text.split_once(':').ok_or_else(|| bad("no type prefix"))?;
        match prefix {
            "f" => Ok(Self::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(keys)) => Ok(Self::key(keys)),
                _ => Err(bad("the key is not a JSON object")),
            },
            "v" => serde_json::from_str::<Value>(rest).map(|v| Self::value(&v)).map_err(|_| bad("not JSON")),
            "i" => rest.parse().map(Self::Index).map_err(|_| bad("not an index")),
            _ => Err(bad("unknown type prefix")),
        }
    }
}

/// Written as kube-apiserver writes paths in conflict messages: `.spec`, `[name="web"]`,
/// `[="finalizer"]`, `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(json) => {
                let keys: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
                let pairs: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", pairs.join(","))
            }
            Self::Value(json) => write!(f, "[={json}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as a string, `.spec.template.spec.containers[name="web"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of paths. Invariant: no child set is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// Nothing owned.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Add `path` as a member (an empty path adds nothing: the root is never owned).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Elements owned themselves at this level.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// Elements with owned paths below them.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// The paths below `element`.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Everything in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, theirs) in &other.children {
            let merged = match out.children.get(pe) {
                Some(ours) => ours.union(theirs),
                None => theirs.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Members of `self` that are not members of `other`, path by path (a member of `other`
    /// does not remove paths below it).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, ours)| {
                (pe, other.children.get(pe).map_or_else(|| ours.clone(), |t| ours.difference(t)))
            })
            .filter(|(_, c)| !c.is_empty())
            .map(|(pe, c)| (pe.clone(), c))
            .collect();
        FieldSet { members, children }
    }

    /// Like [`difference`](Self::difference), but a member of `other` also removes everything
    /// below it.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.members.contains(pe))
            .map(|(pe, ours)| {
                (pe, other.children.get(pe).map_or_else(|| ours.clone(), |t| ours.recursive_difference(t)))
            })
            .filter(|(_, c)| !c.is_empty())
            .map(|(pe, c)| (pe.clone(), c))
            .collect();
        FieldSet { members, children }
    }

    /// Members in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, ours)| other.children.get(pe).map(|t| (pe.clone(), ours.intersection(t))))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        FieldSet { members, children }
    }

    /// The set where every field with owned paths below it is owned itself (upstream's
    /// `EnsureNamedFieldsAreMembers`): pruning a field someone owns a part of must keep it.
    pub fn with_fields_as_members(&self) -> FieldSet {
        let mut out = FieldSet { members: self.members.clone(), children: BTreeMap::new() };
        for (pe, child) in &self.children {
            if matches!(pe, PathElement::Field(_)) {
                out.members.insert(pe.clone());
            }
            out.children.insert(pe.clone(), child.with_fields_as_members());
        }
        out
    }

    /// Every member path, members of a level before the levels below (as upstream iterates).
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for pe in &self.members {
            prefix.push(pe.clone());
            out.push(prefix.clone());
            prefix.pop();
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `fieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        for pe in &self.members {
            out.insert(pe.encode(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            let mut inner = match child.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if self.members.contains(pe) {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            out.insert(pe.encode(), Value::Object(inner));
        }
        Value::Object(out)
    }

    /// Parse a `fieldsV1` object.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = value else {
            return Err("fieldsV1 must be a JSON object".into());
        };
        let mut set = FieldSet::default();
        for (key, inner) in map {
            if key == "." {
                continue;
            }
            let pe = PathElement::decode(key)?;
            let Value::Object(inner_map) = inner else {
                return Err(format!("fieldsV1 entry {key:?} must be a JSON object"));
            };
            if inner_map.is_empty() || inner_map.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let child = FieldSet::from_fields_v1(inner)?;
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    fn set(paths: &[&[PathElement]]) -> FieldSet {
        let mut s = FieldSet::default();
        for p in paths {
            s.insert(p);
        }
        s
    }

    #[test]
    fn fields_v1_round_trips_with_member_markers() {
        let v1 = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}},
            }}}},
            "f:metadata2": {"f:finalizers": {"v:\"x\"": {}}, "f:list": {"i:3": {}}},
        });
        let parsed = FieldSet::from_fields_v1(&v1).expect("parse");
        assert!(parsed.has(&[f("metadata"), f("labels")]));
        assert!(!parsed.has(&[f("metadata")]));
        let web = PathElement::Key(r#"{"name":"web"}"#.into());
        let containers = [f("spec"), f("template"), f("spec"), f("containers")];
        assert!(parsed.has(&[&containers[..], std::slice::from_ref(&web)].concat()));
        assert!(parsed.has(&[&containers[..], &[web, f("image")]].concat()));
        assert_eq!(parsed.to_fields_v1(), v1);
    }

    #[test]
    fn keys_are_normalised_and_printed_like_upstream() {
        let parsed =
            FieldSet::from_fields_v1(&json!({"k:{ \"protocol\":\"TCP\", \"containerPort\": 80}": {}}))
                .expect("parse");
        let port = parsed.members().next().expect("one member").clone();
        assert_eq!(port.encode(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(port.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        let path = [f("spec"), f("finalizers"), PathElement::value(&json!("a")), PathElement::Index(2)];
        assert_eq!(path_string(&path), r#".spec.finalizers[="a"][2]"#);
    }

    #[test]
    fn malformed_fields_v1_is_an_error() {
        for bad in
            [json!([]), json!({"x:y": {}}), json!({"f:a": 1}), json!({"k:[1]": {}}), json!({"i:z": {}})]
        {
            assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn algebra_matches_fieldpath_set() {
        let a = set(&[&[f("spec"), f("replicas")], &[f("spec"), f("paused")], &[f("metadata")]]);
        let b = set(&[&[f("spec"), f("replicas")], &[f("spec")]]);
        assert_eq!(a.intersection(&b), set(&[&[f("spec"), f("replicas")]]));
        assert_eq!(a.difference(&b), set(&[&[f("spec"), f("paused")], &[f("metadata")]]));
        assert_eq!(a.recursive_difference(&b), set(&[&[f("metadata")]]), "spec member removes below");
        let u = a.union(&b);
        assert!(u.has(&[f("spec")]) && u.has(&[f("spec"), f("paused")]));
        assert!(a.difference(&a).is_empty());
        let named = set(&[&[f("spec"), f("template"), f("replicas")]]).with_fields_as_members();
        assert!(named.has(&[f("spec")]) && named.has(&[f("spec"), f("template")]));
        assert_eq!(u.paths().len(), 4);
    }
}
