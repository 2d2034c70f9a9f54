//! The word-count sample (`sample-apps/word-count`) as Jobs and CronJobs run it in tests: a
//! cluster with the component side-loaded, and its pod template in YAML.

use crate::cluster::Cluster;

/// The image name the fixture is side-loaded as.
pub const IMAGE: &str = "example.local/word-count:1";

/// Start `wasmkube up` under `work` with word-count side-loaded.
pub fn cluster(work: &std::path::Path) -> anyhow::Result<Cluster> {
    let cluster = Cluster::up(&work.join("cluster"), "node-a")?;
    cluster.side_load("word-count.wasm", IMAGE)?;
    Ok(cluster)
}

/// A `template:` block (indented by `indent` spaces) whose pod runs word-count once
/// (`restartPolicy: Never`) on `/words/words.txt` from the ConfigMap `words`, with `env` (YAML
/// flow entries, e.g. `{name: FAIL, value: '1'}`).
pub fn pod_template(indent: usize, env: &str) -> String {
    let lines = [
        "template:".to_string(),
        "  spec:".into(),
        "    restartPolicy: Never".into(),
        "    containers:".into(),
        "    - name: count".into(),
        format!("      image: {IMAGE}"),
        "      args: [/words/words.txt]".into(),
        format!("      env: [{env}]"),
        "      volumeMounts: [{name: words, mountPath: /words}]".into(),
        "    volumes: [{name: words, configMap: {name: words}}]".into(),
    ];
    let pad = " ".repeat(indent);
    lines.iter().map(|l| format!("{pad}{l}\n")).collect()
}
