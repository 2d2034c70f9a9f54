//! The apimachinery value types whose JSON form differs from their protobuf form: `Time` and
//! `MicroTime` (a Timestamp message, an RFC 3339 string in JSON), `IntOrString`, `Quantity`,
//! `FieldsV1` (raw JSON bytes) and `[]byte` (base64 in JSON). Each mirrors what Go's JSON
//! encoder writes for the value Go's protobuf decoder would build.

use base64::Engine;
use serde_json::{Value, json};

use super::wire::{Reader, WireType};

/// Seconds of 0001-01-01T00:00:00Z, Go's zero `time.Time`.
const GO_ZERO_TIME: i64 = -62_135_596_800;
/// Seconds of 9999-12-31T23:59:59Z, the last instant RFC 3339 can write with four digits.
const LAST_RFC3339: i64 = 253_402_300_799;

/// How precisely a timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `metav1.Time`: whole seconds (the fraction is dropped, as Go's RFC 3339 layout does).
    Seconds,
    /// `metav1.MicroTime`: six fractional digits.
    Micros,
}

/// `metav1.Time` / `metav1.MicroTime` from a `Timestamp{seconds = 1, nanos = 2}` message;
/// `None` for Go's zero time, which v1.37's JSON leaves out (`omitzero`; older Go wrote
/// `null`, which means the same to every reader).
pub fn timestamp(bytes: &[u8], precision: Precision) -> Result<Option<String>, String> {
    // An empty message is how Go sends its zero time.
    if bytes.is_empty() {
        return Ok(None);
    }
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut r = Reader::new(bytes);
    while !r.is_done() {
        match r.key().map_err(|e| e.to_string())? {
            (1, WireType::Varint) => seconds = r.varint().map_err(|e| e.to_string())? as i64,
            (2, WireType::Varint) => nanos = i64::from(r.varint().map_err(|e| e.to_string())? as i32),
            (n, wt) => return Err(format!("a Timestamp has no field {n} of wire type {}", wt.number())),
        }
    }
    // Go's time.Unix normalises nanoseconds into [0, 1e9) by moving whole seconds.
    let second = seconds.checked_add(nanos.div_euclid(1_000_000_000)).ok_or("the timestamp overflows")?;
    let nanos = nanos.rem_euclid(1_000_000_000);
    if second == GO_ZERO_TIME && nanos == 0 {
        return Ok(None);
    }
    if !(GO_ZERO_TIME..=LAST_RFC3339).contains(&second) {
        return Err(format!("the timestamp {second}s is outside years 1 to 9999"));
    }
    let civil = jiff::Timestamp::from_second(second).map_err(|e| e.to_string())?;
    let base = civil.strftime("%Y-%m-%dT%H:%M:%S");
    Ok(Some(match precision {
        Precision::Seconds => format!("{base}Z"),
        Precision::Micros => format!("{base}.{:06}Z", nanos / 1000),
    }))
}

/// `intstr.IntOrString{type = 1, intVal = 2, strVal = 3}`: a number when type is 0, a string
/// when it is 1.
pub fn int_or_string(bytes: &[u8]) -> Result<Value, String> {
    let (mut kind, mut int_val, mut str_val) = (0i64, 0i32, String::new());
    let mut r = Reader::new(bytes);
    while !r.is_done() {
        match r.key().map_err(|e| e.to_string())? {
            (1, WireType::Varint) => kind = r.varint().map_err(|e| e.to_string())? as i64,
            (2, WireType::Varint) => int_val = r.varint().map_err(|e| e.to_string())? as i32,
            (3, WireType::Len) => str_val = utf8(r.len_delimited().map_err(|e| e.to_string())?)?,
            (n, wt) => return Err(format!("an IntOrString has no field {n} of wire type {}", wt.number())),
        }
    }
    match kind {
        0 => Ok(json!(int_val)),
        1 => Ok(Value::String(str_val)),
        other => Err(format!("IntOrString type {other} is neither 0 (int) nor 1 (string)")),
    }
}

/// `resource.Quantity{string = 1}`: the string, `"0"` when absent (Go's zero Quantity).
pub fn quantity(bytes: &[u8]) -> Result<Value, String> {
    let mut text = None;
    let mut r = Reader::new(bytes);
    while !r.is_done() {
        match r.key().map_err(|e| e.to_string())? {
            (1, WireType::Len) => text = Some(utf8(r.len_delimited().map_err(|e| e.to_string())?)?),
            (n, wt) => return Err(format!("a Quantity has no field {n} of wire type {}", wt.number())),
        }
    }
    Ok(Value::String(text.filter(|t| !t.is_empty()).unwrap_or_else(|| "0".to_string())))
}

/// `metav1.FieldsV1{Raw = 1}`: the raw bytes are JSON and are written as such.
pub fn fields_v1(bytes: &[u8]) -> Result<Value, String> {
    let mut raw = None;
    let mut r = Reader::new(bytes);
    while !r.is_done() {
        match r.key().map_err(|e| e.to_string())? {
            (1, WireType::Len) => raw = Some(r.len_delimited().map_err(|e| e.to_string())?),
            (n, wt) => return Err(format!("a FieldsV1 has no field {n} of wire type {}", wt.number())),
        }
    }
    match raw {
        None => Ok(Value::Null),
        // serde_json limits nesting, so hostile depth is an error here too.
        Some(raw) => serde_json::from_slice(raw).map_err(|e| format!("FieldsV1 is not valid JSON: {e}")),
    }
}

/// `[]byte` as Go's JSON encoder writes it: standard base64 with padding.
pub fn base64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A protobuf string. Go does not check UTF-8 here, but a JSON store cannot hold anything
/// else, so invalid bytes are refused rather than silently replaced.
pub fn utf8(bytes: &[u8]) -> Result<String, String> {
    std::str::from_utf8(bytes).map(str::to_string).map_err(|e| format!("the string is not valid UTF-8 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Vec<u8> {
        let mut out = vec![0x08];
        let mut v = seconds as u64;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.push(0x10);
        let mut v = i64::from(nanos) as u64;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out
    }

    #[test]
    fn times() {
        assert_eq!(timestamp(&[], Precision::Seconds), Ok(None));
        assert_eq!(
            timestamp(&ts(1_700_000_000, 999_999_999), Precision::Seconds),
            Ok(Some("2023-11-14T22:13:20Z".into()))
        );
        assert_eq!(
            timestamp(&ts(1_700_000_000, 123_456_789), Precision::Micros),
            Ok(Some("2023-11-14T22:13:20.123456Z".into()))
        );
        // Seconds 0 is 1970, not the zero time; Go's zero time is year 1.
        assert_eq!(timestamp(&ts(0, 0), Precision::Seconds), Ok(Some("1970-01-01T00:00:00Z".into())));
        assert_eq!(timestamp(&ts(GO_ZERO_TIME, 0), Precision::Seconds), Ok(None));
        // Negative nanos borrow a second, as time.Unix does.
        assert_eq!(timestamp(&ts(10, -1), Precision::Micros), Ok(Some("1970-01-01T00:00:09.999999Z".into())));
        assert_eq!(
            timestamp(&ts(GO_ZERO_TIME + 1, 0), Precision::Seconds),
            Ok(Some("0001-01-01T00:00:01Z".into()))
        );
        assert!(timestamp(&ts(LAST_RFC3339 + 1, 0), Precision::Seconds).is_err());
        assert!(timestamp(&ts(i64::MIN, 0), Precision::Seconds).is_err());
        assert!(timestamp(&ts(i64::MAX, -1), Precision::Seconds).is_err());
        assert!(timestamp(&[0x18, 0x01], Precision::Seconds).is_err(), "unknown field");
        assert!(timestamp(&[0x08], Precision::Seconds).is_err(), "truncated");
    }

    #[test]
    fn int_or_strings() {
        assert_eq!(int_or_string(&[]), Ok(json!(0)));
        assert_eq!(int_or_string(&[0x08, 0x00, 0x10, 0x90, 0x3f, 0x1a, 0x00]), Ok(json!(8080)));
        assert_eq!(int_or_string(&[0x08, 0x01, 0x1a, 0x03, b'2', b'5', b'%']), Ok(json!("25%")));
        assert!(int_or_string(&[0x08, 0x02]).is_err());
        assert!(int_or_string(&[0x1a, 0x01, 0xff]).is_err(), "invalid UTF-8");
    }

    #[test]
    fn quantities_and_fields() {
        assert_eq!(quantity(&[0x0a, 0x04, b'1', b'2', b'8', b'M']), Ok(json!("128M")));
        assert_eq!(quantity(&[]), Ok(json!("0")));
        assert!(quantity(&[0x10, 0x01]).is_err());
        assert_eq!(fields_v1(&[0x0a, 0x02, b'{', b'}']), Ok(json!({})));
        assert_eq!(fields_v1(&[]), Ok(Value::Null));
        assert!(fields_v1(&[0x0a, 0x01, b'{']).is_err());
        assert_eq!(base64(&[0xff, 0x00]), json!("/wA="));
    }
}
