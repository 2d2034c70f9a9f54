//! kube-rs, as a Rust user would point it at a cluster: typed create / get / list / patch /
//! delete, a raw watch resumed from a resourceVersion (and 410 once it has expired), and
//! kube-runtime's watcher in both list strategies (list+watch, and the streaming list).

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Client, Config,
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::watcher,
};
use serde_json::json;
use wasmkube_e2e::cluster::Cluster;

const STEP: std::time::Duration = std::time::Duration::from_secs(20);

async fn client(cluster: &Cluster) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig())?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"from": "kube-rs"}}, "data": {"a": "1"}}),
    )
    .expect("configmap")
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_works_unchanged() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up_with(&work.path().join("cluster"), "node-a", &["--watch-history", "50"])?;
    let client = client(&cluster).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Typed CRUD.
    let created = cms.create(&PostParams::default(), &configmap("rs-cm")).await?;
    assert!(created.metadata.uid.is_some());
    let patched =
        cms.patch("rs-cm", &PatchParams::default(), &Patch::Strategic(json!({"data": {"b": "2"}}))).await?;
    assert_eq!(patched.data.as_ref().map(|d| d.len()), Some(2));
    let merged =
        cms.patch("rs-cm", &PatchParams::default(), &Patch::Merge(json!({"data": {"a": null}}))).await?;
    assert_eq!(merged.data.as_ref().map(|d| d.len()), Some(1));
    let listed = cms.list(&ListParams::default().labels("from=kube-rs")).await?;
    assert_eq!(listed.items.len(), 1);
    let rv = listed.metadata.resource_version.clone().unwrap_or_default();

    // A raw watch resumed from the list's resourceVersion sees exactly the later changes.
    cms.patch("rs-cm", &PatchParams::default(), &Patch::Merge(json!({"data": {"c": "3"}}))).await?;
    cms.delete("rs-cm", &DeleteParams::default()).await?;
    let mut stream = cms.watch(&WatchParams::default().timeout(10), &rv).await?.boxed();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(STEP, stream.try_next()).await?? {
            Some(WatchEvent::Modified(_)) => kinds.push("MODIFIED"),
            Some(WatchEvent::Deleted(_)) => kinds.push("DELETED"),
            Some(WatchEvent::Bookmark(_)) => {}
            other => anyhow::bail!("unexpected event {other:?}"),
        }
    }
    assert_eq!(kinds, ["MODIFIED", "DELETED"]);

    // Push the history past the watch window: the old resourceVersion now gives 410.
    for i in 0..60 {
        cms.create(&PostParams::default(), &configmap(&format!("churn-{i}"))).await?;
    }
    let mut stream = cms.watch(&WatchParams::default().timeout(10), &rv).await?.boxed();
    match tokio::time::timeout(STEP, stream.try_next()).await?? {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410, "{e:?}"),
        other => anyhow::bail!("expected a 410 ERROR event, got {other:?}"),
    }

    // kube-runtime's watcher, both ways of listing: it must see every churn object, then a new one.
    for config in [watcher::Config::default(), watcher::Config::default().streaming_lists()] {
        let name = format!(
            "late-{}",
            if config.initial_list_strategy == watcher::InitialListStrategy::ListWatch { "lw" } else { "sl" }
        );
        let mut events = watcher(cms.clone(), config).boxed();
        let mut seen = std::collections::BTreeSet::new();
        let mut created_late = false;
        loop {
            let event = tokio::time::timeout(STEP, events.try_next())
                .await??
                .ok_or_else(|| anyhow::anyhow!("watcher ended"))?;
            match event {
                watcher::Event::InitApply(cm) | watcher::Event::Apply(cm) => {
                    seen.insert(cm.metadata.name.unwrap_or_default());
                }
                watcher::Event::InitDone if !created_late => {
                    assert!(seen.len() >= 60, "initial list complete: {}", seen.len());
                    cms.create(&PostParams::default(), &configmap(&name)).await?;
                    created_late = true;
                }
                _ => {}
            }
            if seen.contains(&name) {
                break;
            }
        }
    }

    // A typed Deployment round-trips through the server's defaults.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(
        json!({"metadata": {"name": "rs-web"}, "spec": {"selector": {"matchLabels": {"app": "w"}},
        "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "127.0.0.1:1/absent:1"}]}}}}),
    )?;
    let d = deploys.create(&PostParams::default(), &d).await?;
    assert_eq!(serde_json::to_value(&d)?["spec"]["replicas"], 1, "defaulted");
    let scale = deploys.get_scale("rs-web").await?;
    assert_eq!(serde_json::to_value(&scale)?["spec"]["replicas"], 1);
    deploys.delete("rs-web", &DeleteParams::foreground()).await?;
    Ok(())
}
