//! Running a command inside a running Linux container (`runc exec`), for `exec` probes and
//! lifecycle hooks: the container's own environment, working directory and user apply (runc
//! takes them from the container's process spec), the exit code is the command's.

use std::{process::Stdio, time::Duration};

use super::runc::Runc;
use crate::RuntimeError;

/// Most output kept from one command (a probe's message quotes it).
const OUTPUT_LIMIT: usize = 10 * 1024;

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// The command's exit code.
    pub code: i32,
    /// Its stdout and stderr, at most 10 KiB.
    pub output: String,
}

/// Runs commands in one running container; cheap to clone.
#[derive(Debug, Clone)]
pub struct ExecHandle {
    runc: Runc,
    id: String,
}

impl ExecHandle {
    pub(crate) fn new(runc: Runc, id: String) -> Self {
        Self { runc, id }
    }

    /// Run `command` in the container; a command still running after `timeout` is killed
    /// (with runc exec itself) and reported as an error.
    pub async fn run(&self, command: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        if command.is_empty() {
            return Err(RuntimeError::Runc("the exec command is empty".into()));
        }
        let child = tokio::process::Command::new(&self.runc.bin)
            .arg("--root")
            .arg(&self.runc.root)
            .args(["exec", &self.id])
            .args(command)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RuntimeError::Runc(format!("could not run runc exec: {e}")))?;
        let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(result) => result.map_err(|e| RuntimeError::Runc(format!("runc exec failed: {e}")))?,
            Err(_) => {
                return Err(RuntimeError::Runc(format!(
                    "command timed out: {:?} did not finish within {}s",
                    command.join(" "),
                    timeout.as_secs()
                )));
            }
        };
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if text.len() > OUTPUT_LIMIT {
            let mut end = OUTPUT_LIMIT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        // A signal-ended command has no code: report it as a shell would (128 + signal).
        let code = output.status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + output.status.signal().unwrap_or(0)
        });
        Ok(ExecOutput { code, output: text })
    }
}
