//! Paths inside a rootfs that is being built from untrusted layers.
//!
//! A layer may hold a symlink (`evil -> ../../..` or `evil -> /etc`) and later an entry written
//! "through" it (`evil/passwd`). The host must never follow such a link out of the rootfs, so
//! paths are resolved here one component at a time, as the container itself would see them
//! (chroot semantics: an absolute link target starts again at the rootfs): a symlink met among
//! the *parent* directories is followed inside the rootfs, and one whose target climbs above
//! the rootfs is refused. The final component of an entry is never followed: the unpacker
//! replaces whatever is there.
//!
//! Only this process writes into a rootfs while it is unpacked (a private temp dir), so the
//! check-then-write sequence has no concurrent writer to race with.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// As Linux's `MAXSYMLINKS`: more links than this in one resolution is a loop.
const MAX_SYMLINKS: usize = 40;

/// The components of an entry name (`a/./b//c` → `[a, b, c]`). Absolute names and `..` are
/// refused: a layer names paths relative to the rootfs and never above it.
pub(crate) fn entry_components(name: &[u8]) -> Result<Vec<OsString>, String> {
    if name.first() == Some(&b'/') {
        return Err("absolute path; layer entries must be relative to the rootfs".into());
    }
    let mut parts = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path climbs out of the rootfs with `..`".into()),
            name => parts.push(OsStr::from_bytes(name).to_os_string()),
        }
    }
    Ok(parts)
}

/// Resolves the directories `components` under `root`, following symlinks among them inside
/// the rootfs. Components that do not exist yet are kept as they are (the caller creates them
/// as real directories). Returns the host path.
pub(crate) fn resolve_dir(root: &Path, components: &[OsString]) -> Result<PathBuf, String> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if resolved.pop().is_none() {
                    return Err("a symlink on the way leads out of the rootfs".into());
                }
                continue;
            }
            _ => {}
        }
        let host = join(root, &resolved).join(&part);
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err("too many levels of symbolic links".into());
                }
                let target = std::fs::read_link(&host)
                    .map_err(|e| format!("reading symlink {}: {e}", host.display()))?;
                let bytes = target.as_os_str().as_bytes();
                if bytes.first() == Some(&b'/') {
                    resolved.clear();
                }
                for (i, piece) in bytes.split(|&b| b == b'/').enumerate() {
                    pending.insert(i, OsStr::from_bytes(piece).to_os_string());
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(join(root, &resolved))
}

/// Resolves an entry path: its parent directories through [`resolve_dir`], its last component
/// kept as it is (never followed). `None` for the rootfs itself (no components).
pub(crate) fn resolve_entry(root: &Path, components: &[OsString]) -> Result<Option<PathBuf>, String> {
    let Some((last, parents)) = components.split_last() else {
        return Ok(None);
    };
    Ok(Some(resolve_dir(root, parents)?.join(last)))
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(parts);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn parts(name: &str) -> Vec<OsString> {
        entry_components(name.as_bytes()).expect("valid name")
    }

    #[test]
    fn names_are_normalized_and_escapes_refused() {
        assert_eq!(parts("./a//b/./c/"), ["a", "b", "c"]);
        assert!(entry_components(b"/etc/passwd").is_err());
        assert!(entry_components(b"../../etc/passwd").is_err());
        assert!(entry_components(b"a/../../b").is_err());
        assert!(parts("./").is_empty());
    }

    #[test]
    fn symlinks_resolve_inside_the_rootfs_and_escapes_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
        symlink("usr/bin", root.join("bin")).expect("symlink");
        symlink("/usr", root.join("abs")).expect("symlink");
        symlink("../../..", root.join("up")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");
        assert_eq!(resolve_dir(root, &parts("bin")).expect("resolves"), root.join("usr/bin"));
        assert_eq!(resolve_dir(root, &parts("abs/bin")).expect("resolves"), root.join("usr/bin"));
        assert_eq!(resolve_dir(root, &parts("new/dir")).expect("resolves"), root.join("new/dir"));
        assert!(resolve_dir(root, &parts("up/etc")).is_err());
        assert!(resolve_dir(root, &parts("loop/x")).is_err());
        // The last component of an entry is never followed.
        assert_eq!(resolve_entry(root, &parts("bin")).expect("ok"), Some(root.join("bin")));
        assert_eq!(resolve_entry(root, &parts("bin/sh")).expect("ok"), Some(root.join("usr/bin/sh")));
    }
}
