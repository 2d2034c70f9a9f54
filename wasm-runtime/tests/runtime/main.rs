//! Integration tests for wasm-runtime, run against the committed sample-apps fixtures and a few
//! hand-written WAT components. One test binary (modules below) so wasmtime is linked once.

mod command;
mod common;
mod http;
mod limits;
mod loading;
mod policy;
