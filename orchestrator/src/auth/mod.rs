//! Who is calling, and what they may do. Three kinds of bearer token: the administrator's
//! (the kubeconfig `up` writes), the join token (only good for registering a node's own
//! credential), and one credential per node, which the node authorizer limits to that node's
//! own objects, as upstream's Node authorizer and NodeRestriction admission do.

pub mod node_rules;
pub mod tokens;

pub use tokens::{Identity, Registry, TokenFile};
