//! Fuzz target `cidr`: what it feeds and checks is documented on `harness::cidr`
//! (`orchestrator/api/tests/harness/mod.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmkube_api_fuzz::cidr(data));
