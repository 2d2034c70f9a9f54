//! Ingress end to end with the real kubectl, openssl and curl: `kubectl create ingress` routes
//! `/a` and `/b` of one host to two Services on the node's HTTP port, and the same Ingress
//! terminates TLS on the HTTPS port with a certificate kept in a Secret, which curl verifies
//! against the certificate's own CA (so the right one was served, chosen by SNI).

use std::{process::Command, time::Duration};

use anyhow::Context;
use wasmkube_e2e::{cluster::Cluster, poll};

const PATIENCE: Duration = Duration::from_secs(60);

fn backend(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: web
        image: example.local/hello-http:1
        ports: [{{containerPort: 8080}}]
        env: [{{name: GREETING, value: 'this is {name}'}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"
    )
}

/// `curl` with `args`; (status code, body).
fn curl(args: &[&str]) -> anyhow::Result<(u16, String)> {
    let out =
        Command::new("curl").args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"]).args(args).output()?;
    anyhow::ensure!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').context("no status from curl")?;
    Ok((code.trim().parse()?, body.to_string()))
}

/// curl until the answer contains `needle` (the proxy learns routes from watches).
fn curl_until(args: &[&str], needle: &str) -> anyhow::Result<String> {
    poll::until(&format!("curl {args:?} to answer {needle:?}"), PATIENCE, || {
        Ok(match curl(args) {
            Ok((_, body)) if body.contains(needle) => (Some(body), String::new()),
            answer => (None, format!("{answer:?}")),
        })
    })
}

#[test]
fn an_ingress_routes_paths_to_services_and_terminates_tls_from_a_secret() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", "example.local/hello-http:1")?;
    cluster.apply_yaml("a", &backend("svc-a"))?;
    cluster.apply_yaml("b", &backend("svc-b"))?;

    // A CA and a certificate for shop.example signed by it, made by openssl.
    let dir = work.path();
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("openssl").args(args).current_dir(dir).output()?;
        anyhow::ensure!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=shop.example",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
    ])?;
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:shop.example\n")?;
    run(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "tls.crt",
    ])?;
    let path = |f: &str| dir.join(f).display().to_string();
    cluster.kubectl_ok(&[
        "create",
        "secret",
        "tls",
        "shop-tls",
        "--cert",
        &path("tls.crt"),
        "--key",
        &path("tls.key"),
    ])?;

    cluster.kubectl_ok(&[
        "create",
        "ingress",
        "shop",
        "--rule=shop.example/a*=svc-a:80,tls=shop-tls",
        "--rule=shop.example/b*=svc-b:80,tls=shop-tls",
    ])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "deploy/svc-a",
        "deploy/svc-b",
        "--timeout=90s",
    ])?;

    let http = format!("shop.example:8080:{}", cluster.node_ip);
    let https = format!("shop.example:8443:{}", cluster.node_ip);
    curl_until(&["--resolve", &http, "http://shop.example:8080/a"], "this is svc-a")?;
    curl_until(&["--resolve", &http, "http://shop.example:8080/b/deeper"], "this is svc-b")?;
    let (code, body) = curl(&["--resolve", &http, "http://shop.example:8080/c"])?;
    assert_eq!((code, body.as_str()), (404, "no Ingress rule for host \"shop.example\" and path \"/c\"\n"));

    // TLS: curl checks the served certificate against our CA and the host name.
    let ca = path("ca.crt");
    curl_until(&["--cacert", &ca, "--resolve", &https, "https://shop.example:8443/a"], "this is svc-a")?;
    let (code, body) = curl(&["--cacert", &ca, "--resolve", &https, "https://shop.example:8443/b"])?;
    assert_eq!(code, 200);
    assert!(body.contains("this is svc-b"), "{body}");

    // `kubectl get ingress` shows the class and the node's address.
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
        "ingress/shop",
        "--timeout=60s",
    ])?;
    let table = cluster.kubectl_ok(&["get", "ingress", "shop"])?;
    assert!(table.contains(&cluster.node_ip) && table.contains("80, 443"), "{table}");
    Ok(())
}
