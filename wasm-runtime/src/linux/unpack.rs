//! Applying the layers of a Linux image, bottom first, into one rootfs directory.
//!
//! Layers are outside input. The compression is sniffed from the blob's first bytes (gzip,
//! zstd, else plain tar) rather than trusted from a media type. Every entry is placed through
//! [`safe_path`](super::safe_path), so nothing lands outside the rootfs; device nodes and FIFOs
//! are refused (a container gets its `/dev` from runc), as are hard links whose target is not a
//! file already inside the rootfs. OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) hide what lower
//! layers put there, never what the same layer holds (image-spec `layer.md`). Owners, modes
//! (setuid included, exactly as stored) and file mtimes are kept; extended attributes (file
//! capabilities, SELinux labels) are not restored, so no file gains privileges beyond its mode.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tar::EntryType;

use super::safe_path::{entry_components, resolve_dir, resolve_entry};
use crate::RuntimeError;

/// A layer blob to apply: its digest (for messages) and the verified file in the image cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:` digest of the blob.
    pub digest: String,
    /// The blob file (gzip, zstd or plain tar).
    pub path: PathBuf,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Applies `layers` in order into `root` (an existing, empty directory).
pub(crate) fn unpack_layers(root: &Path, layers: &[LayerBlob]) -> Result<(), RuntimeError> {
    for layer in layers {
        apply_layer(root, layer)?;
    }
    Ok(())
}

/// Applies one layer on top of what `root` holds.
pub(crate) fn apply_layer(root: &Path, layer: &LayerBlob) -> Result<(), RuntimeError> {
    let refuse = |entry: &str, reason: String| RuntimeError::Layer {
        layer: layer.digest.clone(),
        entry: entry.to_string(),
        reason,
    };
    let file = File::open(&layer.path).map_err(|e| RuntimeError::io("opening layer blob", &layer.path, e))?;
    let reader =
        decompressed(BufReader::new(file)).map_err(|e| refuse("", format!("reading the blob: {e}")))?;
    let mut archive = tar::Archive::new(reader);
    let mut applier = Applier { root, created: HashSet::new() };
    let entries = archive.entries().map_err(|e| refuse("", format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse("", format!("corrupt tar archive: {e}")))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        applier.apply(&mut entry).map_err(|reason| refuse(&name, reason))?;
    }
    Ok(())
}

/// The blob's content as a tar stream, whatever compression its magic bytes say it has.
fn decompressed<'a>(mut reader: BufReader<File>) -> io::Result<Box<dyn Read + 'a>> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

/// One layer being applied: which paths (relative to the root) this layer itself created, so
/// that its whiteouts only hide lower layers.
struct Applier<'a> {
    root: &'a Path,
    created: HashSet<PathBuf>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), String> {
        let parts = entry_components(&entry.path_bytes())?;
        let Some((last, parents)) = parts.split_last() else {
            return Ok(()); // "./": the rootfs itself keeps its own owner and mode.
        };
        let kind = entry.header().entry_type();
        if let Some(hidden) = last.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parents, last, hidden);
        }
        let parent = resolve_dir(self.root, parents)?;
        fs::create_dir_all(&parent).map_err(|e| format!("creating its directory: {e}"))?;
        let target = parent.join(last);
        match kind {
            EntryType::Directory => self.directory(&target)?,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                replace(&target)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| format!("creating the file: {e}"))?;
                io::copy(entry, &mut file).map_err(|e| format!("writing the file: {e}"))?;
                let mtime = entry.header().mtime().unwrap_or(0);
                // A file time is cosmetic: an odd value must not refuse the image.
                let _ = file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime));
            }
            EntryType::Symlink => {
                let link = entry.link_name_bytes().ok_or("symlink without a target")?;
                if link.is_empty() {
                    return Err("symlink with an empty target".into());
                }
                replace(&target)?;
                // Stored as-is: it is only ever followed inside the container (or by
                // `safe_path`, which keeps it inside the rootfs).
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), &target)
                    .map_err(|e| format!("creating the symlink: {e}"))?;
            }
            EntryType::Link => {
                let link = entry.link_name_bytes().ok_or("hard link without a target")?;
                let source = self.hard_link_source(&link)?;
                if source != target {
                    replace(&target)?;
                    fs::hard_link(&source, &target).map_err(|e| format!("creating the hard link: {e}"))?;
                }
                self.record(&target);
                return Ok(()); // The link shares its target's owner and mode.
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(
                    "device nodes and FIFOs are not allowed in image layers (runc provides /dev)".into()
                );
            }
            other => return Err(format!("unsupported tar entry type {other:?}")),
        }
        self.record(&target);
        set_owner_and_mode(&target, entry.header(), kind == EntryType::Symlink)
    }

    /// A directory entry: an existing directory is kept (with its content), anything else
    /// at that path is replaced.
    fn directory(&self, target: &Path) -> Result<(), String> {
        let is_dir = fs::symlink_metadata(target).is_ok_and(|m| m.is_dir());
        if !is_dir {
            replace(target)?;
            fs::create_dir(target).map_err(|e| format!("creating the directory: {e}"))?;
        }
        Ok(())
    }

    /// `.wh.<name>` removes `<name>` of a lower layer; `.wh..wh..opq` empties the directory of
    /// everything lower layers put there. Other `.wh..wh.` names are aufs bookkeeping.
    fn whiteout(&mut self, parents: &[OsString], last: &OsString, hidden: &[u8]) -> Result<(), String> {
        let dir = resolve_dir(self.root, parents)?;
        if last.as_bytes() == OPAQUE_WHITEOUT.as_bytes() {
            return self.opaque(&dir);
        }
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(());
        }
        if matches!(hidden, b"" | b"." | b"..") || hidden.contains(&b'/') {
            return Err("whiteout of an invalid name".into());
        }
        let victim = dir.join(std::ffi::OsStr::from_bytes(hidden));
        if !self.created.contains(&self.relative(&victim)) {
            remove_any(&victim)?;
        }
        Ok(())
    }

    /// Removes everything under `dir` that this layer did not create itself.
    fn opaque(&self, dir: &Path) -> Result<(), String> {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let Ok(children) = fs::read_dir(&dir) else {
                return Ok(()); // Nothing there (or not a directory): nothing to hide.
            };
            for child in children {
                let child = child.map_err(|e| format!("listing {}: {e}", dir.display()))?.path();
                if !self.created.contains(&self.relative(&child)) {
                    remove_any(&child)?;
                } else if fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir()) {
                    pending.push(child);
                }
            }
        }
        Ok(())
    }

    /// The file a hard link points at: a name inside the rootfs, already unpacked, not a
    /// directory.
    fn hard_link_source(&self, link: &[u8]) -> Result<PathBuf, String> {
        let parts = entry_components(link).map_err(|why| format!("hard link target: {why}"))?;
        let source = resolve_entry(self.root, &parts)?.ok_or("hard link to the rootfs itself")?;
        match fs::symlink_metadata(&source) {
            Ok(meta) if !meta.is_dir() => Ok(source),
            Ok(_) => Err("hard link to a directory".into()),
            Err(_) => {
                Err(format!("hard link to {:?}, which is not in the rootfs", String::from_utf8_lossy(link)))
            }
        }
    }

    /// Records `target` and its parent directories as this layer's: an opaque marker must
    /// keep the directories that lead to what this layer put there.
    fn record(&mut self, target: &Path) {
        let relative = self.relative(target);
        for ancestor in relative.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            if !self.created.insert(ancestor.to_path_buf()) {
                break; // Its ancestors are recorded already.
            }
        }
    }

    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.root).unwrap_or(path).to_path_buf()
    }
}

/// Makes room for a new entry at `target`: whatever is there goes (a symlink itself, never
/// what it points at).
fn replace(target: &Path) -> Result<(), String> {
    remove_any(target)
}

fn remove_any(path: &Path) -> Result<(), String> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| format!("removing {}: {e}", path.display()))
}

/// Owner first, then mode: `chown` clears setuid/setgid bits, which the mode then restores
/// exactly as the image has them.
fn set_owner_and_mode(target: &Path, header: &tar::Header, is_symlink: bool) -> Result<(), String> {
    // An empty owner field reads as an error; tar tools take it as root, and so do we.
    let uid = u32::try_from(header.uid().unwrap_or(0)).map_err(|_| "owner uid out of range")?;
    let gid = u32::try_from(header.gid().unwrap_or(0)).map_err(|_| "owner gid out of range")?;
    match std::os::unix::fs::lchown(target, Some(uid), Some(gid)) {
        Ok(()) => {}
        // Not root (unit tests as a user): files stay ours, which runc would refuse anyway.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
        Err(e) => return Err(format!("setting the owner: {e}")),
    }
    if is_symlink {
        return Ok(()); // Linux has no mode on symlinks.
    }
    let mode = header.mode().map_err(|e| format!("invalid mode: {e}"))? & 0o7777;
    fs::set_permissions(target, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("setting the mode: {e}"))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
