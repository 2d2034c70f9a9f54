//! Deciding, once per pull and without IO, what an image is: which entry of a platform index to
//! take, and whether the chosen manifest + config is a CNCF Wasm artifact, a "wasi/wasm" image
//! with the `.wasm` in its rootfs, a linux/amd64 image, or something we refuse (and why).

use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest};
use serde::Deserialize;

use crate::FetchError;

/// Config media type of the CNCF TAG-Runtime Wasm OCI artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of the CNCF TAG-Runtime Wasm OCI artifact (modules and components alike).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The older wasm-to-oci / Krustlet config type; same one-layer shape.
const LEGACY_WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
/// The OCI 1.1 "no config" descriptor used by `oras push --artifact-type`.
const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Layer media types that hold one raw Wasm binary (see notes/wasm-packaging §2.1–2.4).
const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", // runwasi
    "application/vnd.wasm.content.layer.v1+wasm",                    // Spin, wasm-to-oci
    "application/vnd.module.wasm.content.layer.v1+wasm",             // older wasmCloud
];

/// Rootfs layer types we can read a file out of (tar, optionally gzip).
const TAR_LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// Operating systems that mean "WASI" in an image config or index platform.
const WASI_OSES: &[&str] = &["wasip2", "wasip1", "wasi"];

/// What to do with a pulled manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Layer `layer` (an index into `manifest.layers`) is the Wasm binary itself.
    WasmLayer {
        /// Index of the Wasm layer.
        layer: usize,
    },
    /// The Wasm binary is the file at `entrypoint` in the rootfs the layers build.
    WasiImage {
        /// Normalized path components inside the rootfs, never empty, never `..`.
        entrypoint: Vec<String>,
    },
    /// An ordinary linux/amd64 image, for the runc shim.
    Linux,
}

/// The parts of an OCI/Docker image config that detection reads. Everything is optional so
/// that an odd-but-harmless config still gets a precise "why" instead of a parse error.
#[derive(Debug, Default, Deserialize)]
struct ConfigView {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    config: Option<ExecView>,
}

#[derive(Debug, Default, Deserialize)]
struct ExecView {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
}

/// Picks the index entry to pull: the Wasm one if any (`wasip2`, then `wasip1`, then any
/// `wasm` architecture), else linux/amd64. The error lists what the index offered.
pub(crate) fn select_platform<'a>(
    index: &'a OciImageIndex,
    reference: &str,
) -> Result<&'a ImageIndexEntry, FetchError> {
    let rank = |entry: &ImageIndexEntry| -> Option<u8> {
        let platform = entry.platform.as_ref()?;
        let (os, arch) = (platform.os.to_string(), platform.architecture.to_string());
        match (os.as_str(), arch.as_str()) {
            ("wasip2", _) => Some(0),
            ("wasip1", _) => Some(1),
            (_, "wasm") => Some(2),
            ("linux", "amd64") => Some(3),
            _ => None,
        }
    };
    index
        .manifests
        .iter()
        .filter(|entry| !is_index_media_type(&entry.media_type))
        .filter_map(|entry| rank(entry).map(|r| (r, entry)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, entry)| entry)
        .ok_or_else(|| {
            let offered: Vec<String> = index
                .manifests
                .iter()
                .map(|e| match &e.platform {
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => "no platform".to_string(),
                })
                .collect();
            FetchError::UnsupportedArtifact {
                reference: reference.to_string(),
                why: format!(
                    "the image index has no wasip2, wasip1, wasm or linux/amd64 entry (it has: {})",
                    if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") }
                ),
            }
        })
}

/// True for the two index media types (OCI index, Docker manifest list).
pub(crate) fn is_index_media_type(media_type: &str) -> bool {
    media_type == oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
        || media_type == oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE
}

/// Decides what `manifest` (with its config blob `config`) is. Order: (1) Wasm-layer artifact,
/// (2) wasi/wasm rootfs image, (3) linux/amd64 image, (4) refusal naming what was found.
pub(crate) fn detect(
    manifest: &OciImageManifest,
    config: &[u8],
    reference: &str,
) -> Result<Plan, FetchError> {
    let unsupported = |why: String| FetchError::UnsupportedArtifact { reference: reference.to_string(), why };
    // (1) One raw Wasm layer, whatever the config (CNCF, wasm-to-oci, runwasi, oras).
    if let Some(plan) = wasm_layer_plan(manifest).map_err(unsupported)? {
        return Ok(plan);
    }
    let config_type = manifest.config.media_type.as_str();
    if config_type == EMPTY_CONFIG_MEDIA_TYPE {
        return Err(unsupported(format!(
            "an OCI artifact with an empty config and layers {} holds no Wasm layer",
            layer_types(manifest)
        )));
    }
    if !is_image_config_media_type(config_type) {
        return Err(unsupported(format!(
            "config media type {config_type} is neither a Wasm config nor an image config"
        )));
    }
    let view: ConfigView = serde_json::from_slice(config).map_err(|e| FetchError::NotAnImage {
        reference: reference.to_string(),
        why: format!("the image config is not valid JSON: {e}"),
    })?;
    let arch = view.architecture.as_deref().unwrap_or("");
    let os = view.os.as_deref().unwrap_or("");
    // (2) A wasi/wasm platform image: the entrypoint names the .wasm inside the rootfs.
    if arch == "wasm" {
        return wasi_image_plan(manifest, os, view.config.unwrap_or_default()).map_err(unsupported);
    }
    // (3) Anything else for linux/amd64 goes to the runc shim.
    if os == "linux" && arch == "amd64" {
        return Ok(Plan::Linux);
    }
    // (4) Nothing we can run.
    Err(unsupported(format!(
        "the image is for {os}/{arch}; wasmkube runs Wasm (wasi/wasm or CNCF Wasm artifacts) and \
         linux/amd64 images"
    )))
}

/// Rule (1): `Some` for a single-Wasm-layer artifact, `None` when no Wasm layer or config is
/// involved, `Err(why)` for a Wasm artifact of the wrong shape. The CNCF layout allows exactly
/// one layer ("a consumer that sees more than a single layer should reject it").
fn wasm_layer_plan(manifest: &OciImageManifest) -> Result<Option<Plan>, String> {
    let config_type = manifest.config.media_type.as_str();
    let wasm_config = config_type == WASM_CONFIG_MEDIA_TYPE || config_type == LEGACY_WASM_CONFIG_MEDIA_TYPE;
    let wasm_layers: Vec<usize> =
        (0..manifest.layers.len()).filter(|&i| is_wasm_layer(&manifest.layers[i].media_type)).collect();
    match (manifest.layers.len(), wasm_layers.as_slice()) {
        (1, [layer]) => Ok(Some(Plan::WasmLayer { layer: *layer })),
        _ if wasm_config => Err(format!(
            "a Wasm artifact (config {config_type}) must have exactly one {WASM_LAYER_MEDIA_TYPE} \
             layer, it has {} layers {}",
            manifest.layers.len(),
            layer_types(manifest)
        )),
        (_, []) => Ok(None),
        (count, _) => Err(format!(
            "{} Wasm layers among {count} layers {}: multi-component applications (e.g. Spin) \
             are not supported; push a single composed component",
            wasm_layers.len(),
            layer_types(manifest)
        )),
    }
}

/// Rule (2), for a config with `architecture: wasm`: the OS must be a WASI one, the layers
/// readable tars, and Entrypoint (else Cmd) must name a file inside the rootfs.
fn wasi_image_plan(manifest: &OciImageManifest, os: &str, exec: ExecView) -> Result<Plan, String> {
    if !WASI_OSES.contains(&os) {
        return Err(format!("architecture wasm with os {os:?}; expected one of {WASI_OSES:?}"));
    }
    if let Some(bad) =
        manifest.layers.iter().find(|l| !TAR_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
    {
        return Err(format!(
            "wasi/wasm image layer {} has media type {}; only tar and tar+gzip layers can be read",
            bad.digest, bad.media_type
        ));
    }
    let program = exec
        .entrypoint
        .filter(|e| !e.is_empty())
        .or(exec.cmd)
        .and_then(|argv| argv.into_iter().next())
        .ok_or("wasi/wasm image without Entrypoint or Cmd naming its .wasm file")?;
    let working_dir = exec.working_dir.as_deref().unwrap_or("/");
    let entrypoint = rootfs_path(working_dir, &program)
        .ok_or_else(|| format!("entrypoint {program:?} does not name a file inside the image"))?;
    Ok(Plan::WasiImage { entrypoint })
}

/// `[type, type, ...]` of the manifest's layers, for messages.
fn layer_types(manifest: &OciImageManifest) -> String {
    let types: Vec<&str> = manifest.layers.iter().map(|l| l.media_type.as_str()).collect();
    format!("[{}]", types.join(", "))
}

fn is_wasm_layer(media_type: &str) -> bool {
    WASM_LAYER_MEDIA_TYPES.contains(&media_type)
}

fn is_image_config_media_type(media_type: &str) -> bool {
    media_type == oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE
        || media_type == oci_client::manifest::IMAGE_DOCKER_CONFIG_MEDIA_TYPE
}

/// Resolves `program` (absolute, or relative to `working_dir`) to normalized components inside
/// the rootfs. `None` when it is empty or climbs above the root.
pub(crate) fn rootfs_path(working_dir: &str, program: &str) -> Option<Vec<String>> {
    let joined =
        if program.starts_with('/') { program.to_string() } else { format!("{working_dir}/{program}") };
    let mut parts: Vec<String> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name.to_string()),
        }
    }
    (!parts.is_empty()).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::manifest::{OciDescriptor, Platform};
    use oci_spec::image::{Arch, Os};

    fn desc(media_type: &str) -> OciDescriptor {
        OciDescriptor {
            media_type: media_type.to_string(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            ..Default::default()
        }
    }

    fn manifest(config: &str, layers: &[&str]) -> OciImageManifest {
        OciImageManifest {
            config: desc(config),
            layers: layers.iter().map(|l| desc(l)).collect(),
            ..Default::default()
        }
    }

    const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    const TGZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    fn why(result: Result<Plan, FetchError>) -> String {
        match result {
            Err(FetchError::UnsupportedArtifact { why, .. } | FetchError::NotAnImage { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn cncf_artifact_and_other_wasm_layer_types() {
        let m = manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]);
        assert_eq!(detect(&m, b"{}", "r").ok(), Some(Plan::WasmLayer { layer: 0 }));
        for layer in WASM_LAYER_MEDIA_TYPES {
            // runwasi: image config with arch wasm and a component layer.
            let m = manifest(OCI_CONFIG, &[layer]);
            let cfg = br#"{"architecture":"wasm","os":"wasip2"}"#;
            assert_eq!(detect(&m, cfg, "r").ok(), Some(Plan::WasmLayer { layer: 0 }), "{layer}");
        }
        let m = manifest(LEGACY_WASM_CONFIG_MEDIA_TYPE, &["application/vnd.wasm.content.layer.v1+wasm"]);
        assert_eq!(detect(&m, b"not json is fine here", "r").ok(), Some(Plan::WasmLayer { layer: 0 }));
        let m = manifest(EMPTY_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE]);
        assert_eq!(detect(&m, b"{}", "r").ok(), Some(Plan::WasmLayer { layer: 0 }));
    }

    #[test]
    fn cncf_artifact_with_wrong_layers_is_refused() {
        let m = manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]);
        assert!(why(detect(&m, b"{}", "r")).contains("exactly one"));
        let m = manifest(WASM_CONFIG_MEDIA_TYPE, &[TGZ]);
        assert!(why(detect(&m, b"{}", "r")).contains("exactly one"));
        let m = manifest(WASM_CONFIG_MEDIA_TYPE, &[]);
        assert!(why(detect(&m, b"{}", "r")).contains("0 layers"));
        // Spin-like: config layer plus two components.
        let spin = "application/vnd.wasm.content.layer.v1+wasm";
        let m = manifest(OCI_CONFIG, &["application/vnd.fermyon.spin.application.v1+config", spin, spin]);
        assert!(
            why(detect(&m, br#"{"architecture":"wasm","os":"wasip1"}"#, "r")).contains("multi-component")
        );
    }

    #[test]
    fn wasi_image_uses_entrypoint_then_cmd() {
        let m = manifest(OCI_CONFIG, &[TGZ, "application/vnd.docker.image.rootfs.diff.tar.gzip"]);
        let cfg = br#"{"architecture":"wasm","os":"wasip2","config":{"Entrypoint":["/hello-http.wasm"],"Cmd":["/other.wasm"]}}"#;
        assert_eq!(
            detect(&m, cfg, "r").ok(),
            Some(Plan::WasiImage { entrypoint: vec!["hello-http.wasm".into()] })
        );
        let cfg = br#"{"architecture":"wasm","os":"wasi","config":{"Entrypoint":null,"Cmd":["app/x.wasm","arg"],"WorkingDir":"/srv"}}"#;
        assert_eq!(
            detect(&m, cfg, "r").ok(),
            Some(Plan::WasiImage { entrypoint: vec!["srv".into(), "app".into(), "x.wasm".into()] })
        );
        let cfg = br#"{"architecture":"wasm","os":"wasip1","config":{"Entrypoint":[],"Cmd":["/m.wasm"]}}"#;
        assert_eq!(detect(&m, cfg, "r").ok(), Some(Plan::WasiImage { entrypoint: vec!["m.wasm".into()] }));
    }

    #[test]
    fn wasi_image_refusals_say_why() {
        let m = manifest(OCI_CONFIG, &[TGZ]);
        assert!(
            why(detect(&m, br#"{"architecture":"wasm","os":"wasip2"}"#, "r")).contains("without Entrypoint")
        );
        assert!(
            why(detect(&m, br#"{"architecture":"wasm","os":"linux","config":{"Cmd":["/a"]}}"#, "r"))
                .contains("os \"linux\"")
        );
        assert!(
            why(detect(&m, br#"{"architecture":"wasm","os":"wasi","config":{"Cmd":["/../.."]}}"#, "r"))
                .contains("does not name a file")
        );
        let zstd = manifest(OCI_CONFIG, &["application/vnd.oci.image.layer.v1.tar+zstd"]);
        assert!(
            why(detect(&zstd, br#"{"architecture":"wasm","os":"wasi","config":{"Cmd":["/a"]}}"#, "r"))
                .contains("tar+zstd")
        );
        assert!(why(detect(&m, b"{not json", "r")).contains("not valid JSON"));
    }

    #[test]
    fn linux_amd64_and_others() {
        let m = manifest(
            "application/vnd.docker.container.image.v1+json",
            &["application/vnd.oci.image.layer.v1.tar+zstd"],
        );
        assert_eq!(detect(&m, br#"{"architecture":"amd64","os":"linux"}"#, "r").ok(), Some(Plan::Linux));
        assert!(why(detect(&m, br#"{"architecture":"arm64","os":"linux"}"#, "r")).contains("linux/arm64"));
        let helm = manifest(
            "application/vnd.cncf.helm.config.v1+json",
            &["application/vnd.cncf.helm.chart.content.v1.tar+gzip"],
        );
        assert!(why(detect(&helm, b"{}", "r")).contains("helm.config"));
        let empty = manifest(EMPTY_CONFIG_MEDIA_TYPE, &["text/plain"]);
        assert!(why(detect(&empty, b"{}", "r")).contains("no Wasm layer"));
    }

    fn entry(os: &str, arch: &str, digest: &str) -> ImageIndexEntry {
        ImageIndexEntry {
            media_type: oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: Arch::from(arch),
                os: Os::from(os),
                os_version: None,
                os_features: None,
                variant: None,
                features: None,
            }),
            annotations: None,
            artifact_type: None,
        }
    }

    fn index(entries: Vec<ImageIndexEntry>) -> OciImageIndex {
        OciImageIndex {
            schema_version: 2,
            media_type: None,
            manifests: entries,
            artifact_type: None,
            annotations: None,
        }
    }

    #[test]
    fn platform_selection_prefers_wasm_then_linux_amd64() {
        let idx = index(vec![
            entry("linux", "amd64", "L"),
            entry("wasip1", "wasm", "P1"),
            entry("wasip2", "wasm", "P2"),
        ]);
        assert_eq!(select_platform(&idx, "r").ok().map(|e| e.digest.as_str()), Some("P2"));
        let idx = index(vec![entry("linux", "amd64", "L"), entry("wasi", "wasm", "W")]);
        assert_eq!(select_platform(&idx, "r").ok().map(|e| e.digest.as_str()), Some("W"));
        let idx = index(vec![entry("linux", "arm64", "A"), entry("linux", "amd64", "L")]);
        assert_eq!(select_platform(&idx, "r").ok().map(|e| e.digest.as_str()), Some("L"));
        let idx = index(vec![entry("linux", "arm64", "A"), entry("windows", "amd64", "W")]);
        let err = select_platform(&idx, "r").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("linux/arm64, windows/amd64"), "{err}");
    }

    #[test]
    fn rootfs_paths_stay_inside() {
        assert_eq!(rootfs_path("/", "/a/./b.wasm"), Some(vec!["a".into(), "b.wasm".into()]));
        assert_eq!(rootfs_path("/w", "../x.wasm"), Some(vec!["x.wasm".into()]));
        assert_eq!(rootfs_path("/", "../x.wasm"), None);
        assert_eq!(rootfs_path("/", "/"), None);
    }
}
