//! The command line: one file per subcommand, each a clap struct with `execute()`.

mod agent;
mod apply;
mod bench;
mod config;
mod delete;
mod get;
mod image;
mod logs;
mod up;

use clap::{Parser, Subcommand};

/// wasmkube: run WebAssembly apps the Kubernetes way. `wasmkube up --demo` starts a
/// single-node cluster; kubectl works against the kubeconfig it writes.
#[derive(Parser)]
#[command(name = "wasmkube", version)]
pub struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Start a single-node cluster in this process (API server, store, scheduler, controllers, node agent).
    Up(up::UpCommand),
    /// Join this machine as a node of a running cluster.
    Agent(agent::AgentCommand),
    /// Show objects as a table, YAML or JSON.
    Get(get::GetCommand),
    /// Create or update objects from YAML/JSON manifests.
    Apply(apply::ApplyCommand),
    /// Delete objects by manifest or by type and name.
    Delete(delete::DeleteCommand),
    /// Print a container's logs.
    Logs(logs::LogsCommand),
    /// Push a .wasm file to an OCI registry as a CNCF Wasm artifact.
    Push(image::PushCommand),
    /// Side-load a .wasm file into a node's image cache under an image name (like `kind load`).
    Load(image::LoadCommand),
    /// Measure the running cluster or the Wasm runtime next to reference tools (prints figures,
    /// asserts nothing).
    Bench(bench::BenchCommand),
}

impl Command {
    /// Run the chosen subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Command::Up(c) => c.execute().await,
            Command::Agent(c) => c.execute().await,
            Command::Get(c) => c.execute().await,
            Command::Apply(c) => c.execute().await,
            Command::Delete(c) => c.execute().await,
            Command::Logs(c) => c.execute().await,
            Command::Push(c) => c.execute().await,
            Command::Load(c) => c.execute().await,
            Command::Bench(c) => c.execute().await,
        }
    }
}

/// Log to stderr; `-v` raises the level, RUST_LOG wins when set.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,wasmkube=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Wait for Ctrl-C or SIGTERM (how tests and service managers stop us).
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
