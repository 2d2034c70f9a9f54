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
        let restarted = WasmEngine::new(EngineConfig {
            cache_dir: env.dir.path().join("cache"),
            allocatable_memory: None,
        })
        .expect("engine");
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

/// A second pod of an image shares the first one's linked code while the first still runs: it
/// does not go back to the cache file (here removed), and once nobody holds the code it does.
#[tokio::test]
async fn a_load_while_the_same_bytes_are_held_shares_their_code() {
    within(async {
        let env = TestEnv::new();
        let path = fixture("hello-http.wasm");
        let first = env.engine.load_component(&path, "a").await.expect("loads");
        let cache = env.dir.path().join("cache");
        std::fs::remove_dir_all(&cache).expect("remove the cache");
        std::fs::create_dir_all(&cache).expect("empty cache");
        let second = env.engine.load_component(&path, "b").await.expect("loads");
        assert_eq!(second.compile_outcome(), CompileOutcome::Cached);
        assert_eq!(second.digest(), first.digest());
        assert_eq!(std::fs::read_dir(&cache).expect("cache dir").count(), 0, "nothing read or written");
        drop((first, second));
        let third = env.engine.load_component(&path, "c").await.expect("loads");
        assert_eq!(third.compile_outcome(), CompileOutcome::Compiled, "nobody held it: loaded anew");
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

/// A node with plenty of memory gets a pool sized to it (here the 10,000-slot maximum), and the
/// engine can still run a component from it.
#[tokio::test]
async fn the_pool_is_sized_from_allocatable_memory() {
    within(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EngineConfig { cache_dir: dir.path().join("cache"), allocatable_memory: Some(64 << 30) };
        assert_eq!(config.instance_slots(), 10_000);
        let engine = WasmEngine::new(config).expect("engine");
        // The maximum fits the x86-64 address space (unless a `ulimit -v` forbids it; then the
        // pool steps down, which is also fine).
        let unlimited = std::fs::read_to_string("/proc/self/limits")
            .is_ok_and(|l| l.lines().any(|l| l.starts_with("Max address space") && l.contains("unlimited")));
        if unlimited && cfg!(target_arch = "x86_64") {
            assert_eq!(engine.pool_slots(), 10_000);
        }
        assert!(engine.pool_slots() >= 128, "{}", engine.pool_slots());
        let small = EngineConfig { cache_dir: dir.path().join("cache"), allocatable_memory: Some(1 << 20) };
        assert_eq!(small.instance_slots(), 128);
        let component = engine.load_component(&fixture("hello-cli.wasm"), "x").await.expect("loads");
        let spec = wasm_runtime::ContainerSpec::new("hello", dir.path().join("hello.log"));
        let status = wasm_runtime::start(&engine, &component, spec).await.expect("starts").wait().await;
        assert!(status.success(), "{status:?}");
    })
    .await
}
