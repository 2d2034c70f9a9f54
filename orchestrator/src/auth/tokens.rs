//! The token registry in `<data-dir>/tokens.json` (mode 0600): the admin and join tokens, the
//! token the API server presents to agents (log proxying), and a SHA-256 of each node's
//! credential. Node credentials are made by the agents themselves and registered once with
//! the join token; a name already registered with another credential stays with its first
//! owner, so one agent cannot take over another's node.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use rand::Rng;
use sha2::{Digest, Sha256};

/// The calling identity of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Full access (kubectl through the kubeconfig, the controllers).
    Admin,
    /// May only register a node credential.
    Join,
    /// A node agent: `system:node:<name>`.
    Node(String),
}

impl Identity {
    /// The user name upstream would log and put in a 403 message.
    pub fn user(&self) -> String {
        match self {
            Self::Admin => "admin".into(),
            Self::Join => "system:bootstrap:join".into(),
            Self::Node(n) => format!("system:node:{n}"),
        }
    }
}

/// What `tokens.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenFile {
    /// The administrator (kubeconfig).
    pub admin: String,
    /// Node agents joining the cluster (`wasmkube agent --token`). Earlier versions called it
    /// `node` and let agents use it for everything.
    #[serde(alias = "node")]
    pub join: String,
    /// What the API server presents to agents when it proxies to them (logs).
    #[serde(default = "random_token")]
    pub apiserver: String,
    /// Node name → SHA-256 (hex) of that node's credential.
    #[serde(default)]
    pub nodes: BTreeMap<String, String>,
}

/// A fresh random token (192 bits, hex).
pub fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    hex::encode(bytes)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a node credential could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The name belongs to another agent's credential.
    #[error("node {0:?} is already registered with a different credential")]
    Taken(String),
    /// The registry could not be saved.
    #[error("saving the token registry: {0}")]
    Io(#[from] std::io::Error),
}

/// The live registry, shared by the API server and `up`; changes are saved at once.
#[derive(Clone)]
pub struct Registry {
    file: Arc<RwLock<TokenFile>>,
    path: PathBuf,
}

impl Registry {
    /// Load `tokens.json`, creating it on first start (mode 0600).
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let loaded =
            std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<TokenFile>(&t).ok());
        let file = loaded.unwrap_or_else(|| TokenFile {
            admin: random_token(),
            join: random_token(),
            apiserver: random_token(),
            nodes: BTreeMap::new(),
        });
        let registry = Self { file: Arc::new(RwLock::new(file)), path: path.to_path_buf() };
        registry.save()?;
        Ok(registry)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TokenFile> {
        self.file.read().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&*self.read()).unwrap_or_default();
        crate::cluster::write_private(&self.path, text.as_bytes())
    }

    /// A copy of the file's contents.
    pub fn snapshot(&self) -> TokenFile {
        self.read().clone()
    }

    /// Who presents `token`, if anyone.
    pub fn identify(&self, token: &str) -> Option<Identity> {
        let file = self.read();
        if token == file.admin {
            return Some(Identity::Admin);
        }
        if token == file.join {
            return Some(Identity::Join);
        }
        let hashed = digest(token);
        file.nodes.iter().find(|(_, h)| **h == hashed).map(|(name, _)| Identity::Node(name.clone()))
    }

    /// Register `token` as the credential of node `name` (idempotent for the same token).
    pub fn register_node(&self, name: &str, token: &str) -> Result<(), RegisterError> {
        let hashed = digest(token);
        {
            let mut file = self.file.write().unwrap_or_else(|p| p.into_inner());
            match file.nodes.get(name) {
                Some(existing) if *existing == hashed => return Ok(()),
                Some(_) => return Err(RegisterError::Taken(name.to_string())),
                None => {
                    file.nodes.insert(name.to_string(), hashed);
                }
            }
        }
        Ok(self.save()?)
    }

    /// Make `token` node `name`'s credential, replacing any other (`up` does this for its own
    /// node, whose credential it makes fresh on every start).
    pub fn set_node(&self, name: &str, token: &str) -> std::io::Result<()> {
        self.file.write().unwrap_or_else(|p| p.into_inner()).nodes.insert(name.to_string(), digest(token));
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_and_first_come_node_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.json");
        let reg = Registry::load_or_create(&path).expect("create");
        let f = reg.snapshot();
        assert_eq!(reg.identify(&f.admin), Some(Identity::Admin));
        assert_eq!(reg.identify(&f.join), Some(Identity::Join));
        assert_eq!(reg.identify("nope"), None);
        reg.register_node("node-b", "secret-b").expect("register");
        reg.register_node("node-b", "secret-b").expect("same token again");
        assert!(matches!(reg.register_node("node-b", "other"), Err(RegisterError::Taken(_))));
        assert_eq!(reg.identify("secret-b"), Some(Identity::Node("node-b".into())));
        // Persisted, hashed, private.
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("secret-b"));
        let again = Registry::load_or_create(&path).expect("reload");
        assert_eq!(again.identify("secret-b"), Some(Identity::Node("node-b".into())));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_old_file_format_still_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, r#"{"admin":"a","node":"n"}"#).expect("write");
        let reg = Registry::load_or_create(&path).expect("load");
        assert_eq!(reg.identify("n"), Some(Identity::Join));
        assert_eq!(reg.identify("a"), Some(Identity::Admin));
    }
}
