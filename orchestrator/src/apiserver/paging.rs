//! Chunked lists: the `limit` and `continue` query parameters. kubectl lists with `limit=500`
//! and follows `metadata.continue`; client libraries page the same way. The continue token is
//! opaque to clients; ours is base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<last key>"}`,
//! the shape upstream uses.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::api::ApiError;

/// Paging options of one list request.
#[derive(Debug, Default)]
pub struct Paging {
    /// At most this many items (`None`: all of them).
    pub limit: Option<usize>,
    /// Continue after this store key.
    pub after: Option<String>,
    /// The revision of the first page, which every later page reports.
    pub revision: Option<u64>,
}

impl Paging {
    /// From `limit` and `continue`; `prefix` is the collection's key prefix, which a token
    /// must point into (a token from another collection is a 400, as upstream).
    pub fn from_query(
        query: &std::collections::HashMap<String, String>,
        prefix: &str,
    ) -> Result<Self, ApiError> {
        let limit = match query.get("limit").map(String::as_str) {
            None | Some("") => None,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                Ok(_) => None,
                Err(_) => return Err(ApiError::bad_request(format!("limit must be an integer, got {l:?}"))),
            },
        };
        let mut paging = Paging { limit, ..Default::default() };
        if let Some(token) = query.get("continue").filter(|t| !t.is_empty()) {
            let (rv, start) = decode(token).ok_or_else(|| {
                ApiError::bad_request("continue key is not valid: the token could not be decoded")
            })?;
            if !start.starts_with(prefix) {
                return Err(ApiError::bad_request("continue key is not valid: it belongs to another list"));
            }
            paging.after = Some(start);
            paging.revision = Some(rv);
        }
        Ok(paging)
    }
}

/// The token for the page after `last_key`, read at `revision`.
pub fn encode(revision: u64, last_key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode(token: &str) -> Option<(u64, String)> {
    // Upstream tokens are padded standard base64; accept either alphabet and padding.
    let trimmed = token.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).ok())?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    if v["v"] != "meta.k8s.io/v1" {
        return None;
    }
    Some((v["rv"].as_u64()?, v["start"].as_str()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tokens_round_trip_and_stay_in_their_collection() {
        let token = encode(42, "/registry/pods/default/web-1");
        let p =
            Paging::from_query(&q(&[("limit", "2"), ("continue", &token)]), "/registry/pods/").expect("ok");
        assert_eq!(
            (p.limit, p.after.as_deref(), p.revision),
            (Some(2), Some("/registry/pods/default/web-1"), Some(42))
        );
        assert!(Paging::from_query(&q(&[("continue", &token)]), "/registry/secrets/").is_err());
        assert!(Paging::from_query(&q(&[("continue", "%%%")]), "/registry/pods/").is_err());
        assert!(Paging::from_query(&q(&[("limit", "ten")]), "/registry/pods/").is_err());
        assert_eq!(Paging::from_query(&q(&[("limit", "0")]), "").expect("ok").limit, None);
    }
}
