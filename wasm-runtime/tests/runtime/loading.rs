//! Loading: rejecting what is not a component, world detection, the compile cache.

use wasm_runtime::{CompileOutcome, EngineConfig, RuntimeError, WasmEngine, World};

use crate::common::{TestEnv, fixture, within};

#[tokio::test]
async fn non_wasm_bytes_are_rejected() {
    within(async {
        let env = TestEnv::new();
        let path = env.dir.path().join("not.wasm");
        std::fs::write(&path, b"#!/bin/sh\necho hi\n").expect("write");
        let err = env.engine.load_component(&path, "x").await.err().expect("rejected");
        assert!(matches!(err, RuntimeError::NotWasm { .. }), "{err}");
    })
    .await
}

#[tokio::test]
async fn a_core_module_without_start_is_rejected_with_its_exports() {
    within(async {
        let env = TestEnv::new();
        let path = env.write_wat("core", r#"(module (func (export "main")))"#);
        let err = env.engine.load_component(&path, "x").await.err().expect("rejected");
        assert!(matches!(err, RuntimeError::UnknownWorld { .. }), "{err}");
        assert!(err.to_string().contains("main"), "{err}");
    })
    .await
}

#[tokio::test]
async fn a_component_of_no_known_world_is_rejected() {
    within(async {
        let env = TestEnv::new();
        let path = env.write_wat("empty", "(component)");
        let err = env.engine.load_component(&path, "x").await.err().expect("rejected");
        assert!(matches!(err, RuntimeError::UnknownWorld { .. }), "{err}");
    })
    .await
}

#[tokio::test]
async fn a_missing_file_is_an_io_error() {
    within(async {
        let env = TestEnv::new();
        let err = env
            .engine
            .load_component(&env.dir.path().join("absent.wasm"), "x")
            .await
            .err()
            .expect("rejected");
        assert!(matches!(err, RuntimeError::Io { .. }), "{err}");
    })
    .await
}

#[tokio::test]
async fn the_second_load_comes_from_the_disk_cache() {
    within(async {
        let env = TestEnv::new();
        let path = fixture("hello-http.wasm");
        let first = env.engine.load_component(&path, "a").await.expect("loads");
        assert_eq!(first.compile_outcome(), CompileOutcome::Compiled);
        let again = env.engine.load_component(&path, "a").await.expect("loads");
        assert_eq!(again.compile_outcome(), CompileOutcome::Cached);
        assert_eq!(first.digest(), again.digest());
        assert!(first.digest().starts_with("sha256:"));

        // A new engine (a restarted node agent) with the same configuration reuses the file.
        let restarted =
            WasmEngine::new(EngineConfig { cache_dir: env.dir.path().join("cache") }).expect("engine");
        let reloaded = restarted.load_component(&path, "a").await.expect("loads");
        assert_eq!(reloaded.compile_outcome(), CompileOutcome::Cached);
        assert_eq!(reloaded.world(), World::HttpProxy);

        let entries: Vec<_> = std::fs::read_dir(env.dir.path().join("cache"))
            .expect("cache dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries.len(), 1, "one file, no temp leftovers: {entries:?}");
        assert!(entries[0].ends_with(".cwasm"));
    })
    .await
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_recompiled() {
    within(async {
        let env = TestEnv::new();
        let path = fixture("hello-cli.wasm");
        env.engine.load_component(&path, "a").await.expect("loads");
        let cache = env.dir.path().join("cache");
        for entry in std::fs::read_dir(&cache).expect("cache dir") {
            std::fs::write(entry.expect("entry").path(), b"garbage").expect("corrupt");
        }
        let again = env.engine.load_component(&path, "a").await.expect("loads");
        assert_eq!(again.compile_outcome(), CompileOutcome::Compiled);
    })
    .await
}
