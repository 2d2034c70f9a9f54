//! The body of every fuzz target, shared by the libFuzzer binaries in `fuzz/` (which include
//! this file) and by `tests/fuzz_regressions.rs` (which replays seeds and minimized crashes
//! through it in the ordinary test run). Each function takes the raw fuzz input and panics only
//! when a decoder breaks a promise: a panic inside the crate, or a result that violates an
//! invariant checked here.

use std::{collections::HashMap, fmt::Write, net::Ipv4Addr, ops::RangeInclusive};

use serde_json::{Value, json};
use wasmkube_api::{
    cidr,
    patch::{self, PatchType},
    request,
    resources::RESOURCES,
    selectors::{FieldSelector, LabelSelector},
    validate::{WriteScope, prepare_create, prepare_update},
    yaml,
};

/// A fuzz target's body: it gets the raw input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its fuzz binary and its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("request_body", request_body),
    ("query_string", query_string),
    ("yaml_decode", yaml_decode),
    ("json_object", json_object),
    ("patch_json", patch_json),
    ("patch_merge", patch_merge),
    ("patch_strategic", patch_strategic),
    ("label_selector", label_selector),
    ("field_selector", field_selector),
    ("cidr", cidr),
];

/// The separator between the two parts of an input (object and patch, selector and labels).
/// It cannot occur inside a JSON document (`---` is not a JSON token and strings cannot hold a
/// raw newline), so a JSON first part is never cut short, and seeds stay readable text.
pub const SEPARATOR: &[u8] = b"\n---\n";

/// Split an input at the first [`SEPARATOR`]; without one, all of it is the first part.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + SEPARATOR.len()..]),
        None => (data, &[]),
    }
}

/// Decode JSON exactly as the API server decodes request bodies.
pub fn json(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes).ok()
}

/// What the store does with an accepted object: write it as JSON and read it back with the
/// same decoder. An object the server accepts but cannot read back is a bug (it would sit in
/// the store as a corrupt record).
pub fn assert_storable(value: &Value) {
    let bytes = match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(e) => panic!("an accepted value does not serialize: {e}"),
    };
    if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
        panic!("an accepted value does not read back from its own JSON: {e}");
    }
}

/// Request bodies as the server decodes them: the first line is the Content-Type header value,
/// the rest the body. A value or a clean error (400, 415); an accepted value is storable.
pub fn request_body(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // A header value that is not text never reaches the decoder (the server reads it as absent).
    let Ok(content_type) = std::str::from_utf8(content_type) else { return };
    if let Ok(value) = request::decode_body(content_type, body) {
        assert_storable(&value);
    }
}

/// Query strings (`?labelSelector=...&watch=1`): any text decodes to some parameters; and
/// parameters written the way clients encode them decode back to themselves. The input, split
/// at newlines, is alternately names and values for that second check.
pub fn query_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = request::query_map(Some(text));
    let parts: Vec<&str> = text.split('\n').collect();
    let mut expected = HashMap::new();
    let mut query = String::new();
    for pair in parts.chunks(2) {
        let (name, value) = (pair[0], pair.get(1).copied().unwrap_or(""));
        if name.is_empty() {
            continue; // `&=v&` is not a parameter a client sends
        }
        expected.insert(name.to_string(), value.to_string());
        let _ =
            write!(query, "{}{}={}", if query.is_empty() { "" } else { "&" }, encode(name), encode(value));
    }
    assert_eq!(request::query_map(Some(&query)), expected, "query {query:?}");
}

/// Form encoding as Go's `url.QueryEscape` does it: unreserved bytes as they are, space as `+`,
/// everything else `%XY`.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// YAML bodies and manifests (`application/yaml` requests, `wasmkube apply -f`), one document
/// and multi-document streams: values or a clean error within the budget. Accepted values must
/// be storable, and `-o yaml` output must read back as the same value.
pub fn yaml_decode(data: &[u8]) {
    // The server refuses YAML that is not UTF-8 before parsing, so only text reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(value) = yaml::from_str_single(text) {
        assert_storable(&value);
        let out = yaml::to_string(&value);
        match yaml::from_str_single(&out) {
            Ok(back) => assert_eq!(back, value, "YAML output reads back differently:\n{out}"),
            Err(e) => panic!("YAML output does not read back: {e}\n{out}"),
        }
    }
    if let Ok(docs) = yaml::from_str_multi(text) {
        docs.iter().for_each(assert_storable);
    }
}

/// Objects as `POST`/`PUT` bodies carry them. Three bytes, then the JSON body: the kind (low 7
/// bits: index in `RESOURCES`, top bit: the request names a namespace), then a type confusion
/// (see [`confuse`]). The type check and admission (create, update in both scopes) answer Ok or
/// a clean error; what they accept is storable, and a created object written back unchanged is a
/// valid update.
pub fn json_object(data: &[u8]) {
    let [pick, kind, at, body @ ..] = data else { return };
    let rt = &RESOURCES[usize::from(pick & 0x7f) % RESOURCES.len()];
    let namespace = (pick & 0x80 != 0).then_some("default");
    let Some(mut obj) = json(body) else { return };
    confuse(&mut obj, *kind, *at);

    let _ = (rt.type_check)(&obj);
    // The body as an update of itself: `old` is whatever the input is, as a record written by
    // an older version could be.
    for scope in [WriteScope::Main, WriteScope::Status] {
        if let Ok(updated) = prepare_update(rt, &obj, obj.clone(), scope) {
            assert_storable(&updated);
        }
    }
    let Ok(created) = prepare_create(rt, namespace, obj.clone()) else { return };
    assert!(created.is_object(), "create accepted a non-object");
    assert_storable(&created);
    for scope in [WriteScope::Main, WriteScope::Status] {
        match prepare_update(rt, &created, created.clone(), scope) {
            Ok(same) => {
                assert_eq!(same["metadata"]["generation"], created["metadata"]["generation"]);
                assert_storable(&same);
            }
            Err(e) => panic!("a no-op {scope:?} update of a created {} fails: {}", rt.kind, e.message),
        }
    }
    // The body as a PUT over what was created from it.
    if let Ok(updated) = prepare_update(rt, &created, obj, WriteScope::Main) {
        assert_storable(&updated);
    }
}

/// Replace one value of `obj` (number `at` in document order, the root excluded) by a value of
/// another type (`kind` 1 to 6; 0 leaves `obj` alone). Byte mutations of a JSON text rarely
/// turn a whole object into a string; admission code that indexes into `spec.template` must
/// still cope when a client sends exactly that.
pub fn confuse(obj: &mut Value, kind: u8, at: u8) {
    let replacement = match kind % 7 {
        0 => return,
        1 => Value::Null,
        2 => json!("x"),
        3 => json!(1),
        4 => json!([]),
        5 => json!({}),
        _ => json!(true),
    };
    let mut pointers = Vec::new();
    let mut stack = vec![(String::new(), &*obj)];
    while let Some((pointer, v)) = stack.pop() {
        let children: Vec<(String, &Value)> = match v {
            Value::Object(map) => map
                .iter()
                .map(|(k, c)| (format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")), c))
                .collect(),
            Value::Array(items) => {
                items.iter().enumerate().map(|(i, c)| (format!("{pointer}/{i}"), c)).collect()
            }
            _ => Vec::new(),
        };
        stack.extend(children.into_iter().rev());
        if !pointer.is_empty() {
            pointers.push(pointer);
        }
        if pointers.len() > usize::from(u8::MAX) {
            break; // `at` cannot reach further
        }
    }
    if pointers.is_empty() {
        return;
    }
    let pointer = &pointers[usize::from(at) % pointers.len()];
    if let Some(slot) = obj.pointer_mut(pointer) {
        *slot = replacement;
    }
}

/// An object and a patch, separated by [`SEPARATOR`], both decoded as the server decodes them;
/// the patched object if the patch applies.
fn patched(kind: PatchType, data: &[u8]) -> Option<(Value, Value)> {
    let (target, patch) = split(data);
    let (target, patch) = (json(target)?, json(patch)?);
    let out = patch::apply(kind, &target, &patch).ok()?;
    assert_storable(&out);
    Some((patch, out))
}

/// PATCH with a JSON Patch (RFC 6902). Its result may legally be anything (`replace` at ""),
/// admission rejects non-objects afterwards: it only has to be storable.
pub fn patch_json(data: &[u8]) {
    patched(PatchType::Json, data);
}

/// PATCH with a JSON merge patch (RFC 7386): the patch is an object, so the result is one, and
/// merging is idempotent.
pub fn patch_merge(data: &[u8]) {
    let Some((patch, out)) = patched(PatchType::Merge, data) else { return };
    assert!(out.is_object(), "a merge patch produced a non-object");
    match patch::apply(PatchType::Merge, &out, &patch) {
        Ok(again) => assert_eq!(again, out, "merge patch is not idempotent"),
        Err(e) => panic!("a merge patch applies once but not twice: {}", e.message),
    }
}

/// PATCH with a strategic merge patch (`kubectl apply`, `kubectl patch`): the patch is an object
/// and the result is one (`$patch: replace` included).
pub fn patch_strategic(data: &[u8]) {
    let Some((_, out)) = patched(PatchType::Strategic, data) else { return };
    assert!(out.is_object(), "a strategic merge patch produced a non-object");
}

/// `labelSelector=`: the selector text, then the labels of an object as JSON. Parsing gives a
/// selector or a clean error; an object always matches the selector made of its own (string)
/// labels, which is how controllers find their pods.
pub fn label_selector(data: &[u8]) {
    let (selector, labels) = split(data);
    let Ok(selector) = std::str::from_utf8(selector) else { return };
    let labels = json(labels).unwrap_or(Value::Null);
    let obj = json!({"metadata": {"name": "x", "labels": labels}});
    if let Ok(parsed) = LabelSelector::parse(selector) {
        let _ = parsed.matches(&obj);
    }
    if let Some(map) = labels.as_object().filter(|m| m.values().all(Value::is_string)) {
        assert!(LabelSelector::from_map(map).matches(&obj), "an object does not match its own labels");
    }
}

/// `fieldSelector=`: the first byte picks the kind, then the selector text and the object as
/// JSON. Parsing gives a selector or a clean error; matching never fails.
pub fn field_selector(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let kind = RESOURCES[usize::from(pick) % RESOURCES.len()].kind;
    let (selector, obj) = split(rest);
    let Ok(selector) = std::str::from_utf8(selector) else { return };
    let obj = json(obj).unwrap_or(Value::Null);
    if let Ok(parsed) = FieldSelector::parse(selector, kind) {
        let _ = parsed.matches(kind, &obj);
        let _ = parsed.pinned_name();
    }
}

/// CIDR flags with the prefix ranges their callers allow (node agent 8..=30, node IPAM 1..=16)
/// and the full range: a parsed network has a prefix in range, no host bits, and reads back as
/// itself.
pub fn cidr(data: &[u8]) {
    const RANGES: [RangeInclusive<u32>; 3] = [8..=30, 1..=16, 0..=32];
    let Ok(text) = std::str::from_utf8(data) else { return };
    for range in RANGES {
        let Ok((base, bits)) = cidr::parse(text, range.clone()) else { continue };
        assert!(range.contains(&bits), "prefix /{bits} outside {range:?}");
        let host_mask = u32::MAX.checked_shr(bits).unwrap_or(0);
        assert_eq!(base & host_mask, 0, "host bits left set in {text:?}");
        assert_eq!(cidr::parse(&format!("{}/{bits}", Ipv4Addr::from(base)), range), Ok((base, bits)));
    }
}
