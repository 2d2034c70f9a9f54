//! The Wasm binary header: the `\0asm` magic, and whether a binary is a core module (WASI
//! preview 1) or a component (WASI 0.2), which decides the `os` of a pushed artifact.

/// The two kinds of Wasm binary, told apart by the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WasmKind {
    /// A core module (WASI preview 1): version 1, layer 0.
    Module,
    /// A component (WASI 0.2): layer 1.
    Component,
}

impl WasmKind {
    /// The `os` the CNCF artifact config records for this kind.
    pub(crate) fn os(self) -> &'static str {
        match self {
            WasmKind::Module => "wasip1",
            WasmKind::Component => "wasip2",
        }
    }
}

/// Whether `bytes` starts with the Wasm magic `\0asm`. Pulled content is only checked this far:
/// the runtime, not the fetcher, judges versions and validity.
pub(crate) fn has_wasm_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

/// Reads the 8-byte Wasm header: `\0asm`, then a 16-bit version and a 16-bit layer (0 = core
/// module, 1 = component).
pub(crate) fn wasm_kind(bytes: &[u8]) -> Result<WasmKind, String> {
    let Some(header) = bytes.get(..8) else {
        return Err(format!("only {} bytes, a Wasm header needs 8", bytes.len()));
    };
    if &header[..4] != b"\0asm" {
        return Err(format!("starts with {:02x?}, not the \\0asm magic", &header[..4]));
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    let layer = u16::from_le_bytes([header[6], header[7]]);
    match (layer, version) {
        (0, 1) => Ok(WasmKind::Module),
        (1, _) => Ok(WasmKind::Component),
        _ => Err(format!("unknown Wasm binary version {version} (layer {layer})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_header_kinds() {
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0"), Ok(WasmKind::Module));
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0rest"), Ok(WasmKind::Component));
        assert!(wasm_kind(b"\0asm").is_err());
        assert!(wasm_kind(b"\x7fELF\x02\x01\x01\0").is_err());
        assert!(wasm_kind(b"\0asm\x02\0\0\0").is_err());
        assert_eq!(WasmKind::Component.os(), "wasip2");
        assert_eq!(WasmKind::Module.os(), "wasip1");
    }
}
