//! config-echo: prints its environment and the contents of the paths it is given, so a test (or
//! a user) can see exactly what the Pod spec granted: env vars, mounted ConfigMaps and Secrets,
//! and which paths are out of reach.
//!
//! `config-echo [--every MS] PATH...`
//! - prints `env NAME=VALUE` for each variable (sorted), then `file PATH: CONTENT` for each
//!   file (a directory: each regular file in it, sorted; kubelet-style `..data` entries skipped);
//! - a path it cannot read is reported on stderr as `config-echo: cannot read PATH: ERROR`;
//! - without `--every` it exits 0 if everything was readable, else 2; with `--every MS` it
//!   keeps checking and prints the files again (after a `--- changed` line) whenever they change.
//!
//! Built twice: as a WASI 0.2 component and, for the preview 1 sample, as a core module.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

fn main() {
    let mut every: Option<u64> = None;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--every" {
            every = args.next().and_then(|v| v.parse().ok());
            if every.is_none() {
                eprintln!("config-echo: --every needs milliseconds");
                std::process::exit(2);
            }
        } else {
            paths.push(arg);
        }
    }
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (name, value) in &env {
        println!("env {name}={value}");
    }
    let (mut shown, mut ok) = snapshot(&paths);
    print!("{shown}");
    let Some(ms) = every else {
        std::process::exit(if ok { 0 } else { 2 });
    };
    loop {
        std::thread::sleep(Duration::from_millis(ms));
        let (now, now_ok) = snapshot(&paths);
        if now != shown || now_ok != ok {
            println!("--- changed");
            print!("{now}");
            (shown, ok) = (now, now_ok);
        }
    }
}

/// The `file ...` lines for every path, and whether all of them could be read. Errors go to
/// stderr as they happen.
fn snapshot(paths: &[String]) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for path in paths {
        if let Err(error) = describe(Path::new(path), &mut out) {
            eprintln!("config-echo: cannot read {path}: {error}");
            ok = false;
        }
    }
    (out, ok)
}

fn describe(path: &Path, out: &mut String) -> std::io::Result<()> {
    if !path.is_dir() {
        let content = std::fs::read_to_string(path)?;
        let _ = writeln!(out, "file {}: {}", path.display(), content.trim_end());
        return Ok(());
    }
    let mut names: Vec<_> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".."))
        .collect();
    names.sort();
    for name in names {
        let file = path.join(&name);
        if file.is_file() {
            describe(&file, out)?;
        }
    }
    Ok(())
}
