//! `kubectl apply --server-side` end to end with the real kubectl 1.37 against `wasmkube up`:
//! create, change, removal of a field dropped from the manifest, a conflict with `kubectl scale`
//! (kubectl prints its --force-conflicts advice), `--force-conflicts`, and the managers shown
//! by `kubectl get --show-managed-fields`.

use anyhow::{Context, bail};
use serde_json::Value;
use wasmkube_e2e::cluster::Cluster;

/// The manifest, with or without the `tier` label, at some replica count and image. The image
/// is never pulled (`Never`), so the test needs no registry; its pods just wait.
fn manifest(replicas: u32, tier: bool, image: &str) -> String {
    let tier = if tier { "\n    tier: front" } else { "" };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{tier}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: {image}
        imagePullPolicy: Never
"
    )
}

fn apply(
    cluster: &Cluster,
    file: &std::path::Path,
    text: &str,
    extra: &[&str],
) -> anyhow::Result<std::process::Output> {
    std::fs::write(file, text)?;
    let path = file.display().to_string();
    let mut args = vec!["apply", "--server-side", "-f", path.as_str()];
    args.extend_from_slice(extra);
    cluster.kubectl(&args)
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn deployment(cluster: &Cluster) -> anyhow::Result<Value> {
    cluster.get_json(&["deployment", "web", "--show-managed-fields"])
}

/// (manager, operation, subresource) of each managedFields entry.
fn managers(obj: &Value) -> Vec<(String, String, String)> {
    let s = |e: &Value, f: &str| e[f].as_str().unwrap_or("").to_string();
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| l.iter().map(|e| (s(e, "manager"), s(e, "operation"), s(e, "subresource"))).collect())
        .unwrap_or_default()
}

#[test]
fn kubectl_server_side_apply_owns_fields_and_reports_conflicts() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let file = work.path().join("web.yaml");

    // Create.
    let out = apply(&cluster, &file, &manifest(1, true, "example.local/web:1"), &[])?;
    let said = text(&out);
    if !out.status.success() || !said.contains("deployment.apps/web serverside-applied") {
        bail!("kubectl apply --server-side (create): {said}");
    }
    let d = deployment(&cluster)?;
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    // The deployment controller writes too (revision annotation, status), under its own name.
    assert!(managers(&d).contains(&("kubectl".into(), "Apply".into(), String::new())), "{d:#}");

    // A change, then a field dropped from the manifest is removed from the object.
    let out = apply(&cluster, &file, &manifest(1, true, "example.local/web:2"), &[])?;
    assert!(out.status.success(), "{}", text(&out));
    let d = deployment(&cluster)?;
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "example.local/web:2");
    let out = apply(&cluster, &file, &manifest(1, false, "example.local/web:2"), &[])?;
    assert!(out.status.success(), "{}", text(&out));
    let d = deployment(&cluster)?;
    assert!(d["metadata"]["labels"].get("tier").is_none(), "tier was dropped from the manifest: {d:#}");
    assert_eq!(d["metadata"]["labels"]["app"], "web");

    // Another manager takes the replicas...
    cluster.kubectl_ok(&["scale", "deployment", "web", "--replicas=2"])?;
    let d = deployment(&cluster)?;
    let scaler =
        managers(&d).into_iter().find(|(_, _, sub)| sub == "scale").context("an entry for /scale")?;
    assert_eq!(scaler.1, "Update");

    // ... so applying a different count conflicts, and kubectl explains what to do.
    let out = apply(&cluster, &file, &manifest(3, false, "example.local/web:2"), &[])?;
    let said = text(&out);
    assert!(!out.status.success(), "the apply must fail: {said}");
    assert!(said.contains("Apply failed with 1 conflict"), "{said}");
    assert!(said.contains(&format!("conflict with \"{}\" with subresource \"scale\"", scaler.0)), "{said}");
    assert!(said.contains(".spec.replicas"), "{said}");
    assert!(said.contains("--force-conflicts"), "kubectl's advice: {said}");
    assert_eq!(deployment(&cluster)?["spec"]["replicas"], 2, "a refused apply changes nothing");

    // Forcing takes the field over.
    let out = apply(&cluster, &file, &manifest(3, false, "example.local/web:2"), &["--force-conflicts"])?;
    assert!(out.status.success(), "{}", text(&out));
    let d = deployment(&cluster)?;
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(!managers(&d).iter().any(|(_, _, sub)| sub == "scale"), "the scaler lost its only field: {d:#}");

    // The managers as a user sees them.
    let yaml = cluster.kubectl_ok(&["get", "deployment", "web", "-o", "yaml", "--show-managed-fields"])?;
    assert!(yaml.contains("managedFields:") && yaml.contains("manager: kubectl"), "{yaml}");
    assert!(yaml.contains("operation: Apply") && yaml.contains("f:replicas: {}"), "{yaml}");
    let plain = cluster.kubectl_ok(&["get", "deployment", "web", "-o", "yaml"])?;
    assert!(!plain.contains("managedFields:"), "kubectl hides them by default");
    Ok(())
}

/// An object made by client-side `kubectl apply` moves to server-side apply: kubectl rewrites
/// the client-side manager's entries into its own Apply entry (a JSON patch of managedFields),
/// after which dropping a field from the manifest removes it.
#[test]
fn client_side_applied_objects_move_to_server_side_apply() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let file = work.path().join("web.yaml");
    std::fs::write(&file, manifest(1, true, "example.local/web:1"))?;
    cluster.kubectl_ok(&["apply", "-f", &file.display().to_string()])?;
    let d = deployment(&cluster)?;
    assert!(
        managers(&d).contains(&("kubectl-client-side-apply".into(), "Update".into(), String::new())),
        "{d:#}"
    );

    // The same manifest server-side: no conflict (the values agree), then kubectl migrates.
    let out = apply(&cluster, &file, &manifest(1, true, "example.local/web:1"), &[])?;
    assert!(out.status.success(), "{}", text(&out));
    let d = deployment(&cluster)?;
    let owners = managers(&d);
    assert!(owners.contains(&("kubectl".into(), "Apply".into(), String::new())), "{owners:?}");
    assert!(
        !owners.iter().any(|(m, _, _)| m == "kubectl-client-side-apply"),
        "kubectl moved the client-side entry into its apply entry: {owners:?}"
    );

    // Now the label kubectl once applied client-side is its to remove.
    let out = apply(&cluster, &file, &manifest(1, false, "example.local/web:1"), &[])?;
    assert!(out.status.success(), "{}", text(&out));
    let d = deployment(&cluster)?;
    assert!(d["metadata"]["labels"].get("tier").is_none(), "{d:#}");
    Ok(())
}
