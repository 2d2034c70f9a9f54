//! oci-fetch against a real registry (CNCF distribution on 127.0.0.1, started per test) and
//! real skopeo pushes: no mocks. Needs `scripts/install-test-deps.sh`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use oci_fetch::{Artifact, FetchError, ImageCache, PullProgress, PulledImage, Puller, WasmLayout, push_wasm};
use wasmkube_e2e::TestRegistry;
use wasmkube_e2e::wasi_image::{ImageSpec, LayerFile, push_image, push_wasi_image};

/// Every test body runs under this bound.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

async fn bounded<T>(body: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(TEST_TIMEOUT, body).await.context("test timed out")?
}

/// The hello-http fixture once sample-apps provides it; until then a minimal component header
/// plus `tag`, which is all a CNCF artifact needs for push and pull.
fn wasm_bytes(tag: &str) -> anyhow::Result<Vec<u8>> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-apps/fixtures/hello-http.wasm");
    if tag.is_empty() && fixture.exists() {
        return Ok(std::fs::read(fixture)?);
    }
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend_from_slice(format!("custom section stand-in: {tag}").as_bytes());
    Ok(bytes)
}

struct Fixture {
    registry: TestRegistry,
    dir: tempfile::TempDir,
    puller: Puller,
}

impl Fixture {
    fn new() -> anyhow::Result<Fixture> {
        let registry = TestRegistry::start()?;
        let dir = tempfile::tempdir()?;
        let puller = Puller::new(ImageCache::open(&dir.path().join("cache"))?);
        Ok(Fixture { registry, dir, puller })
    }

    fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Pulls, returning the image and every progress report.
    async fn pull(&self, reference: &str) -> (Result<PulledImage, FetchError>, Vec<PullProgress>) {
        let events = Mutex::new(Vec::new());
        let result =
            self.puller.pull(reference, &|p| events.lock().map(|mut e| e.push(p)).unwrap_or(())).await;
        (result, events.into_inner().unwrap_or_default())
    }

    fn cache(&self) -> &ImageCache {
        self.puller.cache()
    }
}

fn wasm_of(image: &PulledImage) -> anyhow::Result<(Vec<u8>, &str, WasmLayout)> {
    match &image.artifact {
        Artifact::Wasm { path, digest, layout } => Ok((std::fs::read(path)?, digest, *layout)),
        other => bail!("expected a Wasm artifact, got {other:?}"),
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[tokio::test]
async fn pushed_cncf_artifact_pulls_back_identical_and_only_once() -> anyhow::Result<()> {
    bounded(async {
        let f = Fixture::new()?;
        let wasm = wasm_bytes("")?;
        let file = f.write("hello-http.wasm", &wasm)?;
        let reference = f.registry.reference("hello-http:1");
        let digest = push_wasm(&file, &reference).await?;

        let (image, events) = f.pull(&reference).await;
        let image = image?;
        assert_eq!(image.reference, reference);
        assert_eq!(image.image_id, digest);
        let (bytes, wasm_digest, layout) = wasm_of(&image)?;
        assert_eq!(layout, WasmLayout::CncfArtifact);
        assert!(bytes == wasm, "pulled bytes differ from the pushed file");
        assert_eq!(wasm_digest, sha256(&wasm));
        let layer_done = events.iter().filter(|e| e.layer_digest == wasm_digest).map(|e| e.done_bytes).max();
        assert_eq!(layer_done, Some(wasm.len() as u64), "progress reached the full layer size");
        assert!(events.iter().all(|e| e.total_bytes.is_some_and(|t| e.done_bytes <= t)));

        // Second pull of the same tag, and a pull by digest under another name: nothing is
        // downloaded again.
        let (again, events) = f.pull(&reference).await;
        assert_eq!(again?.image_id, digest);
        assert!(events.is_empty(), "second pull downloaded {events:?}");
        let by_digest = f.registry.reference(&format!("hello-http@{digest}"));
        let (pinned, events) = f.pull(&by_digest).await;
        let pinned = pinned?;
        assert!(events.is_empty(), "pull by digest downloaded {events:?}");
        assert_eq!(pinned.image_id, digest);
        assert_eq!(wasm_of(&pinned)?.0, wasm);

        let cached = f.cache().lookup(&reference)?.context("lookup after pull")?;
        assert_eq!(cached.image_id, digest);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn skopeo_pushed_wasi_image_yields_its_wasm() -> anyhow::Result<()> {
    bounded(async {
        let f = Fixture::new()?;
        let wasm = wasm_bytes("wasi image")?;
        let addr = f.registry.addr().to_string();
        let w = wasm.clone();
        let (reference, digest) =
            tokio::task::spawn_blocking(move || push_wasi_image(&addr, "wasi-app", "v1", &w)).await??;

        let (image, events) = f.pull(&reference).await;
        let image = image?;
        assert_eq!(image.image_id, digest);
        let (bytes, wasm_digest, layout) = wasm_of(&image)?;
        assert_eq!(layout, WasmLayout::WasiImage);
        assert!(bytes == wasm, "extracted bytes differ from /app.wasm");
        assert_eq!(wasm_digest, sha256(&wasm));
        assert!(!events.is_empty(), "config and layer were downloaded");
        let (_, events) = f.pull(&reference).await;
        assert!(events.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn linux_amd64_image_is_cached_as_linux() -> anyhow::Result<()> {
    bounded(async {
        let f = Fixture::new()?;
        let spec = ImageSpec {
            architecture: "amd64".into(),
            os: "linux".into(),
            entrypoint: vec!["/hello".into()],
            layers: vec![
                vec![LayerFile {
                    path: "/hello".into(),
                    bytes: b"#!/bin/sh\necho hi\n".to_vec(),
                    mode: 0o755,
                }],
                vec![LayerFile { path: "/etc/motd".into(), bytes: b"hi\n".to_vec(), mode: 0o644 }],
            ],
        };
        let addr = f.registry.addr().to_string();
        let (reference, digest) =
            tokio::task::spawn_blocking(move || push_image(&addr, "linux-app", "v1", &spec)).await??;
        let (image, _) = f.pull(&reference).await;
        let image = image?;
        let Artifact::Linux { manifest_digest, config_digest, layer_digests } = &image.artifact else {
            bail!("expected Linux, got {:?}", image.artifact);
        };
        assert_eq!(*manifest_digest, digest);
        assert_eq!(layer_digests.len(), 2);
        for blob in layer_digests.iter().chain([config_digest, manifest_digest]) {
            assert!(f.cache().has_blob(blob, None), "{blob} cached");
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn missing_images_are_not_found() -> anyhow::Result<()> {
    bounded(async {
        let f = Fixture::new()?;
        let file = f.write("a.wasm", &wasm_bytes("present")?)?;
        push_wasm(&file, &f.registry.reference("present:1")).await?;
        for missing in ["present:2", "absent:1"] {
            let (result, _) = f.pull(&f.registry.reference(missing)).await;
            match result {
                Err(e) if e.is_not_found() => {}
                other => bail!("{missing}: expected NotFound, got {other:?}"),
            }
            assert!(f.cache().lookup(&f.registry.reference(missing))?.is_none());
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn tampered_blob_is_rejected_and_not_cached() -> anyhow::Result<()> {
    bounded(async {
        let f = Fixture::new()?;
        let wasm = wasm_bytes("to be tampered with")?;
        let file = f.write("t.wasm", &wasm)?;
        let reference = f.registry.reference("tampered:1");
        push_wasm(&file, &reference).await?;

        let layer = sha256(&wasm);
        let stored = f.registry.blob_data_path(&layer)?;
        let mut bytes = std::fs::read(&stored)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff; // same size, different content
        std::fs::write(&stored, &bytes)?;

        let (result, _) = f.pull(&reference).await;
        match result {
            Err(FetchError::DigestMismatch { expected, .. }) => assert_eq!(expected, layer),
            other => bail!("expected DigestMismatch, got {other:?}"),
        }
        assert!(!f.cache().has_blob(&layer, None), "tampered layer must not be cached");
        assert!(f.cache().lookup(&reference)?.is_none());
        let tmp = f.cache().root().join("tmp");
        assert_eq!(std::fs::read_dir(&tmp)?.count(), 0, "no temp files left in {}", tmp.display());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn unreachable_registry_and_bad_input_fail_clearly() -> anyhow::Result<()> {
    bounded(async {
        let f = Fixture::new()?;
        // Port 1 on loopback: connection refused, which is a registry error, not "not found".
        let (result, _) = f.pull("127.0.0.1:1/app:1").await;
        assert!(matches!(result, Err(FetchError::Registry { .. })), "{result:?}");
        let elf = f.write("a.out", b"\x7fELF\x02\x01\x01\0\0\0\0\0")?;
        let err = push_wasm(&elf, &f.registry.reference("elf:1")).await;
        assert!(matches!(err, Err(FetchError::NotWasm { .. })), "{err:?}");
        let err = push_wasm(&elf, "Not A Reference").await;
        assert!(matches!(err, Err(FetchError::InvalidReference { .. })), "{err:?}");
        Ok(())
    })
    .await
}
