//! The pure part of reading an API request: the body decoded by its Content-Type, and the query
//! string decoded into parameters. The HTTP layer hands over bytes and header values; keeping
//! the decoding here lets the fuzz targets reach it without a server.

use std::collections::HashMap;

use serde_json::Value;

use super::{ApiError, yaml};

/// Decode a JSON or YAML body, chosen by the Content-Type header value (JSON when absent).
/// serde_json refuses nesting deeper than 127 levels and the YAML budget 64, so hostile depth is
/// an error, not a stack overflow, and whatever decodes can be stored.
pub fn decode_body(content_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if essence.eq_ignore_ascii_case(crate::protobuf::CONTENT_TYPE) {
        return crate::protobuf::decode(bytes).map_err(ApiError::from);
    }
    if essence.ends_with("yaml") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::bad_request("the YAML body is not valid UTF-8"))?;
        return yaml::from_str_single(text).map_err(ApiError::bad_request);
    }
    if !(essence.ends_with("json") || essence.is_empty() || essence == "*/*") {
        return Err(ApiError::unsupported_body_type(content_type));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// Query parameters as a map (the last of repeated parameters wins; clients do not repeat the
/// ones we read).
pub fn query_map(query: Option<&str>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
    }
    map
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XY` a byte; a `%` not
/// followed by two hex digits stays as it is, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = query_map(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&x"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(query_map(Some("a=%zz%"))["a"], "%zz%");
        assert_eq!(query_map(Some("a=%4"))["a"], "%4");
        assert_eq!(query_map(Some("a=%e2%9c%93%ff"))["a"], "\u{2713}\u{fffd}");
    }

    #[test]
    fn a_sign_is_not_a_hex_digit() {
        // `u8::from_str_radix` accepts a leading `+`, so `%+5` used to decode to byte 5.
        assert_eq!(query_map(Some("a=%+5"))["a"], "% 5");
        assert_eq!(query_map(Some("a=%-5"))["a"], "%-5");
    }

    #[test]
    fn bodies_by_content_type() {
        let json = decode_body("application/json; charset=utf-8", br#"{"a":1}"#).expect("json");
        assert_eq!(json["a"], 1);
        let yaml = decode_body("application/yaml", b"a: 1\n").expect("yaml");
        assert_eq!(yaml, json);
        assert_eq!(decode_body("", b"[]").expect("no content type is JSON"), serde_json::json!([]));
        assert_eq!(decode_body("text/plain", b"a").expect_err("415").code, 415);
        assert_eq!(decode_body("application/json", b"").expect_err("empty").code, 400);
        assert_eq!(decode_body("application/yaml", b"\xff").expect_err("not UTF-8").code, 400);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(decode_body("application/json", deep.as_bytes()).expect_err("deep").code, 400);
    }
}
