//! Running `wrk --latency` and reading its report: requests per second, the latency
//! percentiles it prints, and how many answers were errors.

use anyhow::{Context, anyhow};

/// wrk's settings: threads, connections and seconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct WrkLoad {
    pub threads: usize,
    pub connections: usize,
    pub seconds: u64,
}

/// What one wrk run reports.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct WrkReport {
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Non-2xx/3xx answers plus socket errors.
    pub errors: u64,
}

impl WrkLoad {
    pub fn describe(&self) -> String {
        format!("-t{} -c{} -d{}s --latency", self.threads, self.connections, self.seconds)
    }

    /// Load `url` (blocking: wrk runs for the whole duration).
    pub async fn run(&self, url: &str) -> anyhow::Result<WrkReport> {
        let out = tokio::process::Command::new("wrk")
            .arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.seconds))
            .arg("--latency")
            .arg(url)
            .output()
            .await
            .context("running wrk (`apt-get install wrk`)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(anyhow!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr)));
        }
        parse(&text).with_context(|| format!("reading wrk's report:\n{text}"))
    }
}

fn parse(text: &str) -> anyhow::Result<WrkReport> {
    let mut report = WrkReport::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => report.p50_ms = millis(v)?,
            ["99%", v] => report.p99_ms = millis(v)?,
            ["Requests/sec:", v] => report.requests_per_s = v.parse()?,
            [n, "requests", "in", ..] => report.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => report.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                report.errors +=
                    rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>()
            }
            _ => {}
        }
    }
    if report.requests_per_s == 0.0 {
        return Err(anyhow!("no Requests/sec line"));
    }
    Ok(report)
}

/// wrk's durations: "512.00us", "1.23ms", "2.00s".
fn millis(v: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return Err(anyhow!("unknown duration {v}"));
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_report() {
        let text = "Running 15s test @ http://127.0.0.1:8080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  30.12ms   80.00%
    Req/Sec     7.70k   500.00     8.50k    70.00%
  Latency Distribution
     50%  812.00us
     75%    2.50ms
     90%    3.00ms
     99%    1.20s
  231000 requests in 15.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  15400.12
Transfer/sec:      2.67MB
";
        let r = parse(text).expect("parses");
        assert_eq!(r.requests, 231_000);
        assert!((r.requests_per_s - 15400.12).abs() < 1e-6);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert!((r.p99_ms - 1200.0).abs() < 1e-9);
        assert_eq!(r.errors, 7);
        assert!(parse("garbage").is_err());
    }
}
