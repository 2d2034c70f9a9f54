//! Admission for `networking.k8s.io/v1` Ingress and IngressClass: the defaults kube-apiserver
//! fills in and the rules users hit (path types, absolute paths, one backend of the right
//! shape, the class's controller), with upstream's messages. Endpoints and EndpointSlices are
//! in `endpoints`; `validate` only dispatches here.

use serde_json::{Value, json};

use crate::{
    syntax::{dns1035_label, dns1123_subdomain},
    validate::{object_at, set_default},
};

/// What `spec.controller` must be at most, as upstream's `maxLenIngressClassController`.
const MAX_CONTROLLER_LEN: usize = 250;

/// The annotation that named an Ingress's class before `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The annotation marking the IngressClass used for Ingresses that name none.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The rules of Ingress, IngressClass, Endpoints and EndpointSlice objects (other kinds pass).
pub fn validate_kind(kind: &str, obj: &Value) -> Result<(), String> {
    match kind {
        "Ingress" => validate_ingress(obj),
        "IngressClass" => validate_ingress_class(obj),
        "Endpoints" => crate::endpoints::validate_endpoints(obj),
        "EndpointSlice" => crate::endpoints::validate_endpoint_slice(obj),
        _ => Ok(()),
    }
}

/// What an update of those kinds may not change.
pub fn validate_update(kind: &str, old: &Value, new: &Value) -> Result<(), String> {
    match kind {
        "IngressClass" => validate_ingress_class_update(old, new),
        "EndpointSlice" => crate::endpoints::validate_endpoint_slice_update(old, new),
        _ => Ok(()),
    }
}

/// Defaults of an IngressClass, as upstream's `SetDefaults_IngressClass`.
pub fn default_ingress_class(obj: &mut Value) {
    if let Some(parameters) = object_at(obj, &["spec", "parameters"]) {
        set_default(parameters, "scope", json!("Cluster"));
    }
}

/// An Ingress: a default backend or rules, each path typed and absolute, each backend one of
/// a service (name and port) or a resource.
pub fn validate_ingress(obj: &Value) -> Result<(), String> {
    let spec = &obj["spec"];
    if let Some(class) = spec["ingressClassName"].as_str() {
        dns1123_subdomain(class)
            .map_err(|e| format!("spec.ingressClassName: Invalid value: {class:?}: {e}"))?;
        if let Some(annotated) = obj["metadata"]["annotations"][CLASS_ANNOTATION].as_str() {
            return Err(format!(
                "annotations.{CLASS_ANNOTATION}: Invalid value: {annotated:?}: can not be set when the class field is also set"
            ));
        }
    }
    let rules = spec["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
    if spec["defaultBackend"].is_null() && rules.is_empty() {
        return Err(format!(
            "spec: Invalid value: {}: either `defaultBackend` or `rules` must be specified",
            if spec["rules"].is_null() { "null".into() } else { spec["rules"].to_string() }
        ));
    }
    if spec["defaultBackend"].is_object() {
        validate_backend(&spec["defaultBackend"], "spec.defaultBackend")?;
    }
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        if let Some(host) = rule["host"].as_str().filter(|h| !h.is_empty()) {
            validate_host(host, &format!("{at}.host"))?;
        }
        if !rule["http"].is_null() {
            validate_http(&rule["http"], &format!("{at}.http"))?;
        }
    }
    for (i, tls) in spec["tls"].as_array().into_iter().flatten().enumerate() {
        for (j, host) in tls["hosts"].as_array().into_iter().flatten().enumerate() {
            validate_host(host.as_str().unwrap_or(""), &format!("spec.tls[{i}].hosts[{j}]"))?;
        }
    }
    Ok(())
}

fn validate_http(http: &Value, at: &str) -> Result<(), String> {
    let paths = http["paths"].as_array().map(Vec::as_slice).unwrap_or_default();
    if paths.is_empty() {
        return Err(format!("{at}.paths: Required value"));
    }
    for (i, path) in paths.iter().enumerate() {
        let at = format!("{at}.paths[{i}]");
        validate_path(path, &at)?;
        validate_backend(&path["backend"], &format!("{at}.backend"))?;
    }
    Ok(())
}

/// `pathType` is required in v1; `Exact` and `Prefix` paths must be clean absolute paths.
fn validate_path(path: &Value, at: &str) -> Result<(), String> {
    let text = path["path"].as_str().unwrap_or("");
    match path["pathType"].as_str() {
        None => Err(format!("{at}.pathType: Required value: pathType must be specified")),
        Some("Exact" | "Prefix") => {
            if !text.starts_with('/') {
                return Err(format!("{at}.path: Invalid value: {text:?}: must be an absolute path"));
            }
            for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                if text.contains(bad) {
                    return Err(format!("{at}.path: Invalid value: {text:?}: must not contain '{bad}'"));
                }
            }
            for bad in ["/..", "/."] {
                if text.ends_with(bad) {
                    return Err(format!("{at}.path: Invalid value: {text:?}: cannot end with '{bad}'"));
                }
            }
            Ok(())
        }
        Some("ImplementationSpecific") if !text.is_empty() && !text.starts_with('/') => {
            Err(format!("{at}.path: Invalid value: {text:?}: must be an absolute path"))
        }
        Some("ImplementationSpecific") => Ok(()),
        Some(other) => Err(format!(
            "{at}.pathType: Unsupported value: {other:?}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
        )),
    }
}

/// Exactly one of `service` (a DNS-1035 name and a port name or number) and `resource`.
fn validate_backend(backend: &Value, at: &str) -> Result<(), String> {
    let (service, resource) = (&backend["service"], &backend["resource"]);
    match (service.is_object(), resource.is_object()) {
        (true, true) => {
            Err(format!("{at}: Invalid value: \"\": cannot set both resource and service backends"))
        }
        (false, false) => Err(format!("{at}: Invalid value: \"\": resource or service backend is required")),
        (false, true) => {
            for field in ["kind", "name"] {
                if resource[field].as_str().is_none_or(str::is_empty) {
                    return Err(format!("{at}.resource.{field}: Required value"));
                }
            }
            Ok(())
        }
        (true, false) => {
            let name = service["name"].as_str().unwrap_or("");
            if name.is_empty() {
                return Err(format!("{at}.service.name: Required value"));
            }
            dns1035_label(name).map_err(|e| format!("{at}.service.name: Invalid value: {name:?}: {e}"))?;
            let port = &service["port"];
            let port_name = port["name"].as_str().unwrap_or("");
            let number = port["number"].as_i64().unwrap_or(0);
            match (port_name.is_empty(), number) {
                (false, n) if n != 0 => {
                    Err(format!("{at}: Invalid value: \"\": cannot set both port name & port number"))
                }
                (false, _) => port_name_problem(port_name).map_or(Ok(()), |e| {
                    Err(format!("{at}.service.port.name: Invalid value: {port_name:?}: {e}"))
                }),
                (true, 0) => Err(format!("{at}: Required value: port name or number is required")),
                (true, n) if !(1..=65535).contains(&n) => Err(format!(
                    "{at}.service.port.number: Invalid value: {n}: must be between 1 and 65535, inclusive"
                )),
                (true, _) => Ok(()),
            }
        }
    }
}

/// Upstream's `IsValidPortName` messages: the first rule a port name breaks.
pub fn port_name_problem(name: &str) -> Option<&'static str> {
    if name.len() > 15 {
        Some("must be no more than 15 characters")
    } else if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        Some("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    } else if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        Some("must contain at least one letter (a-z)")
    } else if name.contains("--") {
        Some("must not contain consecutive hyphens")
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("must not begin or end with a hyphen")
    } else {
        None
    }
}

/// A rule or TLS host: a DNS name (not an IP), optionally `*.` and a DNS name.
fn validate_host(host: &str, at: &str) -> Result<(), String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{at}: Invalid value: {host:?}: must be a DNS name, not an IP address"));
    }
    match host.strip_prefix("*.") {
        Some(rest) if dns1123_subdomain(rest).is_ok() => Ok(()),
        Some(_) => Err(format!(
            "{at}: Invalid value: {host:?}: a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )),
        None => dns1123_subdomain(host).map_err(|e| format!("{at}: Invalid value: {host:?}: {e}")),
    }
}

/// An IngressClass: `spec.controller` a domain-prefixed path; parameters well formed.
pub fn validate_ingress_class(obj: &Value) -> Result<(), String> {
    let spec = &obj["spec"];
    let controller = spec["controller"].as_str().unwrap_or("");
    if controller.is_empty() {
        return Err("spec.controller: Required value".into());
    }
    if controller.len() > MAX_CONTROLLER_LEN {
        return Err(format!("spec.controller: Too long: may not be more than {MAX_CONTROLLER_LEN} bytes"));
    }
    let domain_prefixed =
        controller.split_once('/').is_some_and(|(domain, _)| dns1123_subdomain(domain).is_ok());
    if !domain_prefixed {
        return Err(format!(
            "spec.controller: Invalid value: {controller:?}: must be a domain-prefixed path (such as \"acme.io/foo\")"
        ));
    }
    let parameters = &spec["parameters"];
    if !parameters.is_object() {
        return Ok(());
    }
    for field in ["kind", "name"] {
        if parameters[field].as_str().is_none_or(str::is_empty) {
            return Err(format!("spec.parameters.{field}: Required value"));
        }
    }
    let namespace = parameters["namespace"].as_str().filter(|n| !n.is_empty());
    match (parameters["scope"].as_str(), namespace) {
        (Some("Namespace"), None) => {
            Err("spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'".into())
        }
        (Some("Cluster"), Some(ns)) => Err(format!(
            "spec.parameters.namespace: Invalid value: {ns:?}: `parameters.scope` is set to 'Cluster'"
        )),
        (Some("Namespace" | "Cluster") | None, _) => Ok(()),
        (Some(other), _) => Err(format!(
            "spec.parameters.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespace\""
        )),
    }
}

/// `spec.controller` of an IngressClass never changes.
pub fn validate_ingress_class_update(old: &Value, new: &Value) -> Result<(), String> {
    let (was, is) = (&old["spec"]["controller"], &new["spec"]["controller"]);
    if was != is {
        return Err(format!("spec.controller: Invalid value: {is}: field is immutable"));
    }
    Ok(())
}

/// Whether `ingress` is for the IngressClass controller `controller`: by its class (field, else
/// the old annotation), or, naming none, by the default class (the newest, when several claim
/// it, as upstream). The node proxies serve exactly the Ingresses the status controller marks.
pub fn ingress_is_for<'a>(
    ingress: &Value,
    classes: impl IntoIterator<Item = &'a Value>,
    controller: &str,
) -> bool {
    let named = ingress["spec"]["ingressClassName"]
        .as_str()
        .or_else(|| ingress["metadata"]["annotations"][CLASS_ANNOTATION].as_str())
        .filter(|c| !c.is_empty());
    let mut classes = classes.into_iter();
    let class = match named {
        Some(name) => classes.find(|c| crate::meta::name(c) == name),
        None => classes
            .filter(|c| is_default_class(c))
            .max_by_key(|c| c["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string()),
    };
    !crate::meta::is_terminating(ingress) && class.is_some_and(|c| c["spec"]["controller"] == controller)
}

/// Whether an IngressClass is marked as the default one.
pub fn is_default_class(class: &Value) -> bool {
    class["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(paths: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"rules": [{"host": "example.com", "http": {"paths": paths}}]}})
    }

    fn svc_backend(port: Value) -> Value {
        json!({"service": {"name": "web", "port": port}})
    }

    #[test]
    fn paths_need_a_type_and_an_absolute_path() {
        let untyped = ingress(json!([{"path": "/", "backend": svc_backend(json!({"number": 80}))}]));
        assert_eq!(
            validate_ingress(&untyped),
            Err("spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified".into())
        );
        let relative = ingress(
            json!([{"path": "a", "pathType": "Prefix", "backend": svc_backend(json!({"number": 80}))}]),
        );
        assert_eq!(
            validate_ingress(&relative),
            Err("spec.rules[0].http.paths[0].path: Invalid value: \"a\": must be an absolute path".into())
        );
        let odd = ingress(
            json!([{"path": "/a", "pathType": "Regex", "backend": svc_backend(json!({"number": 80}))}]),
        );
        assert!(validate_ingress(&odd).is_err_and(|e| e.contains("Unsupported value: \"Regex\"")));
        let dotted = ingress(
            json!([{"path": "/a/../b", "pathType": "Exact", "backend": svc_backend(json!({"number": 80}))}]),
        );
        assert!(validate_ingress(&dotted).is_err_and(|e| e.contains("must not contain '/../'")));
        let good = ingress(json!([
            {"path": "/a", "pathType": "Prefix", "backend": svc_backend(json!({"number": 80}))},
            {"pathType": "ImplementationSpecific", "backend": svc_backend(json!({"name": "http"}))},
            {"path": "/r", "pathType": "Exact", "backend": {"resource": {"apiGroup": "x.io", "kind": "Bucket", "name": "b"}}},
        ]));
        assert_eq!(validate_ingress(&good), Ok(()));
    }

    #[test]
    fn backends_name_a_service_port_or_a_resource() {
        let path = |backend: Value| ingress(json!([{"path": "/", "pathType": "Prefix", "backend": backend}]));
        let at = "spec.rules[0].http.paths[0].backend";
        assert_eq!(
            validate_ingress(&path(json!({}))),
            Err(format!("{at}: Invalid value: \"\": resource or service backend is required"))
        );
        assert_eq!(
            validate_ingress(&path(svc_backend(json!({})))),
            Err(format!("{at}: Required value: port name or number is required"))
        );
        assert_eq!(
            validate_ingress(&path(svc_backend(json!({"name": "http", "number": 80})))),
            Err(format!("{at}: Invalid value: \"\": cannot set both port name & port number"))
        );
        assert!(
            validate_ingress(&path(svc_backend(json!({"number": 70000}))))
                .is_err_and(|e| e.contains("must be between 1 and 65535"))
        );
        assert!(
            validate_ingress(&path(svc_backend(json!({"name": "HTTP"}))))
                .is_err_and(|e| e.contains("alpha-numeric"))
        );
        let both = json!({"service": {"name": "web", "port": {"number": 80}}, "resource": {"kind": "K", "name": "n"}});
        assert!(validate_ingress(&path(both)).is_err_and(|e| e.contains("cannot set both resource")));
        assert_eq!(
            validate_ingress(&path(json!({"service": {"port": {"number": 80}}}))),
            Err(format!("{at}.service.name: Required value"))
        );
    }

    #[test]
    fn an_ingress_needs_rules_or_a_default_backend_and_valid_hosts() {
        let empty = json!({"metadata": {"name": "x"}, "spec": {}});
        assert!(validate_ingress(&empty).is_err_and(|e| e.contains("either `defaultBackend` or `rules`")));
        let default_only =
            json!({"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}});
        assert_eq!(validate_ingress(&default_only), Ok(()));
        let mut ip_host = ingress(
            json!([{"path": "/", "pathType": "Prefix", "backend": svc_backend(json!({"number": 80}))}]),
        );
        ip_host["spec"]["rules"][0]["host"] = json!("10.0.0.1");
        assert!(validate_ingress(&ip_host).is_err_and(|e| e.contains("not an IP address")));
        ip_host["spec"]["rules"][0]["host"] = json!("*.example.com");
        assert_eq!(validate_ingress(&ip_host), Ok(()));
        ip_host["spec"]["tls"] = json!([{"hosts": ["Bad_Host"], "secretName": "s"}]);
        assert!(validate_ingress(&ip_host).is_err_and(|e| e.starts_with("spec.tls[0].hosts[0]")));
    }

    #[test]
    fn a_class_needs_a_domain_prefixed_controller_that_never_changes() {
        let class = |controller: &str| json!({"metadata": {"name": "c"}, "spec": {"controller": controller}});
        assert_eq!(validate_ingress_class(&class("")), Err("spec.controller: Required value".into()));
        assert!(validate_ingress_class(&class("nginx")).is_err_and(|e| e.contains("domain-prefixed path")));
        assert_eq!(validate_ingress_class(&class("wasmkube.dev/ingress")), Ok(()));
        assert!(
            validate_ingress_class_update(&class("a.io/x"), &class("b.io/x"))
                .is_err_and(|e| e.contains("field is immutable"))
        );
        let mut with_params = class("a.io/x");
        with_params["spec"]["parameters"] = json!({"kind": "Config", "name": "p"});
        default_ingress_class(&mut with_params);
        assert_eq!(with_params["spec"]["parameters"]["scope"], "Cluster");
        with_params["spec"]["parameters"]["scope"] = json!("Namespace");
        assert!(validate_ingress_class(&with_params).is_err_and(|e| e.contains("namespace: Required value")));
    }
}
