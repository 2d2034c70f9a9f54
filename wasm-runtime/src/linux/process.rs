//! What the container's process is: the image config's defaults (Entrypoint, Cmd, Env,
//! WorkingDir, User) with the Pod spec applied the way Kubernetes applies it.
//!
//! - `command` replaces Entrypoint (and then Cmd is dropped), `args` replaces Cmd;
//! - the pod's env is laid over the image's (same name: the pod's value, in the image's place);
//!   `PATH` and `HOME` get Docker's defaults when neither gives them;
//! - `workingDir` replaces WorkingDir (default `/`);
//! - `runAsUser`/`runAsGroup` replace the uid/gid of the image's `User`, whose names are looked
//!   up in the rootfs' own `/etc/passwd` and `/etc/group` (read through `safe_path`).

use std::io::Read;
use std::path::Path;

use super::safe_path::{entry_components, resolve_dir};
use crate::RuntimeError;

/// Docker's default `PATH`, for images that do not set one.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Most of `/etc/passwd` or `/etc/group` that is read (an image could make them huge).
const MAX_ACCOUNT_FILE: u64 = 1 << 20;

/// The parts of an image config the runtime reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

impl ImageDefaults {
    /// Reads the image config blob at `path` (OCI or Docker; both carry the same `config`).
    pub(crate) fn read(path: &Path, image: &str) -> Result<Self, RuntimeError> {
        let config =
            oci_spec::image::ImageConfiguration::from_file(path).map_err(|e| RuntimeError::ImageConfig {
                image: image.to_string(),
                reason: format!("unreadable image config: {e}"),
            })?;
        let Some(exec) = config.config() else {
            return Ok(Self::default());
        };
        Ok(Self {
            entrypoint: exec.entrypoint().clone().unwrap_or_default(),
            cmd: exec.cmd().clone().unwrap_or_default(),
            env: exec.env().clone().unwrap_or_default(),
            working_dir: exec.working_dir().clone().filter(|d| !d.is_empty()),
            user: exec.user().clone().filter(|u| !u.is_empty()),
        })
    }
}

/// The Pod spec's say over the process (`None`: not given, use the image's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessOverrides {
    /// `command`: replaces the image's Entrypoint.
    pub command: Option<Vec<String>>,
    /// `args`: replaces the image's Cmd.
    pub args: Option<Vec<String>>,
    /// The resolved `env`/`envFrom`, laid over the image's Env.
    pub env: Vec<(String, String)>,
    /// `workingDir`.
    pub working_dir: Option<String>,
    /// `securityContext.runAsUser`.
    pub run_as_user: Option<u32>,
    /// `securityContext.runAsGroup`.
    pub run_as_group: Option<u32>,
}

/// The process runc starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
}

/// Combines image and pod into the process, resolving user names in `rootfs`.
pub(crate) fn plan(
    image: &ImageDefaults,
    pod: &ProcessOverrides,
    rootfs: &Path,
    image_name: &str,
) -> Result<ProcessPlan, RuntimeError> {
    let refuse = |reason: String| RuntimeError::ImageConfig { image: image_name.to_string(), reason };
    let args: Vec<String> = match (&pod.command, &pod.args) {
        (Some(command), Some(args)) => command.iter().chain(args).cloned().collect(),
        (Some(command), None) => command.clone(),
        (None, Some(args)) => image.entrypoint.iter().chain(args).cloned().collect(),
        (None, None) => image.entrypoint.iter().chain(&image.cmd).cloned().collect(),
    };
    if args.is_empty() {
        return Err(refuse("the image has no Entrypoint or Cmd and the container sets no command".into()));
    }
    let cwd = pod.working_dir.clone().or_else(|| image.working_dir.clone()).unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(refuse(format!("workingDir {cwd:?} is not an absolute path")));
    }
    let (mut uid, mut gid, home) = image_user(image.user.as_deref(), rootfs).map_err(refuse)?;
    if let Some(u) = pod.run_as_user {
        uid = u;
    }
    if let Some(g) = pod.run_as_group {
        gid = g;
    }
    let mut env = image.env.clone();
    for (name, value) in &pod.env {
        let entry = format!("{name}={value}");
        match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == name) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    let has = |env: &[String], name: &str| env.iter().any(|e| e.starts_with(&format!("{name}=")));
    if !has(&env, "PATH") {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", home.unwrap_or_else(|| "/".into())));
    }
    Ok(ProcessPlan { args, env, cwd, uid, gid })
}

/// uid, gid and home directory of the image's `User` (`uid`, `uid:gid`, `name`, `name:group`).
fn image_user(user: Option<&str>, rootfs: &Path) -> Result<(u32, u32, Option<String>), String> {
    let Some(user) = user else {
        return Ok((0, 0, None));
    };
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_rootfs_file(rootfs, "etc/passwd");
    // passwd: name:x:uid:gid:gecos:home:shell
    let account = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| {
        f.len() >= 6 && (f[0] == user_part || user_part.parse::<u32>().is_ok_and(|u| f[2] == u.to_string()))
    });
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => account
            .as_ref()
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("the image's User {user_part:?} is not in its /etc/passwd"))?,
    };
    let gid = match group_part {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read_rootfs_file(rootfs, "etc/group")
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == group)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("the image's group {group:?} is not in its /etc/group"))?,
        },
        None => account.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let home = account.and_then(|f| f.get(5).map(|h| h.to_string())).filter(|h| !h.is_empty());
    Ok((uid, gid, home))
}

/// A small text file of the rootfs, read through `safe_path` (an image's `/etc/passwd` may be
/// a symlink to the host's); empty when missing or unsafe.
fn read_rootfs_file(rootfs: &Path, name: &str) -> String {
    let Ok(parts) = entry_components(name.as_bytes()) else {
        return String::new();
    };
    // Every component, the file's own name included, may be a symlink: follow them all, but
    // only inside the rootfs.
    let Ok(path) = resolve_dir(rootfs, &parts) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let read = std::fs::File::open(&path).and_then(|f| f.take(MAX_ACCOUNT_FILE).read_to_end(&mut bytes));
    if read.is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/bin/app".into()],
            cmd: vec!["--serve".into()],
            env: vec!["PATH=/bin".into(), "MODE=image".into()],
            working_dir: Some("/srv".into()),
            user: None,
        }
    }

    fn args(pod: ProcessOverrides) -> Vec<String> {
        plan(&image(), &pod, Path::new("/nonexistent"), "img").expect("plans").args
    }

    #[test]
    fn command_and_args_override_as_in_kubernetes() {
        let v = |s: &[&str]| Some(s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(args(ProcessOverrides::default()), ["/bin/app", "--serve"]);
        assert_eq!(args(ProcessOverrides { command: v(&["sh"]), ..Default::default() }), ["sh"]);
        assert_eq!(args(ProcessOverrides { args: v(&["-v"]), ..Default::default() }), ["/bin/app", "-v"]);
        let both = ProcessOverrides { command: v(&["sh"]), args: v(&["-c", "x"]), ..Default::default() };
        assert_eq!(args(both), ["sh", "-c", "x"]);
        let none = ImageDefaults::default();
        assert!(plan(&none, &ProcessOverrides::default(), Path::new("/"), "img").is_err());
    }

    #[test]
    fn env_is_laid_over_the_image_and_defaults_filled_in() {
        let pod = ProcessOverrides {
            env: vec![("MODE".into(), "pod".into()), ("EXTRA".into(), "1".into())],
            working_dir: Some("/work".into()),
            run_as_user: Some(1000),
            ..Default::default()
        };
        let plan = plan(&image(), &pod, Path::new("/nonexistent"), "img").expect("plans");
        assert_eq!(plan.env, ["PATH=/bin", "MODE=pod", "EXTRA=1", "HOME=/"]);
        assert_eq!((plan.cwd.as_str(), plan.uid, plan.gid), ("/work", 1000, 0));
        let mut bare = image();
        bare.env.clear();
        let plan = super::plan(&bare, &ProcessOverrides::default(), Path::new("/x"), "img").expect("plans");
        assert_eq!(plan.env[0], DEFAULT_PATH);
        assert_eq!(plan.cwd, "/srv");
    }

    #[test]
    fn user_names_come_from_the_rootfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        let with_user = |user: &str| ImageDefaults { user: Some(user.into()), ..image() };
        let run = |user: &str| plan(&with_user(user), &ProcessOverrides::default(), dir.path(), "img");
        let p = run("app").expect("named user");
        assert_eq!((p.uid, p.gid), (1001, 1002));
        assert!(p.env.contains(&"HOME=/home/app".to_string()));
        let p = run("app:staff").expect("named group");
        assert_eq!((p.uid, p.gid), (1001, 50));
        let p = run("42:43").expect("numeric");
        assert_eq!((p.uid, p.gid), (42, 43));
        assert!(run("nobody-here").is_err());
        let pod = ProcessOverrides { run_as_group: Some(7), ..Default::default() };
        let p = plan(&with_user("app"), &pod, dir.path(), "img").expect("override");
        assert_eq!((p.uid, p.gid), (1001, 7));
    }
}
