//! Linux images for the runc fallback's tests: the busybox sample built by its own script
//! (`sample-apps/busybox/build-image.sh`, from Debian's busybox-static) and hostile layers
//! written with raw tar headers (names the tar crate's checked setters would refuse).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{TestRegistry, cluster::root, wasi_image};

/// Builds the busybox sample image with its script and pushes it as `<registry>/<repo>:<tag>`;
/// returns the reference.
pub fn push_busybox(registry: &TestRegistry, repository: &str, tag: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    let script = root().join("sample-apps/busybox/build-image.sh");
    let output =
        Command::new("bash").arg(&script).arg(&layout).arg(tag).output().context("running build-image.sh")?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); scripts/install-test-deps.sh installs busybox-static: {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let reference = registry.reference(&format!("{repository}:{tag}"));
    wasi_image::skopeo_push(&layout, tag, &reference)?;
    Ok(reference)
}

/// One entry of a raw tar layer.
#[derive(Debug, Clone)]
pub enum RawEntry {
    /// A regular file (name written as-is, `..` and leading `/` included).
    File(String, Vec<u8>),
    /// A symlink `name -> target`.
    Symlink(String, String),
}

/// A tar archive with `entries`, names copied into the headers unchecked.
pub fn raw_tar(entries: &[RawEntry]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match entry {
            RawEntry::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                (name, data)
            }
            RawEntry::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                raw_field(&mut header.as_old_mut().linkname, target)?;
                (name, &[])
            }
        };
        raw_field(&mut header.as_old_mut().name, name)?;
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, data)?;
    }
    Ok(builder.into_inner()?)
}

fn raw_field(field: &mut [u8], value: &str) -> anyhow::Result<()> {
    if value.len() >= field.len() {
        bail!("{value:?} does not fit a tar header field");
    }
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
    Ok(())
}

/// Pushes a linux/amd64 image made of `tars` (bottom first) with Cmd `cmd`; returns the
/// reference.
pub fn push_raw_image(
    registry: &TestRegistry,
    repository: &str,
    tag: &str,
    tars: &[Vec<u8>],
    cmd: &[&str],
) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let exec = serde_json::json!({ "Cmd": cmd });
    wasi_image::write_oci_layout_from_tars(dir.path(), tag, "amd64", "linux", &exec, tars)?;
    let reference = registry.reference(&format!("{repository}:{tag}"));
    wasi_image::skopeo_push(dir.path(), tag, &reference)?;
    Ok(reference)
}

/// Whether runc can run containers here (root and the binary); tests say why they skip.
pub fn runc_usable() -> Result<(), String> {
    if !Path::new("/usr/sbin/runc").exists() {
        return Err("/usr/sbin/runc is missing (scripts/install-test-deps.sh installs runc)".into());
    }
    let uid =
        Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if !uid.is_ok_and(|u| u == "0") {
        return Err("runc needs root".into());
    }
    Ok(())
}
