//! The HTTP side of the runtime benchmarks: a bare hyper HTTP/1.1 connection that sends one
//! request at a time and times each from sending to the last byte of the body (no pool, no
//! redirects, so the client adds as little as possible), and `wasmtime serve` as the reference
//! server on the same component.

use std::{
    net::SocketAddr,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// One keep-alive connection to `addr`.
pub struct Connection {
    sender: http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream =
            tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        // Without it, Nagle on the client would hold the small requests back.
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self { sender, addr })
    }

    /// GET / and read the whole answer; its status.
    pub async fn get(&mut self) -> anyhow::Result<u16> {
        let request = hyper::Request::get("/")
            .header(hyper::header::HOST, self.addr.to_string())
            .body(Empty::<Bytes>::new())?;
        // The connection task finishes the previous exchange asynchronously.
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }
}

/// Time `count` GETs sent one after another on one connection; any non-200 is an error.
pub async fn sequential(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Duration>> {
    let mut conn = Connection::open(addr).await?;
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let status = conn.get().await?;
        samples.push(started.elapsed());
        if status != 200 {
            return Err(anyhow!("{addr} answered {status}"));
        }
    }
    Ok(samples)
}

/// Wait until `addr` answers GET / with 200.
pub async fn wait_for_200(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut conn) = Connection::open(addr).await
            && matches!(conn.get().await, Ok(200))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow!("{addr} did not answer 200 within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A free port on the loopback address (nothing holds it once this returns).
pub fn free_local_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `wasmtime serve -Scli=y` of a component, killed when dropped. Its default allocator is the
/// pooling one, as ours. The guest's stdout (hello-http prints a line per request) goes to a
/// file, as a pod's goes to its log file, so both servers pay for writing it.
pub struct WasmtimeServe {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    log: std::path::PathBuf,
}

impl WasmtimeServe {
    pub async fn start(component: &Path) -> anyhow::Result<Self> {
        let addr = free_local_addr()?;
        let log = std::env::temp_dir()
            .join(format!("wasmkube-bench-wasmtime-{}.log", orchestrator::api::meta::random_suffix()));
        let stdout = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = tokio::process::Command::new("wasmtime")
            .args(["serve", "-Scli=y", "--addr", &addr.to_string()])
            .arg(component)
            .stdout(stdout)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("running `wasmtime serve` (is wasmtime on PATH? `cargo install wasmtime-cli --version 48.0.8 --locked`)")?;
        let server = Self { child, addr, log };
        wait_for_200(addr, Duration::from_secs(60)).await?;
        Ok(server)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `wasmtime --version` without the commit and date, e.g. "wasmtime 48.0.8".
    pub fn version() -> Option<String> {
        let out = std::process::Command::new("wasmtime").arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        out.status.success().then(|| text.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}
