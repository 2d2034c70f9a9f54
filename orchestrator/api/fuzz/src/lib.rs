//! The fuzz targets' bodies live with the crate's tests (`../tests/harness/mod.rs`), so that
//! `cargo test -p wasmkube-api` replays the seeds and every minimized crash through exactly the
//! code libFuzzer ran; this crate only re-exports them for the `fuzz_targets/` binaries.

#[path = "../../tests/harness/mod.rs"]
mod harness;

pub use harness::*;
