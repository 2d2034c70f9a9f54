//! Fuzz target `query_string`: what it feeds and checks is documented on `harness::query_string`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::query_string(data));
