//! Deployment rollouts end to end, through kubectl, against hello-http side-loaded under three
//! tags (`:3` is the crasher: a version that never becomes ready).
//!
//! - A rolling update with maxUnavailable 0 under continuous HTTP load to the serving pods
//!   loses no request, never runs more than replicas + maxSurge pods, never fewer serving; the
//!   same load through a Service's cluster IP loses none either.
//! - A broken version stalls within maxUnavailable, the progress deadline turns the rollout
//!   failed, and `rollout undo` brings the working version back; pause / resume / restart and
//!   the revision history limit along the way.
//! - The control plane killed in the middle of a rollout: after a restart it completes with the
//!   right pod count and no duplicate ReplicaSet.
//! - Recreate: no new pod starts while an old one is still there.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use serde_json::Value;
use wasmkube_e2e::{
    cluster::{Cluster, http_get},
    pod_watch::PodWatch,
};

const V1: &str = "example.local/hello-http:1";
const V2: &str = "example.local/hello-http:2";
const BROKEN: &str = "example.local/hello-http:3";
const PATIENCE: Duration = Duration::from_secs(120);

fn started_cluster(dir: &std::path::Path) -> anyhow::Result<Cluster> {
    let cluster = Cluster::up(&dir.join("cluster"), "node-a")?;
    cluster.side_load("hello-http.wasm", V1)?;
    cluster.side_load("hello-http.wasm", V2)?;
    cluster.side_load("crasher.wasm", BROKEN)?;
    Ok(cluster)
}

/// The `web` Deployment: hello-http greeting with `version`, a readiness probe, and a preStop
/// pause so a pod leaving keeps serving what was already routed to it (as Kubernetes users do).
fn web(image: &str, version: &str, replicas: u32, strategy: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  strategy: {strategy}{extra_spec}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: web
        image: {image}
        imagePullPolicy: Never
        ports: [{{containerPort: 8080}}]
        env: [{{name: GREETING, value: '{version}'}}]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
        lifecycle: {{preStop: {{sleep: {{seconds: 2}}}}}}
"
    )
}

const NO_DOWNTIME: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

/// What the load generator saw.
#[derive(Default, Debug)]
struct Load {
    ok: usize,
    answers_v2: usize,
    failures: Vec<String>,
}

/// Send requests until `stop`: to `service` (a cluster IP:port) when given, else round-robin to
/// the serving pods.
fn generate_load(
    watch: Arc<PodWatch>,
    service: Option<String>,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Load>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut turn = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let targets = match &service {
                Some(addr) => vec![addr.clone()],
                None => watch.serving_ips().into_iter().map(|ip| format!("{ip}:8080")).collect(),
            };
            let mut load = load_of(&shared);
            let Some(target) = targets.get(turn % targets.len().max(1)) else {
                load.failures.push("no pod was serving".into());
                // Nothing to send to (a failure already): go on once the watch sees a change.
                drop(load);
                watch.wait_for_event(Duration::from_secs(1));
                continue;
            };
            turn += 1;
            drop(load);
            let answer = http_get(target, "/");
            let mut load = load_of(&shared);
            match answer {
                Ok((200, body)) => {
                    load.ok += 1;
                    if body.contains("v2") {
                        load.answers_v2 += 1;
                    }
                }
                Ok((code, body)) => load.failures.push(format!("{target}: {code} {body}")),
                Err(e) => load.failures.push(format!("{target}: {e:#}")),
            }
        }
    })
}

fn load_of(shared: &Mutex<Load>) -> std::sync::MutexGuard<'_, Load> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn deployment(cluster: &Cluster) -> anyhow::Result<Value> {
    cluster.get_json(&["deployment", "web"])
}

fn replicasets(cluster: &Cluster) -> anyhow::Result<Vec<Value>> {
    Ok(cluster.get_json(&["replicasets", "-l", "app=web"])?["items"].as_array().cloned().unwrap_or_default())
}

#[test]
fn a_rolling_update_under_load_loses_no_request() -> anyhow::Result<()> {
    rolling_update_under_load(false)
}

/// The same through a Service: the node proxy follows the endpoints as pods become ready and
/// leave, so clients of the cluster IP see no failure either.
#[test]
fn a_rolling_update_under_load_through_a_service_loses_no_request() -> anyhow::Result<()> {
    rolling_update_under_load(true)
}

fn rolling_update_under_load(through_service: bool) -> anyhow::Result<()> {
    let work = tempfile::Builder::new().prefix("rollout-dbg").tempdir_in("/tmp")?.keep();
    let work = DbgDir(work);
    let cluster = started_cluster(work.path())?;
    cluster.apply_yaml("web", &web(V1, "v1", 3, NO_DOWNTIME, ""))?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    let watch = Arc::new(PodWatch::start(&cluster, "app=web")?);
    watch
        .wait_until("3 pods serving", PATIENCE, |pods| pods.values().filter(|p| p.serving()).count() == 3)?;
    let service = match through_service {
        true => Some(serving_service(&cluster)?),
        false => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    // Four clients at once, so some request is always in flight when a pod leaves.
    let generators: Vec<_> =
        (0..4).map(|_| generate_load(watch.clone(), service.clone(), stop.clone(), load.clone())).collect();
    watch.reset_extremes();
    cluster.apply_yaml("web", &web(V2, "v2", 3, NO_DOWNTIME, ""))?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    watch.wait_until("only v2 pods serve", PATIENCE, |pods| {
        pods.values().filter(|p| p.serving()).count() == 3
            && pods.values().filter(|p| p.live()).all(|p| p.image == V2)
    })?;
    let (max_live, min_serving) = watch.extremes();
    let after_rollout = load.lock().unwrap_or_else(|p| p.into_inner()).answers_v2;
    // Keep the load on until v2 has answered a few more times, then stop.
    watch.wait_until("v2 answers", PATIENCE, |_| {
        load.lock().map(|l| l.answers_v2 > after_rollout + 10).unwrap_or(true)
    })?;
    stop.store(true, Ordering::Relaxed);
    for generator in generators {
        generator.join().map_err(|_| anyhow::anyhow!("the load generator panicked"))?;
    }

    let load = load.lock().unwrap_or_else(|p| p.into_inner());
    let first: Vec<&String> = load.failures.iter().take(10).collect();
    assert!(
        load.failures.is_empty(),
        "{} of {} requests failed, first: {first:?}",
        load.failures.len(),
        load.ok + load.failures.len()
    );
    assert!(load.ok > 50, "{load:?}");
    assert!(max_live <= 4, "maxSurge 1 over 3 replicas, yet {max_live} live pods at once");
    assert!(min_serving >= 3, "maxUnavailable 0, yet only {min_serving} pods served at one point");
    let d = deployment(&cluster)?;
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2", "{d:#}");
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
        "-o",
        "name",
    ])?;
    assert!(!events.is_empty());
    Ok(())
}

/// A Service in front of `web`; its cluster IP:port once it answers.
fn serving_service(cluster: &Cluster) -> anyhow::Result<String> {
    cluster.apply_yaml(
        "web-svc",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n",
    )?;
    let ip = cluster.get_json(&["service", "web"])?["spec"]["clusterIP"]
        .as_str()
        .context("no cluster IP")?
        .to_string();
    let addr = format!("{ip}:80");
    // Until the proxy listens and knows the endpoints: a 503 before that is no answer.
    wasmkube_e2e::cluster::http_get_until(&addr, "/", PATIENCE, |code, _| code == 200)?;
    Ok(addr)
}

fn progressing(d: &Value) -> (String, String) {
    let conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let c = conditions.iter().find(|c| c["type"] == "Progressing").cloned().unwrap_or_default();
    (c["status"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string())
}

#[test]
fn a_broken_version_stalls_and_undo_recovers() -> anyhow::Result<()> {
    let work = tempfile::Builder::new().prefix("rollout-dbg").tempdir_in("/tmp")?.keep();
    let work = DbgDir(work);
    let cluster = started_cluster(work.path())?;
    let rolling = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}";
    let deadline = "\n  progressDeadlineSeconds: 15\n  revisionHistoryLimit: 2";
    cluster.apply_yaml("web", &web(V1, "v1", 4, rolling, deadline))?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    cluster.apply_yaml("web", &web(V2, "v2", 4, rolling, deadline))?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    let watch = PodWatch::start(&cluster, "app=web")?;
    watch
        .wait_until("4 pods serving", PATIENCE, |pods| pods.values().filter(|p| p.serving()).count() == 4)?;
    watch.reset_extremes();

    // :3 never becomes ready: the rollout stops within maxUnavailable and times out.
    cluster.apply_yaml("web", &web(BROKEN, "v3", 4, rolling, deadline))?;
    let status = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!status.status.success(), "rollout status must fail on a stalled rollout");
    assert!(stderr.contains("exceeded its progress deadline"), "{stderr}");
    let d = deployment(&cluster)?;
    assert_eq!(progressing(&d), ("False".into(), "ProgressDeadlineExceeded".into()), "{d:#}");
    let (max_live, min_serving) = watch.extremes();
    assert!(min_serving >= 3, "maxUnavailable 1 over 4 replicas, yet only {min_serving} pods served");
    assert!(max_live <= 5, "maxSurge 1 over 4 replicas, yet {max_live} live pods");
    for ip in watch.serving_ips() {
        assert_eq!(http_get(&format!("{ip}:8080"), "/")?.0, 200, "a v2 pod still serves");
    }

    // Undo goes back to v2 (revision 2 becomes revision 4).
    cluster.kubectl_ok(&["rollout", "undo", "deployment/web", "--to-revision=2"])?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    watch.wait_until("4 v2 pods serve", PATIENCE, |pods| {
        pods.values().filter(|p| p.serving() && p.image == V2).count() == 4
            && pods.values().filter(|p| p.live()).all(|p| p.image == V2)
    })?;
    let d = deployment(&cluster)?;
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "4", "{d:#}");
    assert_eq!(progressing(&d), ("True".into(), "NewReplicaSetAvailable".into()), "{d:#}");
    let history = cluster.kubectl_ok(&["rollout", "history", "deployment/web"])?;
    assert!(history.contains('3') && history.contains('4'), "{history}");

    // Paused: a template change is recorded but not rolled out; resume rolls it.
    let sets_before_pause = replicasets(&cluster)?;
    let oldest_sets: Vec<String> = sets_before_pause
        .iter()
        .filter(|rs| {
            let revision = &rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"];
            revision == "1" || revision == "3"
        })
        .filter_map(|rs| rs["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(oldest_sets.len(), 2, "revisions 1 and 3 are kept until the history is full");
    let sets_before_pause = sets_before_pause.len();
    cluster.kubectl_ok(&["rollout", "pause", "deployment/web"])?;
    cluster.kubectl_ok(&["set", "env", "deployment/web", "GREETING=v2-tuned"])?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}=DeploymentPaused",
        "deployment/web",
        "--timeout=60s",
    ])?;
    let d = deployment(&cluster)?;
    assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"], "{d:#}");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "4",
        "nothing rolled while paused"
    );
    assert_eq!(replicasets(&cluster)?.len(), sets_before_pause, "no new ReplicaSet while paused");
    cluster.kubectl_ok(&["rollout", "resume", "deployment/web"])?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    assert_eq!(deployment(&cluster)?["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "5");

    // restart rolls the same template again; the history keeps 2 old sets besides the current.
    cluster.kubectl_ok(&["rollout", "restart", "deployment/web"])?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    assert_eq!(deployment(&cluster)?["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "6");
    // The oldest go first: revision 1 (v1) when 5 was made, revision 3 (the broken v3) when 6 was.
    let oldest: Vec<String> = oldest_sets.iter().map(|name| format!("replicaset/{name}")).collect();
    let mut wait = vec!["wait", "--for=delete", "--timeout=120s"];
    wait.extend(oldest.iter().map(String::as_str));
    cluster.kubectl_ok(&wait)?;
    let sets = replicasets(&cluster)?;
    let revisions: Vec<&str> = sets
        .iter()
        .filter_map(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str())
        .collect();
    assert_eq!(sets.len(), 3, "revisionHistoryLimit 2 keeps 2 old sets besides the current: {revisions:?}");
    Ok(())
}

#[test]
fn a_rollout_survives_a_control_plane_restart() -> anyhow::Result<()> {
    let work = tempfile::Builder::new().prefix("rollout-dbg").tempdir_in("/tmp")?.keep();
    let work = DbgDir(work);
    let data = work.path().join("cluster");
    let port = wasmkube_e2e::cluster::free_port();
    let network = wasmkube_e2e::cluster::PodNetworkLease::reserve()?;
    let mut cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    cluster.side_load("hello-http.wasm", V1)?;
    cluster.side_load("hello-http.wasm", V2)?;
    // minReadySeconds makes each step take a few seconds: there is a middle to stop in.
    let slow = "\n  minReadySeconds: 3";
    cluster.apply_yaml("web", &web(V1, "v1", 4, NO_DOWNTIME, slow))?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    cluster.apply_yaml("web", &web(V2, "v2", 4, NO_DOWNTIME, slow))?;
    cluster.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.updatedReplicas}=2",
        "deployment/web",
        "--timeout=120s",
    ])?;
    let mid = deployment(&cluster)?;
    assert_ne!(mid["status"]["updatedReplicas"], 4, "stopped in the middle: {mid:#}");

    let status = cluster.process.terminate()?;
    assert!(status.success(), "up exits cleanly on SIGTERM: {status}");
    drop(cluster);
    let cluster = Cluster::up_on(&data, "node-a", port, &network)?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=180s"])?;
    let watch = PodWatch::start(&cluster, "app=web")?;
    watch.wait_until("4 v2 pods and nothing else", PATIENCE, |pods| {
        let live: Vec<_> = pods.values().filter(|p| p.live()).collect();
        live.len() == 4 && live.iter().all(|p| p.image == V2 && p.serving())
    })?;
    let sets = replicasets(&cluster)?;
    assert_eq!(sets.len(), 2, "one set per template, none duplicated: {sets:#?}");
    let d = deployment(&cluster)?;
    assert_eq!(
        (d["status"]["replicas"].as_i64(), d["status"]["updatedReplicas"].as_i64()),
        (Some(4), Some(4)),
        "{d:#}"
    );
    Ok(())
}

#[test]
fn recreate_starts_no_new_pod_while_an_old_one_remains() -> anyhow::Result<()> {
    let work = tempfile::Builder::new().prefix("rollout-dbg").tempdir_in("/tmp")?.keep();
    let work = DbgDir(work);
    let cluster = started_cluster(work.path())?;
    cluster.apply_yaml("web", &web(V1, "v1", 2, "{type: Recreate}", ""))?;
    cluster.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"])?;
    let watch = PodWatch::start(&cluster, "app=web")?;
    watch
        .wait_until("2 pods serving", PATIENCE, |pods| pods.values().filter(|p| p.serving()).count() == 2)?;
    let overlap = Arc::new(AtomicBool::new(false));
    cluster.apply_yaml("web", &web(V2, "v2", 2, "{type: Recreate}", ""))?;
    let saw_overlap = overlap.clone();
    watch
        .wait_until("2 v2 pods serving", PATIENCE, |pods| {
            // Any pod of v1 (terminating included) next to one of v2 is an overlap.
            if pods.values().any(|p| p.image == V1) && pods.values().any(|p| p.image == V2) {
                saw_overlap.store(true, Ordering::Relaxed);
            }
            pods.values().filter(|p| p.serving() && p.image == V2).count() == 2
        })
        .context("recreate rollout")?;
    assert!(!overlap.load(Ordering::Relaxed), "a v2 pod existed while a v1 pod was still there");
    Ok(())
}

struct DbgDir(std::path::PathBuf);
impl DbgDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}
