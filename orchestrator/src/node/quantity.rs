//! Kubernetes resource quantities (`128Mi`, `1G`, `500m`, `0.5`, `1e3`) as the numbers the
//! runtimes take: bytes for memory, millicores for CPU. A quantity that does not parse is
//! treated as absent (admission is where a bad quantity should be refused, not the node).

use serde_json::Value;

/// `resources.limits` of a container spec.
pub(super) fn limits(container: &Value) -> wasm_runtime::ResourceLimits {
    let limits = &container["resources"]["limits"];
    wasm_runtime::ResourceLimits {
        memory_bytes: limits["memory"].as_str().and_then(parse).map(|v| v.ceil() as u64),
        cpu_millis: quantity(&limits["cpu"]).map(|v| (v * 1000.0).ceil() as u64),
    }
}

/// A quantity given as a string or (as YAML allows for `cpu: 1`) a number.
fn quantity(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => parse(s),
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite() && *v >= 0.0),
        _ => None,
    }
}

/// The quantity's value in base units (bytes, cores).
pub(super) fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => 10f64.powi(exponent.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(number * factor).filter(|v| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse("128Mi"), Some(134_217_728.0));
        assert_eq!(parse("1G"), Some(1e9));
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("lots"), None);
        assert_eq!(parse("-1"), None);
        let container = json!({"resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}});
        let limits = limits(&container);
        assert_eq!((limits.memory_bytes, limits.cpu_millis), (Some(64 << 20), Some(250)));
        let numeric = json!({"resources": {"limits": {"cpu": 1}}});
        assert_eq!(super::limits(&numeric).cpu_millis, Some(1000));
        assert_eq!(super::limits(&json!({})), wasm_runtime::ResourceLimits::default());
    }
}
