//! Running the real `wasmkube` binary for tests: `up` and `agent` as child processes, the real
//! kubectl (from the venv `scripts/install-test-deps.sh` makes) pointed at them, and a plain
//! HTTP GET for pods. Readiness is read from the processes' own output, never guessed by time.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, bail};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `wasmkube` binary the test build made (`$WASMKUBE_BIN` overrides).
pub fn wasmkube_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("WASMKUBE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let bin = target.join("debug/wasmkube");
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (`cargo nextest run --no-run` builds it, as scripts/test.sh does)",
            bin.display()
        );
    }
    Ok(bin)
}

/// The real kubectl from the test venv.
pub fn kubectl_bin() -> anyhow::Result<PathBuf> {
    let bin = root().join(".venv/bin/kubectl");
    if !bin.exists() {
        bail!("{} is missing: run scripts/install-test-deps.sh", bin.display());
    }
    Ok(bin)
}

/// A free loopback port (not reserved; good enough for test servers that bind at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A child process whose stdout lines arrive on a channel; killed (SIGTERM, then SIGKILL) on drop.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Everything it printed so far (for failure messages).
    pub seen: Vec<String>,
}

impl Process {
    /// Spawn `bin args`, stderr into `log`.
    pub fn spawn(bin: &Path, args: &[&str], log: &Path) -> anyhow::Result<Self> {
        Self::spawn_with_env(bin, args, &[], log)
    }

    /// Spawn `bin args` with extra environment variables, stderr into `log`.
    pub fn spawn_with_env(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &Path)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(log)?;
        let mut command = Command::new(bin);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines, seen: Vec::new() })
    }

    /// Wait until a printed line contains `needle` (or the process exits / `timeout` passes).
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    bail!("no line containing {needle:?} within {timeout:?}; output so far: {:?}", self.seen)
                }
            }
        }
    }

    /// The next printed line, or `None` once the process closed its output or `timeout` passed.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Stop with SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        Ok(self.child.wait()?)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            for _ in 0..50 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Networks (`127.X.0.0/13`) reserved for one test cluster, so clusters of tests running side
/// by side never hand out the same pod IP or cluster IP, nor serve node ports on the same
/// address (two pods on 127.64.0.2:8080 would collide; two proxies on one cluster IP would
/// share it). Pods get `127.X.0.0/14`, Services `127.X+4.0.0/16`, nodes `127.X+5.0.N`.
/// Reservations are files holding the owner's pid; a dead owner's file is taken over.
pub struct PodNetworkLease {
    path: PathBuf,
    /// `--pod-network` for `wasmkube up`.
    pub cidr: String,
    /// `--service-network` for `wasmkube up`.
    pub service_network: String,
    second_octet: u16,
}

impl PodNetworkLease {
    /// Reserve a free network.
    pub fn reserve() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join("wasmkube-test-networks");
        std::fs::create_dir_all(&dir)?;
        for second_octet in (64u16..=248).step_by(8) {
            let path = dir.join(second_octet.to_string());
            for _ in 0..2 {
                // The file appears with its owner already in it (a hard link of a finished
                // file): a plain create-then-write let a second test read it empty in between,
                // take it for a dead owner's, and share the network.
                let mine = dir.join(format!("{second_octet}.{}", std::process::id()));
                std::fs::write(&mine, std::process::id().to_string())?;
                let linked = std::fs::hard_link(&mine, &path);
                let _ = std::fs::remove_file(&mine);
                match linked {
                    Ok(()) => {
                        return Ok(Self {
                            path,
                            cidr: format!("127.{second_octet}.0.0/14"),
                            service_network: format!("127.{}.0.0/16", second_octet + 4),
                            second_octet,
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let owner = std::fs::read_to_string(&path).unwrap_or_default();
                        let alive =
                            !owner.trim().is_empty() && Path::new("/proc").join(owner.trim()).exists();
                        if alive {
                            break;
                        }
                        let _ = std::fs::remove_file(&path);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        bail!("no free test network in {}", dir.display())
    }

    /// The address of the `n`th node (1: the `up` process's own).
    pub fn node_ip(&self, n: u8) -> String {
        format!("127.{}.0.{n}", self.second_octet + 5)
    }
}

impl Drop for PodNetworkLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running `wasmkube up`.
pub struct Cluster {
    /// The `up` process.
    pub process: Process,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The join token it printed (agents register their own credential with it).
    pub join_token: String,
    /// The address of its node: node ports, LoadBalancer Services and Ingress listen there.
    pub node_ip: String,
    /// Its service network.
    pub service_network: String,
    /// How many nodes joined so far (each gets the next address).
    joined: std::sync::atomic::AtomicU8,
    /// The networks reserved for it (when `up` reserved them itself).
    _network: Option<PodNetworkLease>,
}

impl Cluster {
    /// Start `wasmkube up` on a free port with `data_dir` and wait until it says it is up.
    pub fn up(data_dir: &Path, node_name: &str) -> anyhow::Result<Self> {
        Self::up_with(data_dir, node_name, &[])
    }

    /// Like [`Cluster::up`], with more `wasmkube up` flags.
    pub fn up_with(data_dir: &Path, node_name: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let network = PodNetworkLease::reserve()?;
        let mut cluster = Self::start(data_dir, node_name, free_port(), &network, extra)?;
        cluster._network = Some(network);
        Ok(cluster)
    }

    /// Like [`Cluster::up`] on a given port and networks (a restart reuses both).
    pub fn up_on(
        data_dir: &Path,
        node_name: &str,
        port: u16,
        network: &PodNetworkLease,
    ) -> anyhow::Result<Self> {
        Self::start(data_dir, node_name, port, network, &[])
    }

    fn start(
        data_dir: &Path,
        node_name: &str,
        port: u16,
        network: &PodNetworkLease,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let node_ip = network.node_ip(1);
        let listen = format!("127.0.0.1:{port}");
        let log = data_dir.with_extension(format!("up-{port}-{}.log", std::process::id()));
        let data = data_dir.display().to_string();
        let mut args = vec![
            "up",
            "--data-dir",
            &data,
            "--listen",
            &listen,
            "--node-name",
            node_name,
            "--pod-network",
            &network.cidr,
            "--service-network",
            &network.service_network,
            "--node-ip",
            &node_ip,
        ];
        args.extend_from_slice(extra);
        let mut process = Process::spawn(&wasmkube_bin()?, &args, &log)?;
        let join = process.wait_for_line("join a node:", Duration::from_secs(120)).with_context(|| {
            format!(
                "wasmkube up did not come up; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        let join_token =
            join.split_whitespace().skip_while(|w| *w != "--token").nth(1).unwrap_or("").to_string();
        process.wait_for_line("Press Ctrl-C", Duration::from_secs(60))?;
        Ok(Self {
            process,
            data_dir: data_dir.to_path_buf(),
            server: format!("https://{listen}"),
            join_token,
            node_ip: node_ip.clone(),
            service_network: network.service_network.clone(),
            joined: std::sync::atomic::AtomicU8::new(1),
            _network: None,
        })
    }

    /// The kubeconfig `up` wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    /// The cluster CA `up` wrote.
    pub fn ca_cert(&self) -> PathBuf {
        self.data_dir.join("pki/ca.crt")
    }

    /// Run kubectl against this cluster; returns the whole output, successful or not.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.kubectl_env(args, &[])
    }

    /// Like [`Cluster::kubectl`] with more environment (e.g. `KUBE_EDITOR`).
    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
        let cache = self.data_dir.join("kube-cache");
        Ok(Command::new(kubectl_bin()?)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", cache)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()?)
    }

    /// Start a long-running kubectl (e.g. `logs -f`) whose output lines can be awaited.
    pub fn kubectl_background(&self, args: &[&str]) -> anyhow::Result<Process> {
        let log = self.data_dir.with_extension(format!("kubectl-{}.log", std::process::id()));
        let cache = self.data_dir.join("kube-cache");
        Process::spawn_with_env(
            &kubectl_bin()?,
            args,
            &[("KUBECONFIG", &self.kubeconfig()), ("KUBECACHEDIR", &cache)],
            &log,
        )
    }

    /// Follows `kubectl logs -f POD [-c CONTAINER]` until a line contains `needle` (the
    /// container must have started: wait for the pod to be Ready or done first).
    pub fn wait_for_log(
        &self,
        pod: &str,
        container: Option<&str>,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let mut args = vec!["logs", "-f", pod];
        if let Some(c) = container {
            args.extend(["-c", c]);
        }
        let mut follow = self.kubectl_background(&args)?;
        let line = follow.wait_for_line(needle, timeout);
        let _ = follow.terminate();
        line
    }

    /// Watches the pod's Events (`kubectl get events -w`) until one has `reason`; returns its
    /// message.
    pub fn wait_for_event(&self, pod: &str, reason: &str, timeout: Duration) -> anyhow::Result<String> {
        let selector = format!("involvedObject.name={pod}");
        let mut watch = self.kubectl_background(&[
            "get",
            "events",
            "-w",
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={.reason} {.message}{\"\\n\"}",
        ])?;
        let line = watch.wait_for_line(&format!("{reason} "), timeout);
        let _ = watch.terminate();
        Ok(line?.split_once(' ').map(|(_, message)| message.to_string()).unwrap_or_default())
    }

    /// `kubectl apply -f` of `yaml`, written first as `<data dir>/manifests/<name>.yaml`.
    pub fn apply_yaml(&self, name: &str, yaml: &str) -> anyhow::Result<()> {
        let dir = self.data_dir.join("manifests");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml)?;
        self.kubectl_ok(&["apply", "-f", &file.display().to_string()])?;
        Ok(())
    }

    /// Run kubectl and require success; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.kubectl(args)?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        Ok(serde_json::from_str(&self.kubectl_ok(&all)?)?)
    }

    /// Run the wasmkube CLI; require success; returns stdout.
    pub fn wasmkube_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(wasmkube_bin()?)
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "wasmkube {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Side-load a committed sample fixture (`hello-http.wasm`, ...) into the `up` node's image
    /// cache as `image`, as a user would with `wasmkube load`.
    pub fn side_load(&self, fixture: &str, image: &str) -> anyhow::Result<String> {
        let node_dir = self.data_dir.join("node").display().to_string();
        let file = root().join("sample-apps/fixtures").join(fixture).display().to_string();
        self.wasmkube_ok(&["load", &file, "--name", image, "--node-data-dir", &node_dir])
    }

    /// The kubelet-style `/stats/summary` of the `up` node's agent, read with the API server's
    /// token as the API server would.
    pub fn node_stats(&self, node_name: &str) -> anyhow::Result<serde_json::Value> {
        let tokens: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.data_dir.join("tokens.json"))?)?;
        let token = tokens["apiserver"].as_str().context("no apiserver token")?;
        let node = self.get_json(&["node", node_name])?;
        let port = &node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"];
        let addresses = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
        let ip = addresses
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .context("the node has no InternalIP")?;
        let (code, body) = http_get_with(
            &format!("{ip}:{port}"),
            "/stats/summary",
            &format!("Authorization: Bearer {token}\r\n"),
        )?;
        anyhow::ensure!(code == 200, "/stats/summary answered {code}: {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// Start another node with `wasmkube agent` and wait until it has joined.
    pub fn join_agent(&self, data_dir: &Path, node_name: &str) -> anyhow::Result<Process> {
        let log = data_dir.with_extension("agent.log");
        let n = self.joined.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let node_ip = self.node_ip.rsplit_once('.').map(|(net, _)| format!("{net}.{n}")).unwrap_or_default();
        let mut p = Process::spawn(
            &wasmkube_bin()?,
            &[
                "agent",
                "--server",
                &self.server,
                "--token",
                &self.join_token,
                "--ca-cert",
                &self.ca_cert().display().to_string(),
                "--data-dir",
                &data_dir.display().to_string(),
                "--node-name",
                node_name,
                "--node-ip",
                &node_ip,
            ],
            &log,
        )?;
        p.wait_for_line("joined", Duration::from_secs(60))
            .with_context(|| format!("agent log: {}", std::fs::read_to_string(&log).unwrap_or_default()))?;
        Ok(p)
    }
}

/// A plain HTTP/1.1 GET; returns (status code, body).
pub fn http_get(host_port: &str, path: &str) -> anyhow::Result<(u16, String)> {
    http_get_with(host_port, path, "")
}

/// [`http_get`] with extra header lines (each ending in `\r\n`).
pub fn http_get_with(host_port: &str, path: &str, headers: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(host_port).with_context(|| format!("connecting to {host_port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host_port}\r\n{headers}Connection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// Like [`http_get`], retrying while nothing answers yet (a pod whose server is still
/// starting), for at most `patience`.
pub fn http_get_when_up(host_port: &str, path: &str, patience: Duration) -> anyhow::Result<(u16, String)> {
    http_get_until(host_port, path, patience, |_, _| true)
}

/// GET `path` at `host_port` until `done` accepts an answer (each answer is handed to it), for
/// at most `patience`: what a Service or Ingress serves follows the cluster with a lag no
/// watch shows.
pub fn http_get_until(
    host_port: &str,
    path: &str,
    patience: Duration,
    mut done: impl FnMut(u16, &str) -> bool,
) -> anyhow::Result<(u16, String)> {
    crate::poll::until(&format!("the right answer from {host_port}{path}"), patience, || {
        Ok(match http_get(host_port, path) {
            Ok((code, body)) if done(code, &body) => (Some((code, body)), String::new()),
            answer => (None, format!("{answer:?}")),
        })
    })
}
