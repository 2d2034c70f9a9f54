//! cpu-burner: spins the CPU forever and prints, every `--report-ms` (default 1000), how many
//! work units it has done in total: `cpu-burner: units=N`. Two burners under different CPU
//! limits show the limits by the ratio of their counts.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Work between clock reads: small enough to report on time, large enough to not measure the clock.
const UNIT: u64 = 100_000;

fn main() {
    let report = std::env::args()
        .skip_while(|a| a != "--report-ms")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis);
    let mut units: u64 = 0;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next_report = Instant::now() + report;
    loop {
        for _ in 0..UNIT {
            // xorshift: cheap, not optimized away thanks to black_box.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            black_box(state);
        }
        units += 1;
        if Instant::now() >= next_report {
            println!("cpu-burner: units={units}");
            next_report += report;
        }
    }
}
