//! `eddy cluster` as a user drives it: `up` starts real node processes and
//! prints where they are; `kill`, `stop`, `pause`, `resume`, `restart` and
//! `down` from another terminal do to the nodes what they say, through real
//! signals; a killed supervisor leaves no nodes behind; and commands with no
//! cluster running say so.
//!
//! Each test runs its own cluster in a temporary directory on a port range
//! probed free, so tests run in parallel.

mod support;

use std::net::{TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eddy_client::Client;
use serde_json::Value;
use support::up::signal;

const NODES: u16 = 3;
/// From `up` to its ready line: the target is under a second; allow for a
/// loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a control command may take (stop waits for a clean shutdown).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long processes may take to disappear and ports to free.
const GONE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one Kafka request to one node may take.
const NODE_TIMEOUT: Duration = Duration::from_millis(500);
/// Controller ports sit this far above client ports.
const CONTROLLER_OFFSET: u16 = 100;

/// One `eddy cluster up` in the foreground with its own data directory.
struct Cluster {
    up: support::up::Up,
    base_port: u16,
    /// What `up` printed up to and including its node lines.
    printed: Vec<String>,
    ready_after: Duration,
}

impl Deref for Cluster {
    type Target = support::up::Up;

    fn deref(&self) -> &support::up::Up {
        &self.up
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut support::up::Up {
        &mut self.up
    }
}

impl Cluster {
    fn up() -> Cluster {
        let mut cluster = Cluster {
            up: support::up::Up::new("eddy-cluster-e2e-", COMMAND_TIMEOUT),
            base_port: support::cluster::free_base_port(NODES),
            printed: Vec::new(),
            ready_after: Duration::ZERO,
        };
        cluster.start();
        cluster
    }

    /// Runs `eddy cluster up` and waits for its ready line and node lines.
    fn start(&mut self) {
        let started = Instant::now();
        let nodes = NODES.to_string();
        let base_port = self.base_port.to_string();
        let received = self
            .up
            .spawn(&["--nodes", &nodes, "--base-port", &base_port]);
        self.printed.clear();
        let expected_lines = 1 + usize::from(NODES);
        while self.printed.len() < expected_lines {
            let remaining = READY_TIMEOUT.saturating_sub(started.elapsed());
            match received.recv_timeout(remaining) {
                Ok(line) => {
                    if self.printed.is_empty() {
                        self.ready_after = started.elapsed();
                    }
                    self.printed.push(line);
                }
                Err(_) => panic!(
                    "eddy cluster up printed {:?} within {READY_TIMEOUT:?}; its log:\n{}",
                    self.printed,
                    self.supervisor_log()
                ),
            }
        }
    }

    fn port(&self, node: u16) -> u16 {
        self.base_port + node - 1
    }

    fn address(&self, node: u16) -> String {
        format!("127.0.0.1:{}", self.port(node))
    }

    fn ports(&self) -> Vec<u16> {
        (1..=NODES)
            .flat_map(|node| [self.port(node), self.port(node) + CONTROLLER_OFFSET])
            .collect()
    }

    fn node_pid(&self, node: u16) -> u32 {
        let status = self.node_status(u64::from(node));
        status["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("node {node} has no pid: {status}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGTERM brings the cluster down cleanly; SIGKILL if it lingers.
        self.up.stop(GONE_TIMEOUT);
        if std::thread::panicking() {
            for node in 1..=NODES {
                let log =
                    std::fs::read_to_string(self.data_dir().join(format!("node-{node}/eddy.log")))
                        .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "--- node {node} log (end) ---\n{}",
                    lines[lines.len().saturating_sub(20)..].join("\n")
                );
            }
        }
    }
}

fn process_exists(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn refuses(address: &str) -> bool {
    TcpStream::connect(address).is_err()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The broker ids node `address` lists in its Metadata, or the error.
fn metadata_brokers(address: &str) -> Result<Vec<i32>, String> {
    runtime().block_on(async {
        let mut client = Client::new([address]).with_node_timeout(NODE_TIMEOUT);
        client
            .metadata_from(address)
            .await
            .map(|metadata| metadata.brokers.iter().map(|broker| broker.id).collect())
            .map_err(|error| error.to_string())
    })
}

fn topics_on(address: &str) -> Vec<String> {
    runtime().block_on(async {
        let mut client = Client::new([address]).with_node_timeout(NODE_TIMEOUT);
        let metadata = client
            .metadata_from(address)
            .await
            .unwrap_or_else(|error| panic!("metadata from {address}: {error}"));
        metadata
            .topics
            .into_iter()
            .map(|topic| topic.name)
            .collect()
    })
}

fn answers(address: &str) -> bool {
    metadata_brokers(address).is_ok()
}

#[test]
fn up_prints_the_bootstrap_servers_and_every_node_answers_kafka_metadata() {
    let cluster = Cluster::up();
    let bootstrap: Vec<String> = (1..=NODES).map(|node| cluster.address(node)).collect();
    let expected = format!(
        "eddy cluster ready: bootstrap servers {} ({NODES} nodes, data in {})",
        bootstrap.join(","),
        cluster.data_dir().display()
    );
    assert_eq!(cluster.printed[0], expected);
    for node in 1..=NODES {
        assert!(
            cluster.printed[usize::from(node)]
                .contains(&format!("node {node}: {}", cluster.address(node))),
            "node line: {:?}",
            cluster.printed
        );
        let brokers = metadata_brokers(&cluster.address(node))
            .unwrap_or_else(|error| panic!("node {node}: {error}"));
        assert!(
            brokers.contains(&i32::from(node)),
            "node {node} lists {brokers:?}"
        );
    }
    eprintln!(
        "eddy cluster up: ready line after {:?}",
        cluster.ready_after
    );
    let status = cluster.status();
    for node in 1..=NODES {
        let entry = &status["nodes"][usize::from(node - 1)];
        assert_eq!(entry["state"], "running", "{status}");
        assert_eq!(entry["answers_metadata"], true, "{status}");
        assert_eq!(entry["port"], cluster.port(node), "{status}");
    }
    assert_eq!(status["bootstrap_servers"], bootstrap.join(","));
}

#[test]
fn kill_crashes_a_node_and_restart_brings_it_back_with_its_data() {
    let cluster = Cluster::up();
    let node_two = cluster.address(2);
    runtime().block_on(async {
        let mut client = Client::new([node_two.as_str()]).with_node_timeout(Duration::from_secs(5));
        client
            .create_topic_on(&node_two, "kept-through-a-crash", 2, 1)
            .await
            .expect("creating a topic on node 2");
    });
    let pid = cluster.node_pid(2);

    let printed = cluster.command(&["kill", "2"]);
    assert!(printed.contains("node 2: stopped"), "{printed}");
    assert!(!process_exists(pid), "node 2 (pid {pid}) is still alive");
    assert!(
        refuses(&node_two),
        "node 2's port still accepts connections"
    );
    let status = cluster.node_status(2);
    assert_eq!(status["state"], "stopped", "{status}");
    assert_eq!(status["pid"], Value::Null, "{status}");
    assert!(answers(&cluster.address(1)) && answers(&cluster.address(3)));

    cluster.command(&["restart", "2"]);
    assert!(
        support::wait_until(READY_TIMEOUT, || answers(&node_two)),
        "node 2 does not answer after restart"
    );
    assert!(
        topics_on(&node_two).contains(&"kept-through-a-crash".to_string()),
        "node 2 lost its topic: {:?}",
        topics_on(&node_two)
    );
    let status = cluster.node_status(2);
    assert_eq!(status["state"], "running", "{status}");
    assert_ne!(status["pid"], pid, "{status}");
}

#[test]
fn stop_shuts_a_node_down_cleanly_and_start_brings_it_back() {
    let cluster = Cluster::up();
    let pid = cluster.node_pid(3);
    cluster.command(&["stop", "3"]);
    assert!(!process_exists(pid), "node 3 (pid {pid}) is still alive");
    let status = cluster.node_status(3);
    assert_eq!(status["state"], "stopped", "{status}");
    // SIGTERM lets the node exit on its own, with status 0.
    assert_eq!(status["last_exit"]["code"], 0, "{status}");
    cluster.command(&["start", "3"]);
    assert!(
        support::wait_until(READY_TIMEOUT, || answers(&cluster.address(3))),
        "node 3 does not answer after start"
    );
}

#[test]
fn pause_silences_a_node_until_resume() {
    let cluster = Cluster::up();
    cluster.command(&["pause", "2"]);
    let paused_at = Instant::now();
    assert!(
        !answers(&cluster.address(2)),
        "node 2 answered Metadata while paused"
    );
    assert!(paused_at.elapsed() < Duration::from_secs(5));
    assert!(answers(&cluster.address(1)) && answers(&cluster.address(3)));
    assert_eq!(cluster.node_status(2)["state"], "paused");

    cluster.command(&["resume", "2"]);
    assert!(
        support::wait_until(Duration::from_secs(5), || answers(&cluster.address(2))),
        "node 2 does not answer after resume"
    );
    assert_eq!(cluster.node_status(2)["state"], "running");
}

#[test]
fn killing_the_supervisor_leaves_no_node_processes_behind() {
    let mut cluster = Cluster::up();
    let pids: Vec<u32> = (1..=NODES).map(|node| cluster.node_pid(node)).collect();
    signal("-KILL", cluster.supervisor_pid());
    cluster.wait_supervisor(GONE_TIMEOUT);
    assert!(
        support::wait_until(GONE_TIMEOUT, || pids
            .iter()
            .all(|pid| !process_exists(*pid))),
        "node processes outlived the supervisor: {pids:?}"
    );
    let ports = cluster.ports();
    assert!(
        support::wait_until(GONE_TIMEOUT, || ports.iter().all(|port| port_free(*port))),
        "ports still held after the supervisor died: {ports:?}"
    );
    // The data directory is free for the next `up`, which keeps the data.
    cluster.start();
    assert!(answers(&cluster.address(1)));
}

#[test]
fn down_stops_every_node_frees_the_ports_and_ends_the_supervisor() {
    let mut cluster = Cluster::up();
    let pids: Vec<u32> = (1..=NODES).map(|node| cluster.node_pid(node)).collect();
    cluster.command(&["down"]);
    let status = cluster.wait_supervisor(GONE_TIMEOUT);
    assert!(status.success(), "the supervisor exited with {status}");
    assert!(
        pids.iter().all(|pid| !process_exists(*pid)),
        "nodes outlived down: {pids:?}"
    );
    let ports = cluster.ports();
    assert!(
        support::wait_until(GONE_TIMEOUT, || ports.iter().all(|port| port_free(*port))),
        "ports still held after down: {ports:?}"
    );
    let finished = cluster.eddy(&["status"]);
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("no cluster is running"),
        "{}",
        finished.stderr
    );
}

#[test]
fn ctrl_c_in_the_terminal_of_up_stops_the_cluster_and_exits_zero() {
    let mut cluster = Cluster::up();
    let pids: Vec<u32> = (1..=NODES).map(|node| cluster.node_pid(node)).collect();
    signal("-INT", cluster.supervisor_pid());
    let status = cluster.wait_supervisor(GONE_TIMEOUT + Duration::from_secs(2));
    assert!(status.success(), "the supervisor exited with {status}");
    assert!(
        pids.iter().all(|pid| !process_exists(*pid)),
        "nodes outlived Ctrl-C: {pids:?}"
    );
}

#[test]
fn commands_without_a_running_cluster_say_how_to_start_one() {
    let empty = tempfile::tempdir().expect("temporary directory");
    let expected = format!(
        "no cluster is running in {} (start one with `eddy cluster up`)",
        empty.path().display()
    );
    for args in [&["status"][..], &["kill", "1"], &["pause", "2"], &["down"]] {
        let finished = support::up::eddy_cluster(args, empty.path(), COMMAND_TIMEOUT);
        assert!(
            !finished.status.success(),
            "eddy cluster {args:?} succeeded"
        );
        assert!(
            finished.stderr.contains(&expected),
            "eddy cluster {args:?} said:\n{}",
            finished.stderr
        );
    }
}

#[test]
fn up_on_a_taken_port_names_the_port() {
    let base_port = support::cluster::free_base_port(NODES);
    let _holder = TcpListener::bind(("127.0.0.1", base_port + 1)).expect("holding a port");
    let home = tempfile::tempdir().expect("temporary directory");
    let finished = support::run(
        Command::new(support::eddy_binary())
            .args(["cluster", "up", "--base-port", &base_port.to_string()])
            .arg("--data")
            .arg(home.path()),
        COMMAND_TIMEOUT,
    );
    assert!(!finished.status.success(), "up started on a taken port");
    assert!(
        finished.stderr.contains(&format!("port {}", base_port + 1))
            && finished.stderr.contains("in use"),
        "the error should name port {}:\n{}",
        base_port + 1,
        finished.stderr
    );
}
