//! Kubernetes-shaped API objects: which resources we serve, how errors look on the wire
//! (`Status`), object metadata helpers, validation, patching, server-side apply and protobuf
//! request bodies. Sans-IO: nothing here knows about axum or redb, so the apiserver, the
//! controllers and the CLI share it.

pub mod apply;
pub mod batch;
pub mod cidr;
pub mod cron;
pub mod endpoints;
pub mod meta;
pub mod nesting;
pub mod networking;
pub mod ownership;
pub mod patch;
pub mod protobuf;
pub mod request;
pub mod resources;
mod schema;
pub mod selectors;
pub mod services;
pub mod status;
pub mod syntax;
pub mod validate;
pub mod workloads;
pub mod yaml;

pub use resources::{ResourceType, find_by_kind, find_by_plural};
pub use status::ApiError;
