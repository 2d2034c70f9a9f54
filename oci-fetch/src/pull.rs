//! Pulling an image: resolve the reference to a manifest (through a platform index if there is
//! one), stream config and layers into the cache with size and digest checks, decide what the
//! image is (`detect`), extract the `.wasm` of a wasi/wasm image, and record the result.
//!
//! Nothing is fetched twice: manifests are looked up by digest (a HEAD request resolves a tag),
//! blobs already in the cache are reused, and a reference whose record already names the same
//! image ID returns straight from the cache.

use std::path::PathBuf;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

use crate::client::{Clients, MANIFEST_MEDIA_TYPES};
use crate::detect::{self, Plan, is_index_media_type};
use crate::extract::{LayerBlob, extract_file};
use crate::wasm_header::has_wasm_magic;
use crate::{Artifact, FetchError, ImageCache, PullProgress, PulledImage, WasmLayout, reference};

/// Manifests and configs are read into memory: refuse absurd ones.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
const MAX_CONFIG_BYTES: i64 = 8 << 20;
/// Layers downloaded at once; the machine this runs on may have two cores and a slow link.
const PARALLEL_DOWNLOADS: usize = 3;

/// Pulls images into an [`ImageCache`]. Cheap to share behind an `Arc`; one per node agent.
pub struct Puller {
    cache: ImageCache,
    clients: Arc<Clients>,
}

/// One pull in progress: the borrowed pieces every step needs.
struct PullCtx<'a> {
    client: Client,
    reference: &'a Reference,
    name: &'a str,
    cache: &'a ImageCache,
    progress: &'a (dyn Fn(PullProgress) + Send + Sync),
}

/// A manifest document: an image manifest or a platform index.
enum Document {
    Image(Box<OciImageManifest>),
    Index(OciImageIndex),
}

impl Puller {
    /// A puller writing into `cache`. Registry clients are built on first use.
    pub fn new(cache: ImageCache) -> Self {
        Puller { cache, clients: Arc::new(Clients::default()) }
    }

    /// The cache this puller fills.
    pub fn cache(&self) -> &ImageCache {
        &self.cache
    }

    /// Pull (or reuse cached blobs); `progress` is called as bytes arrive, once per received
    /// chunk of each config or layer blob actually downloaded (never for cached ones).
    pub async fn pull(
        &self,
        reference: &str,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<PulledImage, FetchError> {
        let parsed = reference::parse(reference)?;
        let name = parsed.whole();
        let span = tracing::info_span!("pull", reference = %name);
        async {
            let client = self
                .clients
                .for_registry(parsed.resolve_registry())
                .map_err(|message| FetchError::Registry { reference: name.clone(), message })?;
            let ctx = PullCtx { client, reference: &parsed, name: &name, cache: &self.cache, progress };
            let image = ctx.run().await?;
            tracing::info!(image_id = %image.image_id, artifact = ?image.artifact, "pulled");
            Ok(image)
        }
        .instrument(span)
        .await
    }
}

impl PullCtx<'_> {
    async fn run(&self) -> Result<PulledImage, FetchError> {
        let registry = self.reference.resolve_registry();
        self.client.store_auth_if_needed(registry, &RegistryAuth::Anonymous).await;
        let (top, image_id) = self.manifest(self.reference).await?;
        if let Some(cached) = self.cache.lookup(self.name)?
            && cached.image_id == image_id
        {
            tracing::debug!("already pulled, reusing the cached image");
            return Ok(cached);
        }
        let (manifest, manifest_digest) = match top {
            Document::Image(manifest) => (*manifest, image_id.clone()),
            Document::Index(index) => {
                let entry = detect::select_platform(&index, self.name)?;
                tracing::debug!(digest = %entry.digest, platform = ?entry.platform, "chose index entry");
                let by_digest = self.reference.clone_with_digest(entry.digest.clone());
                match self.manifest(&by_digest).await? {
                    (Document::Image(manifest), digest) => (*manifest, digest),
                    (Document::Index(_), _) => {
                        return Err(self.unsupported("an image index nested in an image index".into()));
                    }
                }
            }
        };
        if manifest.config.size > MAX_CONFIG_BYTES {
            return Err(self.not_an_image(format!("its config is {} bytes", manifest.config.size)));
        }
        self.blob(&manifest.config).await?;
        let config = self.cache.read_blob(&manifest.config.digest)?;
        let artifact = match detect::detect(&manifest, &config, self.name)? {
            Plan::WasmLayer { layer } => self.wasm_layer(&manifest.layers[layer]).await?,
            Plan::WasiImage { entrypoint } => self.wasi_image(&manifest, entrypoint).await?,
            Plan::Linux => {
                self.layers(&manifest).await?;
                Artifact::Linux {
                    manifest_digest: manifest_digest.clone(),
                    config_digest: manifest.config.digest.clone(),
                    layer_digests: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
                }
            }
        };
        let image = PulledImage { reference: self.name.to_string(), image_id, artifact };
        self.cache.write_ref(&image, &manifest_digest)?;
        Ok(image)
    }

    /// The manifest `reference` names, and its digest; from the cache when the digest is known
    /// (given in the reference, or from a HEAD request) and already stored.
    async fn manifest(&self, reference: &Reference) -> Result<(Document, String), FetchError> {
        let known = match reference.digest() {
            Some(digest) => digest.to_string(),
            None => self
                .client
                .fetch_manifest_digest(reference, &RegistryAuth::Anonymous)
                .await
                .map_err(|e| FetchError::from_registry(self.name, e))?,
        };
        if self.cache.has_blob(&known, None) {
            tracing::debug!(digest = %known, "manifest cached");
            let bytes = self.cache.read_blob(&known)?;
            return Ok((self.parse_manifest(&bytes)?, known));
        }
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(reference, &RegistryAuth::Anonymous, MANIFEST_MEDIA_TYPES)
            .await
            .map_err(|e| FetchError::from_registry(self.name, e))?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(self.not_an_image(format!("its manifest is {} bytes", bytes.len())));
        }
        let document = self.parse_manifest(&bytes)?;
        // oci-client already compared the body with the registry's digest header and the
        // reference's digest; storing under `digest` re-checks it ourselves, so the cache's
        // guarantee does not rest on a dependency's internals. The cache is sha256-only: a
        // manifest a registry names by another algorithm (already verified) is stored, and
        // identified, by its sha256.
        let expected = digest.starts_with("sha256:").then_some(digest.as_str());
        let digest = self.cache.put_bytes(&bytes, expected)?;
        Ok((document, digest))
    }

    fn parse_manifest(&self, bytes: &[u8]) -> Result<Document, FetchError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| self.not_an_image(format!("the manifest is not JSON: {e}")))?;
        let media_type = value.get("mediaType").and_then(|m| m.as_str());
        let is_index = match media_type {
            Some(media_type) => is_index_media_type(media_type),
            None => value.get("manifests").is_some(),
        };
        if value.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
            return Err(self.not_an_image("the manifest is not schemaVersion 2".into()));
        }
        if is_index {
            serde_json::from_value(value)
                .map(Document::Index)
                .map_err(|e| self.not_an_image(format!("unreadable image index: {e}")))
        } else {
            serde_json::from_value(value)
                .map(|m| Document::Image(Box::new(m)))
                .map_err(|e| self.not_an_image(format!("unreadable image manifest: {e}")))
        }
    }

    /// Makes sure the blob `desc` names is in the cache; returns its path.
    async fn blob(&self, desc: &OciDescriptor) -> Result<PathBuf, FetchError> {
        let path = self.cache.blob_path(&desc.digest)?;
        let size = u64::try_from(desc.size).ok();
        if self.cache.has_blob(&desc.digest, size) {
            tracing::debug!(digest = %desc.digest, "blob cached");
            return Ok(path);
        }
        let mut stream = self
            .client
            .pull_blob_stream(self.reference, desc)
            .await
            .map_err(|e| FetchError::from_registry(self.name, e))?;
        let total = size.or(stream.content_length);
        let (file, mut staged) = self.cache.stage()?;
        let tmp = self.cache.root().join("tmp");
        let mut file = tokio::fs::File::from_std(file);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::from_stream_error(self.name, e))?;
            staged.update(&chunk);
            // Stop a registry that sends more than the manifest promised before it fills the disk.
            if let Some(size) = size
                && staged.len() > size
            {
                return Err(self.size_mismatch(desc, size, staged.len()));
            }
            file.write_all(&chunk).await.map_err(FetchError::io(&tmp))?;
            (self.progress)(PullProgress {
                layer_digest: desc.digest.clone(),
                done_bytes: staged.len(),
                total_bytes: total,
            });
        }
        if let Some(size) = size
            && staged.len() != size
        {
            return Err(self.size_mismatch(desc, size, staged.len()));
        }
        file.flush().await.map_err(FetchError::io(&tmp))?;
        let file = file.into_std().await;
        let (cache, expected) = (self.cache.clone(), desc.digest.clone());
        // commit fsyncs: keep that off the async worker threads.
        tokio::task::spawn_blocking(move || cache.commit(file, staged, Some(&expected)))
            .await
            .map_err(|e| FetchError::Io { path: tmp, source: std::io::Error::other(e) })??;
        tracing::debug!(digest = %desc.digest, "blob downloaded and verified");
        Ok(path)
    }

    /// All layers of `manifest`, a few at a time, in manifest order.
    async fn layers(&self, manifest: &OciImageManifest) -> Result<Vec<PathBuf>, FetchError> {
        // Collected first: a lazy `map(|layer| self.blob(layer))` held across the await makes
        // the future's Send-ness depend on a higher-ranked closure, which rustc cannot prove
        // (the caller's `tokio::spawn` then fails with "Send is not general enough").
        let downloads: Vec<_> = manifest.layers.iter().map(|layer| self.blob(layer)).collect();
        futures::stream::iter(downloads).buffered(PARALLEL_DOWNLOADS).try_collect().await
    }

    async fn wasm_layer(&self, layer: &OciDescriptor) -> Result<Artifact, FetchError> {
        let path = self.blob(layer).await?;
        let head = read_head(&path).await?;
        if !has_wasm_magic(&head) {
            return Err(self.unsupported(format!(
                "its Wasm layer {} does not start with the \\0asm magic",
                layer.digest
            )));
        }
        Ok(Artifact::Wasm { path, digest: layer.digest.clone(), layout: WasmLayout::CncfArtifact })
    }

    async fn wasi_image(
        &self,
        manifest: &OciImageManifest,
        entrypoint: Vec<String>,
    ) -> Result<Artifact, FetchError> {
        let paths = self.layers(manifest).await?;
        let digests: Vec<String> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        let (cache, name) = (self.cache.clone(), self.name.to_string());
        // tar + gunzip is CPU and blocking file IO.
        let digest = tokio::task::spawn_blocking(move || {
            let layers: Vec<LayerBlob<'_>> =
                digests.iter().zip(&paths).map(|(digest, path)| LayerBlob { digest, path }).collect();
            extract_file(&cache, &layers, &entrypoint, &name)
        })
        .await
        .map_err(|e| FetchError::Io {
            path: self.cache.root().join("tmp"),
            source: std::io::Error::other(e),
        })??;
        Ok(Artifact::Wasm { path: self.cache.blob_path(&digest)?, digest, layout: WasmLayout::WasiImage })
    }

    fn not_an_image(&self, why: String) -> FetchError {
        FetchError::NotAnImage { reference: self.name.to_string(), why }
    }

    fn unsupported(&self, why: String) -> FetchError {
        FetchError::UnsupportedArtifact { reference: self.name.to_string(), why }
    }

    fn size_mismatch(&self, desc: &OciDescriptor, expected: u64, actual: u64) -> FetchError {
        FetchError::SizeMismatch { digest: desc.digest.clone(), expected, actual }
    }
}

/// The first 8 bytes of a file (fewer if it is shorter).
async fn read_head(path: &std::path::Path) -> Result<Vec<u8>, FetchError> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.map_err(FetchError::io(path))?;
    let mut head = Vec::with_capacity(8);
    file.take(8).read_to_end(&mut head).await.map_err(FetchError::io(path))?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pod workers run pulls inside `tokio::spawn`: the future must be `Send` for borrows of
    /// any lifetime (a lazily mapped stream of `self.blob` futures once broke this with
    /// "implementation of Send is not general enough").
    #[test]
    fn pull_future_can_be_spawned() {
        fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
        let dir = tempfile::tempdir().expect("tempdir");
        let puller = Arc::new(Puller::new(ImageCache::open(dir.path()).expect("cache")));
        spawnable(async move {
            let reference = String::from("127.0.0.1:5000/app:1");
            let progress = |_: PullProgress| {};
            puller.pull(&reference, &progress).await
        });
    }
}
