//! Schema-driven decoding of one message into the JSON object Go's JSON encoder would write
//! for the same value (see `schema` for the zero-value rules). Repeated occurrences of a field
//! behave as in Go's decoder: scalars take the last value, messages merge, lists append, maps
//! insert. A field the schema does not know is an error naming the message and the JSON path,
//! never silently dropped.

use serde_json::{Map, Value, json};

use super::{
    ProtobufError,
    schema::{Elem, Field, MapValue, Message, Ty, Zero},
    values::{self, Precision},
    wire::{Reader, WireType},
};

/// Deeper than any of our schemas goes (the deepest path, through pod affinity terms, is
/// about a dozen messages); a guard in case a recursive message is ever added.
const MAX_DEPTH: usize = 48;

/// Decodes messages while tracking the JSON path, for error messages.
#[derive(Debug, Default)]
pub struct Decoder {
    path: String,
    depth: usize,
}

impl Decoder {
    /// Decode `bytes` as `msg`, writing its fields into `out`.
    pub fn message(
        &mut self,
        msg: &'static Message,
        bytes: &[u8],
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.invalid("", "messages are nested too deeply"));
        }
        self.depth += 1;
        let mut r = Reader::new(bytes);
        while !r.is_done() {
            let (number, wire_type) = r.key().map_err(|e| self.invalid("", e))?;
            let field = msg.field(number).ok_or_else(|| self.unsupported(msg, &number.to_string()))?;
            self.field(msg, field, wire_type, &mut r, out)?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn field(
        &mut self,
        msg: &'static Message,
        field: &'static Field,
        wire_type: WireType,
        r: &mut Reader<'_>,
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        let key = field.json;
        match field.ty {
            Ty::Str(zero) => {
                let s = self.string(field, wire_type, r)?;
                put(out, key, zero, s.is_empty(), Value::String(s));
            }
            Ty::Bool(zero) => {
                let b = self.varint(field, wire_type, r)? != 0;
                put(out, key, zero, !b, Value::Bool(b));
            }
            // Go decodes int32 varints by truncating to the low 32 bits.
            Ty::I32(zero) => {
                let n = self.varint(field, wire_type, r)? as i32;
                put(out, key, zero, n == 0, json!(n));
            }
            Ty::I64(zero) => {
                let n = self.varint(field, wire_type, r)? as i64;
                put(out, key, zero, n == 0, json!(n));
            }
            Ty::Msg(inner) => self.nested(field, inner, wire_type, r, out)?,
            Ty::Inline(inner) => {
                let bytes = self.bytes(field, wire_type, r)?;
                self.message(inner, bytes, out)?;
            }
            Ty::List(elem) => self.list(field, elem, wire_type, r, out)?,
            Ty::Map(value) => {
                let bytes = self.bytes(field, wire_type, r)?;
                let (k, v) = self.map_entry(field, value, bytes)?;
                if let Some(Value::Object(existing)) = out.get_mut(key) {
                    existing.insert(k, v);
                } else {
                    out.insert(key.to_string(), Value::Object(Map::from_iter([(k, v)])));
                }
            }
            Ty::Time | Ty::MicroTime | Ty::Quantity | Ty::IntOrString | Ty::FieldsV1 => {
                let bytes = self.bytes(field, wire_type, r)?;
                match special(field.ty, bytes).map_err(|e| self.invalid(key, e))? {
                    Some(value) => out.insert(key.to_string(), value),
                    None => out.remove(key),
                };
            }
            Ty::Unsupported => return Err(self.unsupported(msg, key)),
        }
        Ok(())
    }

    /// A nested message; a second occurrence merges into the first, as in Go.
    fn nested(
        &mut self,
        field: &'static Field,
        inner: &'static Message,
        wire_type: WireType,
        r: &mut Reader<'_>,
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        let bytes = self.bytes(field, wire_type, r)?;
        let mark = self.enter(field.json);
        if let Some(Value::Object(existing)) = out.get_mut(field.json) {
            self.message(inner, bytes, existing)?;
        } else {
            let mut obj = Map::new();
            self.message(inner, bytes, &mut obj)?;
            out.insert(field.json.to_string(), Value::Object(obj));
        }
        self.leave(mark);
        Ok(())
    }

    fn list(
        &mut self,
        field: &'static Field,
        elem: Elem,
        wire_type: WireType,
        r: &mut Reader<'_>,
        out: &mut Map<String, Value>,
    ) -> Result<(), ProtobufError> {
        let key = field.json;
        let mut items = Vec::new();
        match elem {
            Elem::Str => items.push(Value::String(self.string(field, wire_type, r)?)),
            Elem::I32 | Elem::I64 => {
                // Repeated integers may come one per key or packed into one length-delimited run.
                let mut push = |v: u64| {
                    items.push(if matches!(elem, Elem::I32) { json!(v as i32) } else { json!(v as i64) })
                };
                if wire_type == WireType::Len {
                    let mut packed = Reader::new(self.bytes(field, wire_type, r)?);
                    while !packed.is_done() {
                        push(packed.varint().map_err(|e| self.invalid(key, e))?);
                    }
                } else {
                    push(self.varint(field, wire_type, r)?);
                }
            }
            Elem::Msg(inner) => {
                let bytes = self.bytes(field, wire_type, r)?;
                let index = out.get(key).and_then(Value::as_array).map_or(0, Vec::len);
                let mark = self.enter(&format!("{key}[{index}]"));
                let mut obj = Map::new();
                self.message(inner, bytes, &mut obj)?;
                self.leave(mark);
                items.push(Value::Object(obj));
            }
        }
        if let Some(Value::Array(existing)) = out.get_mut(key) {
            existing.extend(items);
        } else {
            out.insert(key.to_string(), Value::Array(items));
        }
        Ok(())
    }

    /// One `map<string, V>` entry: a message with the key as field 1 and the value as field 2.
    fn map_entry(
        &mut self,
        field: &'static Field,
        value: MapValue,
        bytes: &[u8],
    ) -> Result<(String, Value), ProtobufError> {
        let mut entry_key = String::new();
        let mut entry_value = None;
        let mut r = Reader::new(bytes);
        while !r.is_done() {
            let (number, wire_type) = r.key().map_err(|e| self.invalid(field.json, e))?;
            if wire_type != WireType::Len || !(1..=2).contains(&number) {
                return Err(self.invalid(
                    field.json,
                    format!("a map entry has no field {number} of wire type {}", wire_type.number()),
                ));
            }
            let data = r.len_delimited().map_err(|e| self.invalid(field.json, e))?;
            if number == 1 {
                entry_key = values::utf8(data).map_err(|e| self.invalid(field.json, e))?;
                continue;
            }
            entry_value = Some(match value {
                MapValue::Str => values::utf8(data).map(Value::String),
                MapValue::Bytes => Ok(values::base64(data)),
                MapValue::Quantity => values::quantity(data),
            })
            .transpose()
            .map_err(|e| self.invalid(field.json, e))?;
        }
        // A missing value is the value type's zero, as in Go.
        let entry_value = entry_value.unwrap_or_else(|| match value {
            MapValue::Str | MapValue::Bytes => Value::String(String::new()),
            MapValue::Quantity => Value::String("0".to_string()),
        });
        Ok((entry_key, entry_value))
    }

    fn expect(&self, field: &Field, got: WireType, want: WireType) -> Result<(), ProtobufError> {
        if got == want {
            return Ok(());
        }
        Err(self.invalid(field.json, format!("has wire type {}, expected {}", got.number(), want.number())))
    }

    fn varint(&self, field: &Field, wire_type: WireType, r: &mut Reader<'_>) -> Result<u64, ProtobufError> {
        self.expect(field, wire_type, WireType::Varint)?;
        r.varint().map_err(|e| self.invalid(field.json, e))
    }

    fn bytes<'a>(
        &self,
        field: &Field,
        wire_type: WireType,
        r: &mut Reader<'a>,
    ) -> Result<&'a [u8], ProtobufError> {
        self.expect(field, wire_type, WireType::Len)?;
        r.len_delimited().map_err(|e| self.invalid(field.json, e))
    }

    fn string(
        &self,
        field: &Field,
        wire_type: WireType,
        r: &mut Reader<'_>,
    ) -> Result<String, ProtobufError> {
        let bytes = self.bytes(field, wire_type, r)?;
        values::utf8(bytes).map_err(|e| self.invalid(field.json, e))
    }

    /// Extend the JSON path by one segment; returns what `leave` restores.
    fn enter(&mut self, segment: &str) -> usize {
        let mark = self.path.len();
        if !self.path.is_empty() && !segment.starts_with('[') {
            self.path.push('.');
        }
        self.path.push_str(segment);
        mark
    }

    fn leave(&mut self, mark: usize) {
        self.path.truncate(mark);
    }

    /// The path of `segment` below the current message.
    fn path_to(&self, segment: &str) -> String {
        match (self.path.is_empty(), segment.is_empty()) {
            (_, true) => self.path.clone(),
            (true, false) => segment.to_string(),
            (false, false) => format!("{}.{segment}", self.path),
        }
    }

    fn invalid(&self, segment: &str, reason: impl ToString) -> ProtobufError {
        ProtobufError::Invalid { path: self.path_to(segment), reason: reason.to_string() }
    }

    fn unsupported(&self, msg: &'static Message, field: &str) -> ProtobufError {
        ProtobufError::UnsupportedField {
            message: msg.name,
            field: field.to_string(),
            path: self.path.clone(),
        }
    }
}

/// The JSON of an apimachinery value type; `None` when Go leaves it out (a zero time).
fn special(ty: Ty, bytes: &[u8]) -> Result<Option<Value>, String> {
    match ty {
        Ty::Time => Ok(values::timestamp(bytes, Precision::Seconds)?.map(Value::String)),
        Ty::MicroTime => Ok(values::timestamp(bytes, Precision::Micros)?.map(Value::String)),
        Ty::Quantity => values::quantity(bytes).map(Some),
        Ty::IntOrString => values::int_or_string(bytes).map(Some),
        _ => values::fields_v1(bytes).map(Some),
    }
}

/// Set a scalar, honouring Go's omitempty for zero values. A zero that is omitted also clears
/// an earlier occurrence of the field (the last occurrence wins).
fn put(out: &mut Map<String, Value>, key: &str, zero: Zero, is_zero: bool, value: Value) {
    if is_zero && zero == Zero::Omit {
        out.remove(key);
    } else {
        out.insert(key.to_string(), value);
    }
}
