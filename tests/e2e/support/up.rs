//! One `eddy cluster up` in the foreground with its own data directory, and
//! `eddy cluster` commands against it from "another terminal", as the
//! cluster CLI and cluster operations suites drive them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::Finished;

/// How long `eddy cluster up` gets to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Up {
    home: TempDir,
    supervisor: Option<Child>,
    /// How long one `eddy cluster` command may take.
    command_timeout: Duration,
}

impl Up {
    /// A temporary home whose name starts with `prefix`; nothing runs yet.
    pub fn new(prefix: &str, command_timeout: Duration) -> Up {
        let home = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temporary cluster directory");
        Up {
            home,
            supervisor: None,
            command_timeout,
        }
    }

    /// Runs `eddy cluster up ARGS --data DIR`, its stderr appended to
    /// `supervisor.log`; what it prints comes line by line on the receiver.
    pub fn spawn(&mut self, args: &[&str]) -> mpsc::Receiver<String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.path().join("supervisor.log"))
            .expect("supervisor log");
        let mut child = Command::new(super::eddy_binary())
            .args(["cluster", "up"])
            .args(args)
            .arg("--data")
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawning eddy cluster up");
        let received = super::stdout_lines(&mut child);
        self.supervisor = Some(child);
        received
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("supervisor.log")).unwrap_or_default()
    }

    pub fn supervisor_pid(&self) -> u32 {
        self.supervisor.as_ref().expect("supervisor running").id()
    }

    /// Waits for `up` to exit; fails the test if it does not within `timeout`.
    pub fn wait_supervisor(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.supervisor.take().expect("supervisor running");
        match wait_for(&mut child, timeout) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the supervisor did not exit within {timeout:?}; its log:\n{}",
                    self.supervisor_log()
                );
            }
        }
    }

    /// SIGTERM (a clean `down`), then SIGKILL if `up` lingers past `timeout`.
    pub fn stop(&mut self, timeout: Duration) {
        let Some(mut child) = self.supervisor.take() else {
            return;
        };
        signal("-TERM", child.id());
        if wait_for(&mut child, timeout).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `eddy cluster ARGS --data DIR`.
    pub fn eddy(&self, args: &[&str]) -> Finished {
        eddy_cluster(args, &self.data_dir(), self.command_timeout)
    }

    /// Runs `eddy cluster ARGS` and fails the test unless it succeeds.
    pub fn command(&self, args: &[&str]) -> String {
        let finished = self.eddy(args);
        assert!(
            finished.status.success(),
            "eddy cluster {args:?} failed ({}):\n{}\n{}\nsupervisor log:\n{}",
            finished.status,
            finished.stdout,
            finished.stderr,
            self.supervisor_log()
        );
        finished.stdout
    }

    /// `eddy cluster status --json`.
    pub fn status(&self) -> Value {
        let stdout = self.command(&["status", "--json"]);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("status --json printed no JSON ({error}):\n{stdout}"))
    }

    /// One node's entry in `status --json`.
    pub fn node_status(&self, node: u64) -> Value {
        let status = self.status();
        status["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|entry| entry["id"] == node))
            .cloned()
            .unwrap_or_else(|| panic!("status has no node {node}: {status}"))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- supervisor log ---\n{}", self.supervisor_log());
        }
        self.stop(STOP_TIMEOUT);
        if std::thread::panicking() {
            self.keep_whole_logs();
        }
    }
}

impl Up {
    /// With `EDDY_TEST_LOGS=DIR`, a failing test leaves the supervisor's and
    /// every node's whole log in DIR/<home name>/.
    fn keep_whole_logs(&self) {
        let Some(dir) = std::env::var_os("EDDY_TEST_LOGS") else {
            return;
        };
        let name = self.home.path().file_name().unwrap_or_default();
        let kept = Path::new(&dir).join(name);
        let mut logs = vec![(
            self.home.path().join("supervisor.log"),
            "supervisor.log".to_string(),
        )];
        if let Ok(entries) = std::fs::read_dir(self.data_dir()) {
            for entry in entries.flatten() {
                let node = entry.file_name().to_string_lossy().into_owned();
                logs.push((entry.path().join("eddy.log"), format!("{node}.log")));
            }
        }
        for (from, to) in logs.iter().filter(|(from, _)| from.is_file()) {
            if let Err(error) = std::fs::create_dir_all(&kept)
                .and_then(|()| std::fs::copy(from, kept.join(to)).map(drop))
            {
                eprintln!("could not keep {}: {error}", from.display());
            }
        }
    }
}

/// Runs `eddy cluster ARGS --data DATA_DIR`, whether or not a cluster runs there.
pub fn eddy_cluster(args: &[&str], data_dir: &Path, timeout: Duration) -> Finished {
    super::run(
        Command::new(super::eddy_binary())
            .arg("cluster")
            .args(args)
            .arg("--data")
            .arg(data_dir),
        timeout,
    )
}

/// Sends a signal (`-TERM`, `-KILL`, ...) with kill(1).
pub fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn wait_for(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
