//! The one error type of `oci-fetch`, and the translation of `oci-client` errors into it.
//!
//! The node agent turns these into Kubernetes reasons (`ErrImagePull`, `ImagePullBackOff`,
//! `InvalidImageName`), so the variants follow what a user can act on, not where the error was
//! raised. Every message names the image or file concerned.

use std::path::{Path, PathBuf};

use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};

/// Everything that can go wrong while pulling, caching, side-loading or pushing an image.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The image reference cannot be parsed (Kubernetes: `InvalidImageName`).
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The registry does not know this repository or tag (Kubernetes: `ErrImagePull`).
    #[error("image {reference} not found: {message}")]
    NotFound {
        /// The normalized reference.
        reference: String,
        /// The registry's own message.
        message: String,
    },
    /// The registry refused anonymous access.
    #[error(
        "not authorized to pull or push {reference}: {message} (only anonymous access is \
         supported so far; make the repository public)"
    )]
    Unauthorized {
        /// The normalized reference.
        reference: String,
        /// The registry's own message.
        message: String,
    },
    /// Any other registry or network failure.
    #[error("registry error for {reference}: {message}")]
    Registry {
        /// The normalized reference.
        reference: String,
        /// The registry's message, or the network error chain.
        message: String,
    },
    /// Content did not hash to the digest that named it; nothing was cached.
    #[error(
        "digest mismatch: expected {expected}, got {actual}; the registry served corrupted or \
         tampered content, nothing was cached"
    )]
    DigestMismatch {
        /// The digest the manifest (or reference) promised.
        expected: String,
        /// The digest of what actually arrived.
        actual: String,
    },
    /// A blob was longer or shorter than its descriptor said; nothing was cached.
    #[error("blob {digest} is {actual} bytes but its descriptor says {expected}; nothing was cached")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes received (or at least this many, when the download was cut short).
        actual: u64,
    },
    /// A digest is not of the form `sha256:<64 hex digits>`, the only form the cache stores.
    #[error("unsupported digest {digest:?}: only sha256:<64 hex digits> is supported")]
    InvalidDigest {
        /// The digest as found.
        digest: String,
    },
    /// What the reference points at is not an image manifest we can read.
    #[error("{reference} is not a container image: {why}")]
    NotAnImage {
        /// The normalized reference.
        reference: String,
        /// What was found instead.
        why: String,
    },
    /// A readable image, but not one wasmkube can run (neither Wasm nor linux/amd64).
    #[error("{reference} cannot be run by wasmkube: {why}")]
    UnsupportedArtifact {
        /// The normalized reference.
        reference: String,
        /// What was found and what would be accepted.
        why: String,
    },
    /// A local file given to push or side-load is not a WebAssembly binary.
    #[error("{path} is not a WebAssembly binary: {why}")]
    NotWasm {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        why: String,
    },
    /// A file or directory of the cache (or a local input file) could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// True when the registry says the image does not exist (manifest or repository unknown),
    /// which Kubernetes reports as `ErrImagePull` and retries with back-off.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }

    /// Builds a closure for `map_err` that attaches `path` to an I/O error.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
        move |source| FetchError::Io { path: path.to_path_buf(), source }
    }

    /// Translates an `oci-client` error for `reference` into the variant a user can act on.
    pub(crate) fn from_registry(reference: &str, err: OciDistributionError) -> FetchError {
        let reference = reference.to_string();
        match err {
            OciDistributionError::RegistryError { envelope, url } => {
                let message = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", error_code_name(&e.code), e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let message = format!("{message} ({url})");
                let codes = || envelope.errors.iter().map(|e| &e.code);
                if codes().any(is_not_found_code) {
                    FetchError::NotFound { reference, message }
                } else if codes().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                    FetchError::Unauthorized { reference, message }
                } else {
                    FetchError::Registry { reference, message }
                }
            }
            OciDistributionError::UnauthorizedError { url } => {
                FetchError::Unauthorized { reference, message: format!("HTTP 401 from {url}") }
            }
            OciDistributionError::AuthenticationFailure(message) => {
                FetchError::Unauthorized { reference, message }
            }
            OciDistributionError::ServerError { code, url, message } => {
                let message = format!("HTTP {code} from {url}: {}", message.trim());
                match code {
                    404 => FetchError::NotFound { reference, message },
                    401 | 403 => FetchError::Unauthorized { reference, message },
                    _ => FetchError::Registry { reference, message },
                }
            }
            OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
                FetchError::DigestMismatch { expected, actual }
            }
            OciDistributionError::IoError(e) => FetchError::from_stream_error(&reference, e),
            other => FetchError::Registry { reference, message: error_chain(&other) },
        }
    }

    /// Translates an error from a blob stream: `oci-client` reports a digest mismatch found at
    /// the end of a stream as an `io::Error` wrapping its `DigestError`.
    pub(crate) fn from_stream_error(reference: &str, err: std::io::Error) -> FetchError {
        if let Some(DigestError::VerificationError { expected, actual }) =
            err.get_ref().and_then(|inner| inner.downcast_ref::<DigestError>())
        {
            return FetchError::DigestMismatch { expected: expected.clone(), actual: actual.clone() };
        }
        FetchError::Registry { reference: reference.to_string(), message: error_chain(&err) }
    }
}

fn is_not_found_code(code: &OciErrorCode) -> bool {
    matches!(
        code,
        OciErrorCode::ManifestUnknown
            | OciErrorCode::NameUnknown
            | OciErrorCode::NotFound
            | OciErrorCode::BlobUnknown
            | OciErrorCode::ManifestBlobUnknown
    )
}

/// The wire name of an error code (`MANIFEST_UNKNOWN`), which is what registry docs and users
/// search for, rather than the Rust variant name.
fn error_code_name(code: &OciErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// The error and all its sources on one line: reqwest's own message ("error sending request")
/// hides the useful part ("connection refused") in the source chain.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: "manifest unknown".into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://127.0.0.1:5000/v2/x/manifests/1".into(),
        }
    }

    #[test]
    fn manifest_and_name_unknown_are_not_found() {
        for code in [OciErrorCode::ManifestUnknown, OciErrorCode::NameUnknown] {
            let err = FetchError::from_registry("r", envelope(code));
            assert!(err.is_not_found(), "{err}");
            assert!(err.to_string().contains("MANIFEST_UNKNOWN") || err.to_string().contains("NAME_UNKNOWN"));
        }
    }

    #[test]
    fn denied_is_unauthorized_and_404_without_envelope_is_not_found() {
        let err = FetchError::from_registry("r", envelope(OciErrorCode::Denied));
        assert!(matches!(err, FetchError::Unauthorized { .. }));
        let err = FetchError::from_registry(
            "r",
            OciDistributionError::ServerError { code: 404, url: "u".into(), message: "nope".into() },
        );
        assert!(err.is_not_found());
        let err = FetchError::from_registry(
            "r",
            OciDistributionError::ServerError { code: 500, url: "u".into(), message: "boom".into() },
        );
        assert!(matches!(err, FetchError::Registry { .. }) && err.to_string().contains("boom"));
    }

    #[test]
    fn digest_error_inside_stream_io_error_is_a_mismatch() {
        let inner =
            DigestError::VerificationError { expected: "sha256:aa".into(), actual: "sha256:bb".into() };
        let err = FetchError::from_stream_error("r", std::io::Error::other(inner));
        assert!(
            matches!(&err, FetchError::DigestMismatch { expected, actual } if expected == "sha256:aa" && actual == "sha256:bb")
        );
    }
}
