//! Server-side apply and managedFields over real HTTP, in process: apply creates and merges,
//! removes what a manager stopped applying, conflicts with other managers (409 with the causes
//! kubectl prints) unless forced, and ordinary writes are recorded under their field manager.

use std::sync::{Arc, atomic::AtomicBool};

use orchestrator::{
    api::find_by_kind,
    apiserver::{ApiState, router},
    client::Client,
    store::Store,
};
use serde_json::{Value, json};

const TOKEN: &str = "ssa-token";
const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments/web";
const APPLY: &str = "application/apply-patch+yaml";

struct Api {
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Self {
        orchestrator::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_with_retention(&dir.path().join("store.redb"), 1000).expect("store");
        let tokens = dir.path().join("tokens.json");
        std::fs::write(&tokens, json!({"admin": TOKEN, "join": "ssa-join"}).to_string()).expect("tokens");
        let state = ApiState {
            store,
            tokens: orchestrator::auth::Registry::load_or_create(&tokens).expect("tokens"),
            http: reqwest::Client::new(),
            ready: Arc::new(AtomicBool::new(true)),
            watch_limits: Default::default(),
            services: Arc::new(orchestrator::apiserver::services::ServiceWrites::new(
                orchestrator::api::services::ServiceNetworks::parse("127.16.0.0/16", "30000-32767")
                    .expect("networks"),
                "127.64.0.0/10".into(),
            )),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let namespaces = find_by_kind("v1", "Namespace").expect("namespaces");
        let client = Client::new(&url, TOKEN, None).expect("client");
        client.create(namespaces, None, &json!({"metadata": {"name": "default"}})).await.expect("default");
        Self { url, http: reqwest::Client::new(), _dir: dir }
    }

    /// Send a request as kubectl would (its User-Agent); returns (status code, JSON body).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: String,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .header("user-agent", "kubectl/v1.37.1 (linux/amd64) kubernetes/test")
            .body(body)
            .send()
            .await
            .expect("send");
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn apply(&self, query: &str, config: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, &format!("{DEPLOY}?{query}"), APPLY, config.to_string()).await
    }

    async fn get(&self) -> Value {
        self.send(reqwest::Method::GET, DEPLOY, "application/json", String::new()).await.1
    }
}

fn deployment(replicas: Option<i64>, labels: Value, image: &str) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}});
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

/// (manager, operation, subresource) of each managedFields entry.
fn managers(obj: &Value) -> Vec<(String, String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    let s = |f: &str| e[f].as_str().unwrap_or("").to_string();
                    (s("manager"), s("operation"), s("subresource"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager && e["operation"] == operation))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn apply_creates_merges_and_removes_what_the_manager_dropped() {
    let api = Api::start().await;
    let v1 = deployment(Some(2), json!({"app": "web", "tier": "front"}), "r/web:1");
    let (code, created) = api.apply("fieldManager=kubectl&fieldValidation=Strict&force=false", &v1).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(created["spec"]["strategy"]["type"], "RollingUpdate", "defaults apply after the merge");
    assert_eq!(managers(&created), [("kubectl".into(), "Apply".into(), "".into())]);
    let applied = &entry(&created, "kubectl", "Apply")["fieldsV1"];
    assert_eq!(applied["f:spec"]["f:replicas"], json!({}));
    assert!(applied["f:spec"].get("f:strategy").is_none(), "defaulted fields are nobody's");

    // The same configuration again: nothing changes, not even the resourceVersion.
    let (code, same) = api.apply("fieldManager=kubectl", &v1).await;
    assert_eq!(code, 200);
    assert_eq!(same["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);

    // A change, and a label and the replicas dropped from the manifest.
    let v2 = deployment(None, json!({"app": "web"}), "r/web:2");
    let (code, updated) = api.apply("fieldManager=kubectl", &v2).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["spec"]["template"]["spec"]["containers"][0]["image"], "r/web:2");
    assert_eq!(updated["metadata"]["labels"], json!({"app": "web"}), "tier was removed");
    assert_eq!(updated["spec"]["replicas"], 1, "replicas removed, then defaulted");
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(api.get().await["metadata"]["labels"], json!({"app": "web"}));
}

#[tokio::test]
async fn conflicts_with_other_managers_unless_forced() {
    let api = Api::start().await;
    let (code, _) =
        api.apply("fieldManager=kubectl", &deployment(Some(1), json!({"app": "web"}), "r/web:1")).await;
    assert_eq!(code, 201);
    // Another manager scales through /scale (as `kubectl scale` does).
    let (code, scale) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{DEPLOY}/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 4}}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{scale}");
    let live = api.get().await;
    assert!(
        managers(&live).contains(&("kubectl".into(), "Update".into(), "scale".into())),
        "{:?}",
        managers(&live)
    );

    let v2 = deployment(Some(3), json!({"app": "web"}), "r/web:1");
    let (code, status) = api.apply("fieldManager=kubectl&force=false", &v2).await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "field": ".spec.replicas",
            "message": r#"conflict with "kubectl" with subresource "scale" using apps/v1"#}])
    );
    assert_eq!(api.get().await["spec"]["replicas"], 4, "a refused apply changes nothing");

    let (code, forced) = api.apply("fieldManager=kubectl&force=true", &v2).await;
    assert_eq!(code, 200, "{forced}");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(
        !managers(&forced).iter().any(|(_, _, sub)| sub == "scale"),
        "the scaler's only field moved to the applier: {:?}",
        managers(&forced)
    );
}

#[tokio::test]
async fn apply_requests_are_checked_like_upstream() {
    let api = Api::start().await;
    let v1 = deployment(Some(1), json!({"app": "web"}), "r/web:1");
    let (code, status) = api.apply("", &v1).await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let mut wrong_kind = v1.clone();
    wrong_kind["kind"] = json!("ReplicaSet");
    let (code, status) = api.apply("fieldManager=m", &wrong_kind).await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["message"], "invalid object type: apps/v1, Kind=ReplicaSet");
    let mut wrong_name = v1.clone();
    wrong_name["metadata"]["name"] = json!("other");
    assert_eq!(api.apply("fieldManager=m", &wrong_name).await.0, 400);
    let mut with_managed = v1.clone();
    with_managed["metadata"]["managedFields"] = json!([]);
    let (code, status) = api.apply("fieldManager=m", &with_managed).await;
    assert_eq!((code, status["message"].as_str()), (400, Some("metadata.managedFields must be nil")));
    let mut unknown = v1.clone();
    unknown["spec"]["replicass"] = json!(2);
    let (code, status) = api.apply("fieldManager=m&fieldValidation=Strict", &unknown).await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"].as_str().unwrap_or("").contains(r#"unknown field "spec.replicass""#),
        "{status}"
    );
    let (code, status) =
        api.send(reqwest::Method::PATCH, DEPLOY, "application/merge-patch+json", "{}".into()).await;
    assert_eq!(code, 404, "a merge patch does not create: {status}");
    let (code, status) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{DEPLOY}?force=true"),
            "application/merge-patch+json",
            "{}".into(),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    assert!(api.get().await["kind"] == "Status", "nothing was created");

    // A dry run answers with the object and stores nothing.
    let (code, dry) = api.apply("fieldManager=m&dryRun=All", &v1).await;
    assert_eq!(code, 201, "{dry}");
    assert_eq!(dry["spec"]["replicas"], 1);
    assert_eq!(api.get().await["code"], 404);

    // YAML works as well as JSON.
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: r/web:1\n";
    let (code, created) =
        api.send(reqwest::Method::PATCH, &format!("{DEPLOY}?fieldManager=yaml"), APPLY, yaml.into()).await;
    assert_eq!(code, 201, "{created}");
}

#[tokio::test]
async fn ordinary_writes_are_recorded_per_manager() {
    let api = Api::start().await;
    let cm_path = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (code, created) = api.send(reqwest::Method::POST, cm_path, "application/json", cm.to_string()).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(managers(&created), [("kubectl".into(), "Update".into(), "".into())], "from the User-Agent");
    assert_eq!(entry(&created, "kubectl", "Update")["fieldsV1"], json!({"f:data": {".": {}, "f:a": {}}}));

    let (code, patched) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{cm_path}/c?fieldManager=kubectl-edit"),
            "application/merge-patch+json",
            json!({"data": {"a": "2", "b": "3"}}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    // `a` moved to the editor, `b` is new; the creator keeps the map itself (as upstream).
    assert_eq!(entry(&patched, "kubectl", "Update")["fieldsV1"], json!({"f:data": {}}));
    assert_eq!(
        entry(&patched, "kubectl-edit", "Update")["fieldsV1"],
        json!({"f:data": {"f:a": {}, "f:b": {}}})
    );

    // An apply of one key shares ownership of the unchanged value, without conflict.
    let apply_cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "3"}});
    let (code, applied) = api
        .send(reqwest::Method::PATCH, &format!("{cm_path}/c?fieldManager=ssa"), APPLY, apply_cm.to_string())
        .await;
    assert_eq!(code, 200, "{applied}");
    assert_eq!(managers(&applied).len(), 3);

    // A PUT that sends managedFields `[]` clears them; one that omits them keeps them.
    let mut put = applied.clone();
    put["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
    let (_, kept) =
        api.send(reqwest::Method::PUT, &format!("{cm_path}/c"), "application/json", put.to_string()).await;
    assert_eq!(managers(&kept).len(), 3, "{kept}");
    let mut reset = kept.clone();
    reset["metadata"]["managedFields"] = json!([]);
    let (_, cleared) =
        api.send(reqwest::Method::PUT, &format!("{cm_path}/c"), "application/json", reset.to_string()).await;
    assert!(cleared["metadata"].get("managedFields").is_none(), "{cleared}");
    // Garbage is ignored: the live entries stay.
    let mut garbage = cleared.clone();
    garbage["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Bogus"}]);
    garbage["data"]["c"] = json!("4");
    let (code, ignored) = api
        .send(reqwest::Method::PUT, &format!("{cm_path}/c"), "application/json", garbage.to_string())
        .await;
    assert_eq!(code, 200, "{ignored}");
    assert_eq!(managers(&ignored), [("kubectl".into(), "Update".into(), "".into())], "{ignored}");
}

#[tokio::test]
async fn apply_to_status_owns_only_status() {
    let api = Api::start().await;
    let (code, _) =
        api.apply("fieldManager=kubectl", &deployment(Some(1), json!({"app": "web"}), "r/web:1")).await;
    assert_eq!(code, 201);
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 9}, "status": {"observedGeneration": 1, "replicas": 1}});
    let (code, out) = api
        .send(
            reqwest::Method::PATCH,
            &format!("{DEPLOY}/status?fieldManager=ctrl"),
            APPLY,
            status.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["replicas"], 1);
    assert_eq!(out["spec"]["replicas"], 1, "/status does not write spec");
    let owned = &entry(&out, "ctrl", "Apply")["fieldsV1"];
    assert_eq!(owned, &json!({"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}));
    assert_eq!(entry(&out, "ctrl", "Apply")["subresource"], "status");
}
