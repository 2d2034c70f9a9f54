//! Shared helpers: engines with a temp cache, fixture paths, log reading, timeouts.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use wasm_runtime::logs::{CriLine, Stream, parse_cri_line};
use wasm_runtime::{ContainerSpec, EngineConfig, LoadedComponent, WasmEngine};

/// Upper bound for any single test; compiling a fixture in a debug build takes about a second.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, fut).await.expect("test timed out")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-apps/fixtures").join(name)
}

/// An engine whose cache lives in (and dies with) its own temp dir.
pub struct TestEnv {
    pub engine: WasmEngine,
    pub dir: TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine =
            WasmEngine::new(EngineConfig { cache_dir: dir.path().join("cache"), allocatable_memory: None })
                .expect("engine");
        Self { engine, dir }
    }

    pub async fn load_fixture(&self, name: &str) -> LoadedComponent {
        self.engine.load_component(&fixture(name), "sha256:unknown").await.expect("fixture loads")
    }

    /// Writes WAT text as a Wasm binary into the temp dir and loads it.
    pub async fn load_wat(&self, name: &str, wat: &str) -> LoadedComponent {
        let path = self.write_wat(name, wat);
        self.engine.load_component(&path, name).await.expect("WAT component loads")
    }

    pub fn write_wat(&self, name: &str, wat: &str) -> PathBuf {
        let bytes = wat::parse_str(wat).expect("valid WAT");
        let path = self.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).expect("write wasm");
        path
    }

    pub fn log_path(&self, container: &str) -> PathBuf {
        self.dir.path().join("logs").join(container).join("0.log")
    }

    pub fn spec(&self, name: &str, args: &[&str]) -> ContainerSpec {
        let mut spec = ContainerSpec::new(name, self.log_path(name));
        spec.args = args.iter().map(|a| a.to_string()).collect();
        spec
    }
}

/// Every line of a CRI log file, parsed; panics on a malformed line.
pub fn read_log(path: &Path) -> Vec<CriLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| parse_cri_line(line).unwrap_or_else(|| panic!("not a CRI log line: {line:?}")))
        .collect()
}

pub fn contents(lines: &[CriLine], stream: Stream) -> Vec<String> {
    lines.iter().filter(|l| l.stream == stream).map(|l| l.content.clone()).collect()
}

/// Polls the log until a line on `stream` satisfies `matches` (or the test times out), and
/// returns that line. Polling a file the guest writes is the only way to observe it.
pub async fn wait_for_log(path: &Path, stream: Stream, matches: impl Fn(&str) -> bool) -> String {
    loop {
        if let Some(line) = contents(&read_log(path), stream).into_iter().find(|l| matches(l)) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
