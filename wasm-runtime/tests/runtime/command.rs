//! The wasi:cli/command world: exit codes, traps, logs, stop.

use std::time::Duration;

use wasm_runtime::logs::Stream;
use wasm_runtime::{STOPPED_COMMAND_EXIT_CODE, World, start};

use crate::common::{TestEnv, contents, read_log, within};

/// A command whose `run` never returns and never calls the host: only epochs can preempt it.
const BUSY_LOOP: &str = r#"
(component
  (core module $m
    (func (export "run") (result i32)
      (loop $spin (br $spin))
      i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run-instance)))
"#;

#[tokio::test]
async fn hello_cli_completes_and_logs_in_cri_format() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-cli.wasm").await;
        assert_eq!(component.world(), World::Command);
        let mut running = start(&env.engine, &component, env.spec("hello", &[])).await.expect("starts");
        let status = running.wait().await;
        assert_eq!((status.code, status.reason.as_str()), (0, "Completed"), "{status:?}");
        assert!(status.success());

        let log = read_log(&env.log_path("hello"));
        assert_eq!(
            contents(&log, Stream::Stdout),
            ["hello-cli: line 1", "hello-cli: line 2", "hello-cli: line 3"]
        );
        assert_eq!(contents(&log, Stream::Stderr), ["hello-cli: this line goes to stderr"]);
        assert!(log.iter().all(|l| !l.partial));
        assert!(log.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    })
    .await
}

#[tokio::test]
async fn args_reach_the_guest_and_exit_code_is_kept() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-cli.wasm").await;
        let spec = env.spec("exit3", &["--lines", "1", "--exit", "3"]);
        let status = start(&env.engine, &component, spec).await.expect("starts").wait().await;
        assert_eq!((status.code, status.reason.as_str()), (3, "Error"), "{status:?}");
        assert_eq!(contents(&read_log(&env.log_path("exit3")), Stream::Stdout), ["hello-cli: line 1"]);
    })
    .await
}

#[tokio::test]
async fn a_trap_is_an_error_with_the_trap_message() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-cli.wasm").await;
        let status =
            start(&env.engine, &component, env.spec("trap", &["--trap"])).await.expect("starts").wait().await;
        assert_eq!((status.code, status.reason.as_str()), (1, "Error"), "{status:?}");
        let message = status.message.expect("a trap has a message");
        assert!(message.contains("wasm trap"), "{message}");
        // The Rust panic message itself is in the guest's stderr.
        let stderr = contents(&read_log(&env.log_path("trap")), Stream::Stderr).join("\n");
        assert!(stderr.contains("trapping as asked"), "{stderr}");
    })
    .await
}

#[tokio::test]
async fn a_forever_command_runs_until_stopped() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-cli.wasm").await;
        let spec = env.spec("forever", &["--forever", "--interval-ms", "5"]);
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), running.wait()).await.is_err(),
            "a --forever command must still be running"
        );
        let status = tokio::time::timeout(Duration::from_secs(5), running.stop(Duration::from_secs(30)))
            .await
            .expect("stop is prompt for a command (no grace period is waited)");
        assert_eq!((status.code, status.reason.as_str()), (STOPPED_COMMAND_EXIT_CODE, "Stopped"));
        // wait() after stop() returns the same status.
        assert_eq!(running.wait().await, status);
        let stdout = contents(&read_log(&env.log_path("forever")), Stream::Stdout);
        assert!(stdout.len() > 3, "it kept printing while running: {stdout:?}");
    })
    .await
}

#[tokio::test]
async fn a_busy_loop_yields_and_can_be_stopped() {
    // current_thread runtime: if the guest did not yield on epoch ticks, the timeout below
    // could never fire.
    within(async {
        let env = TestEnv::new();
        let component = env.load_wat("busy", BUSY_LOOP).await;
        assert_eq!(component.world(), World::Command);
        let mut running = start(&env.engine, &component, env.spec("busy", &[])).await.expect("starts");
        assert!(tokio::time::timeout(Duration::from_millis(100), running.wait()).await.is_err());
        let status = tokio::time::timeout(Duration::from_secs(5), running.stop(Duration::ZERO))
            .await
            .expect("a spinning guest is stopped promptly");
        assert_eq!(status.reason, "Stopped");
    })
    .await
}

#[tokio::test]
async fn a_trap_while_instantiating_fails_start() {
    within(async {
        let env = TestEnv::new();
        let component = env
            .load_wat(
                "start-trap",
                r#"
(component
  (core module $m
    (func $boom unreachable)
    (start $boom)
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run-instance)))
"#,
            )
            .await;
        let err = start(&env.engine, &component, env.spec("start-trap", &[]))
            .await
            .err()
            .expect("instantiation traps");
        assert!(matches!(err, wasm_runtime::RuntimeError::Instantiate(_)), "{err}");
    })
    .await
}
