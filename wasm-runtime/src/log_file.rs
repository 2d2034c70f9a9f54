//! One container log file, appended to, whose descriptor is kept open only while the process
//! has descriptors to spare.
//!
//! Every HTTP pod already holds a listening socket, and one node runs thousands of pods in one
//! process against an open-file limit that may not be raisable (20,000 hard on our CI machines):
//! a descriptor per log on top of the socket stopped the density benchmark short of 10,000
//! pods. So at most [`held_limit`] log files stay open at once, first come first served; past
//! that, a log is opened for each write and closed again (`O_APPEND`, so concurrent writers
//! still append whole entries). Idle pods write nothing, so the cost falls on no one in
//! practice; a busy late pod pays an `open` + `close` per batch of lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Log files kept open now, process-wide.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// How many log files may stay open: an eighth of the soft open-file limit, between 64 and
/// 2,048, so sockets (one per HTTP pod), pipes and the store keep the rest.
pub(crate) fn held_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| (soft_open_file_limit().unwrap_or(1024) / 8).clamp(64, 2048))
}

/// The process's soft `RLIMIT_NOFILE`, read from `/proc/self/limits` (no unsafe `getrlimit`).
fn soft_open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(usize::MAX),
        soft => soft.parse().ok(),
    }
}

/// Takes one of the held slots if any is free.
fn try_hold() -> bool {
    HELD.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| (held < held_limit()).then_some(held + 1))
        .is_ok()
}

/// An append-only log file that may or may not hold its descriptor.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: Option<File>,
}

impl LogFile {
    /// Opens (creating) `path` for appending, which proves it writable, and keeps it open if a
    /// slot is free.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let mut log = Self { path: path.to_path_buf(), file: None };
        let file = open_append(path)?;
        log.keep_if_room(file);
        Ok(log)
    }

    /// Appends `bytes` in one write.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            return file.write_all(bytes);
        }
        let mut file = open_append(&self.path)?;
        let written = file.write_all(bytes);
        self.keep_if_room(file);
        written
    }

    /// Whether the descriptor is held between writes.
    #[cfg(test)]
    pub(crate) fn is_held(&self) -> bool {
        self.file.is_some()
    }

    fn keep_if_room(&mut self, file: File) {
        if try_hold() {
            self.file = Some(file);
        }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            HELD.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::{LogFile, held_limit};

    #[test]
    fn past_the_limit_logs_are_opened_per_write_and_nothing_is_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Other tests of this binary hold some slots too; open until one is refused.
        let mut logs = Vec::new();
        for i in 0..held_limit() + 1 {
            logs.push(LogFile::open(&dir.path().join(format!("{i}.log"))).expect("opens"));
        }
        let unheld = logs.iter().position(|l| !l.is_held()).expect("one log past the limit is not held");
        for round in 0..3 {
            logs[unheld].append(format!("line {round}\n").as_bytes()).expect("appends");
        }
        let text = std::fs::read_to_string(dir.path().join(format!("{unheld}.log"))).expect("reads");
        assert_eq!(text, "line 0\nline 1\nline 2\n");
        // Dropping held logs frees their slots for the next log.
        logs.retain(|l| !l.is_held());
        let next = LogFile::open(&dir.path().join("next.log")).expect("opens");
        assert!(next.is_held());
    }
}
