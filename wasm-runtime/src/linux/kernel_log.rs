//! Whether the kernel OOM-killed a container, read from the kernel log (`/dev/kmsg`).
//!
//! `runc events` hears of OOM kills through the cgroup's notification, but it can only
//! register once the container runs, and a process that goes over its limit in its first
//! milliseconds is killed before that: CI saw a busybox hog end as a plain exit 137 under
//! load. The kernel logs every memory-cgroup OOM kill *before* it sends the SIGKILL, so a
//! reader positioned at the log's end before `runc run` finds the record for certain once the
//! exit is seen, with no waiting. Two records name the container:
//! `oom-kill:…,oom_memcg=<cgroup>,…` (the kernel rate-limits this one) and
//! `Memory cgroup out of memory: Killed process <pid> (…)` (always printed).
//!
//! Reading `/dev/kmsg` needs root (or CAP_SYSLOG); without it [`KernelLog::open_at_end`] gives
//! `None` and `runc events` alone decides.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

const KMSG: &str = "/dev/kmsg";
/// A record is at most about 1 KiB of text plus its dictionary lines; a too-small buffer makes
/// `read` fail with EINVAL.
const RECORD_BUFFER: usize = 16 * 1024;

/// The kernel log from the moment it was opened on.
pub(crate) struct KernelLog {
    file: File,
}

impl KernelLog {
    /// Opens the kernel log positioned after its last record; `None` if it cannot be read.
    pub(crate) fn open_at_end() -> Option<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(KMSG)
            .map_err(|e| tracing::debug!(error = %e, "the kernel log cannot be read; OOM kills rely on runc events"))
            .ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        Some(Self { file })
    }

    /// Whether a record since opening says the kernel OOM-killed a process of `cgroup` (the
    /// path below the memory hierarchy's root) or the process `pid`. Blocking, but it never
    /// waits: it reads the records already there.
    pub(crate) fn reports_oom_kill(&mut self, cgroup: &str, pid: Option<u32>) -> bool {
        let memcg = format!("oom_memcg={cgroup},");
        let killed = pid.map(|pid| format!("Killed process {pid} ("));
        let mut buffer = vec![0u8; RECORD_BUFFER];
        loop {
            let n = match self.file.read(&mut buffer) {
                Ok(0) => return false,
                Ok(n) => n,
                // Records were overwritten before we read them; reading goes on after them.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) => {
                    tracing::debug!(error = %e, "reading the kernel log failed");
                    return false;
                }
            };
            if record_names(&buffer[..n], &memcg, killed.as_deref()) {
                return true;
            }
        }
    }
}

/// Whether one `/dev/kmsg` record (`prio,seq,usec,flags;message`) is the OOM kill of `memcg`
/// or of the killed-process prefix.
fn record_names(record: &[u8], memcg: &str, killed: Option<&str>) -> bool {
    let text = String::from_utf8_lossy(record);
    let Some((_, message)) = text.split_once(';') else {
        return false;
    };
    let message = message.lines().next().unwrap_or_default();
    if message.starts_with("oom-kill:") && message.contains(memcg) {
        return true;
    }
    killed.is_some_and(|killed| message.contains("out of memory: ") && message.contains(killed))
}

#[cfg(test)]
mod tests {
    use super::record_names;

    const SUMMARY: &[u8] = b"4,4121,35946994578,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=hog,mems_allowed=0,oom_memcg=/wasmkube/hog,task_memcg=/wasmkube/hog,task=sh,pid=28766,uid=0\n";
    const KILLED: &[u8] = b"3,4122,35946994602,-;Memory cgroup out of memory: Killed process 28766 (sh) total-vm:26852kB, anon-rss:16112kB\n SUBSYSTEM=memory\n";

    #[test]
    fn the_summary_names_the_cgroup_exactly() {
        assert!(record_names(SUMMARY, "oom_memcg=/wasmkube/hog,", None));
        assert!(!record_names(SUMMARY, "oom_memcg=/wasmkube/ho,", None));
        assert!(!record_names(SUMMARY, "oom_memcg=/wasmkube/hog2,", None));
    }

    #[test]
    fn the_kill_line_names_the_pid_exactly() {
        assert!(record_names(KILLED, "oom_memcg=/other,", Some("Killed process 28766 (")));
        assert!(!record_names(KILLED, "oom_memcg=/other,", Some("Killed process 2876 (")));
        assert!(!record_names(KILLED, "oom_memcg=/other,", None));
    }

    #[test]
    fn other_records_and_garbage_are_not_oom_kills() {
        assert!(!record_names(
            b"6,1,2,-;eth0: link up\n",
            "oom_memcg=/wasmkube/hog,",
            Some("Killed process 1 (")
        ));
        assert!(!record_names(b"no separator", "oom_memcg=/wasmkube/hog,", None));
        assert!(!record_names(&[0xff, 0xfe, b';', 0xff], "oom_memcg=/x,", None));
    }
}
