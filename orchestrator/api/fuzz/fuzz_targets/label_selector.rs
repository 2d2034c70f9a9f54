//! Fuzz target `label_selector`: what it feeds and checks is documented on `harness::label_selector`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::label_selector(data));
