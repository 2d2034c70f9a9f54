//! IPv4 CIDR parsing shared by the control plane's node IPAM and the agents' pod IP pools.

use std::{net::Ipv4Addr, ops::RangeInclusive};

/// Parse `a.b.c.d/n` with `n` in `prefixes`; returns the network's first address (host bits
/// cleared) and the prefix length.
pub fn parse(cidr: &str, prefixes: RangeInclusive<u32>) -> Result<(u32, u32), String> {
    let (addr, bits) =
        cidr.split_once('/').ok_or_else(|| format!("{cidr:?} is not a CIDR (like 127.64.0.0/16)"))?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{cidr:?}: {addr:?} is not an IPv4 address"))?;
    let bits: u32 = bits.parse().ok().filter(|b| prefixes.contains(b)).ok_or_else(|| {
        format!("{cidr:?}: the prefix must be /{} to /{}", prefixes.start(), prefixes.end())
    })?;
    let size = 1u64 << (32 - bits);
    Ok(((u64::from(u32::from(addr)) & !(size - 1)) as u32, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_clears_host_bits() {
        assert_eq!(parse("127.64.9.9/16", 8..=30), Ok((u32::from(Ipv4Addr::new(127, 64, 0, 0)), 16)));
        assert!(parse("127.64.0.0/31", 8..=30).is_err());
        assert!(parse("nope", 8..=30).is_err());
        assert!(parse("300.1.1.1/16", 8..=30).is_err());
    }
}
