//! `wasmkube delete`: by manifest (`-f`) or by type and names.

use std::path::PathBuf;

use anyhow::anyhow;
use orchestrator::api::{find_by_kind, meta};

use super::{apply::read_manifests, config::ClientOptions, get::resolve};

/// Delete objects.
#[derive(clap::Args)]
pub struct DeleteCommand {
    /// Resource type (or TYPE/NAME), when not using -f.
    resource: Option<String>,
    /// Names to delete.
    names: Vec<String>,
    /// Manifest file(s) naming the objects.
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// Seconds to give pods to stop (default: their own grace period).
    #[arg(long)]
    grace_period: Option<i64>,
    /// Succeed even if an object does not exist.
    #[arg(long)]
    ignore_not_found: bool,
    #[command(flatten)]
    client: ClientOptions,
}

impl DeleteCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let conn = self.client.connect()?;
        let mut targets = Vec::new();
        if !self.files.is_empty() {
            for doc in read_manifests(&self.files)? {
                let (av, kind) =
                    (doc["apiVersion"].as_str().unwrap_or(""), doc["kind"].as_str().unwrap_or(""));
                let rt = find_by_kind(av, kind)
                    .ok_or_else(|| anyhow!("no matches for kind \"{kind}\" in version \"{av}\""))?;
                let ns = match meta::namespace(&doc) {
                    "" => conn.namespace.clone(),
                    ns => ns.to_string(),
                };
                targets.push((rt, ns, meta::name(&doc).to_string()));
            }
        } else {
            let resource = self.resource.as_deref().ok_or_else(|| {
                anyhow!("you must provide one or more resources by argument or filename (-f)")
            })?;
            let (rt, mut names) = resolve(resource)?;
            names.extend(self.names.iter().cloned());
            if names.is_empty() {
                return Err(anyhow!("resource(s) were provided, but no name was specified"));
            }
            targets.extend(names.into_iter().map(|n| (rt, conn.namespace.clone(), n)));
        }
        let mut failed = false;
        for (rt, ns, name) in targets {
            let label = rt.qualified();
            match conn.client.delete(rt, Some(&ns), &name, self.grace_period).await {
                Ok(_) => println!("{label} \"{name}\" deleted"),
                Err(e) if e.is_not_found() && self.ignore_not_found => {}
                Err(e) => {
                    eprintln!("Error from server ({}): {e}", e.reason);
                    failed = true;
                }
            }
        }
        if failed { Err(anyhow!("some objects could not be deleted")) } else { Ok(()) }
    }
}
