//! What a benchmark reads about a server process from outside: its memory (`VmRSS`, and the
//! peak `VmHWM`) and the bytes it has sent to the disk (`write_bytes` of `/proc/<pid>/io`),
//! plus the size on disk of its data. Local processes only: against a remote cluster these
//! figures are simply absent.

use std::path::Path;

use anyhow::{Context, anyhow};

/// One reading of a process.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ProcSample {
    /// Resident memory now, bytes.
    pub rss: u64,
    /// Peak resident memory since the process started, bytes.
    pub peak_rss: u64,
    /// Bytes this process caused to be written to storage since it started. Counted by the
    /// kernel when a page cache page is first dirtied, so a store that fsyncs every commit is
    /// charged a whole 4 KiB page each time it touches one: this is the physical write
    /// amplification, not the logical bytes handed to `write()`.
    pub write_bytes: u64,
}

/// Read `/proc/<pid>/status` and `/proc/<pid>/io`.
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is the server process {pid} running here?)"))?;
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .with_context(|| format!("reading /proc/{pid}/io (same user as the server, or root, needed)"))?;
    Ok(ProcSample {
        rss: field(&status, "VmRSS:")? * 1024,
        peak_rss: field(&status, "VmHWM:")? * 1024,
        write_bytes: field(&io, "write_bytes:")?,
    })
}

/// The number after `name` on its line (`VmRSS:   1234 kB` gives 1234).
fn field(text: &str, name: &str) -> anyhow::Result<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("no {name} in /proc"))
}

/// Bytes on disk of a file, or of every file under a directory (etcd keeps a directory).
pub fn disk_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|entries| entries.flatten().map(|e| disk_size(&e.path())).sum()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).expect("own /proc");
        assert!(s.rss > 0 && s.peak_rss >= s.rss);
        assert_eq!(field("VmRSS:\t  1234 kB\n", "VmRSS:").expect("field"), 1234);
        assert!(field("nothing", "VmRSS:").is_err());
    }
}
