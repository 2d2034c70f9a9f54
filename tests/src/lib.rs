//! End-to-end test support: real servers and real artifacts, started by the tests themselves.
//!
//! - [`registry::TestRegistry`]: the CNCF distribution registry on 127.0.0.1.
//! - [`cluster`]: the real `wasmkube up`/`agent` processes and the real kubectl against them.
//! - [`wasi_image`]: OCI image layouts (wasi/wasm and linux images) pushed with skopeo.
//! - [`linux_image`]: the busybox sample image and hostile layers for the runc fallback.
//! - [`pod_watch`]: pods followed through `kubectl get pods --watch`, as an endpoints controller sees them.
//! - [`word_count`]: the word-count sample as Jobs and CronJobs run it.
//! - [`poll`]: the one bounded poll, for state no watch shows (what a proxy or DNS serves).
//!
//! Missing tools are installed by `scripts/install-test-deps.sh`.

pub mod cluster;
pub mod linux_image;
pub mod pod_watch;
pub mod poll;
pub mod registry;
pub mod wasi_image;
pub mod word_count;

pub use registry::TestRegistry;
