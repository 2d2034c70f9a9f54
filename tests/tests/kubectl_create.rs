//! kubectl's typed commands (`create namespace|configmap|secret|deployment|service`, `drain`)
//! send Kubernetes protobuf bodies. Against the real `wasmkube up` and the real kubectl 1.37:
//! each command succeeds and stores, field by field, what kube-apiserver would store; and raw
//! protobuf requests show the error side (garbage is a 400, an unknown field a 415, a body of
//! the wrong kind a 400), with nothing stored.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use wasmkube_e2e::cluster::{Cluster, root};

/// The binary file of the configmap test and its base64 form (bytes 0xff down to 0xc0: not
/// UTF-8, so kubectl puts it in binaryData).
fn blob() -> (Vec<u8>, &'static str) {
    (
        (0xc0..=0xffu8).rev().collect(),
        "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eDf3t3c29rZ2NfW1dTT0tHQz87NzMvKycjHxsXEw8LBwA==",
    )
}

/// An image reference nothing serves, on this machine: pulls fail at once, locally.
const IMAGE: &str = "127.0.0.1:1/x:1";

#[test]
fn typed_create_commands_store_what_kube_apiserver_stores() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;

    // The body really is protobuf (kubectl logs the request at -v=9), and it is accepted.
    let out = cluster.kubectl(&["create", "namespace", "team", "-v=9"])?;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("-XPOST") && log.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "{log}"
    );
    assert!(log.contains("201 Created"), "{log}");
    let ns = cluster.get_json(&["namespace", "team"])?;
    assert_eq!(ns["metadata"]["name"], "team");
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(ns["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()), "{ns}");

    // ConfigMap in the new namespace: literal, text file, binary file.
    let greeting = work.path().join("greeting.txt");
    std::fs::write(&greeting, "hello\nworld\n")?;
    let (bytes, base64) = blob();
    let bin = work.path().join("blob.bin");
    std::fs::write(&bin, bytes)?;
    cluster.kubectl_ok(&[
        "create",
        "configmap",
        "c",
        "-n",
        "team",
        "--from-literal=a=b",
        &format!("--from-file=greeting.txt={}", greeting.display()),
        &format!("--from-file=blob.bin={}", bin.display()),
    ])?;
    let cm = cluster.get_json(&["configmap", "c", "-n", "team"])?;
    assert_eq!(cm["metadata"]["namespace"], "team");
    assert_eq!(cm["data"], json!({"a": "b", "greeting.txt": "hello\nworld\n"}));
    assert_eq!(cm["binaryData"], json!({"blob.bin": base64}));

    cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=user=admin",
        "--from-literal=pass=s3cr3t",
    ])?;
    let secret = cluster.get_json(&["secret", "s"])?;
    assert_eq!(secret["type"], "Opaque", "defaulted as upstream");
    assert_eq!(secret["data"], json!({"user": "YWRtaW4=", "pass": "czNjcjN0"}));

    cluster.kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "reg",
        "--docker-server=registry.example",
        "--docker-username=u",
        "--docker-password=p",
        "--docker-email=u@example.com",
    ])?;
    let reg = cluster.get_json(&["secret", "reg"])?;
    assert_eq!(reg["type"], "kubernetes.io/dockerconfigjson");
    // base64 of {"auths":{"registry.example":{"username":"u","password":"p","email":"u@example.com","auth":"dTpw"}}}
    assert_eq!(
        reg["data"][".dockerconfigjson"],
        "eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicCIsImVtYWlsIjoidUBleGFtcGxlLmNvbSIsImF1dGgiOiJkVHB3In19fQ=="
    );

    cluster.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        &format!("--image={IMAGE}"),
        "--replicas=3",
        "--port=8080",
        "--",
        "cmd",
        "arg",
    ])?;
    let web = cluster.get_json(&["deployment", "web"])?;
    assert_eq!(web["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(web["metadata"]["generation"], 1);
    let spec = &web["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["template"]["metadata"]["labels"], json!({"app": "web"}));
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "x", "kubectl names the container after the image");
    assert_eq!(container["image"], IMAGE);
    assert_eq!(container["command"], json!(["cmd", "arg"]));
    assert_eq!(container["args"], Value::Null);
    assert_eq!(container["ports"], json!([{"containerPort": 8080, "protocol": "TCP"}]));
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["resources"], json!({}));
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");

    // replicas is a pointer: an explicit 0 must survive (not become the default 1).
    cluster.kubectl_ok(&["create", "deployment", "idle", &format!("--image={IMAGE}"), "--replicas=0"])?;
    assert_eq!(cluster.get_json(&["deployment", "idle"])?["spec"]["replicas"], 0);

    cluster.kubectl_ok(&["create", "service", "clusterip", "svc", "--tcp=80:8080"])?;
    let svc = cluster.get_json(&["service", "svc"])?;
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["selector"], json!({"app": "svc"}));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    cluster.kubectl_ok(&["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30001"])?;
    let np = cluster.get_json(&["service", "np"])?;
    assert_eq!(np["spec"]["type"], "NodePort");
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30001);

    // kubectl drain deletes the node's pods with a protobuf DeleteOptions body.
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.replicas}=3",
        "deployment/web",
        "--timeout=60s",
    ])?;
    cluster.kubectl_ok(&["wait", "--for=condition=PodScheduled", "pod", "-l", "app=web", "--timeout=60s"])?;
    let before: Vec<String> = cluster.get_json(&["pods", "-l", "app=web"])?["items"]
        .as_array()
        .context("pod list")?
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");
    let out = cluster.kubectl(&["drain", "node-a", "--grace-period=5", "--timeout=60s", "-v=9"])?;
    let log = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{log}");
    assert!(
        log.lines().any(|l| l.contains("-XDELETE") && l.contains("application/vnd.kubernetes.protobuf")),
        "drain sent its DeleteOptions as protobuf: {log}"
    );
    for name in &before {
        assert!(stdout.contains(&format!("pod/{name} deleted")), "{stdout}");
    }
    assert!(stdout.contains("node/node-a drained"), "{stdout}");
    let left = cluster.kubectl_ok(&["get", "pods", "-o", "name"])?;
    assert!(before.iter().all(|name| !left.contains(name.as_str())), "{left}");
    Ok(())
}

/// Raw HTTPS requests with the admin token, for bodies kubectl would never send.
struct Raw {
    client: reqwest::Client,
    server: String,
    token: String,
    runtime: tokio::runtime::Runtime,
}

impl Raw {
    fn new(cluster: &Cluster) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = std::fs::read_to_string(cluster.kubeconfig())?;
        let token = kubeconfig
            .lines()
            .find_map(|l| l.trim().strip_prefix("token:"))
            .map(|t| t.trim().to_string())
            .context("no token in the kubeconfig")?;
        let ca = reqwest::Certificate::from_pem(&std::fs::read(cluster.ca_cert())?)?;
        let client =
            reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(30)).build()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Self { client, server: cluster.server.clone(), token, runtime })
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        self.runtime.block_on(async {
            let response = self
                .client
                .request(method, format!("{}{path}", self.server))
                .bearer_auth(&self.token)
                .header("Content-Type", content_type)
                .header("Accept", "application/json")
                .body(body)
                .send()
                .await?;
            let code = response.status().as_u16();
            let text = response.text().await?;
            Ok((code, serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?))
        })
    }

    fn post_protobuf(&self, path: &str, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, "application/vnd.kubernetes.protobuf", body)
    }
}

/// A length-delimited protobuf field.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2, u8::try_from(bytes.len()).unwrap_or(u8::MAX)];
    out.extend_from_slice(bytes);
    out
}

/// `k8s\0` and an envelope naming `api_version`/`kind` around `raw`.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
}

fn fixture(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = root().join("orchestrator/api/tests/fixtures/protobuf").join(name);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

#[test]
fn bad_protobuf_bodies_are_refused_and_store_nothing() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let raw = Raw::new(&cluster)?;
    let configmaps = "/api/v1/namespaces/default/configmaps";
    let names = |cluster: &Cluster| -> anyhow::Result<String> {
        cluster.kubectl_ok(&["get", "configmaps", "-o", "name"])
    };
    let initial = names(&cluster)?;

    // Garbage after the magic: a length running past the end of the body.
    let (code, status) = raw.post_protobuf(configmaps, b"k8s\0\x12\x7f\x0a\x01".to_vec())?;
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (400, Some("Status"), Some("BadRequest"))
    );
    assert!(status["message"].as_str().is_some_and(|m| m.contains("protobuf")), "{status}");
    // Not protobuf at all.
    let (code, _) = raw.post_protobuf(configmaps, b"{\"kind\":\"ConfigMap\"}".to_vec())?;
    assert_eq!(code, 400);

    // A field we do not know: refused by name, never dropped.
    let metadata = field(1, &field(1, b"unknown"));
    let (code, status) = raw.post_protobuf(
        configmaps,
        envelope("v1", "ConfigMap", &[metadata, vec![0xf8, 0x06, 0x01]].concat()),
    )?;
    assert_eq!((code, status["reason"].as_str()), (415, Some("UnsupportedMediaType")), "{status}");
    assert!(status["message"].as_str().is_some_and(|m| m.contains("field 111 of ConfigMap")), "{status}");

    // A Secret's body sent to the configmaps collection: the same check as for JSON bodies.
    let (code, status) = raw.post_protobuf(configmaps, fixture("secret-generic.pb")?)?;
    assert_eq!(code, 400, "{status}");
    assert!(status["message"].as_str().is_some_and(|m| m.contains("kind")), "{status}");

    assert_eq!(names(&cluster)?, initial, "nothing was stored");

    // The captured kubectl body, sent by hand, is stored with the golden content.
    let (code, created) = raw.post_protobuf(configmaps, fixture("configmap.pb")?)?;
    assert_eq!(code, 201, "{created}");
    let stored = cluster.get_json(&["configmap", "c"])?;
    assert_eq!(stored["data"], json!({"a": "b", "greeting.txt": "hello\nworld\n"}));
    assert_eq!(stored["binaryData"], json!({"blob.bin": blob().1}));
    Ok(())
}
