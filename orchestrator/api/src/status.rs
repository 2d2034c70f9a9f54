//! API errors and their wire form: every failure becomes a Kubernetes `Status` object with the
//! HTTP code clients (kubectl, client-go, the Python client) branch on.

use serde_json::{Value, json};

/// An error the API reports to its client as a `Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message, saying what was wrong.
    pub message: String,
    /// `details` of the Status (name, group, kind, causes), when known.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    /// 400: the request itself is malformed (bad JSON/YAML, bad query parameter).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401: no or unknown credentials.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized: a valid bearer token is required")
    }

    /// 404 for a named object, worded as kube-apiserver words it.
    pub fn not_found(qualified_resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{qualified_resource} \"{name}\" not found"))
            .with_details(name, qualified_resource)
    }

    /// 404 for a path we do not serve.
    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// 405: the resource exists but not this verb.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 409: create of an object that exists.
    pub fn already_exists(qualified_resource: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{qualified_resource} \"{name}\" already exists"))
            .with_details(name, qualified_resource)
    }

    /// 409: optimistic-concurrency failure.
    pub fn conflict(qualified_resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified_resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(name, qualified_resource)
    }

    /// 410: a watch or list asked for history we no longer keep.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413: request body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415: a patch or body content type we do not take.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 415: a request body (create, update, binding, delete options) in a format we do not
    /// decode.
    pub fn unsupported_body_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
        )
    }

    /// 415 with our own explanation (e.g. a protobuf field we do not decode).
    pub fn unsupported_content(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 422: the object fails validation.
    /// `message` may start with the field path (`spec.replicas: ...`); it becomes the
    /// `causes` entry kubectl prints as `The Deployment "x" is invalid: spec.replicas: ...`.
    pub fn invalid(kind: &str, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let (field, detail) = match message.split_once(": ") {
            Some((f, rest)) if !f.is_empty() && !f.contains(' ') => (f.to_string(), rest.to_string()),
            _ => (String::new(), message.clone()),
        };
        let mut err = Self::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {message}"));
        err.details = Some(json!({"name": name, "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": detail, "field": field}]}));
        err
    }

    /// 403: refused for policy reasons (e.g. terminating namespace).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 500: our fault; the message still says what failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 429: the caller is over a rate or concurrency limit; retry after a second (clients
    /// read `details.retryAfterSeconds` and the `Retry-After` header).
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        let mut err = Self::new(429, "TooManyRequests", message);
        err.details = Some(json!({"retryAfterSeconds": 1}));
        err
    }

    /// 503: a component the request needs is not reachable (e.g. the node serving logs).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    fn with_details(mut self, name: &str, qualified_resource: &str) -> Self {
        let (kind, group) = qualified_resource.split_once('.').unwrap_or((qualified_resource, ""));
        self.details = Some(json!({"name": name, "group": group, "kind": kind}));
        self
    }

    /// The `Status` object for the wire.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    /// Rebuild an error from a `Status` a server sent (client side).
    pub fn from_status(code: u16, body: &Value) -> Self {
        let message = body["message"].as_str().unwrap_or("request failed").to_string();
        let reason = match body["reason"].as_str().unwrap_or("") {
            "NotFound" => "NotFound",
            "AlreadyExists" => "AlreadyExists",
            "Conflict" => "Conflict",
            "Invalid" => "Invalid",
            "Expired" | "Gone" => "Expired",
            "Forbidden" => "Forbidden",
            "Unauthorized" => "Unauthorized",
            "BadRequest" => "BadRequest",
            _ => "Unknown",
        };
        Self { code, reason, message, details: body.get("details").cloned() }
    }

    /// True for a 404.
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    /// True for a 409 from a stale resourceVersion or an existing name.
    pub fn is_conflict(&self) -> bool {
        self.code == 409
    }
}

/// The `Status` a successful delete returns when the object is gone at once.
pub fn success_status(name: &str, group: &str, plural: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": plural, "uid": uid},
    })
}
