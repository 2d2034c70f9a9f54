//! Root filesystems: one unpacked, shared copy per image, and a private writable copy per
//! container run.
//!
//! ```text
//! <state>/rootfs/<manifest hex>/   the image's layers applied, read-only by convention
//! <state>/rootfs/.tmp-*/           an unpack in progress (removed on failure or at startup)
//! ```
//!
//! An image is unpacked into a temp dir and renamed into place, so a rootfs under its final
//! name is always complete; two unpacks racing for the same image both succeed and one rename
//! wins. Each container run then gets its own copy (`copy_tree`): a container's writes never
//! reach the image or another container, and a restart starts from the image again, as in
//! Kubernetes. A copy rather than overlayfs because it needs no mount to clean up after a
//! crash and busybox-sized images copy in milliseconds; overlayfs does work on this kernel
//! and is the way to go for large images (see spec/runtime.md, "Linux fallback").

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::unpack::{LayerBlob, unpack_layers};
use crate::RuntimeError;

const TEMP_PREFIX: &str = ".tmp-";

/// Where unpacked images live.
#[derive(Debug, Clone)]
pub(crate) struct RootfsCache {
    dir: PathBuf,
}

impl RootfsCache {
    /// Opens the cache at `dir`, creating it, and removes unpacks a crash left unfinished.
    pub(crate) fn open(dir: PathBuf) -> Result<Self, RuntimeError> {
        fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("creating rootfs cache", &dir, e))?;
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(Self { dir })
    }

    /// The unpacked rootfs of the image with manifest `digest`, unpacking `layers` first if it
    /// is not there yet. Blocking: call from `spawn_blocking`.
    pub(crate) fn get_or_unpack(&self, digest: &str, layers: &[LayerBlob]) -> Result<PathBuf, RuntimeError> {
        let hex = digest_hex(digest).ok_or_else(|| RuntimeError::ImageConfig {
            image: digest.to_string(),
            reason: "the manifest digest is not sha256:<64 hex digits>".into(),
        })?;
        let target = self.dir.join(hex);
        if target.is_dir() {
            return Ok(target);
        }
        let temp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{hex}-"))
            .tempdir_in(&self.dir)
            .map_err(|e| RuntimeError::io("creating a temp dir for unpacking", &self.dir, e))?;
        // The rootfs directory itself: what `/` looks like inside the container.
        let _ = fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755));
        let started = std::time::Instant::now();
        unpack_layers(temp.path(), layers)?;
        match fs::rename(temp.path(), &target) {
            Ok(()) => {
                tracing::info!(image = digest, layers = layers.len(), elapsed = ?started.elapsed(), "rootfs unpacked");
                Ok(target)
            }
            // Another unpack of the same image won the race; ours is dropped with `temp`.
            Err(_) if target.is_dir() => Ok(target),
            Err(e) => Err(RuntimeError::io("moving the unpacked rootfs into place", &target, e)),
        }
    }
}

/// `<hex>` of a `sha256:<64 lowercase hex>` digest; `None` for anything else (it becomes a
/// directory name, so nothing else may pass).
fn digest_hex(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Copies the tree at `src` to `dst` (which must not exist): directories, files, symlinks
/// (as links, never followed) and hard links (kept as links within the copy), with owners and
/// modes. Blocking.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), RuntimeError> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e| RuntimeError::io(action, path, e)
    };
    fs::create_dir(dst).map_err(io("creating container rootfs", dst))?;
    let mut linked: HashMap<(u64, u64), PathBuf> = HashMap::new();
    // Directory metadata is applied last, deepest first: a read-only directory must still
    // receive its children.
    let mut dirs = vec![(src.to_path_buf(), dst.to_path_buf())];
    let mut pending = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from_dir, to_dir)) = pending.pop() {
        for entry in fs::read_dir(&from_dir).map_err(io("reading image rootfs", &from_dir))? {
            let entry = entry.map_err(io("reading image rootfs", &from_dir))?;
            let (from, to) = (entry.path(), to_dir.join(entry.file_name()));
            let meta = fs::symlink_metadata(&from).map_err(io("reading image rootfs", &from))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                fs::create_dir(&to).map_err(io("creating directory", &to))?;
                dirs.push((from.clone(), to.clone()));
                pending.push((from, to));
                continue;
            }
            if kind.is_symlink() {
                let target = fs::read_link(&from).map_err(io("reading symlink", &from))?;
                std::os::unix::fs::symlink(target, &to).map_err(io("creating symlink", &to))?;
                chown(&to, &meta)?;
                continue;
            }
            if !kind.is_file() {
                continue; // The unpacker never creates anything else.
            }
            if meta.nlink() > 1 {
                if let Some(first) = linked.get(&(meta.dev(), meta.ino())) {
                    fs::hard_link(first, &to).map_err(io("creating hard link", &to))?;
                    continue;
                }
                linked.insert((meta.dev(), meta.ino()), to.clone());
            }
            fs::copy(&from, &to).map_err(io("copying file", &to))?;
            set_owner_and_mode(&to, &meta)?;
        }
    }
    for (from, to) in dirs.iter().rev() {
        let meta = fs::symlink_metadata(from).map_err(io("reading image rootfs", from))?;
        set_owner_and_mode(to, &meta)?;
    }
    Ok(())
}

fn chown(path: &Path, meta: &fs::Metadata) -> Result<(), RuntimeError> {
    match std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid())) {
        Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied => {
            Err(RuntimeError::io("setting owner", path, e))
        }
        _ => Ok(()),
    }
}

/// Owner, then the exact mode (chown clears setuid/setgid).
fn set_owner_and_mode(path: &Path, meta: &fs::Metadata) -> Result<(), RuntimeError> {
    chown(path, meta)?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| RuntimeError::io("setting mode", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_links_modes_and_are_independent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("bin")).expect("mkdir");
        fs::write(src.join("bin/busybox"), b"ELF").expect("write");
        fs::set_permissions(src.join("bin/busybox"), fs::Permissions::from_mode(0o4755)).expect("chmod");
        fs::hard_link(src.join("bin/busybox"), src.join("bin/ls")).expect("link");
        std::os::unix::fs::symlink("busybox", src.join("bin/sh")).expect("symlink");
        fs::set_permissions(src.join("bin"), fs::Permissions::from_mode(0o555)).expect("chmod");
        let dst = dir.path().join("dst");
        copy_tree(&src, &dst).expect("copies");
        let copy = fs::metadata(dst.join("bin/busybox")).expect("copied");
        assert_eq!(copy.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(copy.ino(), fs::metadata(dst.join("bin/ls")).expect("ls").ino());
        assert_ne!(copy.ino(), fs::metadata(src.join("bin/busybox")).expect("src").ino());
        assert_eq!(fs::read_link(dst.join("bin/sh")).expect("link"), Path::new("busybox"));
        assert_eq!(fs::metadata(dst.join("bin")).expect("dir").permissions().mode() & 0o777, 0o555);
        for d in [&src, &dst] {
            fs::set_permissions(d.join("bin"), fs::Permissions::from_mode(0o755)).expect("chmod back");
        }
    }

    #[test]
    fn digests_must_be_sha256_hex() {
        assert!(digest_hex(&format!("sha256:{}", "a".repeat(64))).is_some());
        assert!(digest_hex("sha256:../../etc").is_none());
        assert!(digest_hex(&format!("sha512:{}", "a".repeat(64))).is_none());
    }
}
