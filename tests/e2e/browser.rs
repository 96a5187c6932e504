//! The console in a browser, as a user meets it: `eddy serve` starts its
//! local 3-node cluster and serves the built UI; headless Chromium
//! (`tests/browser/console.mjs`, playwright-core) creates a topic, produces
//! and browses a message, kills the leader of partition 0 and watches the
//! leadership move and the timeline explain it, restarts the node, runs the
//! demo workload and watches lag, resets the demo group's offsets and replays
//! a range into a new topic. Ctrl-C (SIGINT) then stops the server and every
//! node it started.
//!
//! A second scenario (`tests/browser/operations.mjs`) drives the cluster
//! operations and fault injection: isolate a node and watch it fenced and
//! explained, heal it, slow it, bring a partition's preferred leader back,
//! reassign a partition with the form, add a node and remove it again.
//! The two scenarios take turns: each runs its own cluster.
//!
//! Screenshots of the main views go to `<target>/screenshots/browser`.
//!
//! Needs the built UI (`npm run build -w ui`), `node` with playwright-core
//! (`npm ci`) and Debian's Chromium at /usr/bin/chromium.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::cluster::{SUPERVISOR_CONTROLLER_PORT_OFFSET, free_base_port};
use tempfile::TempDir;

const NODES: u16 = 3;
const CHROMIUM: &str = "/usr/bin/chromium";
/// From exec to the URL line: the cluster starts and a first snapshot is
/// taken (serve waits up to 10 s for it); allow for a loaded machine.
const URL_TIMEOUT: Duration = Duration::from_secs(60);
/// Longer than the script's own watchdog, which names the step that hung.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);
/// From SIGINT to the server's exit, its nodes stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long node processes may take to disappear and ports to free.
const GONE_TIMEOUT: Duration = Duration::from_secs(5);
/// One browser scenario at a time: each runs a cluster and a browser.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Lines of the server's log shown when the test fails.
const LOG_LINES_ON_FAILURE: usize = 80;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
}

/// `eddy serve` on a free port with its own data directory. Dropping it
/// kills the server and its nodes if they still run.
struct Server {
    home: TempDir,
    base_port: u16,
    child: Option<Child>,
    /// The URL it printed, with its token.
    url: String,
    /// Lines it printed after the URL.
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Server {
        let ui = workspace().join("ui/dist");
        assert!(
            ui.join("index.html").is_file(),
            "the UI is not built ({} is missing): run `npm run build -w ui`",
            ui.join("index.html").display()
        );
        let home = tempfile::Builder::new()
            .prefix("eddy-browser-e2e-")
            .tempdir()
            .expect("temporary server directory");
        // Room for a node the operations scenario adds.
        let base_port = free_base_port(NODES + 1);
        let log = std::fs::File::create(home.path().join("serve.log")).expect("server log");
        let mut child = Command::new(support::eddy_binary())
            .args(["serve", "--port", "0"])
            .arg("--data")
            .arg(home.path().join("data"))
            .args(["--base-port", &base_port.to_string()])
            .arg("--ui")
            .arg(&ui)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning eddy serve");
        let lines = support::stdout_lines(&mut child);
        let mut server = Server {
            home,
            base_port,
            child: Some(child),
            url: String::new(),
            lines,
        };
        server.url = server.wait_for_url();
        server
    }

    /// Waits for `eddy console: http://127.0.0.1:PORT/?token=... (...)`.
    fn wait_for_url(&self) -> String {
        let started = Instant::now();
        loop {
            match self
                .lines
                .recv_timeout(URL_TIMEOUT.saturating_sub(started.elapsed()))
            {
                Ok(line) => {
                    if let Some(url) = line
                        .strip_prefix("eddy console: ")
                        .and_then(|rest| rest.split_whitespace().next())
                    {
                        return url.to_string();
                    }
                }
                Err(reason) => panic!(
                    "eddy serve printed no URL within {URL_TIMEOUT:?} ({reason}); its log:\n{}",
                    self.log_tail()
                ),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// The node processes the server runs now.
    fn node_pids(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    /// Every port it listens on: the console's, and each of its `nodes`
    /// nodes' client and controller ports.
    fn ports(&self, nodes: u16) -> Vec<u16> {
        let console = self
            .url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in the URL {}", self.url));
        let nodes = (0..nodes).flat_map(|offset| {
            [
                self.base_port + offset,
                self.base_port + SUPERVISOR_CONTROLLER_PORT_OFFSET + offset,
            ]
        });
        std::iter::once(console).chain(nodes).collect()
    }

    /// Ctrl-C: sends SIGINT and waits for the server to exit.
    fn interrupt(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server runs");
        signal("-INT", child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for eddy serve") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "eddy serve did not exit within {STOP_TIMEOUT:?} of SIGINT; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.home.path().join("serve.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_LINES_ON_FAILURE)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        for pid in children_of(child.id()) {
            // A paused node cannot die until it runs again.
            signal("-CONT", pid);
            signal("-KILL", pid);
        }
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of the eddy serve log ---\n{}\n---",
                self.log_tail()
            );
        }
    }
}

/// Processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| process_stat(*candidate).is_some_and(|(_, parent)| parent == pid))
        .collect()
}

/// (state, parent pid) of a process, from `/proc/PID/stat`.
fn process_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Gone or a zombie nobody has reaped yet: either way it runs no more.
fn process_gone(pid: u32) -> bool {
    process_stat(pid).is_none_or(|(state, _)| state == 'Z')
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([name, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Where the screenshots go: under the target directory, beside the
/// `eddy` binary's profile directory.
fn screenshot_dir() -> PathBuf {
    support::eddy_binary()
        .parent()
        .and_then(Path::parent)
        .expect("the eddy binary sits in <target>/<profile>")
        .join("screenshots/browser")
}

#[test]
fn the_console_in_a_browser_creates_produces_survives_a_leader_kill_and_replays() {
    drive("tests/browser/console.mjs", NODES);
}

#[test]
fn the_console_in_a_browser_isolates_heals_slows_elects_reassigns_adds_and_removes_nodes() {
    // Adds a node, then removes it: the cluster ends with as many as it began.
    drive("tests/browser/operations.mjs", NODES);
}

/// Runs one browser scenario against a fresh `eddy serve`, then stops the
/// server with Ctrl-C and checks that its `nodes_at_end` nodes went with it.
fn drive(script: &str, nodes_at_end: u16) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
    );
    assert!(
        workspace().join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in {}",
        workspace().display()
    );
    let mut server = Server::start();
    let screenshots = screenshot_dir();
    println!("console at {}", server.url);
    let finished = support::run(
        Command::new("node")
            .current_dir(workspace())
            .arg(script)
            .arg(&server.url)
            .arg(&screenshots)
            .arg(server.home.path().join("data")),
        SCRIPT_TIMEOUT,
    );
    println!("{}", finished.stdout);
    println!("screenshots in {}", screenshots.display());

    // Ctrl-C stops the server and every node it runs, whatever the page saw.
    let node_pids = server.node_pids();
    let status = server.interrupt();
    assert!(
        status.success(),
        "eddy serve exited with {status} after SIGINT; its log:\n{}",
        server.log_tail()
    );
    let printed: Vec<String> = server.lines.try_iter().collect();
    assert!(
        printed.iter().any(|line| line == "eddy console stopped"),
        "eddy serve says it stopped: {printed:?}"
    );
    assert!(
        support::wait_until(GONE_TIMEOUT, || node_pids
            .iter()
            .all(|pid| process_gone(*pid))),
        "node processes outlived eddy serve: {:?}",
        node_pids
            .iter()
            .filter(|pid| !process_gone(**pid))
            .collect::<Vec<_>>()
    );
    let ports = server.ports(nodes_at_end);
    assert!(
        support::wait_until(GONE_TIMEOUT, || ports.iter().all(|port| port_free(*port))),
        "ports still taken after eddy serve stopped: {:?}",
        ports
            .iter()
            .filter(|port| !port_free(**port))
            .collect::<Vec<_>>()
    );

    assert!(
        finished.status.success(),
        "the browser scenario {script} failed ({}); its steps are printed above, its failures:\n{}\nscreenshots (and failure.png) in {}",
        finished.status,
        finished.stderr,
        screenshots.display()
    );
    assert_eq!(
        node_pids.len(),
        usize::from(nodes_at_end),
        "the server ran {nodes_at_end} nodes before SIGINT: {node_pids:?}"
    );
}
