//! `wasmkube logs POD`: a container's output, optionally followed.

use futures::StreamExt;
use orchestrator::{api::find_by_kind, client::Client};
use std::io::Write;

use super::config::ClientOptions;

/// Print a container's logs.
#[derive(clap::Args)]
pub struct LogsCommand {
    /// Pod name.
    pod: String,
    /// Container name (default: the only one).
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// Keep streaming new output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    tail: Option<i64>,
    /// The previous run of the container (after a restart).
    #[arg(short = 'p', long)]
    previous: bool,
    /// Prefix each line with its timestamp.
    #[arg(long)]
    timestamps: bool,
    #[command(flatten)]
    client: ClientOptions,
}

impl LogsCommand {
    pub async fn execute(self) -> anyhow::Result<()> {
        let conn = self.client.connect()?;
        let pods = find_by_kind("v1", "Pod").ok_or_else(|| anyhow::anyhow!("pods not served"))?;
        let mut query = vec![
            format!("follow={}", self.follow),
            format!("previous={}", self.previous),
            format!("timestamps={}", self.timestamps),
        ];
        if let Some(c) = &self.container {
            query.push(format!("container={c}"));
        }
        if let Some(t) = self.tail.filter(|t| *t >= 0) {
            query.push(format!("tailLines={t}"));
        }
        let path = format!(
            "{}?{}",
            Client::path(pods, Some(&conn.namespace), Some(&self.pod), Some("log")),
            query.join("&")
        );
        let resp = conn.client.get_stream(&path).await?;
        let mut stream = resp.bytes_stream();
        let mut out = std::io::stdout();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?)?;
            out.flush()?;
        }
        Ok(())
    }
}
