//! net-probe: tries one network operation and says how it went, so tests can show what the
//! pod's network policy allows.
//!
//! - `net-probe listen ADDR`: bind and listen on ADDR (e.g. `0.0.0.0:8080`), print
//!   `net-probe: listening on ADDR`, then answer every connection with `hello from net-probe\n`.
//! - `net-probe connect ADDR`: connect to ADDR, print `net-probe: connected to ADDR` or
//!   `net-probe: connect to ADDR failed: ERROR`, then idle (so the pod stays up to be inspected).
//!
//! Exit code 2 when the operation failed and `--exit-on-failure` is given.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exit_on_failure = args.iter().any(|a| a == "--exit-on-failure");
    let (op, addr) = match (args.first(), args.get(1)) {
        (Some(op), Some(addr)) => (op.as_str(), addr.as_str()),
        _ => {
            eprintln!("usage: net-probe listen|connect ADDR [--exit-on-failure]");
            std::process::exit(2);
        }
    };
    let failed = match op {
        "listen" => match TcpListener::bind(addr) {
            Ok(listener) => {
                println!("net-probe: listening on {addr}");
                for stream in listener.incoming().flatten() {
                    let mut stream = stream;
                    let _ = stream.write_all(b"hello from net-probe\n");
                }
                false
            }
            Err(error) => {
                println!("net-probe: listen on {addr} failed: {error}");
                true
            }
        },
        "connect" => match TcpStream::connect(addr) {
            Ok(_) => {
                println!("net-probe: connected to {addr}");
                false
            }
            Err(error) => {
                println!("net-probe: connect to {addr} failed: {error}");
                true
            }
        },
        other => {
            eprintln!("net-probe: unknown operation {other:?}");
            true
        }
    };
    if failed && exit_on_failure {
        std::process::exit(2);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
