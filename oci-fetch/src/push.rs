//! Pushing a local `.wasm` to a registry as a CNCF TAG-Runtime Wasm OCI artifact (the layout
//! `wkg oci push` writes): the binary as the single `application/wasm` layer, a
//! `application/vnd.wasm.config.v0+json` config whose `os` says module (`wasip1`) or component
//! (`wasip2`), and an OCI image manifest.

use std::path::Path;

use http::HeaderValue;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use tracing::Instrument;

use crate::FetchError;
use crate::client::new_client;
use crate::cncf::{self, sha256_digest};
use crate::reference::{self, uses_plain_http};
use crate::wasm_header::wasm_kind;

/// Pushes `wasm` to `reference` and returns the manifest digest (`sha256:…`), by which the
/// artifact can also be pulled (`<repo>@<digest>`).
pub async fn push_wasm(wasm: &Path, reference: &str) -> Result<String, FetchError> {
    let parsed = reference::parse(reference)?;
    let name = parsed.whole();
    let span = tracing::info_span!("push_wasm", reference = %name, wasm = %wasm.display());
    push(wasm, &parsed, &name).instrument(span).await
}

async fn push(wasm: &Path, parsed: &Reference, name: &str) -> Result<String, FetchError> {
    // Check the file before touching the network: a typo'd path or an ELF binary is the
    // common mistake, and a registry error would hide it.
    let bytes = tokio::fs::read(wasm).await.map_err(FetchError::io(wasm))?;
    let kind = wasm_kind(&bytes).map_err(|why| FetchError::NotWasm { path: wasm.to_path_buf(), why })?;
    let layer_digest = sha256_digest(&bytes);
    let built = cncf::build(&layer_digest, bytes.len() as u64, kind);

    let registry_error = |e| FetchError::from_registry(name, e);
    let client = new_client(uses_plain_http(parsed.resolve_registry()))
        .map_err(|message| FetchError::Registry { reference: name.to_string(), message })?;
    client.store_auth_if_needed(parsed.resolve_registry(), &RegistryAuth::Anonymous).await;
    // Re-pushing the same binary under a new tag should not upload it again.
    if client.blob_exists(parsed, &layer_digest).await.map_err(registry_error)? {
        tracing::debug!(digest = %layer_digest, "layer already in the registry");
    } else {
        client.push_blob(parsed, bytes, &layer_digest).await.map_err(registry_error)?;
    }
    client.push_blob(parsed, built.config, &built.config_digest).await.map_err(registry_error)?;
    // Push our exact bytes (not a re-serialization) so the digest we return is the one stored.
    client
        .push_manifest_raw(
            parsed,
            built.manifest,
            HeaderValue::from_static(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE),
        )
        .await
        .map_err(registry_error)?;
    tracing::info!(digest = %built.manifest_digest, os = kind.os(), "pushed Wasm artifact");
    Ok(built.manifest_digest)
}
