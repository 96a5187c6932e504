//! What the end-to-end suites share: the `eddy` binary, built once per test
//! process; [`Node`], one running `eddy broker` on a free port with a
//! throwaway data directory; and helpers for the rdkafka client (`kafka`),
//! its consumer-group members (`group`), raw protocol requests (`raw`) and
//! for looking at what a node stored on disk (`storage`).
//!
//! Every suite starts its own nodes on ports the kernel hands out, so suites
//! and tests run in parallel. Waits poll with deadlines; nothing sleeps for a
//! fixed time hoping the node is ready.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod group;
pub mod kafka;
pub mod raw;
pub mod storage;
pub mod up;

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a node may take from exec to its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a clean shutdown (SIGTERM) may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of the node's log shown when a test fails.
const LOG_LINES_ON_FAILURE: usize = 60;
/// Attempts at a first start, each on a new port, in case another process
/// took the free port between our probe and the node's bind.
const START_ATTEMPTS: usize = 3;

/// The `eddy` binary of this workspace, built on first use with the profile
/// the tests were built with (`cargo build -p eddy-cli --bin eddy`).
pub fn eddy_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_eddy)
}

fn build_eddy() -> PathBuf {
    // The test executable is <target>/<profile dir>/deps/<name>-<hash>; the
    // binary goes to <target>/<profile dir>/eddy. Building into the same
    // target directory honours CARGO_TARGET_DIR and --release alike.
    let test_executable = std::env::current_exe().expect("path of the test executable");
    let profile_dir = test_executable
        .parent()
        .and_then(Path::parent)
        .expect("test executable under <target>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("profile directory under target");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected profile directory {}", profile_dir.display()),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--quiet", "-p", "eddy-cli", "--bin", "eddy"])
        .args(["--profile", profile])
        .output()
        .expect("running cargo build for the eddy binary");
    assert!(
        output.status.success(),
        "cargo build -p eddy-cli --bin eddy failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let binary = profile_dir.join(format!("eddy{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "cargo built eddy but {} is missing",
        binary.display()
    );
    binary
}

/// The lines a child prints, as they come. A thread reads its stdout to the
/// end, so the child never blocks on a full pipe once nobody listens.
pub fn stdout_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = lines.send(line);
        }
    });
    received
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("probing for a free port")
        .port()
}

/// One `eddy broker` process with its own data directory. Dropping it kills
/// the process (and prints the end of its log if the test is failing).
pub struct Node {
    node_id: i32,
    port: u16,
    /// Holds `data/` and `node.log` (the node's stderr over every run).
    home: TempDir,
    settings: Vec<String>,
    /// Further `eddy broker` arguments (a cluster member's quorum flags).
    args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    /// Starts a node with default settings.
    pub fn start() -> Node {
        Node::start_with(&[])
    }

    /// Starts a node with broker configs given as `key=value` (`--set`).
    pub fn start_with(settings: &[&str]) -> Node {
        let home = tempfile::Builder::new()
            .prefix("eddy-e2e-")
            .tempdir()
            .expect("temporary node directory");
        let mut node = Node {
            node_id: 1,
            port: 0,
            home,
            settings: settings.iter().map(|setting| setting.to_string()).collect(),
            args: Vec::new(),
            child: None,
        };
        for attempt in 1..=START_ATTEMPTS {
            node.port = free_port();
            match node.spawn() {
                Ok(()) => return node,
                Err(reason) if attempt < START_ATTEMPTS && reason.contains("cannot listen") => {}
                Err(reason) => panic!("{reason}"),
            }
        }
        unreachable!("the last attempt panics")
    }

    /// A member of a cluster: node `node_id` on `port`, with extra
    /// `eddy broker` arguments (its controller listener and the voters).
    /// Panics if it does not start.
    pub fn start_member(node_id: i32, port: u16, args: Vec<String>, settings: &[&str]) -> Node {
        Node::try_start_member(node_id, port, args, settings)
            .unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// [`Node::start_member`], with the reason it did not start (its log
    /// included) as the error.
    pub fn try_start_member(
        node_id: i32,
        port: u16,
        args: Vec<String>,
        settings: &[&str],
    ) -> Result<Node, String> {
        let home = tempfile::Builder::new()
            .prefix(&format!("eddy-e2e-node{node_id}-"))
            .tempdir()
            .expect("temporary node directory");
        let mut node = Node {
            node_id,
            port,
            home,
            settings: settings.iter().map(|setting| setting.to_string()).collect(),
            args,
            child: None,
        };
        node.spawn()?;
        Ok(node)
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// SIGSTOP: a hung process (its sockets stay open).
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&mut self, signal: &str) {
        let pid = self.pid();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill {signal} {pid} failed");
    }

    /// `127.0.0.1:PORT`, what clients are given as bootstrap servers.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    /// Where the node keeps one partition's log: `DATA/<topic>-<partition>`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir().join(format!("{topic}-{partition}"))
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// Whether the process is still alive (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("polling the node").is_none(),
            None => false,
        }
    }

    /// Panics, with the node's log, unless the process is alive.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().expect("polling the node")
        {
            panic!("the node exited ({status}); its log:\n{}", self.log_tail());
        }
        assert!(self.child.is_some(), "the node was not started");
    }

    /// SIGKILL: a crash. Waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: a clean shutdown. Returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("node is running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("running kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the node") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the node did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again on the same port and data directory (after
    /// [`Node::kill`] or [`Node::terminate`]; a running node is killed first).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(reason) = self.spawn() {
            panic!("restart failed: {reason}");
        }
    }

    /// Like [`Node::restart`], with `settings` in place of the broker
    /// configs it was started with.
    pub fn restart_with(&mut self, settings: &[&str]) {
        self.settings = settings.iter().map(|setting| setting.to_string()).collect();
        self.restart();
    }

    /// Everything the node wrote to stderr, over all its runs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines of the node's log, after its `Error:` line if a
    /// backtrace would push that out of them.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail_start = lines.len().saturating_sub(LOG_LINES_ON_FAILURE);
        let error = lines[..tail_start]
            .iter()
            .rev()
            .find(|line| line.starts_with("Error:"))
            .map(|line| format!("{line}\n[…]\n"))
            .unwrap_or_default();
        format!("{error}{}", lines[tail_start..].join("\n"))
    }

    /// With `EDDY_TEST_LOGS=DIR`, a failing test's nodes leave their whole
    /// logs in DIR (as `node<id>-<port>.log`); the temporary home goes.
    fn keep_whole_log(&self) {
        let Some(dir) = std::env::var_os("EDDY_TEST_LOGS") else {
            return;
        };
        let kept = Path::new(&dir).join(format!("node{}-{}.log", self.node_id, self.port));
        if let Err(error) = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::copy(self.log_path(), &kept).map(drop))
        {
            eprintln!("could not keep the node log as {}: {error}", kept.display());
        }
    }

    fn log_path(&self) -> PathBuf {
        self.home.path().join("node.log")
    }

    /// Runs `eddy broker` and waits for its ready line.
    fn spawn(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("node log file");
        let mut command = Command::new(eddy_binary());
        command
            .arg("broker")
            .args(["--node-id", &self.node_id.to_string()])
            .args(["--listen", &self.bootstrap()])
            .arg("--data")
            .arg(self.data_dir())
            .args(&self.args);
        for setting in &self.settings {
            command.args(["--set", setting]);
        }
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning eddy broker");
        let first_lines = stdout_lines(&mut child);
        let expected = format!(
            "eddy node {} ready: bootstrap servers {}",
            self.node_id,
            self.bootstrap()
        );
        let outcome = loop {
            match first_lines.recv_timeout(READY_TIMEOUT.saturating_sub(started.elapsed())) {
                Ok(line) if line.starts_with(&expected) => break Ok(()),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break Err(format!("no ready line within {READY_TIMEOUT:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("waiting for the node");
                    break Err(format!("the node exited ({status}) before it was ready"));
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "eddy broker on {}: {reason}; its log:\n{}",
                    self.bootstrap(),
                    self.log_tail()
                ))
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused process cannot die until it runs again.
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
        }
        self.kill();
        if std::thread::panicking() {
            self.keep_whole_log();
            eprintln!(
                "--- last lines of the log of the node on port {} ---\n{}\n---",
                self.port,
                self.log_tail()
            );
        }
    }
}

/// Polls `condition` every few milliseconds until it holds or `timeout`
/// passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The directory holding the client scripts (`tests/clients`).
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// What a finished command printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion with its output captured; kills it and
/// fails the test if it takes longer than `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> Finished {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {description}: {error}"));
    let stdout = read_to_end(child.stdout.take().expect("piped stdout"));
    let stderr = read_to_end(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{description} did not finish within {timeout:?}; stderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn read_to_end(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs a client script (`tests/clients/NAME`) with `interpreter` and
/// returns the JSON object it prints; fails the test with the script's
/// stderr if it fails.
pub fn run_client_script(
    interpreter: &str,
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> serde_json::Value {
    let finished = run(
        Command::new(interpreter)
            .arg(clients_dir().join(script))
            .args(args),
        timeout,
    );
    assert!(
        finished.status.success(),
        "{script} failed ({}):\n{}",
        finished.status,
        finished.stderr
    );
    let last_line = finished.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last_line).unwrap_or_else(|error| {
        panic!(
            "{script} printed no JSON ({error}):\n{}\nstderr:\n{}",
            finished.stdout, finished.stderr
        )
    })
}

/// Checks what `tests/clients/*_metadata.*` print for `node` holding one
/// topic `topic` with `partitions` partitions: a one-broker cluster whose
/// broker is also the controller.
pub fn assert_describes_one_broker_cluster(
    report: &serde_json::Value,
    node: &Node,
    topic: &str,
    partitions: i32,
) {
    use serde_json::json;
    assert!(
        report["cluster_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "cluster id: {report}"
    );
    assert_eq!(report["controller_id"], json!(1));
    assert_eq!(
        report["brokers"],
        json!([{"node_id": 1, "host": "127.0.0.1", "port": node.port(), "rack": null}])
    );
    let partitions: Vec<serde_json::Value> = (0..partitions)
        .map(|partition| {
            json!({"partition": partition, "error_code": 0, "leader": 1, "replicas": [1], "isr": [1]})
        })
        .collect();
    // Internal topics (`__eddy_events`, `__consumer_offsets`) are the
    // cluster's own, as on any Kafka cluster.
    let user_topics: Vec<&serde_json::Value> = report["topics"]
        .as_array()
        .map(|topics| {
            topics
                .iter()
                .filter(|topic| {
                    !topic["name"]
                        .as_str()
                        .is_some_and(|name| name.starts_with("__"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        json!(user_topics),
        json!([{"name": topic, "partitions": partitions}])
    );
}

/// A running process's resident set (VmRSS in `/proc/PID/status`), in KiB;
/// `None` if the process is gone or the kernel does not say.
pub fn resident_set_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
