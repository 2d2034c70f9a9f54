//! Container logs in the Kubernetes CRI log format, the format kubelet reads from
//! `/var/log/pods/...`: one entry per line, `<RFC3339Nano UTC> <stdout|stderr> <F|P> <content>\n`.
//!
//! Guests write arbitrary byte chunks; [`CriLogWriter::guest_output`] gives wasmtime a stdout or
//! stderr stream that cuts those chunks into lines. Each store gets its own line buffers (so two
//! concurrent HTTP requests never splice their half-lines together) over one shared,
//! mutex-protected file (see [`crate::log_file`] for when its descriptor stays open). As in
//! containerd, a line longer than [`MAX_LINE_BYTES`] is split into `P` (partial) entries
//! followed by a final `F` entry, and whatever is left without a newline when the guest's store
//! is dropped is written as a last `F` entry.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use jiff::Timestamp;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::RuntimeError;
use crate::log_file::LogFile;

/// Longest line content written as one entry; longer lines are split into `P` entries.
/// The same 16 KiB that containerd and CRI-O use.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// How much a guest may write in one `write` call (the WASI `check-write` permit).
const WRITE_BUDGET: usize = 64 * 1024;

/// Which of the guest's output streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

impl Stream {
    /// The word used in the log file.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One parsed entry of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine {
    /// When the runtime received the line.
    pub timestamp: Timestamp,
    /// stdout or stderr.
    pub stream: Stream,
    /// `true` for a `P` entry: the line continues in the next entry of the same stream.
    pub partial: bool,
    /// The line's text, without the trailing newline.
    pub content: String,
}

/// Formats one entry, newline included. The timestamp always has nine fractional digits so that
/// entries sort as text too (Go's RFC3339Nano parser, used by kubelet, accepts any width).
pub fn format_cri_line(timestamp: Timestamp, stream: Stream, partial: bool, content: &[u8]) -> Vec<u8> {
    let head = format!("{timestamp:.9} {} {} ", stream.as_str(), if partial { "P" } else { "F" });
    let mut entry = Vec::with_capacity(head.len() + content.len() + 1);
    entry.extend_from_slice(head.as_bytes());
    entry.extend_from_slice(content);
    entry.push(b'\n');
    entry
}

/// Parses one line of a CRI log file (with or without its trailing newline).
/// Returns `None` for anything that is not a well-formed entry.
pub fn parse_cri_line(line: &str) -> Option<CriLine> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let mut parts = line.splitn(4, ' ');
    let timestamp: Timestamp = parts.next()?.parse().ok()?;
    let stream = match parts.next()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    // The tag field may carry more ':'-separated tags after the first; only P/F is defined.
    let partial = match parts.next()?.split(':').next()? {
        "P" => true,
        "F" => false,
        _ => return None,
    };
    // An empty line is written as "<ts> <stream> F " but tolerate a missing final space.
    let content = parts.next().unwrap_or("").to_string();
    Some(CriLine { timestamp, stream, partial, content })
}

/// Appends CRI entries to one container's log file. Cheap to clone; clones share the file.
#[derive(Clone, Debug)]
pub struct CriLogWriter {
    file: Arc<Mutex<LogFile>>,
}

impl CriLogWriter {
    /// Opens `path` for appending, creating it (and its parent directories) if missing.
    pub fn open(path: &Path) -> Result<Self, RuntimeError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| RuntimeError::io("creating log directory", parent, e))?;
        }
        let file = LogFile::open(path).map_err(|e| RuntimeError::io("opening log file", path, e))?;
        Ok(Self { file: Arc::new(Mutex::new(file)) })
    }

    /// Writes one complete entry now.
    pub fn write_entry(&self, stream: Stream, partial: bool, content: &[u8]) -> io::Result<()> {
        let entry = format_cri_line(Timestamp::now(), stream, partial, content);
        self.lock().append(&entry)
    }

    /// A stdout/stderr stream for one guest store, with its own line buffer.
    pub(crate) fn guest_output(&self, stream: Stream) -> GuestOutput {
        GuestOutput(Arc::new(Mutex::new(LineBuffer {
            writer: self.clone(),
            stream,
            pending: Vec::new(),
            reported_error: false,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, LogFile> {
        // A panic while holding the lock cannot leave the file in a state worse than a torn
        // line, so keep logging rather than propagating the poison.
        self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Bytes of one stream of one store that do not yet end in a newline.
struct LineBuffer {
    writer: CriLogWriter,
    stream: Stream,
    pending: Vec<u8>,
    reported_error: bool,
}

impl LineBuffer {
    /// Adds guest bytes and writes every entry they complete, under one lock and one write.
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let now = Timestamp::now();
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(n) if n <= MAX_LINE_BYTES => {
                    out.extend(format_cri_line(now, self.stream, false, &rest[..n]));
                    start += n + 1;
                }
                // Either no newline yet or one beyond the limit: only cut when over the limit.
                _ if rest.len() > MAX_LINE_BYTES => {
                    out.extend(format_cri_line(now, self.stream, true, &rest[..MAX_LINE_BYTES]));
                    start += MAX_LINE_BYTES;
                }
                _ => break,
            }
        }
        self.pending.drain(..start);
        self.emit(&out);
    }

    /// Writes what is left as a final entry (the guest ended without a newline).
    fn finish(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let entry = format_cri_line(Timestamp::now(), self.stream, false, &self.pending);
        self.pending.clear();
        self.emit(&entry);
    }

    fn emit(&mut self, entries: &[u8]) {
        if entries.is_empty() {
            return;
        }
        // A full disk must not crash the guest: its output is lost, as with a kubelet whose
        // log volume is full. Say so once per stream rather than once per line.
        if let Err(error) = self.writer.lock().append(entries)
            && !self.reported_error
        {
            self.reported_error = true;
            tracing::warn!(%error, stream = self.stream.as_str(), "writing container log failed; dropping output");
        }
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The guest's view of stdout or stderr. All handles made from one `GuestOutput` share one line
/// buffer, which is flushed when the last handle (and so the guest's store) is dropped.
#[derive(Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<LineBuffer>>);

impl GuestOutput {
    fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(bytes);
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

// `Pollable` is declared with `#[async_trait]`; this is that macro's expansion written out, so
// the crate does not need async-trait itself. Writes complete synchronously, so the stream is
// always ready.
impl Pollable for GuestOutput {
    fn ready<'life0, 'async_trait>(
        &'life0 mut self,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(()))
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Complete lines are already in the file; a half line stays buffered until its newline,
        // as containerd's line reader does.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_entries(path: &Path) -> Vec<CriLine> {
        let text = std::fs::read_to_string(path).expect("log file readable");
        text.lines().map(|l| parse_cri_line(l).expect("every line is a CRI entry")).collect()
    }

    #[test]
    fn format_then_parse_round_trips() {
        let ts: Timestamp = "2026-01-02T03:04:05.000000007Z".parse().expect("valid timestamp");
        let entry = format_cri_line(ts, Stream::Stderr, true, b"hello world");
        let text = String::from_utf8(entry).expect("utf-8");
        assert_eq!(text, "2026-01-02T03:04:05.000000007Z stderr P hello world\n");
        let parsed = parse_cri_line(&text).expect("parses");
        assert_eq!(
            parsed,
            CriLine { timestamp: ts, stream: Stream::Stderr, partial: true, content: "hello world".into() }
        );
    }

    #[test]
    fn parses_kubelet_style_lines() {
        let line = parse_cri_line("2016-10-06T00:17:09.669794202Z stdout F:x ").expect("parses");
        assert_eq!(line.content, "");
        assert!(!line.partial);
        assert_eq!(
            parse_cri_line("2016-10-06T00:17:09.669794202Z stdout F  two spaces").map(|l| l.content),
            Some(" two spaces".to_string())
        );
        assert!(parse_cri_line("not a log line").is_none());
        assert!(parse_cri_line("2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(parse_cri_line("2016-10-06T00:17:09Z stdout X x").is_none());
    }

    #[test]
    fn guest_output_splits_lines_and_flushes_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c/0.log");
        let writer = CriLogWriter::open(&path).expect("open");
        let out = writer.guest_output(Stream::Stdout);
        let mut a = out.p2_stream();
        let mut b = out.p2_stream();
        a.write(Bytes::from_static(b"one\ntw")).expect("write");
        b.write(Bytes::from_static(b"o\n\nthree")).expect("write");
        drop((a, b));
        let contents: Vec<_> = read_entries(&path).into_iter().map(|l| l.content).collect();
        assert_eq!(contents, ["one", "two", ""], "a half line waits for its newline");
        drop(out);
        let entries = read_entries(&path);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[3].content, "three");
        assert!(!entries[3].partial);
    }

    #[test]
    fn long_lines_become_partial_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let writer = CriLogWriter::open(&path).expect("open");
        let out = writer.guest_output(Stream::Stderr);
        let mut line = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        line.push(b'\n');
        out.push(&line);
        let entries = read_entries(&path);
        let shape: Vec<_> = entries.iter().map(|e| (e.partial, e.content.len())).collect();
        assert_eq!(shape, [(true, MAX_LINE_BYTES), (true, MAX_LINE_BYTES), (false, 10)]);
        assert!(entries.iter().all(|e| e.stream == Stream::Stderr));
    }
}
