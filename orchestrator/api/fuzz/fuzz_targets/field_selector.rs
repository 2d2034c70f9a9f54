//! Fuzz target `field_selector`: what it feeds and checks is documented on `harness::field_selector`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::field_selector(data));
