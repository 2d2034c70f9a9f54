//! The kubectl habits of a Kubernetes user, each checked against what the server stored:
//! apply / re-apply (env, replicas, image, a removed port), every `get` output format, describe,
//! edit through `KUBE_EDITOR`, label / annotate, the three patch types, scale, rollout
//! status / history / undo, and wait. The pods run hello-http side-loaded under two tags.

use anyhow::Context;
use serde_json::Value;
use wasmkube_e2e::cluster::Cluster;

const V1: &str = "example.local/hello-http:1";
const V2: &str = "example.local/hello-http:2";

fn manifest(image: &str, replicas: u32, env: &str, with_port: bool) -> String {
    let port = if with_port {
        "\n        ports: [{containerPort: 8080, name: http}, {containerPort: 9090, name: metrics}]"
    } else {
        "\n        ports: [{containerPort: 8080, name: http}]"
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        imagePullPolicy: IfNotPresent
        env: [{{name: GREETING, value: {env}}}]{port}
"
    )
}

fn container(d: &Value) -> &Value {
    &d["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn kubectl_habits_work_end_to_end() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", V1)?;
    cluster.side_load("hello-http.wasm", V2)?;
    let file = work.path().join("web.yaml");
    let file_arg = file.display().to_string();
    let apply = |text: String| -> anyhow::Result<String> {
        std::fs::write(&file, text)?;
        cluster.kubectl_ok(&["apply", "-f", &file_arg])
    };

    // apply, then re-apply with env, replicas, image changed and a port removed.
    assert!(apply(manifest(V1, 1, "hi", true))?.contains("deployment.apps/web created"));
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"])?;
    assert!(apply(manifest(V1, 1, "hi", true))?.contains("unchanged"));
    assert!(apply(manifest(V2, 2, "hello", false))?.contains("configured"));
    let d = cluster.get_json(&["deployment", "web"])?;
    let c = container(&d);
    assert_eq!((d["spec"]["replicas"].as_i64(), c["image"].as_str()), (Some(2), Some(V2)));
    assert_eq!(c["env"], serde_json::json!([{"name": "GREETING", "value": "hello"}]));
    assert_eq!(c["ports"].as_array().map(Vec::len), Some(1), "the removed port is gone: {}", c["ports"]);
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"])?;

    // rollout history and undo back to revision 1's template.
    let history = cluster.kubectl_ok(&["rollout", "history", "deployment/web"])?;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    cluster.kubectl_ok(&["rollout", "undo", "deployment/web"])?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"])?;
    assert_eq!(container(&cluster.get_json(&["deployment", "web"])?)["image"], V1);
    cluster.kubectl_ok(&["wait", "--for=condition=Available", "deployment/web", "--timeout=60s"])?;

    // scale (merge patch on /scale).
    cluster.kubectl_ok(&["scale", "deployment/web", "--replicas=3"])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.readyReplicas}=3",
        "deployment/web",
        "--timeout=90s",
    ])?;

    // label / annotate, overwrite and removal.
    cluster.kubectl_ok(&["label", "deployment", "web", "tier=frontend"])?;
    cluster.kubectl_ok(&["label", "deployment", "web", "tier=edge", "--overwrite"])?;
    cluster.kubectl_ok(&["annotate", "deployment", "web", "team=core"])?;
    let d = cluster.get_json(&["deployment", "web"])?;
    assert_eq!(
        (d["metadata"]["labels"]["tier"].as_str(), d["metadata"]["annotations"]["team"].as_str()),
        (Some("edge"), Some("core"))
    );
    cluster.kubectl_ok(&["label", "deployment", "web", "tier-"])?;
    assert!(cluster.get_json(&["deployment", "web"])?["metadata"]["labels"].get("tier").is_none());

    // The three patch types.
    cluster.kubectl_ok(&["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"EXTRA","value":"1"}]}]}}}}"#])?;
    cluster.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"annotations":{"merged":"yes"}}}"#,
    ])?;
    cluster.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/minReadySeconds","value":1}]"#,
    ])?;
    let out = cluster.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/paused","value":true}]"#,
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("The Deployment \"web\" is invalid: patch: the JSON Patch could not be applied"),
        "{err}"
    );
    let d = cluster.get_json(&["deployment", "web"])?;
    let env: Vec<&str> =
        container(&d)["env"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
    assert!(env.contains(&"GREETING") && env.contains(&"EXTRA"), "SMP merged env by name: {env:?}");
    assert_eq!(
        (d["metadata"]["annotations"]["merged"].as_str(), d["spec"]["minReadySeconds"].as_i64()),
        (Some("yes"), Some(1))
    );

    // edit without a terminal: the editor is a sed script.
    let editor = "sed -i -e 's/minReadySeconds: 1/minReadySeconds: 2/'";
    let out = cluster.kubectl_env(&["edit", "deployment/web"], &[("KUBE_EDITOR", editor)])?;
    assert!(out.status.success(), "edit: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cluster.get_json(&["deployment", "web"])?["spec"]["minReadySeconds"], 2);
    // The merged env rolled out a new template, pod by pod, each available after 2 s.
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"])?;

    // get in every output format.
    let wide = cluster.kubectl_ok(&["get", "pods", "-o", "wide"])?;
    for column in ["READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] {
        assert!(wide.lines().next().is_some_and(|h| h.contains(column)), "{column} in: {wide}");
    }
    let deploys = cluster.kubectl_ok(&["get", "deployments"])?;
    for column in ["READY", "UP-TO-DATE", "AVAILABLE"] {
        assert!(deploys.contains(column), "{column} in: {deploys}");
    }
    assert!(cluster.kubectl_ok(&["get", "deploy", "--show-labels"])?.contains("app=web"));
    assert!(
        cluster
            .kubectl_ok(&["get", "pods", "-A"])?
            .lines()
            .next()
            .is_some_and(|h| h.starts_with("NAMESPACE"))
    );
    assert!(cluster.kubectl_ok(&["get", "pods", "-L", "app"])?.contains("APP"));
    assert_eq!(cluster.kubectl_ok(&["get", "deploy", "web", "-o", "name"])?.trim(), "deployment.apps/web");
    assert_eq!(cluster.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?, "3");
    assert!(cluster.kubectl_ok(&["get", "deploy", "web", "-o", "yaml"])?.contains("kind: Deployment"));
    let custom =
        cluster.kubectl_ok(&["get", "deploy", "-o", "custom-columns=N:.metadata.name,R:.spec.replicas"])?;
    assert!(custom.contains("web") && custom.contains('3'), "{custom}");
    let tmpl = cluster.kubectl_ok(&["get", "deploy", "web", "-o", "go-template={{.metadata.name}}"])?;
    assert_eq!(tmpl, "web");
    let sorted = cluster.kubectl_ok(&["get", "pods", "--sort-by=.metadata.name", "--no-headers"])?;
    assert_eq!(sorted.lines().count(), 3, "{sorted}");

    // describe the kinds users describe.
    let pod = cluster.get_json(&["pods", "-l", "app=web"])?["items"][0]["metadata"]["name"]
        .as_str()
        .context("a pod")?
        .to_string();
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n";
    std::fs::write(work.path().join("svc.yaml"), svc)?;
    cluster.kubectl_ok(&["apply", "-f", &work.path().join("svc.yaml").display().to_string()])?;
    for (what, needle) in [
        (vec!["describe", "pod", pod.as_str()], "Events:"),
        (vec!["describe", "deployment", "web"], "NewReplicaSet:"),
        (vec!["describe", "node", "node-a"], "Non-terminated Pods:"),
        (vec!["describe", "service", "web"], "Selector:"),
    ] {
        let out = cluster.kubectl_ok(&what)?;
        assert!(out.contains(needle), "{what:?} shows {needle}: {out}");
    }

    // wait --for=delete after a delete that does not wait itself.
    cluster.kubectl_ok(&["delete", "deployment", "web", "--wait=false"])?;
    cluster.kubectl_ok(&["wait", "--for=delete", "deployment/web", "--timeout=60s"])?;
    Ok(())
}
