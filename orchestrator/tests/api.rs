//! The API server over real HTTP, in process: status codes and `Status` bodies for bad input,
//! optimistic concurrency, selectors, patches, and watch semantics (resume, selector
//! transitions, 410 Expired, the watch-list handshake).

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use futures::StreamExt;
use orchestrator::{
    api::{find_by_kind, patch::PatchType},
    apiserver::{ApiState, router},
    client::{Client, WatchEvent},
    store::Store,
};
use serde_json::{Value, json};

const TOKEN: &str = "test-token";
const STEP: Duration = Duration::from_secs(10);

struct Server {
    url: String,
    client: Client,
    _dir: tempfile::TempDir,
}

async fn server(retained: u64) -> Server {
    server_with(retained, orchestrator::apiserver::limits::WatchLimits::default()).await
}

async fn server_with(retained: u64, watch_limits: orchestrator::apiserver::limits::WatchLimits) -> Server {
    orchestrator::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with_retention(&dir.path().join("store.redb"), retained).expect("store");
    let tokens_path = dir.path().join("tokens.json");
    std::fs::write(&tokens_path, json!({"admin": TOKEN, "join": "join-token"}).to_string()).expect("tokens");
    let state = ApiState {
        store,
        tokens: orchestrator::auth::Registry::load_or_create(&tokens_path).expect("tokens"),
        http: reqwest::Client::new(),
        ready: Arc::new(AtomicBool::new(true)),
        watch_limits: Arc::new(watch_limits),
        services: Arc::new(orchestrator::apiserver::services::ServiceWrites::new(
            orchestrator::api::services::ServiceNetworks::parse("127.16.0.0/16", "30000-32767")
                .expect("networks"),
            "127.64.0.0/10".into(),
        )),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let client = Client::new(&url, TOKEN, None).expect("client");
    let namespaces = find_by_kind("v1", "Namespace").expect("ns");
    client.create(namespaces, None, &json!({"metadata": {"name": "default"}})).await.expect("default ns");
    Server { url, client, _dir: dir }
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

async fn raw(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", s.url))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("send");
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

async fn next(
    stream: &mut (impl futures::Stream<Item = Result<WatchEvent, orchestrator::api::ApiError>> + Unpin),
) -> WatchEvent {
    tokio::time::timeout(STEP, stream.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("event")
}

#[tokio::test]
async fn bad_requests_get_status_objects_and_change_nothing() {
    let s = server(1000).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    s.client.create(cms, Some("default"), &configmap("keep", json!({}))).await.expect("create");
    let path = "/api/v1/namespaces/default/configmaps";
    let cases: Vec<(Option<&str>, &str, Vec<u8>, u16, &str)> = vec![
        (None, "application/json", b"{}".to_vec(), 401, "Unauthorized"),
        (Some(TOKEN), "application/json", b"{not json".to_vec(), 400, "BadRequest"),
        (Some(TOKEN), "application/yaml", b"a: [1,\n".to_vec(), 400, "BadRequest"),
        (Some(TOKEN), "application/json", br#"{"kind":"ConfigMap","metadata":{}}"#.to_vec(), 422, "Invalid"),
        (
            Some(TOKEN),
            "application/json",
            br#"{"kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":7}}"#.to_vec(),
            422,
            "Invalid",
        ),
        (
            Some(TOKEN),
            "application/json",
            br#"{"kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (Some(TOKEN), "application/json", br#"{"metadata":{"name":"keep"}}"#.to_vec(), 409, "AlreadyExists"),
        (Some(TOKEN), "text/plain", b"hello".to_vec(), 415, "UnsupportedMediaType"),
        (Some(TOKEN), "application/json", vec![b' '; 4 * 1024 * 1024], 413, "RequestEntityTooLarge"),
    ];
    for (token, ct, body, code, reason) in cases {
        let (got, status) = raw(&s, reqwest::Method::POST, path, token, ct, body).await;
        assert_eq!((got, status["reason"].as_str()), (code, Some(reason)), "{status}");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], code);
    }
    let (_, typed) = raw(
        &s,
        reqwest::Method::POST,
        path,
        Some(TOKEN),
        "application/json",
        br#"{"metadata":{"name":"x"},"data":{"k":7}}"#.to_vec(),
    )
    .await;
    assert!(
        typed["message"].as_str().unwrap_or("").contains("data.k"),
        "the message names the field: {typed}"
    );
    let (code, status) =
        raw(&s, reqwest::Method::GET, "/api/v1/widgets", Some(TOKEN), "application/json", vec![]).await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (items, _) = s.client.list(cms, Some("default"), None, None).await.expect("list");
    assert_eq!(items.len(), 1, "nothing but the good object is stored");
}

#[tokio::test]
async fn stale_resource_version_conflicts_and_patches_apply() {
    let s = server(1000).await;
    let deploys = find_by_kind("apps/v1", "Deployment").expect("deploy");
    let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "r/web:1", "env": [{"name": "A", "value": "1"}]}]}}}});
    let created = s.client.create(deploys, Some("default"), &d).await.expect("create");
    assert_eq!(created["metadata"]["generation"], 1);
    let mut stale = created.clone();
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "B", "value": "2"}]}]}}}});
    let patched =
        s.client.patch(deploys, Some("default"), "web", None, PatchType::Strategic, &smp).await.expect("smp");
    let env = &patched["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env.as_array().map(Vec::len), Some(2), "env merged by name: {env}");
    assert_eq!(patched["metadata"]["generation"], 2);
    stale["spec"]["replicas"] = json!(5);
    let err = s.client.replace(deploys, Some("default"), "web", None, &stale).await.expect_err("stale");
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    let scale = s
        .client
        .patch(
            deploys,
            Some("default"),
            "web",
            Some("scale"),
            PatchType::Merge,
            &json!({"spec": {"replicas": 3}}),
        )
        .await
        .expect("scale");
    assert_eq!((scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()), (Some("Scale"), Some(3)));
    assert_eq!(scale["status"]["selector"], "app=web");
    let bad = s
        .client
        .patch(
            deploys,
            Some("default"),
            "web",
            Some("scale"),
            PatchType::Merge,
            &json!({"spec": {"replicas": -1}}),
        )
        .await
        .expect_err("negative");
    assert_eq!(bad.code, 422);
}

async fn relabel(s: &Server, name: &str, tier: &str) {
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    let patch = json!({"metadata": {"labels": {"tier": tier}}});
    s.client.patch(cms, Some("default"), name, None, PatchType::Merge, &patch).await.expect("relabel");
}

#[tokio::test]
async fn watch_resumes_filters_and_expires() {
    let s = server(5).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    let (_, rv) = s.client.list(cms, Some("default"), None, None).await.expect("list");
    let mut all = Box::pin(s.client.watch(cms, Some("default"), rv, None).await.expect("watch"));
    s.client.create(cms, Some("default"), &configmap("a", json!({"tier": "web"}))).await.expect("a");
    s.client
        .patch(
            cms,
            Some("default"),
            "a",
            None,
            PatchType::Merge,
            &json!({"metadata": {"labels": {"tier": "db"}}}),
        )
        .await
        .expect("relabel");
    s.client.delete(cms, Some("default"), "a", None).await.expect("delete");
    let kinds: Vec<String> = [next(&mut all).await, next(&mut all).await, next(&mut all).await]
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);

    // A selector sees an object leave it as DELETED and enter it as ADDED.
    let path =
        format!("{}?watch=true&labelSelector=tier%3Dweb", Client::path(cms, Some("default"), None, None));
    s.client.create(cms, Some("default"), &configmap("b", json!({"tier": "web"}))).await.expect("b");
    let resp = s.client.get_stream(&path).await.expect("selector watch");
    let mut lines = Box::pin(resp.bytes_stream());
    let mut text = String::new();
    relabel(&s, "b", "db").await;
    relabel(&s, "b", "web").await;
    while text.matches('\n').count() < 3 {
        let chunk =
            tokio::time::timeout(STEP, lines.next()).await.expect("in time").expect("open").expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json line")["type"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(types, ["ADDED", "DELETED", "ADDED"], "{text}");

    // Resuming from a revision older than the retained log: an ERROR event with 410 Expired.
    let mut old = Box::pin(s.client.watch(cms, Some("default"), 1, None).await.expect("watch"));
    let err = next(&mut old).await;
    assert_eq!(
        (err.event_type.as_str(), err.object["code"].as_u64(), err.object["reason"].as_str()),
        ("ERROR", Some(410), Some("Expired"))
    );
}

#[tokio::test]
async fn watch_list_handshake_ends_initial_events_with_a_bookmark() {
    let s = server(1000).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    for n in ["one", "two"] {
        s.client.create(cms, Some("default"), &configmap(n, json!({}))).await.expect("create");
    }
    let base = Client::path(cms, Some("default"), None, None);
    let invalid = s
        .client
        .get_stream(&format!("{base}?watch=true&sendInitialEvents=true"))
        .await
        .expect_err("needs NotOlderThan");
    assert_eq!(invalid.code, 422);
    let path = format!(
        "{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dtwo"
    );
    let resp = s.client.get_stream(&path).await.expect("watch-list");
    let mut body = Box::pin(resp.bytes_stream());
    let mut text = String::new();
    while text.matches('\n').count() < 2 {
        let chunk =
            tokio::time::timeout(STEP, body.next()).await.expect("in time").expect("open").expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "two");
    assert_eq!(events[1]["type"], "BOOKMARK");
    assert_eq!(events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

#[tokio::test]
async fn tables_for_get_and_watch() {
    let s = server(1000).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    s.client.create(cms, Some("default"), &configmap("one", json!({}))).await.expect("create");
    let base = Client::path(cms, Some("default"), None, None);
    let table = s.client.get_table(&base).await.expect("table");
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][1]["name"], "Data");
    assert_eq!(table["rows"][0]["cells"][0], "one");
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let resp = reqwest::Client::new()
        .get(format!("{}{base}?watch=true", s.url))
        .bearer_auth(TOKEN)
        .header("accept", accept)
        .send()
        .await
        .expect("watch");
    let mut body = Box::pin(resp.bytes_stream());
    s.client.create(cms, Some("default"), &configmap("two", json!({}))).await.expect("create");
    let mut text = String::new();
    while text.matches('\n').count() < 2 {
        let chunk =
            tokio::time::timeout(STEP, body.next()).await.expect("in time").expect("open").expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(events[0]["object"]["kind"], "Table");
    assert!(events[0]["object"]["columnDefinitions"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(events[1]["object"]["rows"][0]["cells"][0], "two");
    assert!(
        events[1]["object"]["columnDefinitions"].as_array().is_some_and(Vec::is_empty),
        "columns only once"
    );
}

#[tokio::test]
async fn field_validation_rejects_warns_or_ignores_unknown_fields() {
    let s = server(1000).await;
    let path = "/api/v1/namespaces/default/configmaps";
    let body = |name: &str| {
        format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"k":"v"}},"datta":{{"typo":"x"}}}}"#)
            .into_bytes()
    };
    let (code, status) = raw(
        &s,
        reqwest::Method::POST,
        &format!("{path}?fieldValidation=Strict"),
        Some(TOKEN),
        "application/json",
        body("a"),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert!(status["message"].as_str().unwrap_or("").contains(r#"unknown field "datta""#), "{status}");
    let resp = reqwest::Client::new()
        .post(format!("{}{path}?fieldValidation=Warn", s.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body("b"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 201);
    let warning = resp.headers().get("warning").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(warning.starts_with("299 - ") && warning.contains("datta"), "{warning}");
    let (code, _) = raw(&s, reqwest::Method::POST, path, Some(TOKEN), "application/json", body("c")).await;
    assert_eq!(code, 201, "without the parameter unknown fields are kept silently");
    let (code, _) = raw(
        &s,
        reqwest::Method::POST,
        &format!("{path}?fieldValidation=Loose"),
        Some(TOKEN),
        "application/json",
        body("d"),
    )
    .await;
    assert_eq!(code, 400);
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    let patched = s
        .client
        .request(
            reqwest::Method::PATCH,
            &format!("{path}/b?fieldValidation=Strict"),
            Some(("application/merge-patch+json", &json!({"dataa": {"x": "y"}}))),
            None,
        )
        .await
        .expect_err("strict patch");
    assert_eq!(patched.code, 400);
    let (items, _) = s.client.list(cms, Some("default"), None, None).await.expect("list");
    assert_eq!(items.len(), 2, "b and c only");
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let s = server(1000).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    for i in 0..5 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        s.client
            .create(cms, Some("default"), &configmap(&format!("cm-{i}"), json!({"tier": tier})))
            .await
            .expect("create");
    }
    let get = |q: String| {
        let c = s.client.clone();
        async move {
            c.request(reqwest::Method::GET, &format!("/api/v1/namespaces/default/configmaps?{q}"), None, None)
                .await
        }
    };
    let first = get("limit=2".into()).await.expect("page 1");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let rv = first["metadata"]["resourceVersion"].clone();
    // A change between pages: later pages still report the first page's revision.
    s.client.create(cms, Some("default"), &configmap("cm-9", json!({}))).await.expect("create");
    let mut names: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        names.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["metadata"]["name"].as_str().map(String::from)),
        );
        assert_eq!(page["metadata"]["resourceVersion"], rv);
        let Some(token) = page["metadata"]["continue"].as_str().map(str::to_string) else { break };
        page = get(format!("limit=2&continue={token}")).await.expect("next page");
    }
    assert_eq!(names, ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "cm-9"]);
    let odd = get("limit=1&labelSelector=tier%3Dodd".into()).await.expect("selected");
    assert_eq!(odd["items"][0]["metadata"]["name"], "cm-1");
    assert!(odd["metadata"].get("remainingItemCount").is_none(), "no count under a selector");
    let token = odd["metadata"]["continue"].as_str().expect("more").to_string();
    let rest = get(format!("limit=1&labelSelector=tier%3Dodd&continue={token}")).await.expect("page 2");
    assert_eq!(rest["items"][0]["metadata"]["name"], "cm-3");
    let foreign = s
        .client
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/namespaces/default/secrets?continue={token}"),
            None,
            None,
        )
        .await
        .expect_err("token of another list");
    assert_eq!(foreign.code, 400);
}

#[tokio::test]
async fn node_credentials_reach_only_their_own_node_and_pods() {
    let s = server(1000).await;
    let json_body = |v: Value| serde_json::to_vec(&v).expect("json");
    let register = |node: &str, token: &str| json_body(json!({"nodeName": node, "token": token}));
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    let post = reqwest::Method::POST;
    let ct = "application/json";
    assert_eq!(
        raw(
            &s,
            post.clone(),
            "/bootstrap/v1/node-credentials",
            Some("join-token"),
            ct,
            register("node-a", &a)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        raw(
            &s,
            post.clone(),
            "/bootstrap/v1/node-credentials",
            Some("join-token"),
            ct,
            register("node-b", &b)
        )
        .await
        .0,
        200
    );
    // Restarting with the same credential is fine; taking another node's name is not.
    assert_eq!(
        raw(
            &s,
            post.clone(),
            "/bootstrap/v1/node-credentials",
            Some("join-token"),
            ct,
            register("node-a", &a)
        )
        .await
        .0,
        200
    );
    let (code, status) = raw(
        &s,
        post.clone(),
        "/bootstrap/v1/node-credentials",
        Some("join-token"),
        ct,
        register("node-a", &b),
    )
    .await;
    assert_eq!(code, 403, "{status}");
    // The join token opens nothing else; an unknown token nothing at all.
    assert_eq!(raw(&s, reqwest::Method::GET, "/api/v1/pods", Some("join-token"), ct, vec![]).await.0, 403);
    assert_eq!(raw(&s, reqwest::Method::GET, "/api/v1/pods", Some("nope"), ct, vec![]).await.0, 401);

    let node =
        |name: &str| json_body(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}));
    assert_eq!(raw(&s, post.clone(), "/api/v1/nodes", Some(&a), ct, node("node-a")).await.0, 201);
    let (code, status) = raw(&s, post.clone(), "/api/v1/nodes", Some(&a), ct, node("node-b")).await;
    assert_eq!(code, 403, "a node registers only itself: {status}");
    assert!(status["message"].as_str().is_some_and(|m| m.contains("system:node:node-a")), "{status}");
    assert_eq!(raw(&s, post.clone(), "/api/v1/nodes", Some(&b), ct, node("node-b")).await.0, 201);
    let patch = |body: Value| json_body(body);
    let merge = "application/merge-patch+json";
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(
        raw(&s, reqwest::Method::PATCH, "/api/v1/nodes/node-a/status", Some(&a), merge, patch(ready.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        raw(&s, reqwest::Method::PATCH, "/api/v1/nodes/node-b/status", Some(&a), merge, patch(ready)).await.0,
        403
    );

    // Pods and what they use.
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    s.client.create(cms, Some("default"), &configmap("used", json!({}))).await.expect("cm");
    s.client.create(cms, Some("default"), &configmap("unused", json!({}))).await.expect("cm");
    let pods = find_by_kind("v1", "Pod").expect("pods");
    for (name, node) in [("pa", "node-a"), ("pb", "node-b")] {
        let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x:1",
            "envFrom": [{"configMapRef": {"name": "used"}}]}]}});
        s.client.create(pods, Some("default"), &pod).await.expect("pod");
    }
    let get = reqwest::Method::GET;
    assert_eq!(
        raw(&s, get.clone(), "/api/v1/namespaces/default/configmaps/used", Some(&a), ct, vec![]).await.0,
        200
    );
    assert_eq!(
        raw(&s, get.clone(), "/api/v1/namespaces/default/configmaps/unused", Some(&a), ct, vec![]).await.0,
        403
    );
    assert_eq!(
        raw(&s, get.clone(), "/api/v1/namespaces/default/configmaps", Some(&a), ct, vec![]).await.0,
        403
    );
    assert_eq!(raw(&s, get.clone(), "/api/v1/pods", Some(&a), ct, vec![]).await.0, 200, "nodes read pods");
    let running = json!({"status": {"phase": "Running"}});
    let pod_status = |p: &str| format!("/api/v1/namespaces/default/pods/{p}/status");
    assert_eq!(
        raw(&s, reqwest::Method::PATCH, &pod_status("pa"), Some(&a), merge, patch(running.clone())).await.0,
        200
    );
    assert_eq!(
        raw(&s, reqwest::Method::PATCH, &pod_status("pb"), Some(&a), merge, patch(running)).await.0,
        403
    );
    let relabel = json!({"metadata": {"labels": {"x": "y"}}});
    assert_eq!(
        raw(
            &s,
            reqwest::Method::PATCH,
            "/api/v1/namespaces/default/pods/pa",
            Some(&a),
            merge,
            patch(relabel)
        )
        .await
        .0,
        403
    );
    assert_eq!(
        raw(&s, reqwest::Method::DELETE, "/api/v1/namespaces/default/pods/pb", Some(&a), ct, vec![]).await.0,
        403
    );
    let deploy = json_body(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}));
    assert_eq!(
        raw(&s, post, "/apis/apps/v1/namespaces/default/deployments", Some(&a), ct, deploy).await.0,
        403
    );
    // Nothing the refused requests touched changed.
    let pb = s.client.get(pods, Some("default"), "pb").await.expect("pb");
    assert!(pb["status"]["phase"] != "Running" && !meta_terminating(&pb), "{pb}");
}

fn meta_terminating(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

#[tokio::test]
async fn names_labels_and_annotations_are_validated_as_upstream() {
    let s = server(1000).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    let bad_value = s.client.create(cms, Some("default"), &configmap("c", json!({"app": "two words"}))).await;
    let err = bad_value.expect_err("label value");
    assert_eq!(err.code, 422);
    assert!(err.message.contains("metadata.labels: Invalid value: \"two words\""), "{}", err.message);
    let bad_key = s.client.create(cms, Some("default"), &configmap("c", json!({"-x": "y"}))).await;
    assert_eq!(bad_key.expect_err("label key").code, 422);
    let namespaces = find_by_kind("v1", "Namespace").expect("ns");
    let dotted = s.client.create(namespaces, None, &json!({"metadata": {"name": "a.b"}})).await;
    assert_eq!(dotted.expect_err("namespace names are DNS labels").code, 422);
    let services = find_by_kind("v1", "Service").expect("svc");
    let digit = json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}});
    assert_eq!(s.client.create(services, Some("default"), &digit).await.expect_err("DNS-1035").code, 422);
    // Nothing was stored, and an update cannot sneak a bad label in either.
    let good =
        s.client.create(cms, Some("default"), &configmap("c", json!({"app": "web"}))).await.expect("good");
    let patch = json!({"metadata": {"labels": {"app": "bad/value/x"}}});
    let err =
        s.client.patch(cms, Some("default"), "c", None, PatchType::Merge, &patch).await.expect_err("patch");
    assert_eq!(err.code, 422);
    let now = s.client.get(cms, Some("default"), "c").await.expect("get");
    assert_eq!(now["metadata"]["resourceVersion"], good["metadata"]["resourceVersion"]);
}

#[tokio::test]
async fn watch_connections_are_limited_per_caller() {
    let limits = orchestrator::apiserver::limits::WatchLimits::new(0.001, 3.0, 2);
    let s = server_with(1000, limits).await;
    let cms = find_by_kind("v1", "ConfigMap").expect("cm");
    let first = s.client.watch(cms, Some("default"), 0, None).await.expect("first watch");
    let second = s.client.watch(cms, Some("default"), 0, None).await.expect("second watch");
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces/default/configmaps?watch=true", s.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429, "a third open watch is refused");
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let status: Value = resp.json().await.expect("status");
    assert_eq!(status["reason"], "TooManyRequests");
    // Closing one frees its slot (the server notices the client went away).
    drop(first);
    // Poll until the server has seen the disconnect (bounded: 100 tries).
    let mut reopened = None;
    for _ in 0..100 {
        match s.client.watch(cms, Some("default"), 0, None).await {
            Ok(w) => {
                reopened = Some(w);
                break;
            }
            Err(e) if e.code == 429 && e.message.contains("open watches") => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(reopened.is_some(), "the slot came back");
    drop((second, reopened));
    // The burst of three is spent: the rate limit answers now, slots or not.
    match s.client.watch(cms, Some("default"), 0, None).await {
        Err(err) => assert!(err.code == 429 && err.message.contains("faster than"), "{err:?}"),
        Ok(_) => panic!("the fourth watch within the burst window must be refused"),
    }
}

#[tokio::test]
async fn namespaces_get_their_name_label_and_finalizer_and_mistyped_specs_are_refused() {
    let s = server(1000).await;
    let namespaces = find_by_kind("v1", "Namespace").expect("ns");
    let ns = s.client.create(namespaces, None, &json!({"metadata": {"name": "team"}})).await.expect("ns");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    for spec in [json!("x"), json!(7), json!([1])] {
        let bad =
            s.client.create(namespaces, None, &json!({"metadata": {"name": "odd"}, "spec": spec})).await;
        assert_eq!(bad.expect_err("mistyped spec").code, 422);
    }
}
