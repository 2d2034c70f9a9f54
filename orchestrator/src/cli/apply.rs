//! `wasmkube apply -f`: create what is missing, update what exists (a strategic merge of the
//! manifest, keeping kubectl's last-applied annotation so kubectl can take over later).

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use orchestrator::{
    api::{find_by_kind, meta, patch::PatchType, yaml},
    client::Client,
};
use serde_json::Value;

use super::config::ClientOptions;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Create or update objects from manifests.
#[derive(clap::Args)]
pub struct ApplyCommand {
    /// Manifest file (YAML or JSON, several documents allowed); `-` reads stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    client: ClientOptions,
}

/// Read every document of every file.
pub fn read_manifests(files: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    for f in files {
        let text = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading stdin")?
        } else {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        };
        let parsed = yaml::from_str_multi(&text).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        for doc in parsed {
            match doc["kind"].as_str() {
                Some("List") => docs.extend(doc["items"].as_array().cloned().unwrap_or_default()),
                Some(_) => docs.push(doc),
                None => return Err(anyhow!("{}: a document has no `kind`", f.display())),
            }
        }
    }
    Ok(docs)
}

impl ApplyCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let conn = self.client.connect()?;
        for doc in read_manifests(&self.files)? {
            let line = apply_one(&conn.client, &conn.namespace, doc).await?;
            println!("{line}");
        }
        Ok(())
    }
}

async fn apply_one(client: &Client, default_ns: &str, mut doc: Value) -> anyhow::Result<String> {
    let api_version = doc["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = doc["kind"].as_str().unwrap_or("").to_string();
    let rt = find_by_kind(&api_version, &kind)
        .ok_or_else(|| anyhow!("no matches for kind \"{kind}\" in version \"{api_version}\""))?;
    let name = meta::name(&doc).to_string();
    if name.is_empty() {
        return Err(anyhow!("a {kind} in the manifest has no metadata.name"));
    }
    let ns = match meta::namespace(&doc) {
        "" => default_ns.to_string(),
        ns => ns.to_string(),
    };
    let mut pristine = doc.clone();
    if let Some(a) = pristine["metadata"]["annotations"].as_object_mut() {
        a.remove(LAST_APPLIED);
    }
    meta::set_annotation(&mut doc, LAST_APPLIED, &serde_json::to_string(&pristine)?);
    let label = format!("{}/{name}", rt.qualified().replace(rt.plural, rt.singular));
    match client.get_opt(rt, Some(&ns), &name).await? {
        None => {
            client.create(rt, Some(&ns), &doc).await?;
            Ok(format!("{label} created"))
        }
        Some(current) => {
            // Like kubectl: work out locally whether the manifest changes anything, and send
            // nothing when it does not (the server-side object may change meanwhile, e.g. status).
            let merged = orchestrator::api::patch::apply(PatchType::Strategic, &current, &doc)?;
            if merged == current {
                return Ok(format!("{label} unchanged"));
            }
            client.patch(rt, Some(&ns), &name, None, PatchType::Strategic, &doc).await?;
            Ok(format!("{label} configured"))
        }
    }
}
