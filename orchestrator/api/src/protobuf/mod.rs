//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl's
//! typed commands (`kubectl create namespace|configmap|secret|deployment|service`, the
//! DeleteOptions of `kubectl drain`) and protobuf-configured Go clients send them.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope naming the
//! apiVersion/kind and holding the object's bytes. We decode the object, driven by hand-written
//! message tables, into exactly the JSON Go's encoder would write for it, so the usual
//! create/update path (defaults, validation, `fieldValidation`) applies unchanged. Responses
//! stay JSON: clients decode by the response Content-Type.
//!
//! Nothing is silently dropped: a field our tables do not know is a 415 naming the message and
//! the path, telling the client to send JSON instead; malformed bytes are a 400.

mod decode;
pub mod schema;
pub mod tables;
pub mod values;
pub mod wire;

use serde_json::{Map, Value};

use crate::ApiError;
use wire::{Reader, WireType};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body lacks the `k8s\0` prefix.
    #[error("the body is not Kubernetes protobuf: it does not start with the \"k8s\\x00\" prefix")]
    NoMagic,
    /// Bytes that do not decode, or a value with no JSON form.
    #[error("the protobuf body is invalid{}: {reason}", at(path))]
    Invalid {
        /// JSON path of the offending field ("" for the envelope or the top level).
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The envelope names no kind.
    #[error("Object 'Kind' is missing in the protobuf envelope")]
    MissingKind,
    /// A type we do not decode from protobuf.
    #[error(
        "{kind} ({api_version}) is not accepted as protobuf by this server; send it as JSON (application/json)"
    )]
    UnsupportedKind {
        /// Envelope apiVersion.
        api_version: String,
        /// Envelope kind.
        kind: String,
    },
    /// A field our tables do not know (or know but do not decode).
    #[error(
        "field {field} of {message}{} is not supported in protobuf bodies by this server; send the object as JSON (application/json)",
        at(path)
    )]
    UnsupportedField {
        /// Upstream message name.
        message: &'static str,
        /// Field name, or number when unknown.
        field: String,
        /// JSON path of the message.
        path: String,
    },
    /// A compressed or otherwise wrapped envelope.
    #[error("protobuf envelopes with contentEncoding {0:?} are not supported; send the object uncompressed")]
    UnsupportedEncoding(String),
}

impl ProtobufError {
    /// True when the body is well-formed but uses something we do not decode (a 415 rather
    /// than a 400).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedKind { .. } | Self::UnsupportedField { .. } | Self::UnsupportedEncoding(_)
        )
    }
}

fn at(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!(" at {path}") }
}

impl From<ProtobufError> for ApiError {
    fn from(e: ProtobufError) -> Self {
        if e.is_unsupported() {
            ApiError::unsupported_content(e.to_string())
        } else {
            ApiError::bad_request(e.to_string())
        }
    }
}

/// The `runtime.Unknown` envelope: `typeMeta = 1 {apiVersion = 1, kind = 2}`, `raw = 2`,
/// `contentEncoding = 3`, `contentType = 4`.
#[derive(Debug, Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, ProtobufError> {
        let invalid = |reason: String| ProtobufError::Invalid { path: String::new(), reason };
        let mut env = Envelope::default();
        let mut r = Reader::new(bytes);
        while !r.is_done() {
            let (number, wire_type) = r.key().map_err(|e| invalid(format!("envelope: {e}")))?;
            if wire_type != WireType::Len || !(1..=4).contains(&number) {
                return Err(invalid(format!(
                    "the envelope has no field {number} of wire type {}",
                    wire_type.number()
                )));
            }
            let data = r.len_delimited().map_err(|e| invalid(format!("envelope: {e}")))?;
            let text = || values::utf8(data).map_err(|e| invalid(format!("envelope: {e}")));
            match number {
                1 => (env.api_version, env.kind) = type_meta(data).map_err(invalid)?,
                2 => env.raw = data,
                3 => env.content_encoding = text()?,
                _ => env.content_type = text()?,
            }
        }
        Ok(env)
    }
}

/// `runtime.TypeMeta{apiVersion = 1, kind = 2}`.
fn type_meta(bytes: &[u8]) -> Result<(String, String), String> {
    let (mut api_version, mut kind) = (String::new(), String::new());
    let mut r = Reader::new(bytes);
    while !r.is_done() {
        let (number, wire_type) = r.key().map_err(|e| format!("typeMeta: {e}"))?;
        let data = match (number, wire_type) {
            (1 | 2, WireType::Len) => r.len_delimited().map_err(|e| format!("typeMeta: {e}"))?,
            _ => return Err(format!("typeMeta has no field {number} of wire type {}", wire_type.number())),
        };
        let text = values::utf8(data).map_err(|e| format!("typeMeta: {e}"))?;
        if number == 1 { api_version = text } else { kind = text }
    }
    Ok((api_version, kind))
}

/// Decode a protobuf request body into the JSON object (with `apiVersion` and `kind` from the
/// envelope) that the same object has in JSON.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let env = Envelope::parse(rest)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(env.content_encoding));
    }
    if !(env.content_type.is_empty() || env.content_type == CONTENT_TYPE) {
        return Err(ProtobufError::Invalid {
            path: String::new(),
            reason: format!("the envelope's contentType is {:?}, expected {CONTENT_TYPE}", env.content_type),
        });
    }
    if env.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    let message = tables::find(&env.api_version, &env.kind).ok_or_else(|| {
        ProtobufError::UnsupportedKind { api_version: env.api_version.clone(), kind: env.kind.clone() }
    })?;
    let mut obj = Map::new();
    obj.insert("apiVersion".to_string(), Value::String(env.api_version));
    obj.insert("kind".to_string(), Value::String(env.kind));
    decode::Decoder::default().message(message, env.raw, &mut obj)?;
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests;
