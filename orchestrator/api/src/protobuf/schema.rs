//! The shape of the messages we decode: for each protobuf field number, the JSON name and how
//! the value maps to JSON. The tables (in `tables/`) are written by hand from protocol facts
//! (field numbers and types of the upstream `generated.proto` files) and from the Go types'
//! JSON tags, because the JSON form of a Go object is what our create/update path expects:
//!
//! - Go always writes non-pointer fields to protobuf, even when zero, but its JSON encoder
//!   drops zero values of `omitempty` fields. So a scalar is either [`Zero::Omit`] (omitempty)
//!   or [`Zero::Keep`] (a pointer, present on the wire only when set, like `replicas: 0`; or a
//!   field without omitempty, like `containerPort`).
//! - Messages, lists and maps are written to JSON when present on the wire (Go writes empty
//!   non-pointer structs as `{}`, which is harmless).
//! - `Inline` is a Go embedded struct (`json:",inline"`): its fields land in the parent object.

/// One protobuf message type.
#[derive(Debug)]
pub struct Message {
    /// The upstream message name, for error messages.
    pub name: &'static str,
    /// Its fields, in any order.
    pub fields: &'static [Field],
}

impl Message {
    /// The field with this number, if we know it.
    pub fn field(&self, number: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    /// Protobuf field number.
    pub number: u32,
    /// JSON field name (unused for [`Ty::Inline`]).
    pub json: &'static str,
    /// How its value is decoded.
    pub ty: Ty,
}

/// Whether the JSON form keeps a scalar's zero value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// `omitempty` on a non-pointer field: zero is left out of the JSON.
    Omit,
    /// A pointer (set on the wire means set) or a field without `omitempty`: zero is written.
    Keep,
}

/// How a field's value maps to JSON.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A string.
    Str(Zero),
    /// A bool.
    Bool(Zero),
    /// An int32 (varint, truncated to 32 bits as Go does).
    I32(Zero),
    /// An int64.
    I64(Zero),
    /// A nested message, as a JSON object.
    Msg(&'static Message),
    /// A Go embedded struct: its fields are written into the enclosing object.
    Inline(&'static Message),
    /// A repeated field, as a JSON array.
    List(Elem),
    /// A `map<string, V>`, as a JSON object.
    Map(MapValue),
    /// `metav1.Time`: RFC 3339 with seconds, left out when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds, left out when zero.
    MicroTime,
    /// `resource.Quantity`: its canonical string.
    Quantity,
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `metav1.FieldsV1`: raw JSON bytes, embedded as JSON.
    FieldsV1,
    /// A field upstream has that we do not decode (legacy volume plugins): named in the
    /// error when present.
    Unsupported,
}

/// The element type of a repeated field.
#[derive(Debug, Clone, Copy)]
pub enum Elem {
    /// Strings.
    Str,
    /// int32s (packed or not).
    I32,
    /// int64s (packed or not).
    I64,
    /// Messages.
    Msg(&'static Message),
}

/// The value type of a `map<string, V>` field.
#[derive(Debug, Clone, Copy)]
pub enum MapValue {
    /// Strings.
    Str,
    /// Bytes, written as base64 as Go's JSON encoder does for `[]byte`.
    Bytes,
    /// Quantities.
    Quantity,
}

/// A field entry; keeps the tables to one line per field.
pub const fn f(number: u32, json: &'static str, ty: Ty) -> Field {
    Field { number, json, ty }
}

/// A string with `omitempty`.
pub const STR: Ty = Ty::Str(Zero::Omit);
/// A `*string`, or a string without `omitempty`.
pub const STR_KEEP: Ty = Ty::Str(Zero::Keep);
/// A bool with `omitempty`.
pub const BOOL: Ty = Ty::Bool(Zero::Omit);
/// A `*bool`, or a bool without `omitempty`.
pub const BOOL_KEEP: Ty = Ty::Bool(Zero::Keep);
/// An int32 with `omitempty`.
pub const I32: Ty = Ty::I32(Zero::Omit);
/// A `*int32`, or an int32 without `omitempty`.
pub const I32_KEEP: Ty = Ty::I32(Zero::Keep);
/// An int64 with `omitempty`.
pub const I64: Ty = Ty::I64(Zero::Omit);
/// A `*int64`, or an int64 without `omitempty`.
pub const I64_KEEP: Ty = Ty::I64(Zero::Keep);
/// `[]string`.
pub const STRS: Ty = Ty::List(Elem::Str);
/// `[]int32`.
pub const I32S: Ty = Ty::List(Elem::I32);
/// `[]int64`.
pub const I64S: Ty = Ty::List(Elem::I64);
/// `map[string]string`.
pub const STR_MAP: Ty = Ty::Map(MapValue::Str);
/// `map[string][]byte`.
pub const BYTES_MAP: Ty = Ty::Map(MapValue::Bytes);
/// `map[string]resource.Quantity` (a `ResourceList`).
pub const QTY_MAP: Ty = Ty::Map(MapValue::Quantity);
/// `metav1.Time`.
pub const TIME: Ty = Ty::Time;
/// `metav1.MicroTime`.
pub const MICROTIME: Ty = Ty::MicroTime;
/// `resource.Quantity`.
pub const QTY: Ty = Ty::Quantity;
/// `intstr.IntOrString`.
pub const INTSTR: Ty = Ty::IntOrString;

/// A nested message.
pub const fn msg(m: &'static Message) -> Ty {
    Ty::Msg(m)
}

/// A list of messages.
pub const fn list(m: &'static Message) -> Ty {
    Ty::List(Elem::Msg(m))
}

/// An embedded (inlined) struct.
pub const fn inline(m: &'static Message) -> Ty {
    Ty::Inline(m)
}
