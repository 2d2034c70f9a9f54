//! Admission for the workload kinds beside Deployments: apps/v1 DaemonSets and
//! ControllerRevisions, and the legacy v1 ReplicationController. The defaults kube-apiserver
//! fills in and the rules it validates, with upstream's messages; kept apart from `validate`
//! so that module stays about the generic path.

use serde_json::{Value, json};

use crate::validate::{default_pod_spec, object_at, set_default};

/// Defaults of a DaemonSet, as upstream's `SetDefaults_DaemonSet`.
pub fn default_daemonset(obj: &mut Value) {
    let Some(spec) = object_at(obj, &["spec"]) else { return };
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "updateStrategy", json!({}));
    if let Some(strategy) = object_at(spec, &["updateStrategy"]) {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy["type"] == "RollingUpdate" {
            set_default(strategy, "rollingUpdate", json!({}));
            if let Some(rolling) = object_at(strategy, &["rollingUpdate"]) {
                set_default(rolling, "maxUnavailable", json!(1));
                set_default(rolling, "maxSurge", json!(0));
            }
        }
    }
    if let Some(pod) = object_at(spec, &["template", "spec"]) {
        default_pod_spec(pod);
    }
}

/// A non-negative IntOrString: its value, or a percentage (at most 100) with `true`.
pub fn int_or_percent(v: &Value, at: &str) -> Result<(i64, bool), String> {
    let invalid = |why: &str| Err(format!("{at}: Invalid value: {v}: {why}"));
    match v {
        Value::Null => Ok((0, false)),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i >= 0 => Ok((i, false)),
            _ => invalid("must be greater than or equal to 0"),
        },
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if (0..=100).contains(&p) => Ok((p, true)),
            Some(p) if p < 0 => invalid("must be greater than or equal to 0"),
            Some(_) => invalid("must not be greater than 100%"),
            None => invalid("a valid percent string must be a numeric string followed by an ending '%'"),
        },
        _ => invalid("must be an integer or a percentage"),
    }
}

/// The DaemonSet rules beyond the selector/template match (checked with Deployments').
pub fn validate_daemonset(obj: &Value) -> Result<(), String> {
    let spec = &obj["spec"];
    for field in ["revisionHistoryLimit", "minReadySeconds"] {
        if spec[field].as_i64().is_some_and(|v| v < 0) {
            return Err(format!(
                "spec.{field}: Invalid value: {}: must be greater than or equal to 0",
                spec[field]
            ));
        }
    }
    let strategy = &spec["updateStrategy"];
    match strategy["type"].as_str() {
        Some("OnDelete") => Ok(()),
        Some("RollingUpdate") => {
            let at = "spec.updateStrategy.rollingUpdate";
            let rolling = &strategy["rollingUpdate"];
            let (unavailable, _) =
                int_or_percent(&rolling["maxUnavailable"], &format!("{at}.maxUnavailable"))?;
            let (surge, _) = int_or_percent(&rolling["maxSurge"], &format!("{at}.maxSurge"))?;
            match (unavailable, surge) {
                (0, 0) => Err(format!(
                    "{at}.maxUnavailable: Invalid value: {}: may not be 0 when `maxSurge` is 0",
                    rolling["maxUnavailable"]
                )),
                (u, s) if u != 0 && s != 0 => Err(format!(
                    "{at}.maxSurge: Invalid value: {}: may not be set when maxUnavailable is non-zero",
                    rolling["maxSurge"]
                )),
                _ => Ok(()),
            }
        }
        _ => Err(format!(
            "spec.updateStrategy.type: Unsupported value: {}: supported values: \"OnDelete\", \"RollingUpdate\"",
            strategy["type"]
        )),
    }
}

/// A DaemonSet's selector cannot change once created (apps/v1).
pub fn validate_daemonset_update(old: &Value, new: &Value) -> Result<(), String> {
    if old["spec"]["selector"] != new["spec"]["selector"] {
        return Err(format!("spec.selector: Invalid value: {}: field is immutable", new["spec"]["selector"]));
    }
    Ok(())
}

/// A ControllerRevision's `revision` is a non-negative number and its `data` is immutable.
pub fn validate_controller_revision(obj: &Value) -> Result<(), String> {
    match obj["revision"].as_i64() {
        Some(r) if r >= 0 => Ok(()),
        Some(r) => Err(format!("revision: Invalid value: {r}: must be greater than or equal to 0")),
        None => Err("revision: Required value".into()),
    }
}

/// See [`validate_controller_revision`].
pub fn validate_controller_revision_update(old: &Value, new: &Value) -> Result<(), String> {
    if old["data"] != new["data"] {
        return Err(format!("data: Invalid value: {}: field is immutable", new["data"]));
    }
    Ok(())
}

fn empty_map(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(|m| m.is_empty())
}

/// Defaults of a ReplicationController, as upstream's `SetDefaults_ReplicationController`: an
/// empty selector or empty labels are taken from the template's labels.
pub fn default_replication_controller(obj: &mut Value) {
    let Some(spec) = object_at(obj, &["spec"]) else { return };
    set_default(spec, "replicas", json!(1));
    let template_labels = spec["template"]["metadata"]["labels"].clone();
    if !empty_map(&template_labels) && template_labels.is_object() {
        if empty_map(&spec["selector"]) {
            spec["selector"] = template_labels.clone();
        }
        if empty_map(&obj["metadata"]["labels"])
            && let Some(meta) = obj["metadata"].as_object_mut()
        {
            meta.insert("labels".into(), template_labels);
        }
    }
    if let Some(pod) = object_at(obj, &["spec", "template", "spec"]) {
        default_pod_spec(pod);
    }
}

/// A ReplicationController needs a selector its template's labels match.
pub fn validate_replication_controller(obj: &Value) -> Result<(), String> {
    let spec = &obj["spec"];
    let Some(selector) = spec["selector"].as_object().filter(|s| !s.is_empty()) else {
        return Err("spec.selector: Required value".into());
    };
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err(format!(
            "spec.replicas: Invalid value: {}: must be greater than or equal to 0",
            spec["replicas"]
        ));
    }
    if !spec["template"].is_object() {
        return Err("spec.template: Required value".into());
    }
    let labels = &spec["template"]["metadata"]["labels"];
    if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        return Err(format!(
            "spec.template.metadata.labels: Invalid value: {labels}: selector does not match template labels"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemonset_defaults_roll_one_node_at_a_time() {
        let mut ds = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        default_daemonset(&mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(ds["spec"]["template"]["spec"]["restartPolicy"], "Always");
        let mut on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        default_daemonset(&mut on_delete);
        assert_eq!(on_delete["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        // Mistyped parts are left for the type check, never indexed into.
        for mut odd in [json!({"spec": "x"}), json!({"spec": {"updateStrategy": 3}})] {
            default_daemonset(&mut odd);
        }
    }

    #[test]
    fn daemonset_strategy_rules() {
        let with = |rolling: Value| json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}});
        assert!(validate_daemonset(&with(json!({"maxUnavailable": 1, "maxSurge": 0}))).is_ok());
        assert!(validate_daemonset(&with(json!({"maxUnavailable": 0, "maxSurge": "10%"}))).is_ok());
        let err = validate_daemonset(&with(json!({"maxUnavailable": 0, "maxSurge": 0}))).expect_err("both 0");
        assert!(err.contains("may not be 0 when `maxSurge` is 0"), "{err}");
        let err =
            validate_daemonset(&with(json!({"maxUnavailable": 1, "maxSurge": 1}))).expect_err("both set");
        assert!(err.contains("maxSurge"), "{err}");
        let err = validate_daemonset(&with(json!({"maxUnavailable": "150%"}))).expect_err("over 100%");
        assert!(err.contains("100%"), "{err}");
        let err = validate_daemonset(&json!({"spec": {"updateStrategy": {"type": "Sometimes"}}}))
            .expect_err("type");
        assert!(err.contains("Unsupported value"), "{err}");
    }

    #[test]
    fn replication_controller_selector_defaults_from_the_template() {
        let mut rc = json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        default_replication_controller(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert!(validate_replication_controller(&rc).is_ok());
        rc["spec"]["selector"] = json!({"app": "y"});
        let err = validate_replication_controller(&rc).expect_err("mismatch");
        assert!(err.starts_with("spec.template.metadata.labels: Invalid value"), "{err}");
        let err = validate_replication_controller(&json!({"spec": {}})).expect_err("no selector");
        assert_eq!(err, "spec.selector: Required value");
    }

    #[test]
    fn controller_revision_data_is_immutable() {
        let old = json!({"revision": 1, "data": {"spec": {}}});
        assert!(validate_controller_revision(&old).is_ok());
        assert!(validate_controller_revision(&json!({"revision": -1})).is_err());
        let mut bumped = old.clone();
        bumped["revision"] = json!(3);
        assert!(validate_controller_revision_update(&old, &bumped).is_ok());
        bumped["data"] = json!({"spec": {"x": 1}});
        assert!(validate_controller_revision_update(&old, &bumped).is_err());
    }
}
