//! The container spec as the guest's capability policy: volume mounts as preopens (read-only
//! honoured), paths not given are out of reach, ports and egress for sockets, and WASI preview 1
//! modules under the same grants.

use std::net::{SocketAddr, TcpListener};

use wasm_runtime::logs::Stream;
use wasm_runtime::{Mount, NetworkPolicy, Protocol, World, start};

use crate::common::{TestEnv, contents, read_log, wait_for_log, within};

fn config_dir(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("greeting"), "hello from a volume\n").unwrap();
    dir
}

#[tokio::test]
async fn a_mounted_directory_is_readable_and_nothing_else_is() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("config-echo.wasm").await;
        let mut spec = env.spec("echo", &["/etc/config", "/etc/passwd", "/"]);
        spec.env = vec![("MODE".into(), "test".into())];
        spec.mounts = vec![Mount {
            host_path: config_dir(&env),
            container_path: "/etc/config".into(),
            read_only: true,
        }];
        let status = start(&env.engine, &component, spec).await.expect("starts").wait().await;
        let log = read_log(&env.log_path("echo"));
        let out = contents(&log, Stream::Stdout);
        assert!(out.contains(&"env MODE=test".to_string()), "{out:?}");
        assert!(out.contains(&"file /etc/config/greeting: hello from a volume".to_string()), "{out:?}");
        // The host's files are not there, not even the root.
        let err = contents(&log, Stream::Stderr);
        assert!(err.iter().any(|l| l.starts_with("config-echo: cannot read /etc/passwd")), "{err:?}");
        assert!(err.iter().any(|l| l.starts_with("config-echo: cannot read /:")), "{err:?}");
        assert_eq!(status.code, 1, "std's exit(2) is an error exit under WASI 0.2: {status:?}");
    })
    .await
}

#[tokio::test]
async fn a_read_only_mount_cannot_be_written() {
    within(async {
        let env = TestEnv::new();
        // A preview 1 module that creates /data/out: allowed on a writable mount only.
        let wat = r#"
        (module
          (import "wasi_snapshot_preview1" "path_open"
            (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "out")
          (func (export "_start")
            ;; fd 3 is the first preopen; O_CREAT = 1; rights: fd_read | fd_write
            (call $exit (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 3)
              (i32.const 1) (i64.const 0x42) (i64.const 0) (i32.const 0) (i32.const 64)))))
        "#;
        let path = env.write_wat("writer", wat);
        let module = env.engine.load_component(&path, "writer").await.expect("a core module loads");
        assert_eq!(module.kind_description(), "WASI preview 1 module");
        for read_only in [false, true] {
            let data = env.dir.path().join(format!("data-{read_only}"));
            std::fs::create_dir_all(&data).unwrap();
            let mut spec = env.spec(&format!("writer-{read_only}"), &[]);
            spec.mounts = vec![Mount { host_path: data.clone(), container_path: "/data".into(), read_only }];
            let status = start(&env.engine, &module, spec).await.expect("starts").wait().await;
            // path_open's errno is the exit code: 0 success, 2 EACCES, 63 EPERM, 76 ENOTCAPABLE.
            assert_eq!(status.code == 0, !read_only, "read_only={read_only}: {status:?}");
            assert_eq!(data.join("out").exists(), !read_only);
        }
    })
    .await
}

#[tokio::test]
async fn a_preview1_module_gets_env_args_and_mounts() {
    within(async {
        let env = TestEnv::new();
        let module = env.load_fixture("config-echo.p1.wasm").await;
        assert_eq!(module.world(), World::Command);
        let mut spec = env.spec("p1", &["/etc/config", "/etc/hostname"]);
        spec.env = vec![("FLAVOUR".into(), "preview1".into())];
        spec.mounts = vec![Mount {
            host_path: config_dir(&env),
            container_path: "/etc/config".into(),
            read_only: true,
        }];
        let status = start(&env.engine, &module, spec).await.expect("starts").wait().await;
        let log = read_log(&env.log_path("p1"));
        let out = contents(&log, Stream::Stdout);
        assert!(out.contains(&"env FLAVOUR=preview1".to_string()), "{out:?}");
        assert!(out.contains(&"file /etc/config/greeting: hello from a volume".to_string()), "{out:?}");
        // proc_exit carries the exact code.
        assert_eq!((status.code, status.reason.as_str()), (2, "Error"), "{status:?}");
    })
    .await
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_command_binds_only_declared_ports() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("net-probe.wasm").await;
        let (declared, undeclared) = (free_port(), free_port());
        let policy = NetworkPolicy {
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            ports: vec![(Protocol::Tcp, declared)],
            ..NetworkPolicy::default()
        };

        let mut spec =
            env.spec("undeclared", &["listen", &format!("127.0.0.1:{undeclared}"), "--exit-on-failure"]);
        spec.network = policy.clone();
        let status = start(&env.engine, &component, spec).await.expect("starts").wait().await;
        assert_ne!(status.code, 0);
        let log = read_log(&env.log_path("undeclared"));
        assert!(contents(&log, Stream::Stdout)[0].contains("failed"), "{log:?}");
        let denial = contents(&log, Stream::Stderr);
        assert!(
            denial.iter().any(|l| l.contains("[wasmkube] denied by the pod's policy: bind tcp")),
            "{denial:?}"
        );

        let mut spec = env.spec("declared", &["listen", &format!("127.0.0.1:{declared}")]);
        spec.network = policy;
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        wait_for_log(&env.log_path("declared"), Stream::Stdout, |l| l.contains("listening")).await;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", declared)).await.expect("connect");
        let mut greeting = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut greeting).await.unwrap();
        assert_eq!(greeting, "hello from net-probe\n");
        running.stop(std::time::Duration::ZERO).await;
    })
    .await
}

#[tokio::test]
async fn connecting_out_needs_egress() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("net-probe.wasm").await;
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = target.local_addr().unwrap();

        let mut spec = env.spec("no-egress", &["connect", &addr.to_string(), "--exit-on-failure"]);
        spec.network =
            NetworkPolicy { pod_ip: Some("127.0.0.1".parse().unwrap()), ..NetworkPolicy::default() };
        let status = start(&env.engine, &component, spec).await.expect("starts").wait().await;
        assert_eq!(status.code, 1, "{status:?}");
        let log = read_log(&env.log_path("no-egress"));
        assert!(
            contents(&log, Stream::Stdout)[0].starts_with(&format!("net-probe: connect to {addr} failed"))
        );

        let mut spec = env.spec("egress", &["connect", &addr.to_string()]);
        spec.network = NetworkPolicy {
            allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
            ..NetworkPolicy::default()
        };
        let mut running = start(&env.engine, &component, spec).await.expect("starts");
        let line = wait_for_log(&env.log_path("egress"), Stream::Stdout, |_| true).await;
        assert_eq!(line, format!("net-probe: connected to {addr}"));
        running.stop(std::time::Duration::ZERO).await;
        let denials = running.policy_denials();
        assert!(denials.borrow().is_none());
    })
    .await
}

#[tokio::test]
async fn outgoing_http_needs_egress_by_address_or_host_name() {
    within(async {
        let env = TestEnv::new();
        let component = env.load_fixture("hello-http.wasm").await;
        let mut target = env.spec("target", &[]);
        target.http_listen = Some("127.0.0.1:0".parse().unwrap());
        let mut target = start(&env.engine, &component, target).await.expect("target starts");
        let port = target.http_addr().unwrap().port();

        let cases = [
            ("closed", NetworkPolicy::default(), format!("/fetch/127.0.0.1:{port}/")),
            (
                "by-address",
                NetworkPolicy {
                    allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
                    ..NetworkPolicy::default()
                },
                format!("/fetch/127.0.0.1:{port}/"),
            ),
            (
                "by-name",
                NetworkPolicy { egress_hosts: vec!["localhost".into()], ..NetworkPolicy::default() },
                format!("/fetch/localhost:{port}/"),
            ),
        ];
        for (name, network, path) in cases {
            let mut spec = env.spec(name, &[]);
            spec.http_listen = Some("127.0.0.1:0".parse().unwrap());
            spec.network = network;
            let mut client = start(&env.engine, &component, spec).await.expect("client starts");
            let (status, body) = crate::http::get(client.http_addr().unwrap(), &path).await;
            if name == "closed" {
                assert!(status.contains(" 502 ") && body.contains("HttpRequestDenied"), "{status} {body}");
                let denials = contents(&read_log(&env.log_path(name)), Stream::Stderr);
                assert!(
                    denials.iter().any(|l| l.contains("outgoing http request to http://127.0.0.1")),
                    "{denials:?}"
                );
            } else {
                assert!(status.contains(" 200 "), "{name}: {status} {body}");
                assert_eq!(body, "fetched 200: Hello from unknown! Hello, wasmkube\n", "{name}");
            }
            client.stop(std::time::Duration::ZERO).await;
        }
        target.stop(std::time::Duration::ZERO).await;
    })
    .await
}
