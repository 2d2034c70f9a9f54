//! Fuzz target `yaml_decode`: what it feeds and checks is documented on `harness::yaml_decode`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::yaml_decode(data));
