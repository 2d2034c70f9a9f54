//! word-count: a batch command for Jobs. Counts the words of one file and prints the counts,
//! so a Job's logs show which pod did which piece of work.
//!
//! `word-count [--top N] [--sleep-ms MS] [FILE]` (FILE defaults to `$WORDS_FILE`)
//! - prints `word-count: index I` first when `JOB_COMPLETION_INDEX` is set (Indexed Jobs),
//!   then, for an index, reads `FILE.I` when that exists (one shard per index), else FILE;
//! - prints `words N` (the total), then `count WORD N` for the `--top` (default 5) most
//!   frequent words, most frequent first, ties by word;
//! - `--sleep-ms` (or `$SLEEP_MS`) waits before counting: a long-running Job;
//! - exits 1 when `$FAIL` is `1` or the file cannot be read (the reason on stderr): a failing
//!   pod for back-off tests.

use std::collections::HashMap;
use std::time::Duration;

fn main() {
    let mut top = 5usize;
    let mut sleep_ms: u64 = std::env::var("SLEEP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut file = std::env::var("WORDS_FILE").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--top" => top = number(args.next(), "--top") as usize,
            "--sleep-ms" => sleep_ms = number(args.next(), "--sleep-ms"),
            _ => file = Some(arg),
        }
    }
    let index = std::env::var("JOB_COMPLETION_INDEX").ok();
    if let Some(i) = &index {
        println!("word-count: index {i}");
    }
    if sleep_ms > 0 {
        println!("word-count: sleeping {sleep_ms} ms");
        std::thread::sleep(Duration::from_millis(sleep_ms));
    }
    if std::env::var("FAIL").as_deref() == Ok("1") {
        eprintln!("word-count: failing as FAIL=1 asks");
        std::process::exit(1);
    }
    let Some(file) = file else {
        eprintln!("word-count: no file: give a path or set WORDS_FILE");
        std::process::exit(1);
    };
    // One shard per index when the ConfigMap has them (`words.txt.0`, `words.txt.1`, ...).
    let shard = index.map(|i| format!("{file}.{i}")).filter(|s| std::path::Path::new(s).is_file());
    let path = shard.unwrap_or(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("word-count: cannot read {path}: {error}");
            std::process::exit(1);
        }
    };
    let (total, counts) = count(&text);
    println!("word-count: file {path}");
    println!("words {total}");
    for (word, n) in counts.into_iter().take(top) {
        println!("count {word} {n}");
    }
}

fn number(value: Option<String>, flag: &str) -> u64 {
    match value.and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None => {
            eprintln!("word-count: {flag} needs a number");
            std::process::exit(2);
        }
    }
}

/// Total words, and each lowercased word's count, most frequent first (ties by word).
fn count(text: &str) -> (usize, Vec<(String, usize)>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for word in text.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()) {
        total += 1;
        *counts.entry(word.to_lowercase()).or_default() += 1;
    }
    let mut sorted: Vec<(String, usize)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (total, sorted)
}
