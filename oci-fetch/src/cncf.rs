//! Builds the CNCF TAG-Runtime Wasm OCI artifact around one Wasm binary: the
//! `application/vnd.wasm.config.v0+json` config and the OCI image manifest with a single
//! `application/wasm` layer. Shared by `push_wasm` and side-loading, so a side-loaded image has
//! exactly the shape of a pushed one.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::detect::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use crate::wasm_header::WasmKind;

/// The config and manifest of an artifact, serialized, with their digests.
pub(crate) struct CncfArtifact {
    /// Config JSON bytes.
    pub config: Vec<u8>,
    /// `sha256:` digest of `config`.
    pub config_digest: String,
    /// Manifest JSON bytes.
    pub manifest: Vec<u8>,
    /// `sha256:` digest of `manifest`; the image ID.
    pub manifest_digest: String,
}

/// The config fields of the CNCF layout. `component` (exports/imports/target), which the spec
/// wants for components, is left out: filling it needs a WIT decoder we do not carry here, and
/// neither our detection nor runwasi's reads it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig<'a> {
    created: String,
    architecture: &'static str,
    os: &'static str,
    layer_digests: [&'a str; 1],
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Builds the artifact for a Wasm layer with digest `layer_digest` and length `layer_size`.
pub(crate) fn build(layer_digest: &str, layer_size: u64, kind: WasmKind) -> CncfArtifact {
    let config = WasmConfig {
        created: jiff::Timestamp::now().to_string(),
        architecture: "wasm",
        os: kind.os(),
        layer_digests: [layer_digest],
    };
    // Serializing plain strings and numbers cannot fail.
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = sha256_digest(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
        "config": {
            "mediaType": WASM_CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": WASM_LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    let manifest_digest = sha256_digest(&manifest);
    CncfArtifact { config, config_digest, manifest, manifest_digest }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Plan, detect};
    use oci_client::manifest::OciImageManifest;

    #[test]
    fn built_artifact_is_detected_as_cncf_wasm() {
        let layer = sha256_digest(b"\0asm\x0d\0\x01\0");
        let a = build(&layer, 8, WasmKind::Component);
        let manifest: OciImageManifest = serde_json::from_slice(&a.manifest).expect("manifest parses");
        assert_eq!(detect(&manifest, &a.config, "r").ok(), Some(Plan::WasmLayer { layer: 0 }));
        assert_eq!(manifest.config.digest, a.config_digest);
        assert_eq!(manifest.layers[0].size, 8);
        let config: serde_json::Value = serde_json::from_slice(&a.config).expect("config parses");
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["layerDigests"][0], layer.as_str());
        assert!(config["created"].as_str().is_some_and(|c| c.ends_with('Z')));
        assert_eq!(a.manifest_digest, sha256_digest(&a.manifest));
    }
}
