//! Timing the instance an HTTP request gets, without HTTP: for `wasmkube bench instantiate`.
//!
//! `http::handle` gives every request a fresh store and instance and drops both afterwards.
//! [`time_instances`] does exactly those three steps, one instance at a time, and times each,
//! so the allocator's share of a request (pooled slot vs fresh mappings) can be seen apart from
//! the network, hyper and the guest's own work. It never calls the guest's handler.

use std::time::{Duration, Instant};

use crate::RuntimeError;
use crate::component::{LoadedComponent, Pre};
use crate::container::{ContainerSpec, guest_config};
use crate::engine::WasmEngine;
use crate::error::wasmtime_message;
use crate::host::new_store;

/// How long each step of one request's instance took.
#[derive(Debug, Clone, Copy)]
pub struct InstanceTiming {
    /// Building the store: WASI context (argv, env, stdio into the log, preopens, socket
    /// policy), memory limiter and epoch callback.
    pub new_store: Duration,
    /// `ProxyPre::instantiate_async`: taking a pool slot (or mapping memory), initialising
    /// memories and tables, running start functions.
    pub instantiate: Duration,
    /// Dropping the store: the slot goes back to the pool (memory reset) or is unmapped.
    pub drop: Duration,
}

impl InstanceTiming {
    /// All three steps together: what a request pays before and after the guest runs.
    pub fn total(&self) -> Duration {
        self.new_store + self.instantiate + self.drop
    }
}

/// Creates, instantiates and drops `count` instances of the `wasi:http/proxy` `component`, one
/// after another, as requests to a container described by `spec` would (its log file is
/// opened; nothing is written to it since the guest never runs).
pub async fn time_instances(
    engine: &WasmEngine,
    component: &LoadedComponent,
    spec: &ContainerSpec,
    count: usize,
) -> Result<Vec<InstanceTiming>, RuntimeError> {
    let Pre::Http(pre) = component.pre() else {
        return Err(RuntimeError::Internal(format!(
            "timing instances needs a wasi:http/proxy component; this is a {}",
            component.kind_description()
        )));
    };
    let guest = guest_config(spec)?;
    let mut timings = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let mut store = new_store(engine.engine(), &guest)?;
        let stored = Instant::now();
        // The `Proxy` handle is plain indices into the store; the instance lives in the store.
        pre.instantiate_async(&mut store)
            .await
            .map_err(|e| RuntimeError::Instantiate(wasmtime_message(&e)))?;
        let instantiated = Instant::now();
        drop(store);
        let dropped = Instant::now();
        timings.push(InstanceTiming {
            new_store: stored - started,
            instantiate: instantiated - stored,
            drop: dropped - instantiated,
        });
    }
    Ok(timings)
}
