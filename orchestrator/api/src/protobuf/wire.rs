//! The protobuf wire format as Kubernetes uses it: varints, length-delimited fields and field
//! keys. Every read is bounds-checked, so truncated varints, lengths past the end of the data
//! and other hostile bytes come back as errors, never as panics or huge allocations (nothing
//! here allocates: length-delimited fields are slices of the input).

/// How a field's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    /// 0: a base-128 varint (ints, bools).
    Varint,
    /// 1: eight little-endian bytes (double, fixed64); Kubernetes types use none.
    Fixed64,
    /// 2: a varint length, then that many bytes (strings, bytes, messages, packed lists).
    Len,
    /// 5: four little-endian bytes (float, fixed32); Kubernetes types use none.
    Fixed32,
}

impl WireType {
    /// The number used on the wire, for error messages.
    pub fn number(self) -> u8 {
        match self {
            Self::Varint => 0,
            Self::Fixed64 => 1,
            Self::Len => 2,
            Self::Fixed32 => 5,
        }
    }
}

/// Malformed wire data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The data ended inside a varint.
    #[error("the data ends inside a varint")]
    TruncatedVarint,
    /// A varint longer than 64 bits.
    #[error("a varint is longer than 64 bits")]
    VarintOverflow,
    /// A length prefix larger than what is left.
    #[error("a length of {len} bytes runs past the end of the data ({left} bytes left)")]
    LengthOverrun {
        /// The declared length.
        len: u64,
        /// Bytes actually left.
        left: usize,
    },
    /// Field number 0 or above the protobuf maximum.
    #[error("field number {0} is out of range")]
    BadFieldNumber(u64),
    /// Wire types 3 and 4 (groups) or 6 and 7 (undefined).
    #[error("wire type {0} is not used by Kubernetes")]
    BadWireType(u8),
}

/// Largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// A cursor over one message's bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Read `buf` from the start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// True once every byte was consumed.
    pub fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// One varint (at most ten bytes, the last carrying at most one bit).
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(WireError::TruncatedVarint)?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(WireError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::VarintOverflow)
    }

    /// A field key: the field number and its wire type.
    pub fn key(&mut self) -> Result<(u32, WireType), WireError> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(WireError::BadFieldNumber(number));
        }
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            // Only 3, 4, 6 and 7 are left; the value fits in a u8.
            other => return Err(WireError::BadWireType(other as u8)),
        };
        // The range check above keeps the number within u32.
        Ok((number as u32, wire_type))
    }

    /// The payload of a length-delimited field, borrowed from the input.
    pub fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let left = self.buf.len() - self.pos.min(self.buf.len());
        if len > left as u64 {
            return Err(WireError::LengthOverrun { len, left });
        }
        // `len <= left`, so it fits in usize and the slice is in bounds.
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.buf[start..self.pos])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(Reader::new(&[0x00]).varint(), Ok(0));
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
        // -1 as an int32 is sent as ten bytes, sign-extended to 64 bits.
        assert_eq!(Reader::new(&max).varint().map(|v| v as i32), Ok(-1));
    }

    #[test]
    fn hostile_varints() {
        assert_eq!(Reader::new(&[]).varint(), Err(WireError::TruncatedVarint));
        assert_eq!(Reader::new(&[0x80, 0x80]).varint(), Err(WireError::TruncatedVarint));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader::new(&too_big).varint(), Err(WireError::VarintOverflow));
        let too_long = [0x80; 11];
        assert_eq!(Reader::new(&too_long).varint(), Err(WireError::VarintOverflow));
    }

    #[test]
    fn keys() {
        assert_eq!(Reader::new(&[0x0a]).key(), Ok((1, WireType::Len)));
        assert_eq!(Reader::new(&[0x38]).key(), Ok((7, WireType::Varint)));
        assert_eq!(Reader::new(&[0x02]).key(), Err(WireError::BadFieldNumber(0)));
        assert_eq!(Reader::new(&[0x0b]).key(), Err(WireError::BadWireType(3)));
        assert_eq!(Reader::new(&[0x0e]).key(), Err(WireError::BadWireType(6)));
        let huge = [0xf8, 0xff, 0xff, 0xff, 0x1f];
        assert!(matches!(Reader::new(&huge).key(), Err(WireError::BadFieldNumber(_))));
    }

    #[test]
    fn lengths() {
        let mut r = Reader::new(&[0x03, b'a', b'b', b'c', 0x00]);
        assert_eq!(r.len_delimited(), Ok(&b"abc"[..]));
        assert_eq!(r.len_delimited(), Ok(&b""[..]));
        assert!(r.is_done());
        assert_eq!(
            Reader::new(&[0x05, b'a']).len_delimited(),
            Err(WireError::LengthOverrun { len: 5, left: 1 })
        );
        // A length near u64::MAX must not overflow or allocate.
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(Reader::new(&huge).len_delimited(), Err(WireError::LengthOverrun { .. })));
    }
}
