//! Fuzz target `request_body`: what it feeds and checks is documented on `harness::request_body`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::request_body(data));
