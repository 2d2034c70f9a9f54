//! Builds OCI image layouts on disk (tar+gzip layers, image config, manifest, `index.json`)
//! and pushes them to a registry with `skopeo`, the way real images arrive: a "wasi/wasm" image
//! with the `.wasm` in its rootfs, or a small linux/amd64 image.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use flate2::{Compression, write::GzEncoder};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Where Debian's `skopeo` package installs the tool.
pub const SKOPEO_BIN: &str = "/usr/bin/skopeo";

/// One regular file in a layer. A whiteout is just a file named `.wh.<name>`.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Path in the rootfs, e.g. `/app.wasm` (a leading `/` is dropped in the tar, as Docker does).
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
}

/// An image to write as an OCI layout.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Config `architecture` (`wasm`, `amd64`).
    pub architecture: String,
    /// Config `os` (`wasip2`, `linux`).
    pub os: String,
    /// Config `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// Layers, bottom first; each becomes one tar+gzip layer.
    pub layers: Vec<Vec<LayerFile>>,
}

impl ImageSpec {
    /// A "wasi/wasm" image: one layer holding `/app.wasm`, architecture `wasm`, os `wasip2`,
    /// `Entrypoint ["/app.wasm"]`.
    pub fn wasi(wasm: &[u8]) -> ImageSpec {
        ImageSpec {
            architecture: "wasm".into(),
            os: "wasip2".into(),
            entrypoint: vec!["/app.wasm".into()],
            layers: vec![vec![LayerFile { path: "/app.wasm".into(), bytes: wasm.to_vec(), mode: 0o644 }]],
        }
    }
}

/// Writes `spec` as an OCI image layout in `dir`, tagged `tag`; returns the manifest digest.
pub fn write_oci_layout(dir: &Path, tag: &str, spec: &ImageSpec) -> anyhow::Result<String> {
    let tars = spec.layers.iter().map(|files| tar_layer(files)).collect::<anyhow::Result<Vec<_>>>()?;
    let exec = json!({ "Entrypoint": spec.entrypoint });
    write_oci_layout_from_tars(dir, tag, &spec.architecture, &spec.os, &exec, &tars)
}

/// Writes an OCI image layout whose layers are the given tar archives (each gzipped here), as
/// they are: hostile names included. `exec` is the config's `config` object (Entrypoint, Cmd,
/// Env...). Returns the manifest digest.
pub fn write_oci_layout_from_tars(
    dir: &Path,
    tag: &str,
    architecture: &str,
    os: &str,
    exec: &serde_json::Value,
    tars: &[Vec<u8>],
) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in tars {
        diff_ids.push(digest(tar));
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, tar)?;
        let gz = gz.finish()?;
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": write_blob(dir, &gz)?,
            "size": gz.len(),
        }));
    }
    let config = serde_json::to_vec(&json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": architecture,
        "os": os,
        "config": exec,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": write_blob(dir, &config)?,
            "size": config.len(),
        },
        "layers": layers,
    }))?;
    let manifest_digest = write_blob(dir, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(manifest_digest)
}

/// Copies the layout's `tag` to `docker://<dest_reference>` (plain HTTP allowed); returns the
/// manifest digest the registry stored.
pub fn skopeo_push(layout: &Path, tag: &str, dest_reference: &str) -> anyhow::Result<String> {
    if !Path::new(SKOPEO_BIN).exists() {
        bail!("{SKOPEO_BIN} is missing: run scripts/install-test-deps.sh");
    }
    let digest_file = layout.join("pushed.digest");
    // --insecure-policy: do not depend on the host's /etc/containers/policy.json.
    let output = Command::new(SKOPEO_BIN)
        .args(["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--digestfile"])
        .arg(&digest_file)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest_reference}"))
        .output()
        .context("running skopeo")?;
    if !output.status.success() {
        bail!(
            "skopeo copy to {dest_reference} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(std::fs::read_to_string(&digest_file)?.trim().to_string())
}

/// Builds `spec` in a temp dir and pushes it as `<registry_addr>/<repository>:<tag>`; returns
/// `(reference, manifest digest)`.
pub fn push_image(
    registry_addr: &str,
    repository: &str,
    tag: &str,
    spec: &ImageSpec,
) -> anyhow::Result<(String, String)> {
    let dir = tempfile::tempdir()?;
    write_oci_layout(dir.path(), tag, spec)?;
    let reference = format!("{registry_addr}/{repository}:{tag}");
    let digest = skopeo_push(dir.path(), tag, &reference)?;
    Ok((reference, digest))
}

/// Pushes a "wasi/wasm" image holding `wasm` at `/app.wasm`; returns `(reference, digest)`.
pub fn push_wasi_image(
    registry_addr: &str,
    repository: &str,
    tag: &str,
    wasm: &[u8],
) -> anyhow::Result<(String, String)> {
    push_image(registry_addr, repository, tag, &ImageSpec::wasi(wasm))
}

fn tar_layer(files: &[LayerFile]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.bytes.len() as u64);
        header.set_mode(file.mode);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, file.path.trim_start_matches('/'), file.bytes.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_blob(dir: &Path, bytes: &[u8]) -> anyhow::Result<String> {
    let digest = digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hex), bytes)?;
    Ok(digest)
}
