//! A pod's volumes on this node, and the directories each container is given from them.
//!
//! Every volume is a directory under `<data-dir>/pods/<uid>/volumes/<name>` (hostPath: the
//! node's own path), made before the first container starts and kept across container
//! restarts; the whole tree goes when the pod is finalized.
//!
//! - `emptyDir`: an empty directory (`medium: Memory` and `sizeLimit` are not honoured: it is
//!   always on disk, unbounded).
//! - `hostPath`: the node's path, with `type` checked (`DirectoryOrCreate` / `FileOrCreate`
//!   create it).
//! - `configMap` / `secret`: each key (or each `items` entry) as a file, always read-only to
//!   the container. The agent re-reads the sources every [`SYNC_PERIOD`] and rewrites a file
//!   (write to a temp file, then rename) only when its bytes changed, so a running container
//!   sees updates (kubelet's "Get" change-detection strategy), and a deleted key disappears.
//!
//! Other volume types are refused with a message naming the type.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use serde_json::Value;
use wasm_runtime::Mount;

use super::sources;
use crate::client::Client;

static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How often ConfigMap and Secret volumes are re-read.
pub const SYNC_PERIOD: Duration = Duration::from_secs(5);

/// The volumes of one pod.
pub struct PodVolumes {
    ns: String,
    volumes: BTreeMap<String, Volume>,
    /// Files each projected volume holds now, to remove keys that went away.
    written: Mutex<BTreeMap<String, BTreeSet<PathBuf>>>,
}

struct Volume {
    dir: PathBuf,
    kind: Kind,
}

enum Kind {
    EmptyDir,
    HostPath,
    /// A ConfigMap or Secret projected as files.
    Projected {
        source: &'static str,
        name: String,
        /// `items`: key → relative path; None projects every key under its own name.
        items: Option<Vec<(String, String)>>,
        optional: bool,
    },
}

/// Where a pod's volumes live on the node.
pub fn pod_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid)
}

impl PodVolumes {
    /// Reads `spec.volumes`, creates the directories (not yet the projected files: see
    /// [`PodVolumes::sync`]). Errors name the volume and what is wrong with it.
    pub fn new(pods_dir: &Path, pod: &Value) -> Result<Self, String> {
        let uid = crate::api::meta::uid(pod);
        if uid.is_empty() || uid.contains(['/', '.']) {
            return Err(format!("pod has an unusable uid {uid:?}"));
        }
        let root = pod_dir(pods_dir, uid).join("volumes");
        let mut volumes = BTreeMap::new();
        for spec in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let name = spec["name"].as_str().unwrap_or("").to_string();
            let volume = Volume::new(&root, &name, spec).map_err(|e| format!("volume {name:?}: {e}"))?;
            volumes.insert(name, volume);
        }
        Ok(Self {
            ns: crate::api::meta::namespace(pod).to_string(),
            volumes,
            written: Mutex::new(BTreeMap::new()),
        })
    }

    /// Whether any volume comes from a ConfigMap or Secret (and so needs syncing).
    pub fn has_projections(&self) -> bool {
        self.volumes.values().any(|v| matches!(v.kind, Kind::Projected { .. }))
    }

    /// Writes or refreshes the files of every ConfigMap/Secret volume. A missing source that is
    /// not optional is an error (the container waits, as with `CreateContainerConfigError`).
    pub async fn sync(&self, client: &Client) -> Result<(), String> {
        for (name, volume) in &self.volumes {
            let Kind::Projected { source, name: source_name, items, optional } = &volume.kind else {
                continue;
            };
            let data = match sources::fetch(client, source, &self.ns, source_name).await? {
                Some(data) => data,
                None if *optional => BTreeMap::new(),
                None => {
                    return Err(format!(
                        "{} \"{source_name}\" not found (volume {name:?})",
                        source.to_lowercase()
                    ));
                }
            };
            let files = project(&data, items.as_deref(), *optional)
                .map_err(|e| format!("volume {name:?} from {} {source_name}: {e}", source.to_lowercase()))?;
            let previous = self.lock().get(name).cloned().unwrap_or_default();
            let now = write_files(&volume.dir, &files, &previous)
                .map_err(|e| format!("volume {name:?}: writing {}: {e}", volume.dir.display()))?;
            self.lock().insert(name.clone(), now);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<PathBuf>>> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directories `container` is given by its `volumeMounts`.
    pub fn mounts_for(&self, container: &Value) -> Result<Vec<Mount>, String> {
        let mut mounts = Vec::new();
        for m in container["volumeMounts"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap_or("");
            let path = m["mountPath"].as_str().unwrap_or("");
            let volume = self
                .volumes
                .get(name)
                .ok_or_else(|| format!("volumeMount {path:?}: no volume named {name:?} in the pod"))?;
            if !path.starts_with('/') {
                return Err(format!("volumeMount {name:?}: mountPath {path:?} must be absolute"));
            }
            if m["subPathExpr"].as_str().is_some_and(|s| !s.is_empty()) {
                return Err(format!("volumeMount {name:?}: subPathExpr is not supported"));
            }
            let mut host_path = volume.dir.clone();
            if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                host_path.push(relative(sub).map_err(|e| format!("volumeMount {name:?}: subPath {e}"))?);
                if matches!(volume.kind, Kind::EmptyDir) {
                    // kubelet creates a missing subPath directory in an emptyDir.
                    std::fs::create_dir_all(&host_path).map_err(|e| format!("volumeMount {name:?}: {e}"))?;
                }
            }
            let projected = matches!(volume.kind, Kind::Projected { .. });
            mounts.push(Mount {
                host_path,
                container_path: path.to_string(),
                read_only: projected || m["readOnly"].as_bool() == Some(true),
            });
        }
        Ok(mounts)
    }
}

impl Volume {
    fn new(root: &Path, name: &str, spec: &Value) -> Result<Self, String> {
        if crate::api::syntax::dns1123_label(name).is_err() {
            return Err("the name must be a DNS-1123 label".into());
        }
        let own_dir = root.join(name);
        let make =
            |dir: &Path| std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()));
        if spec["emptyDir"].is_object() {
            make(&own_dir)?;
            return Ok(Self { dir: own_dir, kind: Kind::EmptyDir });
        }
        if spec["hostPath"].is_object() {
            let dir = host_path(&spec["hostPath"])?;
            return Ok(Self { dir, kind: Kind::HostPath });
        }
        for (field, source, name_field) in
            [("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")]
        {
            let s = &spec[field];
            if !s.is_object() {
                continue;
            }
            let items = s["items"].as_array().map(|items| {
                items
                    .iter()
                    .map(|i| {
                        (
                            i["key"].as_str().unwrap_or("").to_string(),
                            i["path"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            });
            make(&own_dir)?;
            return Ok(Self {
                dir: own_dir,
                kind: Kind::Projected {
                    source,
                    name: s[name_field].as_str().unwrap_or("").to_string(),
                    items,
                    optional: s["optional"].as_bool() == Some(true),
                },
            });
        }
        let kind =
            spec.as_object().and_then(|o| o.keys().find(|k| *k != "name").cloned()).unwrap_or_default();
        Err(format!(
            "volume type {kind:?} is not supported on this node (emptyDir, hostPath, configMap and secret are)"
        ))
    }
}

/// Checks a hostPath volume's `type` and creates it for the `...OrCreate` types.
fn host_path(spec: &Value) -> Result<PathBuf, String> {
    let path = PathBuf::from(spec["path"].as_str().unwrap_or(""));
    if !path.is_absolute() {
        return Err(format!("hostPath {} must be absolute", path.display()));
    }
    let kind = spec["type"].as_str().unwrap_or("");
    let meta = std::fs::metadata(&path);
    let wrong = |what: &str| Err(format!("hostPath type check failed: {} is not {what}", path.display()));
    match kind {
        "" => {}
        "DirectoryOrCreate" if meta.is_err() => {
            std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?
        }
        "FileOrCreate" if meta.is_err() => {
            std::fs::File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        }
        "Directory" | "DirectoryOrCreate" if !meta.as_ref().is_ok_and(|m| m.is_dir()) => {
            return wrong("a directory");
        }
        "File" | "FileOrCreate" if !meta.as_ref().is_ok_and(|m| m.is_file()) => return wrong("a file"),
        "Directory" | "DirectoryOrCreate" | "File" | "FileOrCreate" => {}
        "Socket" | "CharDevice" | "BlockDevice" => {
            return Err(format!("hostPath type {kind} is not supported on this node"));
        }
        other => return Err(format!("unknown hostPath type {other:?}")),
    }
    Ok(path)
}

/// The files a ConfigMap/Secret volume holds: every key, or only the `items` (a missing key is
/// an error unless the volume is optional).
fn project(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[(String, String)]>,
    optional: bool,
) -> Result<BTreeMap<PathBuf, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    match items {
        None => {
            for (key, bytes) in data {
                files.insert(relative(key)?, bytes.clone());
            }
        }
        Some(items) => {
            for (key, path) in items {
                match data.get(key) {
                    Some(bytes) => {
                        files.insert(relative(path)?, bytes.clone());
                    }
                    None if optional => {}
                    None => return Err(format!("configured key {key:?} is missing")),
                }
            }
        }
    }
    Ok(files)
}

/// A path inside a volume: relative, no `..`, no empty or `.` components, not starting with `..`
/// (reserved, as kubelet reserves it for its own bookkeeping).
fn relative(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.starts_with("..")
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !path.split('/').any(str::is_empty);
    if ok { Ok(p.to_path_buf()) } else { Err(format!("{path:?} must be a relative path without '..'")) }
}

/// Brings `dir` to exactly `files`: writes changed files atomically, removes the ones in
/// `previous` that are gone. Returns the new set.
fn write_files(
    dir: &Path,
    files: &BTreeMap<PathBuf, Vec<u8>>,
    previous: &BTreeSet<PathBuf>,
) -> std::io::Result<BTreeSet<PathBuf>> {
    for (path, bytes) in files {
        let target = dir.join(path);
        if std::fs::read(&target).is_ok_and(|old| old == *bytes) {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Unique per write: several containers of the pod may sync at the same time.
        let n = TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!("..tmp-{}-{n}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &target)?;
    }
    for gone in previous.iter().filter(|p| !files.contains_key(*p)) {
        let _ = std::fs::remove_file(dir.join(gone));
    }
    Ok(files.keys().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_inside_a_volume_stay_inside() {
        assert!(relative("a/b.txt").is_ok());
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "..data", "a//b", "./a"] {
            assert!(relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn items_pick_and_rename_keys() {
        let data = BTreeMap::from([("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())]);
        let files = project(&data, Some(&[("b".into(), "sub/b.conf".into())]), false).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), [Path::new("sub/b.conf")]);
        assert!(project(&data, Some(&[("c".into(), "c".into())]), false).is_err());
        assert!(project(&data, Some(&[("c".into(), "c".into())]), true).unwrap().is_empty());
    }

    #[test]
    fn files_are_rewritten_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            BTreeMap::from([(PathBuf::from("a"), b"1".to_vec()), (PathBuf::from("b"), b"2".to_vec())]);
        let written = write_files(dir.path(), &first, &BTreeSet::new()).unwrap();
        let second = BTreeMap::from([(PathBuf::from("a"), b"changed".to_vec())]);
        write_files(dir.path(), &second, &written).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"changed");
        assert!(!dir.path().join("b").exists());
    }

    #[test]
    fn mounts_resolve_names_and_force_read_only_for_projections() {
        let dir = tempfile::tempdir().unwrap();
        let pod = json!({"metadata": {"uid": "u1", "namespace": "ns"}, "spec": {"volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "conf", "configMap": {"name": "app"}},
        ]}});
        let volumes = PodVolumes::new(dir.path(), &pod).unwrap();
        assert!(volumes.has_projections());
        let container = json!({"volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch", "subPath": "one"},
            {"name": "conf", "mountPath": "/etc/app"},
        ]});
        let mounts = volumes.mounts_for(&container).unwrap();
        assert_eq!(mounts[0].host_path, dir.path().join("u1/volumes/scratch/one"));
        assert!(mounts[0].host_path.is_dir() && !mounts[0].read_only);
        assert!(mounts[1].read_only);
        let missing = json!({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]});
        assert!(volumes.mounts_for(&missing).unwrap_err().contains("no volume named \"nope\""));
        let pvc = json!({"metadata": {"uid": "u2"}, "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]}});
        let err = PodVolumes::new(dir.path(), &pvc).err().unwrap();
        assert!(err.contains("\"persistentVolumeClaim\" is not supported"), "{err}");
    }
}
