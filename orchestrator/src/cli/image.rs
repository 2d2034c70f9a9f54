//! `wasmkube push` and `wasmkube load`: getting a .wasm to where pods can run it.

use std::path::PathBuf;

use anyhow::Context;
use orchestrator::node;

/// Push a .wasm to a registry as a CNCF Wasm OCI artifact.
#[derive(clap::Args)]
pub struct PushCommand {
    /// The .wasm file (component or module).
    file: PathBuf,
    /// Target image reference, e.g. 127.0.0.1:5000/hello-http:1 (plain HTTP for loopback registries).
    reference: String,
}

impl PushCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        orchestrator::install_crypto_provider();
        eprintln!("pushing {} to {} ...", self.file.display(), self.reference);
        let digest = oci_fetch::push_wasm(&self.file, &self.reference)
            .await
            .with_context(|| format!("pushing {} to {}", self.file.display(), self.reference))?;
        println!("{}@{digest}", self.reference);
        Ok(())
    }
}

/// Side-load a .wasm into a node's image cache.
#[derive(clap::Args)]
pub struct LoadCommand {
    /// The .wasm file.
    file: PathBuf,
    /// Image name pods will use, e.g. example.local/app:1 (use imagePullPolicy IfNotPresent or Never).
    #[arg(long)]
    name: String,
    /// The node's data dir: `<up --data-dir>/node`, or an agent's --data-dir (default: the `up` default).
    #[arg(long)]
    node_data_dir: Option<PathBuf>,
}

impl LoadCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let dir = self.node_data_dir.unwrap_or_else(|| super::config::default_data_dir().join("node"));
        let cache = oci_fetch::ImageCache::open(&node::images_dir(&dir))
            .with_context(|| format!("opening the image cache in {}", dir.display()))?;
        let image = cache
            .load_wasm_file(&self.file, &self.name)
            .with_context(|| format!("loading {}", self.file.display()))?;
        println!("loaded {} as {} ({})", self.file.display(), image.reference, image.image_id);
        Ok(())
    }
}
