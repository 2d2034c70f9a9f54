//! hello-cli: a `wasi:cli/command` component used to exercise the runtime's command world.
//!
//! Flags (all optional):
//! - `--lines N`        print N numbered lines (default 3)
//! - `--exit CODE`      exit with CODE (0-255) after printing, via `exit-with-code`
//! - `--forever`        keep printing a line every `--interval-ms` (default 1000) until stopped
//! - `--trap`           panic immediately, which traps the instance (panic = abort)

use std::time::Duration;

#[derive(Debug)]
struct Options {
    lines: u32,
    exit: Option<u8>,
    forever: bool,
    interval_ms: u64,
    trap: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options { lines: 3, exit: None, forever: false, interval_ms: 1000, trap: false };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--lines" => opts.lines = value(&arg, args.next())?,
            "--exit" => opts.exit = Some(value(&arg, args.next())?),
            "--interval-ms" => opts.interval_ms = value(&arg, args.next())?,
            "--forever" => opts.forever = true,
            "--trap" => opts.trap = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
}

fn main() {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("hello-cli: {e}");
            std::process::exit(2);
        }
    };
    if opts.trap {
        panic!("hello-cli: trapping as asked (--trap)");
    }
    for n in 1..=opts.lines {
        println!("hello-cli: line {n}");
    }
    eprintln!("hello-cli: this line goes to stderr");
    if opts.forever {
        let mut n = opts.lines;
        loop {
            std::thread::sleep(Duration::from_millis(opts.interval_ms));
            n += 1;
            println!("hello-cli: line {n}");
        }
    }
    if let Some(code) = opts.exit {
        // std's exit goes through WASI 0.2's `exit(result)`, which only says ok or error;
        // `exit-with-code` carries the actual code.
        wasip2::cli::exit::exit_with_code(code);
    }
}
