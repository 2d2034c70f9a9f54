//! Replays, through the fuzz targets' own code (`harness/`), every committed seed
//! (`fuzz/corpus/<target>/`) and every minimized input that once crashed or broke an invariant
//! (`tests/fuzz-regressions/<target>/`). A fixed bug that comes back fails here, in the ordinary
//! test run, without nightly or libFuzzer.

mod harness;

use std::{fs, panic, path::PathBuf};

fn dirs(target: &str) -> [PathBuf; 2] {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [root.join("fuzz/corpus").join(target), root.join("tests/fuzz-regressions").join(target)]
}

/// Run every input of one target; report all that fail, by file name.
fn replay(target: &str, run: fn(&[u8])) {
    let mut failed = Vec::new();
    let mut count = 0;
    for dir in dirs(target) {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.expect("read corpus directory").path();
            let data = fs::read(&path).expect("read corpus file");
            count += 1;
            if panic::catch_unwind(|| run(&data)).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(count > 0, "no seeds for fuzz target {target}");
    assert!(failed.is_empty(), "fuzz target {target} fails on: {failed:#?}");
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            replay(stringify!($target), harness::$target);
        }
    )*};
}

replay_tests!(
    request_body,
    query_string,
    yaml_decode,
    json_object,
    patch_json,
    patch_merge,
    patch_strategic,
    label_selector,
    field_selector,
    cidr
);

/// The harness, the fuzz crate's binaries and the seed directories name the same targets, so a
/// new target cannot miss its seeds, its binary or its replay.
#[test]
fn every_target_has_a_binary_and_seeds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "wasmkube-api-fuzz")
        .collect();
    let targets: Vec<&str> = harness::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(bins, targets, "fuzz/Cargo.toml [[bin]] entries and harness::TARGETS differ");
    for target in targets {
        assert!(root.join("fuzz/fuzz_targets").join(format!("{target}.rs")).is_file(), "{target}.rs");
        assert!(dirs(target)[0].is_dir(), "no seed directory for {target}");
    }
}
