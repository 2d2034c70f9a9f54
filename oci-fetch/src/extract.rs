//! Reads one file (the `.wasm` a wasi/wasm image's entrypoint names) out of the rootfs its
//! layers build, without unpacking anything to disk but that file.
//!
//! Layers are applied in order with OCI whiteout semantics: `.wh.<name>` deletes `<name>` (and
//! everything below it) from lower layers, `.wh..wh..opq` empties its directory of lower-layer
//! content, and a non-directory replacing an ancestor directory hides the file too. tar does not
//! know whiteouts, so this is done here. Entries with absolute paths or `..` climbing above the
//! root are refused rather than guessed at.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use crate::cache::BlobWriter;
use crate::{FetchError, ImageCache};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// A cached layer blob, in manifest order.
pub(crate) struct LayerBlob<'a> {
    /// Digest, for messages.
    pub digest: &'a str,
    /// The verified blob in the cache.
    pub path: &'a Path,
}

/// What the rootfs holds at the target path after some layers.
enum Found {
    /// A regular file, staged in the cache's temp dir.
    File(BlobWriter),
    /// Something that is not a regular file (directory, link, device…), described.
    Other(&'static str),
}

/// What one layer does to the target.
#[derive(Default)]
struct LayerEffect {
    provided: Option<Found>,
    deleted: bool,
}

/// Extracts the file at `target` (normalized components) from `layers` into the cache and
/// returns its digest. The file must be a Wasm binary.
pub(crate) fn extract_file(
    cache: &ImageCache,
    layers: &[LayerBlob<'_>],
    target: &[String],
    reference: &str,
) -> Result<String, FetchError> {
    let shown = format!("/{}", target.join("/"));
    let mut current: Option<Found> = None;
    for layer in layers {
        let effect = scan_layer(cache, layer, target, reference)?;
        if effect.provided.is_some() {
            current = effect.provided;
        } else if effect.deleted {
            current = None;
        }
    }
    let unsupported = |why: String| FetchError::UnsupportedArtifact { reference: reference.to_string(), why };
    match current {
        None => Err(unsupported(format!(
            "the entrypoint {shown} is not in the image's {} layer(s)",
            layers.len()
        ))),
        Some(Found::Other(kind)) => {
            Err(unsupported(format!("the entrypoint {shown} is a {kind}, not a regular .wasm file")))
        }
        Some(Found::File(writer)) => {
            if !crate::wasm_header::has_wasm_magic(writer.head()) {
                return Err(unsupported(format!(
                    "the entrypoint {shown} is not a Wasm binary (no \\0asm magic)"
                )));
            }
            writer.finish(cache, None)
        }
    }
}

/// Reads one layer's tar stream and records what it does to `target`.
fn scan_layer(
    cache: &ImageCache,
    layer: &LayerBlob<'_>,
    target: &[String],
    reference: &str,
) -> Result<LayerEffect, FetchError> {
    let unreadable = |e: io::Error| FetchError::NotAnImage {
        reference: reference.to_string(),
        why: format!("layer {} is not a readable tar archive: {e}", layer.digest),
    };
    let file = std::fs::File::open(layer.path).map_err(FetchError::io(layer.path))?;
    let mut archive = tar::Archive::new(decompressed(file).map_err(FetchError::io(layer.path))?);
    let mut effect = LayerEffect::default();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let raw_path = entry.path().map_err(unreadable)?.into_owned();
        let path = normalize_entry(&raw_path).map_err(|why| FetchError::UnsupportedArtifact {
            reference: reference.to_string(),
            why: format!("layer {} has entry {}: {why}", layer.digest, raw_path.display()),
        })?;
        let Some((name, parent)) = path.split_last() else {
            continue; // the root directory itself
        };
        let entry_type = entry.header().entry_type();
        if name == OPAQUE_WHITEOUT {
            // Empties `parent` of lower-layer content; hides the target if it is below.
            effect.deleted |= is_strict_prefix(parent, target);
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let mut whited: Vec<String> = parent.to_vec();
            whited.push(hidden.to_string());
            effect.deleted |= is_prefix(&whited, target);
        } else if path == target {
            effect.provided = Some(match entry_type {
                EntryType::Regular | EntryType::Continuous => {
                    let mut writer = cache.blob_writer()?;
                    io::copy(&mut entry, &mut writer).map_err(unreadable)?;
                    Found::File(writer)
                }
                other => Found::Other(describe(other)),
            });
        } else if is_strict_prefix(&path, target) && !entry_type.is_dir() {
            // A file or link where an ancestor directory should be: the target is gone.
            effect.deleted = true;
        }
    }
    Ok(effect)
}

/// Layers are tar or gzip-compressed tar; the gzip magic decides, not the media type, since
/// the bytes are what we actually have to read.
fn decompressed(file: std::fs::File) -> io::Result<Box<dyn Read>> {
    let mut reader = BufReader::new(file);
    let is_gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if is_gzip { Box::new(MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// A tar entry path as rootfs components. Absolute paths and `..` that climbs above the root
/// are errors; `.` and inner `..` are resolved.
fn normalize_entry(path: &Path) -> Result<Vec<String>, &'static str> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or("path escapes the image root with ..")?;
            }
            Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
        }
    }
    Ok(parts)
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    path.starts_with(prefix)
}

fn is_strict_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() < path.len() && path.starts_with(prefix)
}

fn describe(entry_type: EntryType) -> &'static str {
    match entry_type {
        EntryType::Directory => "directory",
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Char | EntryType::Block => "device",
        EntryType::Fifo => "fifo",
        _ => "special tar entry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    const WASM_A: &[u8] = b"\0asm\x0d\0\x01\0AAAA";
    const WASM_B: &[u8] = b"\0asm\x01\0\0\0BBBB";

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
    }

    /// Builds a tar (gzip when asked); paths are written raw so tests can produce the hostile
    /// ones (`/abs`, `../x`) that `tar::Builder`'s checked setters refuse.
    fn layer(entries: &[E<'_>], gzip: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let mut header = tar::Header::new_gnu();
            let (path, data, kind): (&str, &[u8], EntryType) = match e {
                E::File(p, d) => (p, d, EntryType::Regular),
                E::Dir(p) => (p, &[], EntryType::Directory),
                E::Symlink(p, target) => {
                    header.set_link_name(target).expect("link name");
                    (p, &[], EntryType::Symlink)
                }
            };
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, data).expect("append");
        }
        let tar = builder.into_inner().expect("finish tar");
        if !gzip {
            return tar;
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).expect("gzip");
        gz.finish().expect("gzip finish")
    }

    /// Writes `layers` to files and extracts `target` ("a/b.wasm") from them.
    fn run(
        layers: Vec<Vec<u8>>,
        target: &str,
    ) -> (tempfile::TempDir, ImageCache, Result<String, FetchError>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ImageCache::open(&dir.path().join("cache")).expect("cache");
        let paths: Vec<_> = layers
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let p = dir.path().join(format!("layer{i}"));
                std::fs::write(&p, bytes).expect("write layer");
                p
            })
            .collect();
        let blobs: Vec<LayerBlob<'_>> =
            paths.iter().map(|p| LayerBlob { digest: "sha256:test", path: p }).collect();
        let target: Vec<String> = target.split('/').map(String::from).collect();
        let result = extract_file(&cache, &blobs, &target, "r");
        (dir, cache, result)
    }

    fn extracted(cache: &ImageCache, result: &Result<String, FetchError>) -> Option<Vec<u8>> {
        let digest = result.as_ref().ok()?;
        std::fs::read(cache.blob_path(digest).ok()?).ok()
    }

    fn why(result: &Result<String, FetchError>) -> String {
        match result {
            Err(FetchError::UnsupportedArtifact { why, .. } | FetchError::NotAnImage { why, .. }) => {
                why.clone()
            }
            other => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn later_layers_override_and_gzip_or_plain_both_read() {
        let l1 = layer(&[E::Dir("./"), E::File("./app.wasm", WASM_A)], true);
        let l2 = layer(&[E::File("app.wasm", WASM_B), E::File("other", b"x")], false);
        let (_d, cache, r) = run(vec![l1.clone()], "app.wasm");
        assert_eq!(extracted(&cache, &r).as_deref(), Some(WASM_A));
        let (_d, cache, r) = run(vec![l1, l2], "app.wasm");
        assert_eq!(extracted(&cache, &r).as_deref(), Some(WASM_B));
    }

    #[test]
    fn whiteouts_remove_the_file() {
        let base = layer(&[E::Dir("bin/"), E::File("bin/app.wasm", WASM_A)], true);
        let cases = [
            layer(&[E::File("bin/.wh.app.wasm", b"")], true),
            layer(&[E::File(".wh.bin", b"")], true),
            layer(&[E::File("bin/.wh..wh..opq", b"")], true),
            layer(&[E::File("bin", b"now a file")], true),
        ];
        for (i, upper) in cases.into_iter().enumerate() {
            let (_d, _c, r) = run(vec![base.clone(), upper], "bin/app.wasm");
            assert!(why(&r).contains("is not in the image"), "case {i}: {r:?}");
        }
        // A whiteout only hides lower layers: the same layer (or a later one) may re-add it.
        let readd = layer(&[E::File("bin/.wh..wh..opq", b""), E::File("bin/app.wasm", WASM_B)], true);
        let (_d, cache, r) = run(vec![base.clone(), readd], "bin/app.wasm");
        assert_eq!(extracted(&cache, &r).as_deref(), Some(WASM_B));
        // Whiteouts of siblings or of the root's opaque marker elsewhere do not touch it.
        let sibling = layer(&[E::File("bin/.wh.other", b""), E::File("lib/.wh..wh..opq", b"")], true);
        let (_d, cache, r) = run(vec![base, sibling], "bin/app.wasm");
        assert_eq!(extracted(&cache, &r).as_deref(), Some(WASM_A));
    }

    #[test]
    fn escaping_and_absolute_entries_are_refused() {
        for hostile in ["../app.wasm", "/app.wasm", "a/../../app.wasm"] {
            let l = layer(&[E::File(hostile, WASM_A)], true);
            let (_d, cache, r) = run(vec![l], "app.wasm");
            let why = why(&r);
            assert!(why.contains("absolute path") || why.contains("escapes"), "{hostile}: {why}");
            assert!(
                std::fs::read_dir(cache.root().join("tmp")).map(|mut d| d.next().is_none()).unwrap_or(false)
            );
        }
        // Inner `..` that stays inside is resolved.
        let l = layer(&[E::File("x/../app.wasm", WASM_A)], true);
        let (_d, cache, r) = run(vec![l], "app.wasm");
        assert_eq!(extracted(&cache, &r).as_deref(), Some(WASM_A));
    }

    #[test]
    fn non_files_and_non_wasm_are_refused() {
        let l = layer(&[E::Symlink("app.wasm", "/real.wasm"), E::File("real.wasm", WASM_A)], true);
        let (_d, _c, r) = run(vec![l], "app.wasm");
        assert!(why(&r).contains("symbolic link"), "{r:?}");
        let l = layer(&[E::File("app.wasm", b"#!/bin/sh\necho hi\n")], true);
        let (_d, _c, r) = run(vec![l], "app.wasm");
        assert!(why(&r).contains("not a Wasm binary"), "{r:?}");
        let (_d, _c, r) = run(
            vec![b"definitely not a tar archive, just text padded out to 512 bytes".repeat(10)],
            "app.wasm",
        );
        assert!(why(&r).contains("not a readable tar") || why(&r).contains("is not in the image"), "{r:?}");
    }
}
