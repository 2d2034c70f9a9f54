//! The name syntaxes Kubernetes validates, with upstream's messages: DNS-1123 labels and
//! subdomains, DNS-1035 labels (Service names), qualified names (label and annotation keys),
//! label values, and the 256 KiB annotation budget.

use serde_json::Value;

/// Total size of all annotation keys and values on one object.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A DNS-1123 label: at most 63 lowercase alphanumerics or '-', alphanumeric at both ends.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| is_alnum(*c) || *c == b'-')
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1]);
    if ok {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc'), at most 63 characters".into())
    }
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| dns1123_label(l).is_ok()) {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com'), at most 253 characters".into())
    }
}

/// A DNS-1035 label (Service names): like a DNS-1123 label, but starting with a letter.
pub fn dns1035_label(s: &str) -> Result<(), String> {
    if dns1123_label(s).is_ok() && s.as_bytes()[0].is_ascii_lowercase() {
        Ok(())
    } else {
        Err("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123'), at most 63 characters".into())
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters (the name part of a
/// qualified name, and a non-empty label value).
fn name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A qualified name (label or annotation key): `[prefix/]name`, the prefix a DNS subdomain.
pub fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if dns1123_subdomain(p).is_err() {
            return Err(format!("prefix part {}", dns1123_subdomain(p).unwrap_err()));
        }
    }
    if name_part(name) {
        Ok(())
    } else {
        Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc'), at most 63 characters, with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into())
    }
}

/// A label value: empty, or a name part.
pub fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() || name_part(v) {
        Ok(())
    } else {
        Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345'), at most 63 characters".into())
    }
}

/// Check `metadata.labels` and `metadata.annotations`; the error names the field as upstream.
pub fn check_metadata(meta: &Value) -> Result<(), String> {
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            qualified_name(k).map_err(|e| format!("metadata.labels: Invalid value: {k:?}: {e}"))?;
            let v = v.as_str().unwrap_or("");
            label_value(v).map_err(|e| format!("metadata.labels: Invalid value: {v:?}: {e}"))?;
        }
    }
    if let Some(annotations) = meta["annotations"].as_object() {
        let mut total = 0usize;
        for (k, v) in annotations {
            qualified_name(k).map_err(|e| format!("metadata.annotations: Invalid value: {k:?}: {e}"))?;
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > MAX_ANNOTATIONS_BYTES {
            return Err(format!(
                "metadata.annotations: Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

/// The name rule of a kind: DNS labels for namespaces, DNS-1035 labels for services, DNS
/// subdomains for everything else.
pub fn check_object_name(kind: &str, name: &str) -> Result<(), String> {
    let result = match kind {
        "Namespace" => dns1123_label(name),
        "Service" => dns1035_label(name),
        _ => dns1123_subdomain(name),
    };
    result.map_err(|e| format!("metadata.name: Invalid value: {name:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_keys_and_values_follow_upstream_rules() {
        assert!(dns1123_label("web-1").is_ok());
        assert!(dns1123_label("a.b").is_err() && dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("a.b-c.d").is_ok() && dns1123_subdomain("a..b").is_err());
        assert!(dns1035_label("1web").is_err() && dns1035_label("web1").is_ok());
        for ok in ["app", "app.kubernetes.io/name", "a_b.c-d", "A"] {
            assert!(qualified_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/x", "-a", "a/", "Ex.com/a", "a/b/c", &"k".repeat(64)] {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
        assert!(label_value("").is_ok() && label_value("v1.2_x").is_ok());
        assert!(label_value("has space").is_err() && label_value("-x").is_err());
        assert!(check_object_name("Namespace", "team.a").is_err());
        assert!(check_object_name("ConfigMap", "team.a").is_ok());
    }

    #[test]
    fn metadata_checks_name_the_field() {
        let err = check_metadata(&json!({"labels": {"app": "bad value"}})).expect_err("bad");
        assert!(err.starts_with("metadata.labels: Invalid value: \"bad value\""), "{err}");
        let huge = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let err = check_metadata(&json!({"annotations": {"a": huge}})).expect_err("big");
        assert!(err.contains("Too long"), "{err}");
        assert!(
            check_metadata(
                &json!({"labels": {"app.kubernetes.io/name": "web"}, "annotations": {"x/y": "z"}})
            )
            .is_ok()
        );
    }
}
