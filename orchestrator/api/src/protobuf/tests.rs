//! Decoder tests: hand-built bodies for each JSON mapping rule, hostile inputs, and every
//! table checked against the upstream types. Golden bodies captured from the real kubectl are
//! checked in `tests/protobuf_fixtures.rs`.

use serde_json::{Value, json};

use super::{
    ProtobufError, decode,
    schema::{Elem, MapValue, Message, Ty, f, msg},
    tables,
};
use crate::{ApiError, find_by_kind};

/// A minimal protobuf writer for building test bodies.
#[derive(Default, Clone)]
struct Enc(Vec<u8>);

impl Enc {
    fn raw_varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn varint(mut self, field: u32, v: u64) -> Self {
        self.raw_varint(u64::from(field) << 3);
        self.raw_varint(v);
        self
    }
    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.raw_varint((u64::from(field) << 3) | 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u32, m: Enc) -> Self {
        self.bytes(field, &m.0)
    }
    fn entry(self, field: u32, k: &str, v: &str) -> Self {
        self.msg(field, Enc::default().str(1, k).str(2, v))
    }
}

/// `k8s\0` + the envelope around `raw`.
fn body(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
    let env = Enc::default()
        .msg(1, Enc::default().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    [b"k8s\0".as_slice(), &env.0].concat()
}

fn meta(name: &str) -> Enc {
    // As Go writes ObjectMeta: every non-pointer field, zero or not.
    Enc::default()
        .str(1, name)
        .str(2, "")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .varint(7, 0)
        .bytes(8, b"")
}

#[test]
fn namespace_as_kubectl_sends_it() {
    let raw = Enc::default().msg(1, meta("team")).bytes(2, b"").msg(3, Enc::default().str(1, ""));
    let obj = decode(&body("v1", "Namespace", raw)).expect("decodes");
    assert_eq!(
        obj,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "team"}, "spec": {}, "status": {}})
    );
}

#[test]
fn zero_values_follow_go_json_tags() {
    let spec = Enc::default()
        .varint(1, 0) // replicas is a *int32: an explicit 0 stays
        .varint(5, 0) // minReadySeconds has omitempty
        .varint(6, 0) // revisionHistoryLimit is a pointer
        .varint(7, 0) // paused has omitempty
        .msg(4, Enc::default().str(1, "")); // strategy: an empty struct is still written
    let obj =
        decode(&body("apps/v1", "Deployment", Enc::default().msg(1, meta("d")).msg(2, spec))).expect("ok");
    assert_eq!(obj["spec"], json!({"replicas": 0, "revisionHistoryLimit": 0, "strategy": {}}));

    let status = Enc::default().varint(1, 0).varint(2, 0).varint(3, 0).varint(4, 0).varint(5, 0).varint(7, 0);
    let obj = decode(&body("apps/v1", "Deployment", Enc::default().msg(3, status))).expect("ok");
    assert_eq!(obj["status"], json!({}), "status counters are omitempty");

    // Fields without omitempty keep their zero: ContainerPort.containerPort, Container.name.
    let container = Enc::default().str(1, "").msg(6, Enc::default().varint(3, 0).str(4, ""));
    let pod = Enc::default().msg(2, Enc::default().msg(2, container));
    let obj = decode(&body("v1", "Pod", pod)).expect("ok");
    assert_eq!(obj["spec"]["containers"], json!([{"name": "", "ports": [{"containerPort": 0}]}]));

    // runAsUser 0 (root) is a pointer: it must not vanish.
    let sc = Enc::default().varint(2, 0).varint(3, 0);
    let obj = decode(&body("v1", "Pod", Enc::default().msg(2, Enc::default().msg(14, sc)))).expect("ok");
    assert_eq!(obj["spec"]["securityContext"], json!({"runAsUser": 0, "runAsNonRoot": false}));
}

#[test]
fn special_values() {
    let port = |t: u64, i: u64, s: &str| Enc::default().varint(1, t).varint(2, i).str(3, s);
    let svc = Enc::default()
        .msg(1, Enc::default().str(2, "TCP").varint(3, 80).msg(4, port(0, 8080, "")))
        .msg(1, Enc::default().str(2, "TCP").varint(3, 81).msg(4, port(1, 0, "http")));
    let obj = decode(&body("v1", "Service", Enc::default().msg(2, svc))).expect("ok");
    assert_eq!(
        obj["spec"]["ports"],
        json!([{"protocol": "TCP", "port": 80, "targetPort": 8080}, {"protocol": "TCP", "port": 81, "targetPort": "http"}])
    );

    let cm = Enc::default().entry(2, "a", "b").msg(3, Enc::default().str(1, "bin").bytes(2, &[0xff, 0x00]));
    let obj = decode(&body("v1", "ConfigMap", cm)).expect("ok");
    assert_eq!(obj["data"], json!({"a": "b"}));
    assert_eq!(obj["binaryData"], json!({"bin": "/wA="}));

    let ts = Enc::default().varint(1, 1_700_000_000).varint(2, 5);
    let qty = Enc::default().str(1, "500m");
    let resources = Enc::default().msg(1, Enc::default().str(1, "cpu").msg(2, qty));
    let container = Enc::default().str(1, "c").msg(8, resources);
    let raw = Enc::default()
        .msg(1, Enc::default().str(1, "p").msg(8, ts.clone()).msg(9, ts))
        .msg(2, Enc::default().msg(2, container));
    let obj = decode(&body("v1", "Pod", raw)).expect("ok");
    assert_eq!(obj["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(obj["metadata"]["deletionTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(obj["spec"]["containers"][0]["resources"], json!({"limits": {"cpu": "500m"}}));
}

#[test]
fn inlined_structs_land_in_the_parent() {
    let selector = Enc::default().msg(1, Enc::default().str(1, "cfg")).str(2, "k").varint(3, 0);
    let env = Enc::default().str(1, "E").msg(3, Enc::default().msg(3, selector));
    let probe = Enc::default().msg(1, Enc::default().msg(1, Enc::default().str(1, "true"))).varint(4, 5);
    let container = Enc::default().str(1, "c").msg(7, env).msg(10, probe);
    let volume = Enc::default().str(1, "v").msg(2, Enc::default().msg(2, Enc::default()));
    let raw = Enc::default().msg(2, Enc::default().msg(2, container).msg(1, volume));
    let obj = decode(&body("v1", "Pod", raw)).expect("ok");
    let c = &obj["spec"]["containers"][0];
    assert_eq!(
        c["env"][0]["valueFrom"]["configMapKeyRef"],
        json!({"name": "cfg", "key": "k", "optional": false})
    );
    assert_eq!(c["livenessProbe"], json!({"exec": {"command": ["true"]}, "periodSeconds": 5}));
    assert_eq!(obj["spec"]["volumes"], json!([{"name": "v", "emptyDir": {}}]));
}

#[test]
fn repeated_occurrences_behave_as_in_go() {
    // Messages merge, scalars take the last value (a zero clears), lists append, maps insert.
    let raw = Enc::default()
        .msg(1, Enc::default().str(1, "first").str(3, "ns").entry(11, "a", "1").str(14, "f1"))
        .msg(
            1,
            Enc::default().str(1, "second").str(3, "").entry(11, "a", "2").entry(11, "b", "3").str(14, "f2"),
        );
    let obj = decode(&body("v1", "ConfigMap", raw)).expect("ok");
    assert_eq!(
        obj["metadata"],
        json!({"name": "second", "labels": {"a": "2", "b": "3"}, "finalizers": ["f1", "f2"]})
    );
}

#[test]
fn repeated_ints_packed_or_not() {
    let one_by_one = Enc::default().varint(4, 1000).varint(4, 1001);
    let packed = Enc::default().bytes(4, &[0xe8, 0x07, 0xe9, 0x07]);
    for sc in [one_by_one, packed] {
        let obj = decode(&body("v1", "Pod", Enc::default().msg(2, Enc::default().msg(14, sc)))).expect("ok");
        assert_eq!(obj["spec"]["securityContext"]["supplementalGroups"], json!([1000, 1001]));
    }
    // A negative int32 is sent sign-extended to ten bytes.
    let rule = Enc::default().str(1, "Restart").msg(2, Enc::default().str(1, "In").varint(2, u64::MAX));
    let raw = Enc::default().msg(2, Enc::default().msg(2, Enc::default().str(1, "c").msg(25, rule)));
    let obj = decode(&body("v1", "Pod", raw)).expect("ok");
    assert_eq!(obj["spec"]["containers"][0]["restartPolicyRules"][0]["exitCodes"]["values"], json!([-1]));
}

#[test]
fn delete_options_in_any_group_version() {
    for gv in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        let raw = Enc::default().varint(1, 0).msg(2, Enc::default().str(1, "uid-1")).str(4, "Background");
        let obj = decode(&body(gv, "DeleteOptions", raw)).expect("ok");
        assert_eq!(obj["gracePeriodSeconds"], 0, "an explicit 0 means delete now");
        assert_eq!(obj["preconditions"], json!({"uid": "uid-1"}));
        assert_eq!(obj["propagationPolicy"], "Background");
    }
}

fn api_error(bytes: &[u8]) -> ApiError {
    ApiError::from(decode(bytes).expect_err("must fail"))
}

#[test]
fn envelope_errors() {
    assert_eq!(decode(b"{\"kind\":\"Namespace\"}"), Err(ProtobufError::NoMagic));
    assert_eq!(api_error(b"k8s").code, 400);
    assert_eq!(decode(&body("v1", "", Enc::default())), Err(ProtobufError::MissingKind));
    let node = api_error(&body("v1", "Node", Enc::default()));
    assert_eq!((node.code, node.reason), (415, "UnsupportedMediaType"));
    assert!(
        node.message.contains("Node (v1)") && node.message.contains("application/json"),
        "{}",
        node.message
    );
    let gzip =
        [b"k8s\0".as_slice(), &Enc::default().msg(1, Enc::default().str(2, "Namespace")).str(3, "gzip").0]
            .concat();
    assert_eq!(api_error(&gzip).code, 415);
    let extra = [b"k8s\0".as_slice(), &Enc::default().varint(9, 1).0].concat();
    assert_eq!(api_error(&extra).code, 400);
    let wrong_type = [
        b"k8s\0".as_slice(),
        &Enc::default().msg(1, Enc::default().str(2, "Pod")).str(4, "application/json").0,
    ]
    .concat();
    assert_eq!(api_error(&wrong_type).code, 400);
}

#[test]
fn unknown_fields_are_named_never_dropped() {
    let container = Enc::default().str(1, "c").varint(99, 1);
    let raw =
        Enc::default().msg(2, Enc::default().msg(3, Enc::default().msg(2, Enc::default().msg(2, container))));
    let err = decode(&body("apps/v1", "Deployment", raw)).expect_err("unknown field");
    assert_eq!(
        err,
        ProtobufError::UnsupportedField {
            message: "Container",
            field: "99".into(),
            path: "spec.template.spec.containers[0]".into()
        }
    );
    let e = ApiError::from(err);
    assert_eq!(e.code, 415);
    assert!(e.message.contains("field 99 of Container at spec.template.spec.containers[0]"), "{}", e.message);
    // A legacy volume plugin upstream has, named in the error.
    let volume = Enc::default().str(1, "v").msg(2, Enc::default().msg(3, Enc::default().str(1, "disk")));
    let err = decode(&body("v1", "Pod", Enc::default().msg(2, Enc::default().msg(1, volume))))
        .expect_err("unsupported");
    assert!(err.to_string().contains("field gcePersistentDisk of VolumeSource at spec.volumes[0]"), "{err}");
}

#[test]
fn hostile_values() {
    let cases: Vec<(&str, Enc)> = vec![
        ("name sent as a varint", Enc::default().msg(1, Enc::default().varint(1, 5))),
        ("invalid UTF-8", Enc::default().msg(1, Enc::default().bytes(1, &[0xc3, 0x28]))),
        (
            "bad IntOrString type",
            Enc::default().msg(2, Enc::default().msg(1, Enc::default().msg(4, Enc::default().varint(1, 7)))),
        ),
        (
            "time past year 9999",
            Enc::default().msg(1, Enc::default().msg(8, Enc::default().varint(1, 1 << 40))),
        ),
        (
            "map entry with a third field",
            Enc::default().msg(1, Enc::default().msg(11, Enc::default().varint(3, 1))),
        ),
        (
            "managed fields that are not JSON",
            Enc::default().msg(1, Enc::default().msg(17, Enc::default().msg(7, Enc::default().str(1, "{")))),
        ),
    ];
    for (what, raw) in cases {
        let e = api_error(&body("v1", "Service", raw));
        assert_eq!(e.code, 400, "{what}: {}", e.message);
    }
    let e = api_error(&body("v1", "Service", Enc::default().msg(1, Enc::default().bytes(1, &[0xc3, 0x28]))));
    assert!(e.message.contains("metadata.name"), "{}", e.message);
}

#[test]
fn truncated_and_oversized_lengths() {
    let good = body("v1", "ConfigMap", Enc::default().msg(1, meta("c")).entry(2, "a", "b"));
    assert!(decode(&good).is_ok());
    for cut in 0..good.len() {
        // Every strict prefix either fails cleanly or (when cut at a field boundary) decodes.
        let _ = decode(&good[..cut]);
    }
    let mut huge = b"k8s\0".to_vec();
    huge.extend_from_slice(&[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert_eq!(api_error(&huge).code, 400);
    let truncated_varint = [b"k8s\0".as_slice(), &[0x12, 0x02, 0x38, 0x80]].concat();
    assert_eq!(api_error(&truncated_varint).code, 400);
}

#[test]
fn corrupted_bodies_never_panic() {
    let good = body("apps/v1", "Deployment", {
        let container = Enc::default().str(1, "web").str(2, "r/x:1").msg(6, Enc::default().varint(3, 8080));
        let template = Enc::default().msg(1, meta("")).msg(2, Enc::default().msg(2, container));
        Enc::default().msg(1, meta("web")).msg(2, Enc::default().varint(1, 3).msg(3, template))
    });
    // A fixed pseudo-random walk (no test flakiness): flip, drop and duplicate bytes.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = 4 + (next() as usize) % (bytes.len() - 4);
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => drop(bytes.remove(at)),
                _ => bytes.insert(at, next() as u8),
            }
        }
        if let Err(e) = decode(&bytes) {
            let code = ApiError::from(e).code;
            assert!(code == 400 || code == 415, "{code}");
        }
    }
}

/// A message that contains itself, to exercise the depth guard (our real tables do not recurse).
static NEST: Message = Message { name: "Nest", fields: &[f(1, "child", msg(&NEST))] };

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes = Enc::default().bytes(1, &bytes).0;
    }
    let mut out = serde_json::Map::new();
    let err = super::decode::Decoder::default().message(&NEST, &bytes, &mut out).expect_err("too deep");
    assert!(err.to_string().contains("nested too deeply"), "{err}");
}

/// A body for `message` with every field set to a non-zero value, recursively.
fn full(message: &'static Message) -> Enc {
    let mut enc = Enc::default();
    for field in message.fields {
        let n = field.number;
        enc = match field.ty {
            Ty::Str(_) => enc.str(n, "x"),
            Ty::Bool(_) | Ty::I32(_) | Ty::I64(_) => enc.varint(n, 1),
            Ty::Msg(m) | Ty::Inline(m) | Ty::List(Elem::Msg(m)) => enc.msg(n, full(m)),
            Ty::List(Elem::Str) => enc.str(n, "x"),
            Ty::List(Elem::I32 | Elem::I64) => enc.varint(n, 1),
            Ty::Map(MapValue::Str) => enc.entry(n, "k", "v"),
            Ty::Map(MapValue::Bytes) => enc.entry(n, "k", "\u{1}"),
            Ty::Map(MapValue::Quantity) => {
                enc.msg(n, Enc::default().str(1, "k").msg(2, Enc::default().str(1, "1")))
            }
            Ty::Time | Ty::MicroTime => enc.msg(n, Enc::default().varint(1, 1_700_000_000).varint(2, 1000)),
            Ty::Quantity => enc.msg(n, Enc::default().str(1, "1")),
            Ty::IntOrString => enc.msg(n, Enc::default().varint(1, 1).str(3, "http")),
            Ty::FieldsV1 => enc.msg(n, Enc::default().str(1, "{\"f:metadata\":{}}")),
            Ty::Unsupported => enc,
        };
    }
    enc
}

/// Every field of every table, decoded, is a field of the upstream v1.37 type with the right
/// JSON type: the type check of the served kind accepts it and finds nothing unknown.
#[test]
fn every_table_matches_the_upstream_types() {
    for root in tables::ROOTS {
        let obj = decode(&body(root.api_version, root.kind, full(root.message))).expect(root.kind);
        let unknown = match find_by_kind(root.api_version, root.kind) {
            Some(rt) => (rt.type_check)(&obj),
            None => match root.kind {
                "Binding" => typed_unknown::<k8s_openapi::api::core::v1::Binding>(&obj),
                "Scale" => typed_unknown::<k8s_openapi::api::autoscaling::v1::Scale>(&obj),
                other => panic!("no upstream type to check {other} against"),
            },
        };
        assert_eq!(unknown, Ok(vec![]), "{} {}: {obj:#}", root.api_version, root.kind);
    }
    let obj =
        decode(&body("v1", "DeleteOptions", full(&tables::meta::DELETE_OPTIONS))).expect("delete options");
    assert_eq!(
        typed_unknown::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>(&obj),
        Ok(vec![])
    );
}

/// Fields of `obj` the typed round trip through `T` loses.
fn typed_unknown<T: serde::de::DeserializeOwned + serde::Serialize>(
    obj: &Value,
) -> Result<Vec<String>, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(typed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    lost_paths(obj, &back, "", &mut lost);
    Ok(lost)
}

fn lost_paths(input: &Value, known: &Value, at: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, value) in i {
                let path = format!("{at}.{key}");
                match k.get(key) {
                    Some(kv) => lost_paths(value, kv, &path, out),
                    None if !value.is_null() => out.push(path),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k).enumerate() {
                lost_paths(iv, kv, &format!("{at}[{n}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn tables_have_unique_numbers_and_names() {
    fn check(m: &'static Message, seen: &mut Vec<&'static str>) {
        if seen.contains(&m.name) {
            return;
        }
        seen.push(m.name);
        for (i, a) in m.fields.iter().enumerate() {
            for b in &m.fields[i + 1..] {
                assert_ne!(a.number, b.number, "{}: field number {} twice", m.name, a.number);
                if !a.json.is_empty() {
                    assert_ne!(a.json, b.json, "{}: JSON name {} twice", m.name, a.json);
                }
            }
            if let Ty::Msg(inner) | Ty::Inline(inner) | Ty::List(Elem::Msg(inner)) = a.ty {
                check(inner, seen);
            }
            assert_eq!(a.json.is_empty(), matches!(a.ty, Ty::Inline(_)), "{}.{}", m.name, a.number);
        }
    }
    let mut seen = Vec::new();
    for root in tables::ROOTS {
        check(root.message, &mut seen);
    }
    assert!(seen.len() > 90, "{} messages", seen.len());
}
