//! What a benchmark reads about a server process from outside: its memory (`VmRSS`, and the
//! peak `VmHWM`) and the bytes it has sent to the disk (`write_bytes` of `/proc/<pid>/io`),
//! plus the size on disk of its data, its CPU time, open files and threads, and the machine's
//! memory. Local processes only: against a remote cluster these figures are simply absent.

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

/// CPU time (user + system) the process has used since it started, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> anyhow::Result<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (is process {pid} running here?)"))?;
    // The command name may hold spaces: count fields after its closing parenthesis.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no CPU times in /proc/{pid}/stat"))
    };
    // USER_HZ is 100 on every Linux architecture we run on.
    Ok(std::time::Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// Open file descriptors of the process and its soft limit on them (`ulimit -n` as it started).
pub fn open_files(pid: u32) -> anyhow::Result<(u64, u64)> {
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd (same user as the server, or root, needed)"))?
        .count() as u64;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("no open-file limit in /proc/{pid}/limits"))?;
    Ok((open, soft))
}

/// Threads of the process.
pub fn threads(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    field(&status, "Threads:")
}

/// `MemTotal` and `MemAvailable` of this machine, bytes.
pub fn memory() -> anyhow::Result<(u64, u64)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    Ok((field(&meminfo, "MemTotal:")? * 1024, field(&meminfo, "MemAvailable:")? * 1024))
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
        let (open, limit) = open_files(std::process::id()).expect("own fds");
        assert!(open > 0 && limit >= open);
        assert!(threads(std::process::id()).expect("own threads") >= 1);
        cpu_time(std::process::id()).expect("own CPU time");
        let (total, available) = memory().expect("meminfo");
        assert!(total >= available);
    }
}
