//! Where the CLI finds its cluster: `--kubeconfig`, `$KUBECONFIG`, or the kubeconfig `up`
//! wrote in the default data dir; and the default data dir itself.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use orchestrator::{api::yaml, client::Client};

/// The default data dir: `$XDG_DATA_HOME/wasmkube` or `~/.local/share/wasmkube`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("wasmkube");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/wasmkube")
}

/// Options shared by the client commands.
#[derive(clap::Args, Clone)]
pub struct ClientOptions {
    /// Path of the kubeconfig (default: $KUBECONFIG, else <data-dir>/kubeconfig of `wasmkube up`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace (default: the kubeconfig context's, else "default").
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

/// A connected client and the namespace to use.
pub struct Connection {
    /// The API client.
    pub client: Client,
    /// Namespace for namespaced objects.
    pub namespace: String,
}

impl ClientOptions {
    /// Read the kubeconfig and build a client.
    pub fn connect(&self) -> anyhow::Result<Connection> {
        let path = self
            .kubeconfig
            .clone()
            .or_else(|| std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| default_data_dir().join("kubeconfig"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("reading kubeconfig {} (is `wasmkube up` running? pass --kubeconfig)", path.display())
        })?;
        let cfg = yaml::from_str_single(&text).map_err(|e| anyhow!("kubeconfig {}: {e}", path.display()))?;
        let context_name = cfg["current-context"].as_str().unwrap_or("");
        let find = |list: &str, name: &str| {
            cfg[list].as_array().and_then(|l| l.iter().find(|e| e["name"] == name)).cloned()
        };
        let context = find("contexts", context_name).map(|c| c["context"].clone()).unwrap_or_default();
        let cluster = find("clusters", context["cluster"].as_str().unwrap_or(""))
            .map(|c| c["cluster"].clone())
            .ok_or_else(|| anyhow!("kubeconfig {}: the current context names no cluster", path.display()))?;
        let user = find("users", context["user"].as_str().unwrap_or(""))
            .map(|u| u["user"].clone())
            .unwrap_or_default();
        let server = cluster["server"]
            .as_str()
            .ok_or_else(|| anyhow!("kubeconfig {}: the cluster has no server", path.display()))?;
        let token = user["token"].as_str().unwrap_or("");
        let ca =
            match (cluster["certificate-authority-data"].as_str(), cluster["certificate-authority"].as_str())
            {
                (Some(data), _) => {
                    use base64::Engine as _;
                    let bytes =
                        base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| {
                            anyhow!(
                                "kubeconfig {}: certificate-authority-data is not base64: {e}",
                                path.display()
                            )
                        })?;
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                (None, Some(file)) => Some(
                    std::fs::read_to_string(file)
                        .with_context(|| format!("reading the CA {file} named in {}", path.display()))?,
                ),
                (None, None) => None,
            };
        let namespace = self
            .namespace
            .clone()
            .or_else(|| context["namespace"].as_str().map(str::to_string))
            .unwrap_or_else(|| "default".into());
        Ok(Connection { client: Client::new(server, token, ca.as_deref())?, namespace })
    }
}
