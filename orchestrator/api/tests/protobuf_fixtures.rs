//! Golden protobuf bodies captured from the real kubectl 1.37 (see
//! `fixtures/protobuf/README.md`): each decodes to the JSON committed next to it, and every
//! object passes the normal create path (type check, defaults, validation) with no unknown
//! fields. `BLESS_PROTOBUF_FIXTURES=1` rewrites the JSON files after a deliberate change;
//! review the diff.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wasmkube_api::{find_by_kind, protobuf, validate};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf")
}

fn bodies() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .map(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            (name, std::fs::read(&p).expect("read fixture"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn captured_bodies_decode_to_their_golden_json() {
    let bodies = bodies();
    assert!(bodies.len() >= 12, "fixtures missing: {:?}", bodies.iter().map(|b| &b.0).collect::<Vec<_>>());
    let bless = std::env::var_os("BLESS_PROTOBUF_FIXTURES").is_some();
    for (name, bytes) in bodies {
        assert!(bytes.starts_with(protobuf::MAGIC), "{name} is not a protobuf body");
        let decoded = protobuf::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let golden = fixtures().join(format!("{name}.json"));
        if bless {
            let text = serde_json::to_string_pretty(&decoded).expect("json") + "\n";
            std::fs::write(&golden, text).expect("write golden");
            continue;
        }
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(&golden).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        assert_eq!(decoded, expected, "{name}");
    }
}

#[test]
fn captured_objects_pass_the_create_path_untouched() {
    for (name, bytes) in bodies() {
        let obj = protobuf::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (api_version, kind) =
            (obj["apiVersion"].as_str().unwrap_or(""), obj["kind"].as_str().unwrap_or(""));
        let Some(rt) = find_by_kind(api_version, kind) else {
            assert_eq!(kind, "DeleteOptions", "{name}");
            continue;
        };
        assert_eq!((rt.type_check)(&obj), Ok(vec![]), "{name}: unknown fields");
        let stored = validate::prepare_create(rt, Some("default"), obj.clone())
            .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        assert_eq!(stored["metadata"]["name"], obj["metadata"]["name"], "{name}");
    }
}
