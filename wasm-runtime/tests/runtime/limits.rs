//! Limits that mean something: memory over the limit is an OOM kill, a CPU limit throttles a busy
//! loop in proportion to its millicores, and an HTTP request past its deadline gets a 504.

use std::time::Duration;

use wasm_runtime::logs::Stream;
use wasm_runtime::{PodResources, ResourceLimits, start};

use crate::common::{TestEnv, contents, read_log, wait_for_log, within};

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn going_over_the_memory_limit_is_an_oom_kill() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("mem-hog.wasm").await;
        let mut spec = env.spec("hog", &["--step-mib", "4", "--every-ms", "1"]);
        spec.limits = ResourceLimits { memory_bytes: Some(32 * MIB), cpu_millis: None };
        let status = start(&env.engine, &component, spec).await.expect("starts").wait().await;
        assert_eq!((status.code, status.reason.as_str()), (137, "OOMKilled"), "{status:?}");
        assert!(status.message.as_deref().unwrap_or("").contains("memory limit exceeded"), "{status:?}");
        let held = contents(&read_log(&env.log_path("hog")), Stream::Stdout);
        let last = held.last().expect("it grew before it was killed");
        let mib: u64 = last.trim_start_matches("mem-hog: holding ").trim_end_matches(" MiB").parse().unwrap();
        assert!((16..32).contains(&mib), "{held:?}");
    })
    .await
}

#[tokio::test]
async fn the_pod_limit_binds_its_containers_together() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("mem-hog.wasm").await;
        let pod = PodResources::new(Some(48 * MIB));
        // The first holds 32 MiB, well within its own 40 MiB; the second then hits the pod's 48.
        let mut first = env.spec("first", &["--step-mib", "8", "--every-ms", "1", "--max-mib", "32"]);
        first.limits.memory_bytes = Some(40 * MIB);
        first.pod = pod.clone();
        let mut running = start(&env.engine, &component, first).await.expect("starts");
        wait_for_log(&env.log_path("first"), Stream::Stdout, |l| l == "mem-hog: holding 32 MiB").await;
        let mut second = env.spec("second", &["--step-mib", "8", "--every-ms", "1", "--max-mib", "32"]);
        second.limits.memory_bytes = Some(40 * MIB);
        second.pod = pod.clone();
        let status = start(&env.engine, &component, second).await.expect("starts").wait().await;
        assert_eq!(status.reason, "OOMKilled", "{status:?}");
        assert!(pod.memory_bytes() >= 32 * MIB && pod.memory_bytes() <= 48 * MIB);
        running.stop(Duration::ZERO).await;
        assert!(pod.memory_bytes() < MIB, "released when the instances are gone: {}", pod.memory_bytes());
    })
    .await
}

/// Two burners side by side, 100m and 200m: the first does about half the work of the second.
#[tokio::test]
async fn a_cpu_limit_throttles_in_proportion() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("cpu-burner.wasm").await;
        let mut handles = Vec::new();
        for (name, millis) in [("slow", 100), ("fast", 200)] {
            let mut spec = env.spec(name, &["--report-ms", "250"]);
            spec.limits.cpu_millis = Some(millis);
            handles.push(start(&env.engine, &component, spec).await.expect("starts"));
        }
        // Measure between two reports of the slow one, 2 s apart, after a warm-up report.
        let units = |name: &str| -> Vec<u64> {
            contents(&read_log(&env.log_path(name)), Stream::Stdout)
                .iter()
                .filter_map(|l| l.strip_prefix("cpu-burner: units=")?.parse().ok())
                .collect()
        };
        let slow_log = env.log_path("slow");
        wait_for_log(&slow_log, Stream::Stdout, |_| true).await;
        let (slow0, fast0) = (*units("slow").last().unwrap(), units("fast").last().copied().unwrap_or(0));
        let mut reports = units("slow").len();
        while reports < 9 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            reports = units("slow").len();
        }
        let (slow1, fast1) = (*units("slow").last().unwrap(), *units("fast").last().unwrap());
        let usage: Vec<_> = handles.iter().map(|h| h.usage().cpu).collect();
        for mut h in handles {
            h.stop(Duration::ZERO).await;
        }
        let ratio = (slow1 - slow0) as f64 / (fast1 - fast0).max(1) as f64;
        assert!(
            (0.35..0.7).contains(&ratio),
            "100m did {} units, 200m did {}: ratio {ratio:.2}",
            slow1 - slow0,
            fast1 - fast0
        );
        // The accounting agrees: the 200m one was charged about twice the CPU.
        let charged = usage[0].as_secs_f64() / usage[1].as_secs_f64();
        assert!((0.35..0.7).contains(&charged), "charged {usage:?}");
    })
    .await
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_504_and_the_server_keeps_serving() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        let mut spec = env.spec("web", &[]);
        spec.http_listen = Some("127.0.0.1:0".parse().unwrap());
        spec.request_timeout = Duration::from_millis(300);
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let addr = running.http_addr().unwrap();
        let (status, body) = crate::http::get(addr, "/spin").await;
        assert!(status.contains(" 504 "), "{status} {body}");
        assert!(body.contains("request timeout"), "{body}");
        assert_eq!(running.in_flight_requests(), 0, "the spinning instance was torn down");
        let (status, _) = crate::http::get(addr, "/").await;
        assert!(status.contains(" 200 "), "{status}");
        running.stop(Duration::ZERO).await;
    })
    .await
}

#[tokio::test]
async fn an_http_request_over_the_memory_limit_ends_the_container_as_oom_killed() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        let mut spec = env.spec("web", &[]);
        spec.http_listen = Some("127.0.0.1:0".parse().unwrap());
        spec.limits.memory_bytes = Some(16 * MIB);
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let addr = running.http_addr().unwrap();
        let (status, body) = crate::http::get(addr, "/alloc/2").await;
        assert!(status.contains(" 200 ") && body == "allocated 2 MiB\n", "{status} {body}");
        let (status, body) = crate::http::get(addr, "/alloc/64").await;
        assert!(status.contains(" 500 "), "{status} {body}");
        let exit = running.wait().await;
        assert_eq!((exit.code, exit.reason.as_str()), (137, "OOMKilled"), "{exit:?}");
    })
    .await
}
