//! A real OCI registry for tests: the CNCF distribution server (Debian's `docker-registry`)
//! on 127.0.0.1 with filesystem storage in a temp dir, stopped when the handle drops.
//!
//! Tests get the real wire behaviour (error envelopes, chunked uploads, digest headers) and can
//! tamper with the stored blobs to check that clients verify digests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where Debian's `docker-registry` package installs the server.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How long the registry may take to answer `GET /v2/` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running registry; killed (and its storage deleted) on drop.
pub struct TestRegistry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry on a free loopback port and waits until it serves `GET /v2/`.
    pub fn start() -> anyhow::Result<TestRegistry> {
        if !Path::new(REGISTRY_BIN).exists() {
            bail!(
                "{REGISTRY_BIN} is missing: run scripts/install-test-deps.sh (installs docker-registry and skopeo)"
            );
        }
        // The port is free when we ask but not reserved; if another process takes it before
        // the registry binds, the registry exits and we try another one.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::start_once() {
                Ok(registry) => return Ok(registry),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    fn start_once() -> anyhow::Result<TestRegistry> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let dir = tempfile::Builder::new().prefix("wasmkube-registry-").tempdir()?;
        let config = dir.path().join("config.yml");
        std::fs::create_dir_all(dir.path().join("storage"))?;
        std::fs::write(&config, config_yaml(&addr, &dir.path().join("storage")))?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {REGISTRY_BIN}"))?;
        let mut registry = TestRegistry { child, addr, dir };
        registry.wait_ready()?;
        Ok(registry)
    }

    /// Polls `GET /v2/` until it answers 200, failing fast if the server exits.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited with {status} before serving:\n{}", self.log());
            }
            if v2_answers_ok(&self.addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer GET /v2/ within {START_TIMEOUT:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `<addr>/<repository_and_tag>`, e.g. `reference("hello:1")`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.addr)
    }

    /// The registry's storage root (`docker/registry/v2/...` lives below it).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The file holding blob `digest` (`sha256:<hex>`), for tests that corrupt stored content.
    pub fn blob_data_path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64)
            .with_context(|| format!("not a sha256 digest: {digest}"))?;
        Ok(self.storage_dir().join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data"))
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(addr: &str, storage: &Path) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: wasmkube-test-only\n\
         health:\n  storagedriver:\n    enabled: false\n",
        storage = storage.display()
    )
}

/// One plain HTTP/1.0 `GET /v2/`; true on a 200. No HTTP client crate needed for this.
fn v2_answers_ok(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}
