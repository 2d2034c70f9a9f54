//! Container probes as the kubelet runs them: `startupProbe`, then `livenessProbe` and
//! `readinessProbe` side by side, each `httpGet` or `tcpSocket` against the pod's IP, with all
//! the timing fields (initialDelaySeconds from the container's start, periodSeconds,
//! timeoutSeconds, successThreshold, failureThreshold, the probe's own
//! terminationGracePeriodSeconds).
//!
//! - A readiness result sets the container's `ready` (and through it the pod's Ready
//!   condition); until the first success a container with a readiness probe is not ready.
//! - A startup probe holds the other two back until it succeeds (`started` turns true); failing
//!   it `failureThreshold` times in a row, like failing the liveness probe, ends the run: the
//!   container is stopped and restarted under the pod's restartPolicy.
//! - Every failed check is a Warning `Unhealthy` Event with kubelet's wording, and a probe that
//!   ends a run adds a Normal `Killing` Event.
//!
//! `exec` probes run their command in a Linux container with `runc exec` (exit code 0 passes);
//! a Wasm container has no process to run a command in, so there an exec probe fails with a
//! message saying so. gRPC probes are not implemented (same treatment).

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use serde_json::Value;

use wasm_runtime::linux::ExecHandle;

use super::container::ContainerTask;
use crate::controllers::events::EventKind;

/// Which probe; its words in Events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// What one check does.
#[derive(Debug, Clone)]
enum Action {
    Http {
        https: bool,
        host: Option<String>,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: Option<String>,
        port: u16,
    },
    /// A command run in the (Linux) container.
    Exec {
        command: Vec<String>,
        handle: ExecHandle,
    },
    /// A probe this node cannot run, and why (every check fails with it).
    Unsupported(String),
}

/// One probe of one container.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    kind: Kind,
    action: Action,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    /// The probe's own terminationGracePeriodSeconds, used when it ends the run.
    termination_grace: Option<Duration>,
}

/// The probes of one container.
#[derive(Debug, Clone, Default)]
pub(super) struct Probes {
    startup: Option<Probe>,
    liveness: Option<Probe>,
    readiness: Option<Probe>,
}

/// Why the probes ended a run.
#[derive(Debug, Clone)]
pub(super) struct Kill {
    pub message: String,
    /// The grace period to stop with, if the probe sets its own.
    pub grace: Option<Duration>,
}

impl Probes {
    /// The probes in a container spec; `exec` runs commands in the container (none for Wasm).
    pub(super) fn from_spec(container: &Value, exec: Option<&ExecHandle>) -> Self {
        let probe = |field: &str, kind: Kind| {
            container.get(field).filter(|p| p.is_object()).map(|p| Probe::parse(p, kind, container, exec))
        };
        Self {
            startup: probe("startupProbe", Kind::Startup),
            liveness: probe("livenessProbe", Kind::Liveness),
            readiness: probe("readinessProbe", Kind::Readiness),
        }
    }

    /// True when the container has no probe at all.
    pub(super) fn is_empty(&self) -> bool {
        self.startup.is_none() && self.liveness.is_none() && self.readiness.is_none()
    }
}

fn seconds(spec: &Value, field: &str, default: u64) -> Duration {
    Duration::from_secs(spec[field].as_u64().unwrap_or(default))
}

fn count(spec: &Value, field: &str, default: u32) -> u32 {
    spec[field].as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0).unwrap_or(default)
}

impl Probe {
    fn parse(spec: &Value, kind: Kind, container: &Value, exec: Option<&ExecHandle>) -> Self {
        let action = if let Some(http) = spec.get("httpGet") {
            match resolve_port(&http["port"], container) {
                Ok(port) => Action::Http {
                    https: http["scheme"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS")),
                    host: http["host"].as_str().filter(|h| !h.is_empty()).map(str::to_string),
                    port,
                    path: http["path"].as_str().filter(|p| !p.is_empty()).unwrap_or("/").to_string(),
                    headers: http["httpHeaders"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|h| {
                            Some((h["name"].as_str()?.to_string(), h["value"].as_str()?.to_string()))
                        })
                        .collect(),
                },
                Err(message) => Action::Unsupported(message),
            }
        } else if let Some(tcp) = spec.get("tcpSocket") {
            match resolve_port(&tcp["port"], container) {
                Ok(port) => Action::Tcp {
                    host: tcp["host"].as_str().filter(|h| !h.is_empty()).map(str::to_string),
                    port,
                },
                Err(message) => Action::Unsupported(message),
            }
        } else if let Some(command) = spec.get("exec") {
            let command: Vec<String> = command["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            match exec {
                Some(handle) if !command.is_empty() => Action::Exec { command, handle: handle.clone() },
                Some(_) => Action::Unsupported("the exec probe has no command".into()),
                None => Action::Unsupported(
                    "exec probes cannot run in a Wasm container (it has no processes to exec into); use httpGet or tcpSocket".into(),
                ),
            }
        } else if spec.get("grpc").is_some() {
            Action::Unsupported(
                "gRPC probes are not supported yet on wasmkube; use httpGet or tcpSocket".into(),
            )
        } else {
            Action::Unsupported("the probe has no handler (httpGet, tcpSocket, exec or grpc)".into())
        };
        let success_threshold = match kind {
            // Kubernetes requires 1 for liveness and startup probes.
            Kind::Readiness => count(spec, "successThreshold", 1),
            Kind::Liveness | Kind::Startup => 1,
        };
        Self {
            kind,
            action,
            initial_delay: seconds(spec, "initialDelaySeconds", 0),
            period: seconds(spec, "periodSeconds", 10).max(Duration::from_secs(1)),
            timeout: seconds(spec, "timeoutSeconds", 1).max(Duration::from_secs(1)),
            success_threshold,
            failure_threshold: count(spec, "failureThreshold", 3),
            termination_grace: spec["terminationGracePeriodSeconds"].as_u64().map(Duration::from_secs),
        }
    }

    /// One check: `Ok` or kubelet's failure message.
    async fn check(&self, pod_ip: Ipv4Addr, client: &reqwest::Client) -> Result<(), String> {
        match &self.action {
            Action::Unsupported(why) => Err(why.clone()),
            Action::Exec { command, handle } => match handle.run(command, self.timeout).await {
                Ok(done) if done.code == 0 => Ok(()),
                // kubelet reports what the command printed, else how it ended.
                Ok(done) if !done.output.trim().is_empty() => Err(done.output.trim().to_string()),
                Ok(done) => Err(format!("command {:?} exited with code {}", command.join(" "), done.code)),
                Err(e) => Err(e.to_string()),
            },
            Action::Tcp { host, port } => {
                let addr = format!("{}:{port}", host.clone().unwrap_or_else(|| pod_ip.to_string()));
                match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(&addr)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {}", os_error_text(&e))),
                    Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
                }
            }
            Action::Http { https, host, port, path, headers } => {
                let scheme = if *https { "https" } else { "http" };
                let host = host.clone().unwrap_or_else(|| pod_ip.to_string());
                let url = format!("{scheme}://{host}:{port}{path}");
                let mut request = client.get(&url).timeout(self.timeout);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                match request.send().await {
                    // kubelet counts 200-399 as success (redirects are not followed here).
                    Ok(r) if (200..400).contains(&r.status().as_u16()) => Ok(()),
                    Ok(r) => Err(format!("HTTP probe failed with statuscode: {}", r.status().as_u16())),
                    Err(e) if e.is_timeout() => Err(format!(
                        "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                    )),
                    Err(e) => Err(format!("Get \"{url}\": {}", root_cause(&e))),
                }
            }
        }
    }
}

/// Run a lifecycle hook's `httpGet`, `tcpSocket` or `exec` handler once (the same actions as probes),
/// waiting at most `timeout`: `Ok` or kubelet's failure message.
pub(super) async fn run_handler(
    handler: &Value,
    container: &Value,
    exec: Option<&ExecHandle>,
    pod_ip: Ipv4Addr,
    timeout: Duration,
) -> Result<(), String> {
    let mut probe = Probe::parse(handler, Kind::Liveness, container, exec);
    probe.timeout = timeout.max(Duration::from_secs(1));
    probe.check(pod_ip, &probe_client()).await
}

/// A port number, or the name of one of the container's ports.
fn resolve_port(port: &Value, container: &Value) -> Result<u16, String> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("invalid port number: {n}"));
    }
    let Some(name) = port.as_str() else {
        return Err("the probe names no port".into());
    };
    if let Ok(n) = name.parse::<u16>() {
        return Ok(n);
    }
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| format!("unable to find port {name:?} in the container's ports"))
}

fn os_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    match cause.downcast_ref::<std::io::Error>() {
        Some(io) => format!("dial tcp: connect: {}", os_error_text(io)),
        None => cause.to_string(),
    }
}

/// The HTTP client of one container's probes: no redirects, no kept connections (a probe is
/// a fresh connection each time, as with kubelet), and any certificate for HTTPS.
fn probe_client() -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .tls_danger_accept_invalid_certs(true)
        .user_agent("kube-probe/1.37")
        .build()
        .unwrap_or_default()
}

impl ContainerTask {
    /// Runs the probes of one run that started at `started`; returns when a startup or
    /// liveness probe says the run must end (never, without those probes).
    pub(super) async fn run_probes(&self, probes: &Probes, started: Instant) -> Kill {
        if probes.is_empty() {
            // Nothing to run (supervise already set started and ready): build no client on
            // the start path of every pod.
            return std::future::pending().await;
        }
        let client = probe_client();
        if let Some(startup) = &probes.startup {
            if let Err(kill) = self.until_success(startup, started, &client).await {
                return kill;
            }
        }
        self.set(|s| {
            s.started = true;
            if probes.readiness.is_none() {
                s.ready = true;
            }
        });
        let liveness = async {
            match &probes.liveness {
                Some(p) => self.until_failure(p, started, &client).await,
                None => std::future::pending().await,
            }
        };
        let readiness = async {
            if let Some(p) = &probes.readiness {
                self.track_readiness(p, started, &client).await;
            }
            std::future::pending::<Kill>().await
        };
        tokio::select! {
            kill = liveness => kill,
            kill = readiness => kill,
        }
    }

    /// One check, reported as an Event when it fails.
    async fn check_and_report(&self, probe: &Probe, client: &reqwest::Client) -> Result<(), String> {
        let result = probe.check(self.pod_ip, client).await;
        if let Err(message) = &result {
            tracing::info!(probe = probe.kind.title(), %message, "probe failed");
            self.event(
                EventKind::Warning,
                "Unhealthy",
                &format!("{} probe failed: {message}", probe.kind.title()),
            )
            .await;
        }
        result
    }

    /// Startup: checks until one succeeds, or `failureThreshold` fail in a row.
    async fn until_success(
        &self,
        probe: &Probe,
        started: Instant,
        client: &reqwest::Client,
    ) -> Result<(), Kill> {
        tokio::time::sleep_until((started + probe.initial_delay).into()).await;
        let mut failures = 0;
        loop {
            match self.check_and_report(probe, client).await {
                Ok(()) => return Ok(()),
                Err(_) => failures += 1,
            }
            if failures >= probe.failure_threshold {
                return Err(self.kill(probe).await);
            }
            tokio::time::sleep(probe.period).await;
        }
    }

    /// Liveness: checks until `failureThreshold` fail in a row.
    async fn until_failure(&self, probe: &Probe, started: Instant, client: &reqwest::Client) -> Kill {
        tokio::time::sleep_until((started + probe.initial_delay).into()).await;
        let mut failures = 0;
        loop {
            match self.check_and_report(probe, client).await {
                Ok(()) => failures = 0,
                Err(_) => failures += 1,
            }
            if failures >= probe.failure_threshold {
                return self.kill(probe).await;
            }
            tokio::time::sleep(probe.period).await;
        }
    }

    /// Readiness: flips `ready` after `successThreshold` successes or `failureThreshold`
    /// failures in a row, for as long as the run lasts.
    async fn track_readiness(&self, probe: &Probe, started: Instant, client: &reqwest::Client) {
        tokio::time::sleep_until((started + probe.initial_delay).into()).await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            match self.check_and_report(probe, client).await {
                Ok(()) => (successes, failures) = (successes + 1, 0),
                Err(_) => (successes, failures) = (0, failures + 1),
            }
            if successes >= probe.success_threshold {
                self.set(|s| s.ready = true);
            } else if failures >= probe.failure_threshold {
                self.set(|s| s.ready = false);
            }
            tokio::time::sleep(probe.period).await;
        }
    }

    async fn kill(&self, probe: &Probe) -> Kill {
        let what = match probe.kind {
            Kind::Startup => "startup",
            Kind::Liveness | Kind::Readiness => "liveness",
        };
        let message = format!("Container {} failed {what} probe, will be restarted", self.name());
        self.event(EventKind::Normal, "Killing", &message).await;
        Kill { message, grace: probe.termination_grace }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_default_as_in_kubernetes_and_named_ports_resolve() {
        let container = json!({
            "ports": [{"name": "web", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "web"}},
            "readinessProbe": {"tcpSocket": {"port": 9000}, "successThreshold": 2, "periodSeconds": 3},
        });
        let probes = Probes::from_spec(&container, None);
        let live = probes.liveness.expect("liveness");
        assert!(
            matches!(live.action, Action::Http { port: 8080, ref path, https: false, .. } if path == "/healthz")
        );
        assert_eq!(
            (live.period, live.timeout, live.failure_threshold),
            (Duration::from_secs(10), Duration::from_secs(1), 3)
        );
        let ready = probes.readiness.expect("readiness");
        assert!(matches!(ready.action, Action::Tcp { port: 9000, host: None }));
        assert_eq!((ready.success_threshold, ready.period), (2, Duration::from_secs(3)));
        assert!(probes.startup.is_none());
    }

    #[test]
    fn what_cannot_run_here_says_why() {
        let container = json!({
            "livenessProbe": {"exec": {"command": ["true"]}},
            "readinessProbe": {"httpGet": {"port": "missing"}},
            "startupProbe": {"grpc": {"port": 9000}},
        });
        let probes = Probes::from_spec(&container, None);
        let why = |p: Option<Probe>| match p.expect("probe").action {
            Action::Unsupported(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(probes.liveness).contains("Wasm container"));
        assert!(why(probes.readiness).contains("\"missing\""));
        assert!(why(probes.startup).contains("gRPC"));
    }

    #[tokio::test]
    async fn checks_report_kubelet_messages() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // A tiny server: /ok answers 200, anything else 503.
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 1024];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let status =
                        if buf[..n].starts_with(b"GET /ok ") { "200 OK" } else { "503 Service Unavailable" };
                    let _ = stream
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        let client = probe_client();
        let ip = Ipv4Addr::LOCALHOST;
        let http = |path: &str| {
            Probe::parse(&json!({"httpGet": {"path": path, "port": port}}), Kind::Liveness, &json!({}), None)
        };
        assert_eq!(http("/ok").check(ip, &client).await, Ok(()));
        assert_eq!(
            http("/bad").check(ip, &client).await,
            Err("HTTP probe failed with statuscode: 503".into())
        );
        let tcp = Probe::parse(&json!({"tcpSocket": {"port": port}}), Kind::Readiness, &json!({}), None);
        assert_eq!(tcp.check(ip, &client).await, Ok(()));
        // A port nobody listens on: bind one, then close it.
        let closed =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let tcp = Probe::parse(&json!({"tcpSocket": {"port": closed}}), Kind::Readiness, &json!({}), None);
        assert_eq!(
            tcp.check(ip, &client).await,
            Err(format!("dial tcp 127.0.0.1:{closed}: connect: connection refused"))
        );
        let refused = http("/ok");
        let refused = Probe {
            action: Action::Http {
                https: false,
                host: None,
                port: closed,
                path: "/".into(),
                headers: vec![],
            },
            ..refused
        };
        let message = refused.check(ip, &client).await.expect_err("refused");
        assert!(message.starts_with(&format!("Get \"http://127.0.0.1:{closed}/\": ")), "{message}");
        assert!(message.contains("connection refused"), "{message}");
    }
}
