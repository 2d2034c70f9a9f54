//! The wasi:http/proxy world: serving, env, logs, traps, stop, bind errors.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasm_runtime::logs::Stream;
use wasm_runtime::{RuntimeError, World, start};

use crate::common::{TestEnv, contents, read_log, within};

/// An HTTP handler that traps on every request (imports only the two resource types it needs).
const TRAPPING_HANDLER: &str = r#"
(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $outparam))
  (core module $m
    (func (export "handle") (param i32 i32) unreachable))
  (core instance $i (instantiate $m))
  (func $handle (param "request" (own $request)) (param "response-out" (own $outparam))
    (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
"#;

/// An HTTP handler that spins forever: a request that never finishes on its own.
const SPINNING_HANDLER: &str = r#"
(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $outparam))
  (core module $m
    (func (export "handle") (param i32 i32) (loop $spin (br $spin))))
  (core instance $i (instantiate $m))
  (func $handle (param "request" (own $request)) (param "response-out" (own $outparam))
    (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
"#;

/// Sends one request and returns whatever came back before the connection closed.
async fn raw_get(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    // A reset connection is as good as a closed one here.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Sends one HTTP/1.1 request with `Connection: close` and returns (status line, body).
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) =
        response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status_line = head.lines().next().unwrap_or_default().to_string();
    (status_line, body.to_string())
}

fn any_local_port() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[tokio::test]
async fn hello_http_greets_with_env_and_logs_requests() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        assert_eq!(component.world(), World::HttpProxy);
        let mut spec = env.spec("hello-http", &[]);
        spec.env = vec![
            ("GREETING".into(), "Hello from a Wasm pod".into()),
            ("POD_NAME".into(), "hello-http-abc12".into()),
        ];
        spec.http_listen = any_local_port();
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let addr = running.http_addr().expect("bound address");
        assert_ne!(addr.port(), 0);

        let (status, body) = get(addr, "/").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "Hello from hello-http-abc12! Hello from a Wasm pod\n");
        let (status, _) = get(addr, "/again?x=1").await;
        assert_eq!(status, "HTTP/1.1 200 OK");

        let status = tokio::time::timeout(Duration::from_secs(10), running.stop(Duration::from_secs(5)))
            .await
            .expect("an idle server stops promptly");
        assert_eq!((status.code, status.reason.as_str(), status.message), (0, "Stopped", None));
        assert!(TcpStream::connect(addr).await.is_err(), "the port is closed after stop");

        let stdout = contents(&read_log(&env.log_path("hello-http")), Stream::Stdout);
        assert_eq!(stdout, ["GET / from hello-http", "GET /again?x=1 from hello-http"]);
    })
    .await
}

#[tokio::test]
async fn defaults_apply_without_env() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        let mut spec = env.spec("defaults", &[]);
        spec.http_listen = any_local_port();
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let (_, body) = get(running.http_addr().expect("addr"), "/").await;
        assert_eq!(body, "Hello from unknown! Hello, wasmkube\n");
        running.stop(Duration::from_secs(5)).await;
    })
    .await
}

#[tokio::test]
async fn a_trapping_request_gets_500_and_the_server_keeps_running() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_wat("trap-http", TRAPPING_HANDLER).await;
        assert_eq!(component.world(), World::HttpProxy);
        let mut spec = env.spec("trap-http", &[]);
        spec.http_listen = any_local_port();
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let addr = running.http_addr().expect("addr");
        for _ in 0..2 {
            let (status, body) = get(addr, "/").await;
            assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
            assert!(body.contains("wasm trap"), "{body}");
        }
        let status = running.stop(Duration::from_secs(5)).await;
        assert_eq!(status.reason, "Stopped");
    })
    .await
}

#[tokio::test]
async fn a_taken_port_is_a_start_error() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut spec = env.spec("clash", &[]);
        spec.http_listen = Some(taken.local_addr().expect("addr"));
        let err = start(&env.engine, &component, spec).await.err().expect("port in use");
        assert!(matches!(err, RuntimeError::Bind { .. }), "{err}");
    })
    .await
}

#[tokio::test]
async fn http_needs_a_listen_address() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        let err = start(&env.engine, &component, env.spec("noport", &[])).await.err().expect("no address");
        assert!(matches!(err, RuntimeError::MissingListenAddress { .. }), "{err}");
    })
    .await
}

#[tokio::test]
async fn stop_cuts_off_a_request_that_outlives_the_grace_period() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_wat("spin-http", SPINNING_HANDLER).await;
        let mut spec = env.spec("spin-http", &[]);
        spec.http_listen = any_local_port();
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let addr = running.http_addr().expect("addr");
        let client = tokio::spawn(raw_get(addr));
        // Wait for the condition "the guest is running the request" (it yields every tick).
        while running.in_flight_requests() == 0 {
            tokio::task::yield_now().await;
        }
        let status = tokio::time::timeout(Duration::from_secs(10), running.stop(Duration::from_millis(100)))
            .await
            .expect("stop ends after the grace period even though the guest spins");
        assert_eq!((status.code, status.reason.as_str()), (0, "Stopped"));
        let message = status.message.expect("says what was cut off");
        assert!(message.contains("1 request(s)"), "{message}");
        assert_eq!(running.in_flight_requests(), 0);
        let response = client.await.expect("client task");
        assert!(!response.starts_with("HTTP/1.1 200"), "{response}");
    })
    .await
}
