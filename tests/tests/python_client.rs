//! The official Python client (`kubernetes` on PyPI, installed into `.venv` by
//! `scripts/install-test-deps.sh`) runs create / list / watch (resuming, and 410 Expired) /
//! patch / delete against a real `wasmkube up`; see `tests/python/client_story.py`.

use anyhow::{Context, bail};
use wasmkube_e2e::cluster::{Cluster, root};

#[test]
fn the_python_client_works_unchanged() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    // A short watch history so the script can make a resourceVersion expire.
    let cluster = Cluster::up_with(&work.path().join("cluster"), "node-a", &["--watch-history", "50"])?;
    let python = root().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(root().join("tests/python/client_story.py"))
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()
        .with_context(|| format!("running {} (scripts/install-test-deps.sh makes it)", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stdout.contains("ok") {
        bail!("the Python client story failed:\n{stdout}\n{stderr}");
    }
    Ok(())
}
