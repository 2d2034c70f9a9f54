//! mem-hog: grows its memory by `--step-mib` (default 4) every `--every-ms` (default 50),
//! touching every page, and prints `mem-hog: holding N MiB` after each step. With `--max-mib N`
//! it stops growing at N and then idles; without, it grows until stopped (or killed by a limit).

use std::time::Duration;

fn flag(name: &str, default: u64) -> u64 {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let step = flag("--step-mib", 4) as usize;
    let every = Duration::from_millis(flag("--every-ms", 50));
    let max = flag("--max-mib", u64::MAX);
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        if (held.len() * step) as u64 + step as u64 <= max {
            // Filled with a non-zero byte so every page is really written.
            held.push(vec![0xa5; step << 20]);
            println!("mem-hog: holding {} MiB", held.len() * step);
        }
        std::thread::sleep(every);
    }
}
