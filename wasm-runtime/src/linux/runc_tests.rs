//! The runtime with the real runc: a layer holding Debian's static busybox is unpacked,
//! started, logged, stopped and OOM-killed. Needs root, `/usr/sbin/runc` and `/bin/busybox`
//! from busybox-static (scripts/install-test-deps.sh); without them each test says so and
//! passes, so a non-root developer can still run the crate's tests (CI runs them as root).

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::logs::parse_cri_line;

fn usable() -> bool {
    let ok = Path::new(DEFAULT_RUNC).exists()
        && Path::new("/bin/busybox").exists()
        && std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !ok {
        eprintln!("skipped: needs root, {DEFAULT_RUNC} and /bin/busybox (busybox-static)");
    }
    ok
}

struct Fixture {
    dir: tempfile::TempDir,
    runtime: LinuxRuntime,
    image: PreparedImage,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_path_with_name("/bin/busybox", "bin/busybox").expect("busybox into the layer");
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder.append_link(&mut header, "bin/sh", "busybox").expect("symlink");
    let layer = dir.path().join("layer.tar");
    std::fs::write(&layer, builder.into_inner().expect("tar")).expect("write layer");
    let config = dir.path().join("config.json");
    let config_json = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["FROM_IMAGE=yes"]},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    std::fs::write(&config, config_json.to_string()).expect("write config");
    let runtime =
        LinuxRuntime::new(LinuxConfig { state_dir: dir.path().join("state"), runc: DEFAULT_RUNC.into() })
            .expect("runtime");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let image = LinuxImage {
        manifest_digest: digest.clone(),
        config_path: config,
        layers: vec![LayerBlob { digest: "sha256:layer".into(), path: layer }],
    };
    let image = runtime.prepare(image).await.expect("prepares");
    Fixture { dir, runtime, image }
}

impl Fixture {
    fn spec(&self, id: &str, script: &str) -> LinuxSpec {
        LinuxSpec {
            id: id.into(),
            hostname: "box".into(),
            process: ProcessOverrides {
                command: Some(vec!["sh".into(), "-c".into(), script.into()]),
                env: vec![("GREETING".into(), "hi".into())],
                ..Default::default()
            },
            log_path: self.dir.path().join(format!("logs/{id}.log")),
            ..Default::default()
        }
    }

    fn log(&self, id: &str) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.path().join(format!("logs/{id}.log"))).unwrap_or_default();
        text.lines()
            .filter_map(parse_cri_line)
            .map(|l| format!("{} {}", l.stream.as_str(), l.content))
            .collect()
    }

    fn bundle_gone(&self, id: &str) -> bool {
        !self.dir.path().join("state/containers").join(id).exists()
    }
}

#[tokio::test]
async fn runs_logs_and_exits_with_the_process_code() {
    if !usable() {
        return;
    }
    let f = fixture().await;
    let spec = f.spec("exit3", "echo $GREETING $FROM_IMAGE $(hostname); echo oops >&2; printf tail; exit 3");
    let mut running = f.runtime.start(&f.image, spec).await.expect("starts");
    assert_eq!(running.world(), None);
    let status = tokio::time::timeout(Duration::from_secs(30), running.wait()).await.expect("ends");
    assert_eq!((status.code, status.reason.as_str()), (3, "Error"));
    let log = f.log("exit3");
    assert!(log.contains(&"stdout hi yes box".to_string()), "{log:?}");
    assert!(log.contains(&"stderr oops".to_string()), "{log:?}");
    assert!(log.contains(&"stdout tail".to_string()), "a last line without newline: {log:?}");
    assert!(f.bundle_gone("exit3"));
}

#[tokio::test]
async fn a_missing_command_is_a_start_error() {
    if !usable() {
        return;
    }
    let f = fixture().await;
    let mut spec = f.spec("missing", "");
    spec.process.command = Some(vec!["/no/such/binary".into()]);
    let error = f.runtime.start(&f.image, spec).await.err().expect("refused");
    assert!(error.to_string().contains("/no/such/binary"), "{error}");
    assert!(f.bundle_gone("missing"));
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_the_grace() {
    if !usable() {
        return;
    }
    let f = fixture().await;
    let polite = "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 1 & wait $!; done";
    let mut running = f.runtime.start(&f.image, f.spec("polite", polite)).await.expect("starts");
    let began = Instant::now();
    let status = running.stop(Duration::from_secs(20)).await;
    assert_eq!((status.code, status.reason.as_str()), (0, "Completed"), "the trap ran");
    assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
    assert!(f.log("polite").contains(&"stdout bye".to_string()), "{:?}", f.log("polite"));
    // PID 1 without a handler ignores SIGTERM: SIGKILL after the grace, exit 137.
    // It has a memory limit, so OOM kills are watched for: this SIGKILL is not one.
    let stubborn = "echo up; while true; do sleep 1; done";
    let mut spec = f.spec("stubborn", stubborn);
    spec.limits.memory_bytes = Some(64 << 20);
    let mut running = f.runtime.start(&f.image, spec).await.expect("starts");
    let began = Instant::now();
    let status = running.stop(Duration::from_secs(1)).await;
    assert_eq!((status.code, status.reason.as_str()), (137, "Error"), "{status:?}");
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert!(f.bundle_gone("polite") && f.bundle_gone("stubborn"));
}

#[tokio::test]
async fn a_dropped_handle_leaves_no_container() {
    if !usable() {
        return;
    }
    let f = fixture().await;
    let running = f.runtime.start(&f.image, f.spec("dropped", "sleep 1000")).await.expect("starts");
    drop(running);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f.bundle_gone("dropped") || f.dir.path().join("state/runc/dropped").exists() {
        assert!(Instant::now() < deadline, "the container outlived its handle");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn going_over_the_memory_limit_is_oom_killed() {
    if !usable() {
        return;
    }
    let f = fixture().await;
    let mut spec = f.spec("hog", "echo start; x=a; while true; do x=$x$x; done");
    spec.limits.memory_bytes = Some(16 << 20);
    let mut running = f.runtime.start(&f.image, spec).await.expect("starts");
    let status = tokio::time::timeout(Duration::from_secs(60), running.wait()).await.expect("ends");
    assert_eq!((status.code, status.reason.as_str()), (137, "OOMKilled"), "{status:?}");
}
