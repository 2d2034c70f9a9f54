//! Fuzz target `patch_merge`: what it feeds and checks is documented on `harness::patch_merge`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::patch_merge(data));
