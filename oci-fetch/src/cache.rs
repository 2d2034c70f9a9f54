//! The content-addressed image cache on local disk.
//!
//! ```text
//! <root>/blobs/sha256/<hex>       every verified blob: manifests, configs, layers, extracted .wasm
//! <root>/refs/<escaped ref>.json  what a reference resolved to at its last pull (or side-load)
//! <root>/tmp/                     blobs being written; self-deleting unless committed
//! ```
//!
//! A blob only ever appears under its name by an atomic rename after its bytes hashed to that
//! name, so whatever is in `blobs/` is trusted without re-hashing, and a failed or tampered
//! download leaves nothing behind. Ref records are written last, so a reference is only ever
//! found complete.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tempfile::{NamedTempFile, TempPath};

use crate::wasm_header::wasm_kind;
use crate::{Artifact, FetchError, PulledImage, WasmLayout, cncf, reference};

/// The on-disk image cache. Cheap to clone (shared paths only); safe to use from several
/// tasks and processes at once, because every write is a rename of a complete file.
#[derive(Debug, Clone)]
pub struct ImageCache {
    dirs: Arc<Dirs>,
}

#[derive(Debug)]
struct Dirs {
    root: PathBuf,
    blobs: PathBuf,
    refs: PathBuf,
    tmp: PathBuf,
}

/// A blob being written into `tmp/`, hashed as it goes. Dropping it without
/// [`ImageCache::commit`] deletes the temp file.
pub(crate) struct StagedBlob {
    temp: TempPath,
    hasher: Sha256,
    len: u64,
    head: Vec<u8>,
}

impl StagedBlob {
    /// Accounts for `chunk`, which the caller has written (or is writing) to the temp file.
    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
    }

    /// Bytes accounted for so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The first (up to) 8 bytes: enough for the Wasm header.
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }
}

/// A synchronous writer into a staged blob (extraction and side-loading).
pub(crate) struct BlobWriter {
    file: File,
    staged: StagedBlob,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.staged.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// The first bytes written (see [`StagedBlob::head`]).
    pub(crate) fn head(&self) -> &[u8] {
        self.staged.head()
    }

    /// Commits into the cache, checking `expected` if given; returns the digest.
    pub(crate) fn finish(self, cache: &ImageCache, expected: Option<&str>) -> Result<String, FetchError> {
        cache.commit(self.file, self.staged, expected)
    }
}

/// What `refs/<name>.json` holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefRecord {
    reference: String,
    image_id: String,
    /// The platform manifest actually used (differs from `image_id` for an index).
    manifest_digest: String,
    artifact: ArtifactRecord,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum ArtifactRecord {
    #[serde(rename_all = "camelCase")]
    Wasm { digest: String, layout: String },
    #[serde(rename_all = "camelCase")]
    Linux { config_digest: String, layer_digests: Vec<String> },
}

const LAYOUT_CNCF: &str = "cncfArtifact";
const LAYOUT_WASI_IMAGE: &str = "wasiImage";

impl ImageCache {
    /// Opens (creating if needed) the cache rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, FetchError> {
        let dirs = Dirs {
            root: root.to_path_buf(),
            blobs: root.join("blobs").join("sha256"),
            refs: root.join("refs"),
            tmp: root.join("tmp"),
        };
        for dir in [&dirs.blobs, &dirs.refs, &dirs.tmp] {
            std::fs::create_dir_all(dir).map_err(FetchError::io(dir))?;
        }
        Ok(ImageCache { dirs: Arc::new(dirs) })
    }

    /// The directory the cache lives in.
    pub fn root(&self) -> &Path {
        &self.dirs.root
    }

    /// Where the blob named `digest` (`sha256:<64 lowercase hex>`) is or would be stored.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, FetchError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or_else(|| FetchError::InvalidDigest { digest: digest.to_string() })?;
        Ok(self.dirs.blobs.join(hex))
    }

    /// Whether the blob is present (with the given size, when known: a short file left by
    /// something other than this crate is not trusted).
    pub fn has_blob(&self, digest: &str, size: Option<u64>) -> bool {
        let Ok(path) = self.blob_path(digest) else {
            return false;
        };
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && size.is_none_or(|s| s == m.len()))
    }

    /// What the cache already has for this reference (no network).
    pub fn lookup(&self, reference: &str) -> Result<Option<PulledImage>, FetchError> {
        let normalized = reference::parse(reference)?.whole();
        let path = self.ref_path(&normalized);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FetchError::Io { path, source: e }),
        };
        // A damaged record is a cache miss, not an error: the next pull rewrites it.
        let record: RefRecord = match serde_json::from_slice(&bytes) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable image ref record");
                return Ok(None);
            }
        };
        if record.reference != normalized {
            return Ok(None);
        }
        self.image_from_record(record)
    }

    /// Side-loads a local `.wasm` as if it had been pulled as a CNCF Wasm artifact named
    /// `reference` (like `kind load`): the same config and manifest `push_wasm` would write.
    #[tracing::instrument(skip(self), fields(wasm = %wasm.display()))]
    pub fn load_wasm_file(&self, wasm: &Path, reference: &str) -> Result<PulledImage, FetchError> {
        let parsed = reference::parse(reference)?;
        if parsed.digest().is_some() {
            return Err(FetchError::InvalidReference {
                reference: reference.to_string(),
                reason: "a side-loaded image is named by tag; its digest is computed, not chosen".into(),
            });
        }
        let mut input = File::open(wasm).map_err(FetchError::io(wasm))?;
        let mut writer = self.blob_writer()?;
        io::copy(&mut input, &mut writer).map_err(FetchError::io(wasm))?;
        let kind =
            wasm_kind(writer.head()).map_err(|why| FetchError::NotWasm { path: wasm.to_path_buf(), why })?;
        let digest = writer.finish(self, None)?;
        let size = std::fs::metadata(self.blob_path(&digest)?).map_err(FetchError::io(wasm))?.len();
        let built = cncf::build(&digest, size, kind);
        self.put_bytes(&built.config, Some(&built.config_digest))?;
        self.put_bytes(&built.manifest, Some(&built.manifest_digest))?;
        let image = PulledImage {
            reference: parsed.whole(),
            image_id: built.manifest_digest.clone(),
            artifact: Artifact::Wasm {
                path: self.blob_path(&digest)?,
                digest,
                layout: WasmLayout::CncfArtifact,
            },
        };
        self.write_ref(&image, &built.manifest_digest)?;
        tracing::info!(reference = %image.reference, image_id = %image.image_id, "side-loaded Wasm file");
        Ok(image)
    }

    /// Starts a blob: a self-deleting temp file in `tmp/` (same filesystem, so the final
    /// rename is atomic).
    pub(crate) fn stage(&self) -> Result<(File, StagedBlob), FetchError> {
        let (file, temp) =
            NamedTempFile::new_in(&self.dirs.tmp).map_err(FetchError::io(&self.dirs.tmp))?.into_parts();
        let staged = StagedBlob { temp, hasher: Sha256::new(), len: 0, head: Vec::new() };
        Ok((file, staged))
    }

    /// A synchronous writer for a new blob.
    pub(crate) fn blob_writer(&self) -> Result<BlobWriter, FetchError> {
        let (file, staged) = self.stage()?;
        Ok(BlobWriter { file, staged })
    }

    /// Verifies a staged blob against `expected` (when given) and renames it into `blobs/`.
    /// On a mismatch the temp file is deleted and nothing is cached.
    pub(crate) fn commit(
        &self,
        file: File,
        staged: StagedBlob,
        expected: Option<&str>,
    ) -> Result<String, FetchError> {
        let StagedBlob { temp, hasher, .. } = staged;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(FetchError::DigestMismatch { expected: expected.to_string(), actual });
        }
        let dest = self.blob_path(&actual)?;
        // Flush to disk before the rename publishes the name: after a crash a blob must be
        // complete or absent, never a truncated file under a trusted name.
        file.sync_all().map_err(FetchError::io(&temp))?;
        drop(file);
        temp.persist(&dest).map_err(|e| FetchError::Io { path: dest.clone(), source: e.error })?;
        Ok(actual)
    }

    /// Stores a small in-memory blob (manifest, config).
    pub(crate) fn put_bytes(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, FetchError> {
        let mut writer = self.blob_writer()?;
        writer.write_all(bytes).map_err(FetchError::io(&self.dirs.tmp))?;
        writer.finish(self, expected)
    }

    /// Reads a whole cached blob (manifests and configs, whose size was bounded before
    /// download).
    pub(crate) fn read_blob(&self, digest: &str) -> Result<Vec<u8>, FetchError> {
        let path = self.blob_path(digest)?;
        std::fs::read(&path).map_err(FetchError::io(&path))
    }

    fn ref_path(&self, normalized: &str) -> PathBuf {
        self.dirs.refs.join(format!("{}.json", reference::file_name(normalized)))
    }

    /// Records what `image.reference` resolved to; written atomically, after all its blobs.
    pub(crate) fn write_ref(&self, image: &PulledImage, manifest_digest: &str) -> Result<(), FetchError> {
        let artifact = match &image.artifact {
            Artifact::Wasm { digest, layout, .. } => ArtifactRecord::Wasm {
                digest: digest.clone(),
                layout: match layout {
                    WasmLayout::CncfArtifact => LAYOUT_CNCF,
                    WasmLayout::WasiImage => LAYOUT_WASI_IMAGE,
                }
                .to_string(),
            },
            Artifact::Linux { config_digest, layer_digests, .. } => ArtifactRecord::Linux {
                config_digest: config_digest.clone(),
                layer_digests: layer_digests.clone(),
            },
        };
        let record = RefRecord {
            reference: image.reference.clone(),
            image_id: image.image_id.clone(),
            manifest_digest: manifest_digest.to_string(),
            artifact,
        };
        let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
        let dest = self.ref_path(&image.reference);
        let mut temp = NamedTempFile::new_in(&self.dirs.tmp).map_err(FetchError::io(&self.dirs.tmp))?;
        temp.write_all(&json).map_err(FetchError::io(temp.path()))?;
        temp.persist(&dest).map_err(|e| FetchError::Io { path: dest.clone(), source: e.error })?;
        Ok(())
    }

    /// Rebuilds a `PulledImage` from a record, or `None` when a blob it names has gone missing.
    fn image_from_record(&self, record: RefRecord) -> Result<Option<PulledImage>, FetchError> {
        let artifact = match record.artifact {
            ArtifactRecord::Wasm { digest, layout } => {
                let layout = match layout.as_str() {
                    LAYOUT_CNCF => WasmLayout::CncfArtifact,
                    LAYOUT_WASI_IMAGE => WasmLayout::WasiImage,
                    _ => return Ok(None),
                };
                if !self.has_blob(&digest, None) {
                    return Ok(None);
                }
                Artifact::Wasm { path: self.blob_path(&digest)?, digest, layout }
            }
            ArtifactRecord::Linux { config_digest, layer_digests } => {
                let all = std::iter::once(&record.manifest_digest)
                    .chain(std::iter::once(&config_digest))
                    .chain(&layer_digests);
                if !all.into_iter().all(|d| self.has_blob(d, None)) {
                    return Ok(None);
                }
                Artifact::Linux {
                    manifest_digest: record.manifest_digest.clone(),
                    config_digest,
                    layer_digests,
                }
            }
        };
        Ok(Some(PulledImage { reference: record.reference, image_id: record.image_id, artifact }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn cache() -> (tempfile::TempDir, ImageCache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ImageCache::open(dir.path()).expect("open");
        (dir, cache)
    }

    fn tmp_is_empty(cache: &ImageCache) -> bool {
        std::fs::read_dir(&cache.dirs.tmp).map(|mut d| d.next().is_none()).unwrap_or(false)
    }

    #[test]
    fn verified_blobs_are_committed_and_mismatches_leave_nothing() {
        let (_dir, cache) = cache();
        let digest = cncf::sha256_digest(b"hello");
        assert_eq!(cache.put_bytes(b"hello", Some(&digest)).ok().as_deref(), Some(digest.as_str()));
        assert!(cache.has_blob(&digest, Some(5)));
        assert!(!cache.has_blob(&digest, Some(6)));
        assert_eq!(cache.read_blob(&digest).ok().as_deref(), Some(&b"hello"[..]));

        let wrong = cncf::sha256_digest(b"other");
        let err = cache.put_bytes(b"tampered", Some(&wrong));
        assert!(matches!(err, Err(FetchError::DigestMismatch { ref expected, .. }) if *expected == wrong));
        assert!(!cache.has_blob(&wrong, None));
        assert!(!cache.has_blob(&cncf::sha256_digest(b"tampered"), None));
        assert!(tmp_is_empty(&cache));
    }

    #[test]
    fn blob_paths_reject_anything_but_sha256_hex() {
        let (_dir, cache) = cache();
        for bad in ["sha512:00", "sha256:../../etc/passwd", &format!("sha256:{}", "A".repeat(64)), "x"] {
            assert!(matches!(cache.blob_path(bad), Err(FetchError::InvalidDigest { .. })), "{bad}");
        }
    }

    #[test]
    fn side_load_then_lookup_round_trips() {
        let (dir, cache) = cache();
        let wasm = dir.path().join("app.wasm");
        std::fs::write(&wasm, COMPONENT).expect("write wasm");
        assert!(cache.lookup("127.0.0.1:5000/app:1").expect("lookup").is_none());

        let image = cache.load_wasm_file(&wasm, "127.0.0.1:5000/app:1").expect("side-load");
        assert_eq!(image.reference, "127.0.0.1:5000/app:1");
        let Artifact::Wasm { path, digest, layout } = &image.artifact else {
            panic!("expected Wasm, got {:?}", image.artifact);
        };
        assert_eq!(*layout, WasmLayout::CncfArtifact);
        assert_eq!(std::fs::read(path).ok().as_deref(), Some(COMPONENT));
        assert_eq!(*digest, cncf::sha256_digest(COMPONENT));
        assert!(cache.has_blob(&image.image_id, None), "manifest is cached too");

        // Found again under its normalized name, also from a fresh handle on the same dir.
        let again = ImageCache::open(dir.path()).expect("reopen");
        let found = again.lookup("127.0.0.1:5000/app:1").expect("lookup").expect("present");
        assert_eq!(found.image_id, image.image_id);
        assert!(matches!(found.artifact, Artifact::Wasm { layout: WasmLayout::CncfArtifact, .. }));
        let std_name = cache.load_wasm_file(&wasm, "app").expect("side-load default name");
        assert_eq!(std_name.reference, "docker.io/library/app:latest");
        assert!(cache.lookup("docker.io/library/app:latest").expect("lookup").is_some());
        assert!(tmp_is_empty(&cache));
    }

    #[test]
    fn side_load_rejects_non_wasm_and_digest_references() {
        let (dir, cache) = cache();
        let elf = dir.path().join("a.out");
        std::fs::write(&elf, b"\x7fELF\x02\x01\x01\0\0\0").expect("write");
        assert!(matches!(cache.load_wasm_file(&elf, "app:1"), Err(FetchError::NotWasm { .. })));
        assert!(tmp_is_empty(&cache), "rejected input leaves no temp file");
        let missing = dir.path().join("missing.wasm");
        assert!(matches!(cache.load_wasm_file(&missing, "app:1"), Err(FetchError::Io { .. })));
        let wasm = dir.path().join("m.wasm");
        std::fs::write(&wasm, b"\0asm\x01\0\0\0").expect("write");
        let pinned = format!("app@sha256:{}", "a".repeat(64));
        assert!(matches!(cache.load_wasm_file(&wasm, &pinned), Err(FetchError::InvalidReference { .. })));
    }

    #[test]
    fn lookup_treats_damaged_or_incomplete_records_as_misses() {
        let (dir, cache) = cache();
        let wasm = dir.path().join("app.wasm");
        std::fs::write(&wasm, COMPONENT).expect("write wasm");
        let image = cache.load_wasm_file(&wasm, "localhost/app:1").expect("side-load");
        let Artifact::Wasm { path, .. } = &image.artifact else { panic!("not wasm") };
        std::fs::remove_file(path).expect("remove blob");
        assert!(cache.lookup("localhost/app:1").expect("lookup").is_none());

        std::fs::write(cache.ref_path("localhost/app:1"), b"{garbage").expect("write");
        assert!(cache.lookup("localhost/app:1").expect("lookup").is_none());
        assert!(matches!(cache.lookup("Bad Ref"), Err(FetchError::InvalidReference { .. })));
    }
}
