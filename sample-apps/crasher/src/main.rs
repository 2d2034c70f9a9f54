//! crasher: prints that it started, waits `--after-secs` (default 3), says so on stderr and
//! exits with `--code` (default 1). For restarts, CrashLoopBackOff and Job back-off.

use std::time::Duration;

fn flag(name: &str, default: u64) -> u64 {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let after = flag("--after-secs", 3);
    let code = flag("--code", 1).min(255) as u8;
    println!("crasher: started, exiting with code {code} in {after}s");
    std::thread::sleep(Duration::from_secs(after));
    eprintln!("crasher: exiting with code {code}");
    // std's exit goes through WASI 0.2's `exit(result)`, which only says ok or error.
    wasip2::cli::exit::exit_with_code(code);
}
