//! Image references: parsing with Docker's defaults (`docker.io/library/…`, tag `latest`), the
//! "plain HTTP for loopback registries" rule, and the file name a reference gets in the cache.
//!
//! Parsing is `oci_client::Reference` (Docker's own grammar, ported), plus bracketed IPv6
//! registry hosts such as `[::1]:5000`, which that grammar does not accept but Docker does.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use oci_client::Reference;
use sha2::{Digest as _, Sha256};

use crate::FetchError;

/// Parses `input` with Docker's defaults. `whole()` of the result is the normalized form used
/// everywhere else (cache keys, `PulledImage::reference`).
pub(crate) fn parse(input: &str) -> Result<Reference, FetchError> {
    let invalid = |reason: String| FetchError::InvalidReference { reference: input.to_string(), reason };
    let trimmed = input.trim();
    if trimmed.starts_with('[') {
        return parse_ipv6_registry(trimmed).map_err(invalid);
    }
    let parsed = Reference::try_from(trimmed).map_err(|e| invalid(e.to_string()))?;
    // The grammar lets an upper-case first component through as a "domain", which
    // `split_domain` then folds into a docker.io repository; Docker rejects that name.
    if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid("repository name must be lowercase".into()));
    }
    Ok(parsed)
}

/// `[::1]:5000/repo:tag`: validate the bracketed host ourselves, let `Reference` parse the rest
/// under a stand-in registry, then put the real registry back.
fn parse_ipv6_registry(input: &str) -> Result<Reference, String> {
    let (registry, rest) = input
        .split_once('/')
        .ok_or_else(|| "a bracketed IPv6 registry must be followed by /<repository>".to_string())?;
    let (host, port) = registry
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .ok_or_else(|| format!("registry {registry:?} has an unclosed '['"))?;
    host.parse::<Ipv6Addr>().map_err(|e| format!("registry host [{host}] is not an IPv6 address: {e}"))?;
    if !(port.is_empty() || port.strip_prefix(':').is_some_and(is_port)) {
        return Err(format!("registry {registry:?} has an invalid port"));
    }
    let placeholder =
        Reference::try_from(format!("placeholder.invalid/{rest}")).map_err(|e| e.to_string())?;
    let repository = placeholder.repository().to_string();
    let registry = registry.to_string();
    Ok(match (placeholder.tag(), placeholder.digest()) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
        (tag, None) => Reference::with_tag(registry, repository, tag.unwrap_or("latest").to_string()),
    })
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `registry` (host with optional port) is reached over plain HTTP. Like Docker, only
/// loopback registries are: `localhost`, `127.0.0.0/8`, `[::1]`. Everything else uses HTTPS.
pub(crate) fn uses_plain_http(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, _)) => return host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()),
            None => return false,
        }
    } else {
        registry.split_once(':').map_or(registry, |(host, _)| host)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// A file name for a normalized reference: reversible percent-escaping of everything but
/// `[A-Za-z0-9._-]`, so distinct references never collide and nothing can climb out of `refs/`.
/// Names past a safe file-name length are hashed instead (the record inside still holds the
/// full reference, and lookups compare it).
pub(crate) fn file_name(normalized: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::with_capacity(normalized.len() + 16);
    for b in normalized.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}"); // writing to a String cannot fail
        }
    }
    // A leading dot would make "." or ".." or hidden files; references never start with one
    // (the grammar forbids it), but the escaping must not rely on that.
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    if out.len() > MAX {
        return format!("sha256-{}", hex::encode(Sha256::digest(normalized.as_bytes())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults_apply() {
        assert_eq!(
            parse("busybox").map(|r| r.whole()).ok().as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(
            parse("ghcr.io/org/app").map(|r| r.whole()).ok().as_deref(),
            Some("ghcr.io/org/app:latest")
        );
        assert_eq!(
            parse("127.0.0.1:5000/hello-http:1").map(|r| r.whole()).ok().as_deref(),
            Some("127.0.0.1:5000/hello-http:1")
        );
        assert_eq!(parse("localhost/app").map(|r| r.whole()).ok().as_deref(), Some("localhost/app:latest"));
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("localhost:5000/app@{digest}")).ok();
        assert_eq!(r.as_ref().and_then(|r| r.digest()), Some(digest.as_str()));
        assert_eq!(r.as_ref().and_then(|r| r.tag()), None);
    }

    #[test]
    fn ipv6_registries_parse() {
        let r = parse("[::1]:5000/team/app:v2").ok();
        assert_eq!(r.as_ref().map(|r| r.registry()), Some("[::1]:5000"));
        assert_eq!(r.as_ref().map(|r| r.repository()), Some("team/app"));
        assert_eq!(r.as_ref().map(|r| r.whole()).as_deref(), Some("[::1]:5000/team/app:v2"));
        assert_eq!(parse("[::1]/app").map(|r| r.whole()).ok().as_deref(), Some("[::1]/app:latest"));
        assert!(parse("[::1:5000/app").is_err());
        assert!(parse("[zz]:5000/app").is_err());
        assert!(parse("[::1]:50a/app").is_err());
    }

    #[test]
    fn bad_references_are_invalid_reference_errors() {
        for bad in ["", "UPPER/case", "app:", "a b", "app@sha256:abc"] {
            assert!(
                matches!(parse(bad), Err(FetchError::InvalidReference { .. })),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn only_loopback_registries_use_plain_http() {
        for plain in ["127.0.0.1:5000", "127.8.9.10", "localhost", "LOCALHOST:80", "[::1]:5000", "[::1]"] {
            assert!(uses_plain_http(plain), "{plain}");
        }
        for tls in [
            "docker.io",
            "ghcr.io",
            "10.0.0.1:5000",
            "128.0.0.1",
            "[::2]:5000",
            "localhost.example.com",
            "[::1",
        ] {
            assert!(!uses_plain_http(tls), "{tls}");
        }
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a = file_name("127.0.0.1:5000/a/b:1");
        assert_eq!(a, "127.0.0.1%3A5000%2Fa%2Fb%3A1");
        assert_ne!(file_name("a/b:c"), file_name("a:b/c"));
        assert!(!file_name("x").contains('/'));
        let long = format!("example.com/{}:1", "a".repeat(300));
        let name = file_name(&long);
        assert!(name.starts_with("sha256-") && name.len() < 100);
    }
}
