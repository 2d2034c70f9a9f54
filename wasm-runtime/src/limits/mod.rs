//! Resource limits of a container's guests: memory (all linear memories and tables, per
//! container and per pod) and CPU (an epoch-driven budget), with the usage kept for metrics.

pub(crate) mod cpu;
pub(crate) mod memory;

pub use cpu::CpuBudget;
pub use memory::{MemoryBudget, MemoryLimitExceeded};

use std::time::Duration;

/// What a container's guests use right now (memory) and have used (CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes of linear memory and tables allocated by its live instances.
    pub memory_bytes: u64,
    /// Wasm execution time since the container started.
    pub cpu: Duration,
}
