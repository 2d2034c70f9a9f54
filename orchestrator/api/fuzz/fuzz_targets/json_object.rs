//! Fuzz target `json_object`: what it feeds and checks is documented on `harness::json_object`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::json_object(data));
