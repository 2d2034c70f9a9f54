//! Scenario tests of server-side apply, modelled on structured-merge-diff's merge tests
//! (`merge/*_test.go`): several managers applying and updating one object in turn, checking the
//! object and who owns what after each step.

use serde_json::{Value, json};

use super::*;

fn who(name: &str) -> FieldManager {
    FieldManager {
        name: name.into(),
        subresource: None,
        api_version: "apps/v1".into(),
        status_subresource: true,
        now: "2026-01-01T00:00:00Z".into(),
    }
}

fn at(name: &str, now: &str) -> FieldManager {
    FieldManager { now: now.into(), ..who(name) }
}

fn config(replicas: Option<i64>, labels: Value, containers: Value) -> Value {
    let mut c = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}});
    if let Some(r) = replicas {
        c["spec"]["replicas"] = json!(r);
    }
    c
}

fn web(image: &str) -> Value {
    json!([{"name": "web", "image": image}])
}

/// The field paths each manager owns, as `manager/operation[/subresource]: paths`.
fn owners(obj: &Value) -> Vec<(String, Vec<String>)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    let mut name = format!(
                        "{}/{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or("")
                    );
                    if let Some(s) = e["subresource"].as_str() {
                        name.push_str(&format!("/{s}"));
                    }
                    let set = FieldSet::from_fields_v1(&e["fieldsV1"]).unwrap_or_default();
                    (name, set.paths().iter().map(|p| path_string(p)).collect())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn owns(obj: &Value, manager: &str, field: &str) -> bool {
    owners(obj).iter().any(|(m, paths)| m == manager && paths.iter().any(|p| p == field))
}

#[test]
fn apply_creates_and_owns_exactly_the_configuration() {
    let cfg = config(Some(2), json!({"app": "web"}), web("i:1"));
    let obj = apply(None, &cfg, &who("kubectl"), false).expect("apply");
    let mut expected = cfg.clone();
    expected["metadata"]["managedFields"] = obj["metadata"]["managedFields"].clone();
    assert_eq!(obj, expected, "a create by apply is the configuration");
    let entry = &obj["metadata"]["managedFields"][0];
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["time"], "2026-01-01T00:00:00Z");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:selector": {},
            "f:template": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
}

#[test]
fn reapplying_the_same_configuration_changes_nothing() {
    let cfg = config(Some(2), json!({"app": "web"}), web("i:1"));
    let first = apply(None, &cfg, &who("kubectl"), false).expect("apply");
    let again = apply(Some(&first), &cfg, &at("kubectl", "2027-01-01T00:00:00Z"), false).expect("apply");
    assert_eq!(again, first, "same object, same time");
}

#[test]
fn fields_dropped_from_the_configuration_are_removed() {
    let cfg = config(
        Some(2),
        json!({"app": "web", "tier": "front"}),
        json!([{"name": "web", "image": "i:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
    );
    let first = apply(None, &cfg, &who("kubectl"), false).expect("apply");
    let cfg2 = config(
        None,
        json!({"app": "web"}),
        json!([{"name": "web", "image": "i:1", "env": [{"name": "B", "value": "2"}]}]),
    );
    let second = apply(Some(&first), &cfg2, &who("kubectl"), false).expect("apply");
    assert_eq!(second["metadata"]["labels"], json!({"app": "web"}));
    assert!(second["spec"].get("replicas").is_none(), "replicas was only kubectl's");
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}])
    );
    assert!(!owns(&second, "kubectl/Apply", ".spec.replicas"));
}

#[test]
fn fields_others_own_survive_being_dropped() {
    let a = config(Some(3), json!({"app": "web"}), web("i:1"));
    let obj = apply(None, &a, &who("a"), false).expect("a applies");
    let b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let obj = apply(Some(&obj), &b, &who("b"), false).expect("same value: no conflict");
    assert!(owns(&obj, "a/Apply", ".spec.replicas") && owns(&obj, "b/Apply", ".spec.replicas"), "shared");
    let obj = apply(Some(&obj), &config(None, json!({"app": "web"}), web("i:1")), &who("a"), false)
        .expect("a drops");
    assert_eq!(obj["spec"]["replicas"], 3, "b still owns it");
    // Fields set by an update (unowned by the applier before) are not pruned either.
    let mut updated = obj.clone();
    updated["spec"]["paused"] = json!(true);
    track_update(Some(&obj), &mut updated, &who("editor"));
    let obj =
        apply(Some(&updated), &config(None, json!({"app": "web"}), web("i:1")), &who("a"), false).expect("a");
    assert_eq!(obj["spec"]["paused"], true);
}

#[test]
fn changing_a_field_another_manager_owns_is_a_conflict() {
    let obj = apply(None, &config(Some(1), json!({"app": "web"}), web("i:1")), &who("kubectl"), false)
        .expect("apply");
    let mut scaled = obj.clone();
    scaled["spec"]["replicas"] = json!(5);
    let scaler = FieldManager { subresource: Some("scale".into()), ..who("kubectl") };
    track_update(Some(&obj), &mut scaled, &scaler);
    assert!(!owns(&scaled, "kubectl/Apply", ".spec.replicas"), "the scale took it");
    let cfg = config(Some(3), json!({"app": "web"}), web("i:1"));
    let err = apply(Some(&scaled), &cfg, &who("kubectl"), false).expect_err("conflict");
    let ApplyError::Conflicts(conflicts) = &err else { panic!("{err}") };
    assert_eq!(
        conflicts,
        &[Conflict {
            manager: r#""kubectl" with subresource "scale" using apps/v1"#.into(),
            field: ".spec.replicas".into()
        }]
    );
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#
    );
    let status = err.clone().into_api_error("Deployment", "web");
    assert_eq!((status.code, status.reason), (409, "Conflict"));
    assert_eq!(
        status.details,
        Some(json!({"causes": [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
            "message": r#"conflict with "kubectl" with subresource "scale" using apps/v1"#}]}))
    );
    // Applying the live value is no conflict: ownership is shared.
    let shared =
        apply(Some(&scaled), &config(Some(5), json!({"app": "web"}), web("i:1")), &who("kubectl"), false)
            .expect("same value");
    assert!(
        owns(&shared, "kubectl/Apply", ".spec.replicas")
            && owns(&shared, "kubectl/Update/scale", ".spec.replicas")
    );
    // Forcing moves the field to the applier.
    let forced = apply(Some(&scaled), &cfg, &who("kubectl"), true).expect("forced");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(owns(&forced, "kubectl/Apply", ".spec.replicas"));
    assert!(
        owners(&forced).iter().all(|(m, _)| m != "kubectl/Update/scale"),
        "an emptied entry goes: {:?}",
        owners(&forced)
    );
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let obj = apply(None, &config(Some(1), json!({"app": "web", "x": "1"}), web("i:1")), &who("a"), false)
        .expect("a");
    let err =
        apply(Some(&obj), &config(Some(2), json!({"app": "web", "x": "2"}), web("i:2")), &who("b"), false)
            .expect_err("conflicts");
    assert_eq!(
        err.to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\":\n- .metadata.labels.x\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn nulls_remove_the_field_and_claim_it() {
    let obj = apply(None, &config(Some(1), json!({"app": "web"}), web("i:1")), &who("a"), false).expect("a");
    let mut cfg = config(None, json!({"app": "web"}), web("i:1"));
    cfg["spec"]["replicas"] = Value::Null;
    let err = apply(Some(&obj), &cfg, &who("b"), false).expect_err("a owns replicas");
    assert!(err.to_string().contains(".spec.replicas"), "{err}");
    let out = apply(Some(&obj), &cfg, &who("b"), true).expect("forced");
    assert!(out["spec"].get("replicas").is_none());
    assert!(owns(&out, "b/Apply", ".spec.replicas"));
}

#[test]
fn sets_merge_and_prune_per_item() {
    let base = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let with = |f: Value| {
        let mut c = base.clone();
        c["metadata"]["finalizers"] = f;
        c
    };
    let obj = apply(None, &with(json!(["a"])), &who("one"), false).expect("one");
    let obj = apply(Some(&obj), &with(json!(["b"])), &who("two"), false).expect("two");
    assert_eq!(obj["metadata"]["finalizers"], json!(["a", "b"]));
    let obj = apply(Some(&obj), &base, &who("one"), false).expect("one drops a");
    assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn status_is_owned_only_through_the_status_subresource() {
    let mut cfg = config(Some(1), json!({"app": "web"}), web("i:1"));
    cfg["status"] = json!({"replicas": 9});
    let obj = apply(None, &cfg, &who("kubectl"), false).expect("apply");
    assert!(!owns(&obj, "kubectl/Apply", ".status.replicas"), "main endpoint");
    let status_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 7}, "status": {"readyReplicas": 1}});
    let via_status = FieldManager { subresource: Some("status".into()), ..who("ctrl") };
    let out = apply(Some(&obj), &status_cfg, &via_status, false).expect("no conflict on spec: not tracked");
    let ctrl = owners(&out).into_iter().find(|(m, _)| m == "ctrl/Apply/status");
    assert_eq!(ctrl.map(|(_, paths)| paths), Some(vec![".status.readyReplicas".to_string()]));
}

#[test]
fn managed_fields_in_a_configuration_are_refused() {
    let mut cfg = config(None, json!({}), web("i"));
    cfg["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &cfg, &who("a"), false).expect_err("refused");
    assert_eq!(err.into_api_error("Deployment", "web").code, 400);
    let dup = config(None, json!({}), json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]));
    let err =
        apply(None, &dup, &who("a"), false).expect_err("duplicates").into_api_error("Deployment", "web");
    assert_eq!(err.code, 422);
    assert!(err.message.contains(r#"duplicate entries for key [name="a"]"#), "{}", err.message);
}

#[test]
fn kubectl_keeps_the_client_side_annotation_in_step() {
    let mut live = config(Some(1), json!({"app": "web"}), web("i:1"));
    live["metadata"]["annotations"] = json!({LAST_APPLIED: "{\"old\":true}\n"});
    let cfg = config(Some(2), json!({"app": "web"}), web("i:1"));
    let out = apply(Some(&live), &cfg, &who("kubectl"), false).expect("apply");
    let annotation = out["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap_or("");
    assert_eq!(serde_json::from_str::<Value>(annotation).ok(), Some(cfg.clone()));
    let other = apply(Some(&live), &cfg, &who("helm"), false).expect("apply");
    assert_eq!(other["metadata"]["annotations"][LAST_APPLIED], "{\"old\":true}\n", "only kubectl's");
}

#[test]
fn odd_shapes_never_panic() {
    let live = config(Some(1), json!({"app": "web"}), web("i:1"));
    let live = apply(None, &live, &who("a"), false).expect("a");
    let odd = [
        json!({"metadata": {"name": "web", "labels": "not a map"}}),
        json!({"spec": {"template": {"spec": {"containers": {"name": "web"}}}}}),
        json!({"spec": {"template": {"spec": {"containers": ["scalar", 3, null]}}}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": {"nested": true}, "ports": [{"containerPort": [1]}]}]}}}}),
        json!({"metadata": {"finalizers": [{"object": 1}, ["list"]]}}),
        json!({"metadata": {"finalizers": "x", "managedFields": null}, "spec": null}),
        json!({"spec": {"selector": [1, 2], "replicas": {"a": 1}}}),
        json!([1, 2, 3]),
        json!(null),
    ];
    for cfg in odd {
        for current in [None, Some(&live)] {
            for force in [false, true] {
                let _ = apply(current, &cfg, &who("b"), force);
            }
        }
        let mut updated = cfg.clone();
        track_update(Some(&live), &mut updated, &who("c"));
        let mut odd_live = cfg.clone();
        track_update(None, &mut odd_live, &who("c"));
    }
    let mut corrupt = live.clone();
    corrupt["metadata"]["managedFields"] = json!([{"operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"k:{bad": {}}}}]);
    let out = apply(Some(&corrupt), &config(Some(2), json!({}), web("i")), &who("a"), false)
        .expect("ignores bad entries");
    assert_eq!(out["spec"]["replicas"], 2);
}
