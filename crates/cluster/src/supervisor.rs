//! [`Supervisor`]: owns the node processes of one local cluster.
//!
//! It spawns each node (through the spawner thread), sends it signals
//! (through `process`), reaps it when it exits, and keeps `DATA/cluster.json`
//! current. Quick operations are plain methods; those that wait for
//! processes to exit or for nodes to answer are `async`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use eddy_client::Client;
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;
use crate::process::{self, ExitInfo, Signal};
use crate::spawner::Spawner;
use crate::spec::ClusterSpec;
use crate::state::{ClusterState, lock_data_dir};

/// How long `stop` waits after SIGTERM before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `down` waits after SIGINT before SIGKILL.
pub const DEFAULT_DOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often exits and readiness are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(15);
/// How long one node gets to answer one readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// After this long with every node answering but not listing each other,
/// answering alone counts as ready.
const MEMBERSHIP_GRACE: Duration = Duration::from_secs(3);
/// Lines of a node's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 30;

/// One node as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: u16,
    pub pid: Option<u32>,
    #[serde(flatten)]
    pub state: NodeState,
    /// How its last run ended, if it has ended.
    pub last_exit: Option<ExitInfo>,
    pub port: u16,
    pub controller_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    Running,
    /// Stopped with SIGSTOP: alive, but answers nothing.
    Paused,
    /// Stopped on request (stop, kill, down) or never started.
    Stopped,
    /// Exited on its own.
    Exited(ExitInfo),
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeState::Running => f.write_str("running"),
            NodeState::Paused => f.write_str("paused"),
            NodeState::Stopped => f.write_str("stopped"),
            NodeState::Exited(exit) => write!(f, "exited ({exit})"),
        }
    }
}

struct NodeProcess {
    id: u16,
    child: Option<Child>,
    paused: bool,
    /// Set when the supervisor asked the node to exit, so its exit reads as
    /// "stopped" rather than "exited".
    stopping: bool,
    /// The state once there is no child.
    ended: NodeState,
    last_exit: Option<ExitInfo>,
}

impl NodeProcess {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn state(&self) -> NodeState {
        match (&self.child, self.paused) {
            (Some(_), true) => NodeState::Paused,
            (Some(_), false) => NodeState::Running,
            (None, _) => self.ended,
        }
    }

    /// Notices an exit; returns whether the node is still alive.
    fn reap(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.ended(status.into());
                false
            }
            Err(error) => {
                tracing::warn!(node = self.id, %error, "cannot poll the node process");
                true
            }
        }
    }

    fn ended(&mut self, exit: ExitInfo) {
        self.child = None;
        self.paused = false;
        self.last_exit = Some(exit);
        self.ended = if self.stopping {
            NodeState::Stopped
        } else {
            NodeState::Exited(exit)
        };
        self.stopping = false;
    }

    fn signal(&self, signal: Signal) -> Result<(), ClusterError> {
        let Some(pid) = self.pid() else {
            return Err(ClusterError::NodeNotRunning { node: self.id });
        };
        match process::send(pid, signal) {
            Ok(()) => Ok(()),
            // It exited a moment ago; the next reap records how.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ClusterError::Io {
                what: format!("sending {} to node {} (pid {pid})", signal.name(), self.id),
                source,
            }),
        }
    }

    /// SIGKILL, then waits for the process (a SIGKILLed process is gone at once).
    fn kill_now(&mut self) {
        if let Some(child) = self.child.as_mut() {
            self.stopping = true;
            let _ = child.kill();
            match child.wait() {
                Ok(status) => self.ended(status.into()),
                Err(_) => self.ended(ExitInfo {
                    code: None,
                    signal: None,
                }),
            }
        }
    }
}

/// A running local cluster. Dropping it kills every node.
pub struct Supervisor {
    spec: ClusterSpec,
    nodes: Vec<NodeProcess>,
    /// The control port and token, once a control server listens.
    control: Option<(u16, String)>,
    /// Declared after `nodes` so that it is dropped after them: nodes are
    /// killed before the thread that forked them exits.
    spawner: Spawner,
    _lock: File,
}

impl Supervisor {
    /// Locks the data directory, raises the open-files limit and starts
    /// every node. Returns as soon as the processes exist; see
    /// [`Supervisor::wait_ready`].
    pub fn start(spec: ClusterSpec) -> Result<Supervisor, ClusterError> {
        spec.validate().map_err(ClusterError::InvalidSpec)?;
        std::fs::create_dir_all(&spec.data_dir).map_err(ClusterError::io(format!(
            "creating {}",
            spec.data_dir.display()
        )))?;
        let lock = lock_data_dir(&spec.data_dir)?;
        match process::raise_open_files_limit() {
            Ok(limit) => tracing::debug!(?limit, "open files limit"),
            Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
        }
        check_ports_free(&spec)?;
        let spawner = Spawner::start().map_err(ClusterError::io("starting the spawner thread"))?;
        let nodes = spec
            .node_ids()
            .map(|id| NodeProcess {
                id,
                child: None,
                paused: false,
                stopping: false,
                ended: NodeState::Stopped,
                last_exit: None,
            })
            .collect();
        let mut supervisor = Supervisor {
            spec,
            nodes,
            control: None,
            spawner,
            _lock: lock,
        };
        for id in supervisor.spec.node_ids() {
            supervisor.spawn(id)?;
        }
        supervisor.write_state()?;
        Ok(supervisor)
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Every node's status, after noticing any exits.
    pub fn nodes(&mut self) -> Vec<NodeStatus> {
        self.reap();
        self.nodes
            .iter()
            .map(|node| NodeStatus {
                id: node.id,
                pid: node.pid(),
                state: node.state(),
                last_exit: node.last_exit,
                port: self.spec.port(node.id),
                controller_port: self.spec.controller_port(node.id),
                data_dir: self.spec.node_data_dir(node.id),
                log_path: self.spec.node_log_path(node.id),
            })
            .collect()
    }

    /// Notices exited nodes; returns whether anything changed.
    pub fn reap(&mut self) -> bool {
        let mut changed = false;
        for node in &mut self.nodes {
            let had_child = node.child.is_some();
            let alive = node.reap();
            changed |= had_child && !alive;
        }
        changed
    }

    /// Waits until every running node answers Kafka Metadata listing itself,
    /// and the brokers they report together cover every running node. Nodes
    /// that each report only themselves under different cluster ids are
    /// independent single-node clusters and count as ready at once; nodes
    /// that answer but have not found each other after a few seconds count
    /// as ready too (logged). Fails early if a node exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, ClusterError> {
        let started = Instant::now();
        let mut client = Client::new(Vec::<String>::new()).with_node_timeout(PROBE_TIMEOUT);
        let mut all_answering_since: Option<Instant> = None;
        loop {
            self.reap();
            if let Some(node) = self
                .nodes
                .iter()
                .find(|node| matches!(node.ended, NodeState::Exited(_)) && node.child.is_none())
            {
                let exit = node.last_exit.unwrap_or(ExitInfo {
                    code: None,
                    signal: None,
                });
                return Err(self.exited_error(node.id, exit));
            }
            let expected: BTreeSet<i32> = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some() && !node.paused)
                .map(|node| i32::from(node.id))
                .collect();
            let mut listed = BTreeSet::new();
            let mut cluster_ids = BTreeSet::new();
            let mut only_themselves = true;
            let mut waiting = Vec::new();
            for &id in &expected {
                let address = self.spec.node_address(id as u16);
                match client.metadata_from(&address).await {
                    Ok(metadata) if metadata.brokers.iter().any(|broker| broker.id == id) => {
                        only_themselves &= metadata.brokers.len() == 1;
                        listed.extend(metadata.brokers.iter().map(|broker| broker.id));
                        cluster_ids.insert(metadata.cluster_id.unwrap_or_default());
                    }
                    Ok(_) => waiting.push(format!("node {id} answers but does not list itself")),
                    Err(error) => waiting.push(format!("node {id}: {error}")),
                }
            }
            if waiting.is_empty() {
                let since = *all_answering_since.get_or_insert_with(Instant::now);
                if expected.is_subset(&listed) {
                    return Ok(started.elapsed());
                }
                if only_themselves && cluster_ids.len() == expected.len() {
                    tracing::info!("the nodes answer as independent single-node clusters");
                    return Ok(started.elapsed());
                }
                if since.elapsed() >= MEMBERSHIP_GRACE {
                    tracing::warn!(
                        ?expected,
                        ?listed,
                        "every node answers but they do not list each other; treating the cluster as ready"
                    );
                    return Ok(started.elapsed());
                }
            } else {
                all_answering_since = None;
            }
            if started.elapsed() >= timeout {
                if waiting.is_empty() {
                    waiting.push(format!(
                        "nodes {expected:?} answer but list only {listed:?}"
                    ));
                }
                return Err(ClusterError::NotReady {
                    timeout,
                    waiting: waiting.join("; "),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Starts node `id` with its usual arguments, if it is not running.
    pub fn start_node(&mut self, id: u16) -> Result<(), ClusterError> {
        self.node_mut(id)?;
        self.reap();
        if self.node_mut(id)?.child.is_none() {
            self.spawn(id)?;
        }
        self.write_state()
    }

    /// SIGKILL: the node crashes.
    pub fn kill(&mut self, id: u16) -> Result<(), ClusterError> {
        self.node_mut(id)?.kill_now();
        self.write_state()
    }

    /// SIGSTOP: the node hangs.
    pub fn pause(&mut self, id: u16) -> Result<(), ClusterError> {
        let node = self.node_mut(id)?;
        node.signal(Signal::Pause)?;
        node.paused = true;
        self.write_state()
    }

    /// SIGCONT: a paused node carries on.
    pub fn resume(&mut self, id: u16) -> Result<(), ClusterError> {
        let node = self.node_mut(id)?;
        node.signal(Signal::Resume)?;
        node.paused = false;
        self.write_state()
    }

    /// SIGTERM (controlled shutdown: the node hands its leaderships to
    /// in-sync followers first), then SIGKILL if it has not exited within
    /// `timeout`. A node that is not running is left as it is.
    pub async fn stop(&mut self, id: u16, timeout: Duration) -> Result<(), ClusterError> {
        self.node_mut(id)?;
        self.shut_down(&[id], Signal::Terminate, timeout).await;
        self.write_state()
    }

    /// Stops node `id` if it runs, then starts it again with the same
    /// arguments and data.
    pub async fn restart(&mut self, id: u16, stop_timeout: Duration) -> Result<(), ClusterError> {
        self.node_mut(id)?;
        self.shut_down(&[id], Signal::Terminate, stop_timeout).await;
        self.spawn(id)?;
        self.write_state()
    }

    /// SIGINT to every node at once (clean shutdown, no hand-offs), SIGKILL
    /// to any still running after `timeout`; removes `DATA/cluster.json`.
    pub async fn down(&mut self, timeout: Duration) {
        let ids: Vec<u16> = self.spec.node_ids().collect();
        self.shut_down(&ids, Signal::Interrupt, timeout).await;
        self.control = None;
        ClusterState::remove_if_owned(&self.spec.data_dir, std::process::id());
    }

    /// Records where the control server listens, so that other processes
    /// find it through `DATA/cluster.json`.
    pub fn set_control(&mut self, port: u16, token: String) -> Result<(), ClusterError> {
        self.control = Some((port, token));
        self.write_state()
    }

    /// Rewrites `DATA/cluster.json` with the current node table.
    pub fn write_state(&mut self) -> Result<(), ClusterError> {
        let nodes = self.nodes();
        let (control_port, token) = self.control.clone().unwrap_or_default();
        ClusterState {
            supervisor_pid: std::process::id(),
            control_port,
            token,
            data_dir: self.spec.data_dir.clone(),
            bootstrap_servers: self.spec.bootstrap_servers(),
            nodes,
        }
        .write()
    }

    /// Sends `signal` to each of `ids` that runs (and SIGCONT to paused
    /// ones, which could not act on it otherwise), waits for them to exit
    /// for up to `timeout`, then SIGKILLs the rest.
    async fn shut_down(&mut self, ids: &[u16], signal: Signal, timeout: Duration) {
        self.reap();
        for node in self.nodes.iter_mut().filter(|node| ids.contains(&node.id)) {
            if node.child.is_none() {
                continue;
            }
            node.stopping = true;
            if let Err(error) = node.signal(signal) {
                tracing::warn!(node = node.id, %error, "cannot signal the node");
            }
            if node.paused {
                let _ = node.signal(Signal::Resume);
                node.paused = false;
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let mut alive = false;
            for node in self.nodes.iter_mut().filter(|node| ids.contains(&node.id)) {
                alive |= node.reap();
            }
            if !alive {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        for node in self.nodes.iter_mut().filter(|node| ids.contains(&node.id)) {
            if node.child.is_some() {
                tracing::warn!(
                    node = node.id,
                    ?timeout,
                    "the node did not exit after {}; killing it",
                    signal.name()
                );
                node.kill_now();
            }
        }
    }

    fn spawn(&mut self, id: u16) -> Result<(), ClusterError> {
        let data_dir = self.spec.node_data_dir(id);
        std::fs::create_dir_all(&data_dir)
            .map_err(ClusterError::io(format!("creating {}", data_dir.display())))?;
        let log_path = self.spec.node_log_path(id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(ClusterError::io(format!("opening {}", log_path.display())))?;
        let log_for_stderr = log
            .try_clone()
            .map_err(ClusterError::io(format!("opening {}", log_path.display())))?;
        let mut command = self.spec.node_command(id);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_for_stderr));
        process::configure_node_command(&mut command);
        let child = self
            .spawner
            .spawn(command)
            .map_err(ClusterError::io(format!(
                "starting node {id} ({})",
                self.spec.eddy_binary.display()
            )))?;
        tracing::debug!(node = id, pid = child.id(), "node started");
        let node = self.node_mut(id)?;
        node.child = Some(child);
        node.paused = false;
        node.stopping = false;
        Ok(())
    }

    fn node_mut(&mut self, id: u16) -> Result<&mut NodeProcess, ClusterError> {
        let nodes = self.spec.nodes;
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .ok_or(ClusterError::NoSuchNode { node: id, nodes })
    }

    fn exited_error(&self, id: u16, exit: ExitInfo) -> ClusterError {
        let log_path = self.spec.node_log_path(id);
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        ClusterError::NodeExited {
            node: id,
            exit,
            log_tail: lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n"),
            log_path,
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill_now();
        }
        ClusterState::remove_if_owned(&self.spec.data_dir, std::process::id());
    }
}

/// Fails with the first client or controller port that something holds.
fn check_ports_free(spec: &ClusterSpec) -> Result<(), ClusterError> {
    for node in spec.node_ids() {
        for (port, listener) in [
            (spec.port(node), "client"),
            (spec.controller_port(node), "controller"),
        ] {
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                return Err(ClusterError::PortInUse {
                    port,
                    node,
                    listener,
                });
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A spec whose "eddy" is `sh`, which exits at once: it cannot open a
    /// script named `broker`.
    fn failing_spec(data_dir: &std::path::Path) -> ClusterSpec {
        let mut spec = ClusterSpec::new(data_dir, "/bin/sh");
        spec.nodes = 2;
        spec.base_port = free_base_port(spec.nodes);
        spec
    }

    fn free_base_port(nodes: u16) -> u16 {
        loop {
            let base = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|listener| listener.local_addr())
                .expect("probing a port")
                .port();
            let spec = ClusterSpec {
                base_port: base,
                nodes,
                ..ClusterSpec::new("/unused", "/unused")
            };
            if spec.validate().is_ok() && check_ports_free(&spec).is_ok() {
                return base;
            }
        }
    }

    fn temporary_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-cluster-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_supervisor_on_the_same_data_dir_is_refused() {
        let dir = temporary_dir("lock");
        let first = Supervisor::start(failing_spec(&dir)).expect("first supervisor");
        let error = Supervisor::start(failing_spec(&dir))
            .err()
            .expect("the data dir is taken");
        assert!(
            matches!(error, ClusterError::DataDirInUse { supervisor_pid: Some(pid), .. } if pid == std::process::id()),
            "{error}"
        );
        drop(first);
        assert!(
            !ClusterState::path(&dir).exists(),
            "cluster.json outlived its supervisor"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_node_that_exits_on_its_own_fails_wait_ready_with_its_log() {
        let dir = temporary_dir("exit");
        let mut supervisor = Supervisor::start(failing_spec(&dir)).expect("supervisor");
        let error = supervisor
            .wait_ready(Duration::from_secs(10))
            .await
            .expect_err("the nodes exit");
        let ClusterError::NodeExited { exit, log_tail, .. } = &error else {
            panic!("unexpected error: {error}");
        };
        assert!(exit.code.is_some_and(|code| code != 0), "{error}");
        assert!(
            log_tail.contains("broker"),
            "the log tail is sh's complaint: {error}"
        );
        let nodes = supervisor.nodes();
        assert!(
            nodes
                .iter()
                .any(|node| matches!(node.state, NodeState::Exited(_)))
        );
        // The others may still be on their way out; an exited one has no pid.
        assert!(
            nodes
                .iter()
                .filter(|node| matches!(node.state, NodeState::Exited(_)))
                .all(|node| node.pid.is_none())
        );
        drop(supervisor);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
