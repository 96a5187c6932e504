//! [`Supervisor`]: owns the node processes of one local cluster.
//!
//! It spawns each node (through the spawner thread), sends it signals
//! (through `process`), reaps it when it exits, and keeps `DATA/cluster.json`
//! current. Quick operations are plain methods; those that wait for
//! processes to exit or for nodes to answer are `async`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use eddy_client::{Client, ErrorCode, PartitionReassignment};
use serde::{Deserialize, Serialize};

use crate::config::{ClusterFile, FileError, Membership, write_atomically};
use crate::error::ClusterError;
use crate::ops;
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
/// A node's fault-injection file, in its data directory.
pub const FAULT_FILE: &str = "faults.json";
/// How long an added node gets to start and join.
pub const ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `remove_node` waits for the replicas to move off the node.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a drain checks progress.
const DRAIN_POLL: Duration = Duration::from_millis(250);
/// How long one Kafka request of an operation may take.
const OPERATION_NODE_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Cut off from the other nodes (`eddy cluster isolate`).
    #[serde(default)]
    pub isolated: bool,
    /// The replication throttle `eddy cluster slow` set, in bytes per second.
    #[serde(default)]
    pub throttle_rate: Option<u64>,
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
    /// Whether its fault file says it is cut off.
    isolated: bool,
}

impl NodeProcess {
    fn new(id: u16) -> NodeProcess {
        NodeProcess {
            id,
            child: None,
            paused: false,
            stopping: false,
            ended: NodeState::Stopped,
            last_exit: None,
            isolated: false,
        }
    }

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

/// What [`Supervisor::reload_config`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigReload {
    /// Nodes started because `nodes` was raised.
    pub started: Vec<u16>,
    /// Cluster-wide broker configs set.
    pub defaults_set: BTreeMap<String, String>,
    /// Cluster-wide broker configs removed.
    pub defaults_deleted: Vec<String>,
}

impl ConfigReload {
    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.defaults_set.is_empty() && self.defaults_deleted.is_empty()
    }
}

/// Moving every replica off one node, without holding the supervisor (see
/// [`Supervisor::prepare_removal`]).
#[derive(Debug, Clone)]
pub struct Drain {
    node: i32,
    bootstrap: Vec<String>,
    /// The nodes that may take replicas.
    live: BTreeSet<i32>,
    /// The other nodes that run, unpaused and not isolated: those that can
    /// keep the metadata quorum going once the node stops.
    connected: BTreeSet<i32>,
}

impl Drain {
    pub fn node(&self) -> u16 {
        self.node as u16
    }

    /// Reassigns every partition with a replica on the node (each to the
    /// least loaded live node without one) and waits until the node holds
    /// none, reporting "moving 12 replicas off node 3: 5 left". Partitions
    /// created meanwhile are moved too. Nothing moves when some partition
    /// has nowhere to go.
    pub async fn run(self, progress: &mut (dyn FnMut(String) + Send)) -> Result<(), ClusterError> {
        let node = self.node;
        let mut client =
            Client::new(self.bootstrap.clone()).with_node_timeout(OPERATION_NODE_TIMEOUT);
        // Refused before anything moves when the node cannot stop anyway.
        check_quorum_without(&mut client, node, &self.connected).await?;
        let metadata = client.metadata().await?;
        let registered: BTreeSet<i32> = metadata.brokers.iter().map(|broker| broker.id).collect();
        let live: BTreeSet<i32> = self.live.intersection(&registered).copied().collect();
        let plan = ops::plan_drain(&metadata, node, &live).map_err(ClusterError::Operation)?;
        let mut total = plan.len();
        if total == 0 {
            progress(format!("node {node} holds no replicas"));
        } else {
            progress(format!("moving {} off node {node}", replicas(total)));
        }
        submit(&mut client, &plan).await?;
        let mut submitted: BTreeMap<(String, i32), u32> = plan
            .iter()
            .map(|change| ((change.topic.clone(), change.partition), 0))
            .collect();
        let started = Instant::now();
        let mut last_left = None;
        loop {
            let (metadata, ongoing) = match (
                client.metadata().await,
                client.list_partition_reassignments().await,
            ) {
                (Ok(metadata), Ok(ongoing)) => (metadata, ongoing),
                (Err(error), _) | (_, Err(error)) => {
                    if started.elapsed() >= DRAIN_TIMEOUT {
                        return Err(error.into());
                    }
                    tracing::debug!(%error, "reading the drain's progress; trying again");
                    tokio::time::sleep(DRAIN_POLL).await;
                    continue;
                }
            };
            let in_flight: BTreeSet<(String, i32)> = ongoing
                .iter()
                .filter(|moving| moving.replicas.contains(&node) || moving.removing.contains(&node))
                .map(|moving| (moving.topic.clone(), moving.partition))
                .collect();
            let on_node: BTreeSet<(String, i32)> = ops::partitions_on(&metadata, node)
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions
                        .into_iter()
                        .map(move |partition| (topic.clone(), partition))
                })
                .collect();
            let left: BTreeSet<(String, i32)> = on_node.union(&in_flight).cloned().collect();
            if left.is_empty() {
                if total > 0 {
                    progress(format!("moved {} off node {node}", replicas(total)));
                }
                return Ok(());
            }
            // Partitions created since, or whose move was cancelled: move them (again).
            let mut again = BTreeSet::new();
            let mut fresh = 0;
            for key in on_node.difference(&in_flight) {
                let idle = submitted.entry(key.clone()).or_insert_with(|| {
                    fresh += 1;
                    u32::MAX
                });
                *idle = idle.saturating_add(1);
                if *idle > 8 {
                    again.insert(key.clone());
                    *idle = 0;
                }
            }
            if !again.is_empty() {
                let plan = ops::plan_drain_of(&metadata, node, &live, Some(&again))
                    .map_err(ClusterError::Operation)?;
                total += fresh;
                // A move that finished a moment ago may be refused: the
                // next round sees where the replicas are.
                if let Err(error) = submit(&mut client, &plan).await {
                    tracing::warn!(%error, "moving replicas again");
                }
            }
            if last_left != Some(left.len()) {
                last_left = Some(left.len());
                progress(format!(
                    "moving {} off node {node}: {} left",
                    replicas(total),
                    left.len()
                ));
            }
            if started.elapsed() >= DRAIN_TIMEOUT {
                let names: Vec<String> = left
                    .iter()
                    .map(|(topic, partition)| format!("{topic}-{partition}"))
                    .collect();
                return Err(ClusterError::Operation(format!(
                    "node {node} still holds replicas of {} after {DRAIN_TIMEOUT:?}; the moves go on                      in the background: run `eddy cluster remove {node}` again to finish",
                    names.join(", ")
                )));
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }
}

/// "1 replica", "12 replicas".
fn replicas(count: usize) -> String {
    if count == 1 {
        "1 replica".to_string()
    } else {
        format!("{count} replicas")
    }
}

/// Sends reassignments; any refused partition fails the whole call.
async fn submit(client: &mut Client, plan: &[PartitionReassignment]) -> Result<(), ClusterError> {
    if plan.is_empty() {
        return Ok(());
    }
    let outcomes = client.alter_partition_reassignments(plan).await?;
    let refused: Vec<String> = outcomes
        .iter()
        .filter_map(|((topic, partition), outcome)| {
            outcome
                .as_ref()
                .err()
                .map(|failure| format!("{topic}-{partition}: {failure}"))
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Operation(format!(
            "the controller refused to move {}",
            refused.join("; ")
        )))
    }
}

/// Fails unless the metadata quorum keeps a majority of its voters live
/// once `node` stops: `connected` holds the other nodes that run (neither
/// paused nor isolated). The voters are the quorum's own (learners may have
/// been promoted), as DescribeQuorum reports them.
async fn check_quorum_without(
    client: &mut Client,
    node: i32,
    connected: &BTreeSet<i32>,
) -> Result<(), ClusterError> {
    let quorum = client.describe_quorum().await.map_err(|error| {
        ClusterError::Operation(format!(
            "cannot read the metadata quorum to check that node {node} can stop: {error}"
        ))
    })?;
    let Some(quorum) = quorum else {
        return Err(ClusterError::Operation(format!(
            "cannot read the metadata quorum to check that node {node} can stop: \
             the node does not offer DescribeQuorum"
        )));
    };
    let voters: Vec<i32> = quorum.voters.iter().map(|voter| voter.id).collect();
    quorum_survives_without(&voters, node, connected).map_err(ClusterError::Operation)
}

/// Whether more than half of `voters` stay live once `node` stops.
fn quorum_survives_without(
    voters: &[i32],
    node: i32,
    connected: &BTreeSet<i32>,
) -> Result<(), String> {
    let live: Vec<i32> = voters
        .iter()
        .copied()
        .filter(|voter| *voter != node && connected.contains(voter))
        .collect();
    if live.len() * 2 > voters.len() {
        return Ok(());
    }
    let list = |ids: &[i32]| {
        ids.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let live_text = if live.is_empty() {
        "none".to_string()
    } else {
        list(&live)
    };
    Err(format!(
        "stopping node {node} would leave {} of the metadata quorum's {} voters ({}) live \
         (live: {live_text}), not a majority: the cluster could not elect a controller or \
         change its metadata. Start or heal the stopped voters first",
        live.len(),
        voters.len(),
        list(voters),
    ))
}

/// A running local cluster. Dropping it kills every node.
pub struct Supervisor {
    spec: ClusterSpec,
    nodes: Vec<NodeProcess>,
    /// The last rejected edit of `DATA/eddy.toml`, until a good one.
    config_error: Option<String>,
    /// The `[defaults]` of `DATA/eddy.toml` last applied to the cluster.
    applied_defaults: BTreeMap<String, String>,
    /// Replication throttles set by [`Supervisor::slow`], by node.
    throttles: BTreeMap<u16, u64>,
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
    ///
    /// The data directory's own files win over `spec` where they exist:
    /// `DATA/nodes.json` (the node ids after nodes were added or removed)
    /// and `DATA/eddy.toml` (the base port, and a node count raised while
    /// the cluster was down). `DATA/eddy.toml` is written from `spec` on
    /// the first start. A bad `eddy.toml` does not stop the cluster: it
    /// starts as it was and [`Supervisor::config_error`] says why.
    pub fn start(spec: ClusterSpec) -> Result<Supervisor, ClusterError> {
        let mut spec = spec;
        spec.validate().map_err(ClusterError::InvalidSpec)?;
        std::fs::create_dir_all(&spec.data_dir).map_err(ClusterError::io(format!(
            "creating {}",
            spec.data_dir.display()
        )))?;
        let lock = lock_data_dir(&spec.data_dir)?;
        let config_error = reconcile_with_files(&mut spec)?;
        let saved = Membership::read(&spec.data_dir)?;
        let applied_defaults = saved
            .as_ref()
            .map(|membership| membership.applied_defaults.clone())
            .unwrap_or_default();
        let throttles = saved
            .map(|membership| membership.throttles)
            .unwrap_or_default()
            .into_iter()
            .filter(|(node, _)| spec.nodes.contains(node))
            .collect();
        spec.validate().map_err(ClusterError::InvalidSpec)?;
        match process::raise_open_files_limit() {
            Ok(limit) => tracing::debug!(?limit, "open files limit"),
            Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
        }
        check_ports_free(&spec)?;
        let spawner = Spawner::start().map_err(ClusterError::io("starting the spawner thread"))?;
        let nodes = spec.node_ids().map(NodeProcess::new).collect();
        let mut supervisor = Supervisor {
            spec,
            nodes,
            config_error,
            applied_defaults,
            throttles,
            control: None,
            spawner,
            _lock: lock,
        };
        supervisor.save_membership()?;
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
                isolated: node.isolated,
                throttle_rate: self.throttles.get(&node.id).copied(),
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

    /// Starts a new node (the next id: one past the highest), waits until
    /// it is ready and returns its id. It runs with the same voter list as
    /// the others, so it joins the metadata quorum as a learner (the
    /// controller promotes learners while there are fewer than 5 voters).
    pub async fn add_node(&mut self) -> Result<u16, ClusterError> {
        let id = self.add_node_process()?;
        ClusterFile::set_nodes(&self.spec.data_dir, self.spec.node_count())?;
        self.wait_added(&[id]).await?;
        Ok(id)
    }

    /// Spawns the next node and records it; does not wait.
    fn add_node_process(&mut self) -> Result<u16, ClusterError> {
        let id = self.spec.next_node_id();
        self.spec
            .validate_node(id)
            .map_err(ClusterError::InvalidSpec)?;
        check_node_ports_free(&self.spec, id)?;
        // Data left by an earlier node with this id would come back to life.
        let data_dir = self.spec.node_data_dir(id);
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)
                .map_err(ClusterError::io(format!("removing {}", data_dir.display())))?;
        }
        self.spec.nodes.insert(id);
        self.nodes.push(NodeProcess::new(id));
        if let Err(error) = self.spawn(id) {
            self.forget_node(id);
            return Err(error);
        }
        self.save_membership()?;
        self.write_state()?;
        tracing::info!(node = id, "node added");
        Ok(id)
    }

    /// Waits for added nodes; forgets those that exited before they were ready.
    async fn wait_added(&mut self, ids: &[u16]) -> Result<(), ClusterError> {
        let result = self.wait_ready(ADD_TIMEOUT).await;
        if result.is_err() {
            self.reap();
            let dead: Vec<u16> = ids
                .iter()
                .copied()
                .filter(|id| {
                    self.nodes
                        .iter()
                        .any(|node| node.id == *id && node.child.is_none())
                })
                .collect();
            for id in dead {
                self.forget_node(id);
                let _ = std::fs::remove_dir_all(self.spec.node_data_dir(id));
            }
            self.save_membership()?;
            ClusterFile::set_nodes(&self.spec.data_dir, self.spec.node_count())?;
            self.write_state()?;
        }
        result.map(|_| ())
    }

    /// Removes node `id` for good: moves every replica it holds to other
    /// live nodes (partition reassignments; nothing moves when some
    /// partition has nowhere to go), waits until none is left on it
    /// (reporting progress through `progress`), stops it (SIGTERM),
    /// unregisters it from the cluster, forgets it and deletes its data.
    /// Refused up front when stopping it would leave half or fewer of the
    /// metadata quorum's voters live.
    pub async fn remove_node(
        &mut self,
        id: u16,
        progress: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), ClusterError> {
        let drain = self.prepare_removal(id)?;
        drain.run(progress).await?;
        self.finish_removal(id, progress).await
    }

    /// The first step of [`Supervisor::remove_node`]: checks that node `id`
    /// can go and describes the move, which runs without the supervisor
    /// ([`Drain::run`]); [`Supervisor::finish_removal`] then stops and
    /// forgets the node.
    pub fn prepare_removal(&mut self, id: u16) -> Result<Drain, ClusterError> {
        self.node_mut(id)?;
        self.reap();
        if self.spec.node_count() <= 1 {
            return Err(ClusterError::Operation(format!(
                "node {id} is the cluster's only node; `eddy cluster down` stops the cluster"
            )));
        }
        let running: Vec<u16> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some() && !node.paused)
            .map(|node| node.id)
            .collect();
        let live: BTreeSet<i32> = running
            .iter()
            .filter(|node| **node != id)
            .map(|node| i32::from(*node))
            .collect();
        if live.is_empty() {
            return Err(ClusterError::Operation(format!(
                "no other node is running to take node {id}'s replicas"
            )));
        }
        Ok(Drain {
            node: i32::from(id),
            bootstrap: running
                .iter()
                .map(|node| self.spec.node_address(*node))
                .collect(),
            live,
            connected: self.connected_without(id),
        })
    }

    /// The last step of [`Supervisor::remove_node`], once node `id` holds
    /// no replicas: checks again that no partition lists it and that the
    /// metadata quorum keeps a majority without it, stops it, unregisters
    /// it, forgets it and deletes its data directory. When the cluster does
    /// not unregister it, it keeps its data and is started again.
    pub async fn finish_removal(
        &mut self,
        id: u16,
        progress: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), ClusterError> {
        self.node_mut(id)?;
        let mut client = self.operations_client();
        let metadata = client.metadata().await?;
        let hosted: Vec<String> = ops::partitions_on(&metadata, i32::from(id))
            .into_iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .into_iter()
                    .map(move |partition| format!("{topic}-{partition}"))
            })
            .collect();
        if !hosted.is_empty() {
            return Err(ClusterError::Operation(format!(
                "node {id} still hosts replicas of {}; it keeps running: run \
                 `eddy cluster remove {id}` again to move them",
                hosted.join(", ")
            )));
        }
        let connected = self.connected_without(id);
        check_quorum_without(&mut client, i32::from(id), &connected).await?;
        let was_running = self.node_mut(id)?.child.is_some();
        progress(format!("stopping node {id}"));
        self.shut_down(&[id], Signal::Terminate, DEFAULT_STOP_TIMEOUT)
            .await;
        let others: Vec<String> = self
            .spec
            .node_ids()
            .filter(|node| *node != id)
            .map(|node| self.spec.node_address(node))
            .collect();
        let mut client = Client::new(others).with_node_timeout(OPERATION_NODE_TIMEOUT);
        let deadline = Instant::now() + Duration::from_secs(20);
        let unregistered = loop {
            match client.unregister_broker(i32::from(id)).await {
                Ok(()) => break Ok(()),
                // An earlier attempt went through but its answer was lost
                // (the controller that took it may have been this node).
                Err(error) if error.error_code() == Some(ErrorCode::BrokerIdNotRegistered) => {
                    break Ok(());
                }
                // It hosts replicas again (a partition created meanwhile).
                Err(error) if error.error_code() == Some(ErrorCode::InvalidRequest) => {
                    break Err(error);
                }
                Err(error) if Instant::now() >= deadline => break Err(error),
                Err(error) => {
                    tracing::debug!(node = id, %error, "unregistering; trying again");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        };
        if let Err(error) = unregistered {
            // Still a member: it keeps its data and its place.
            let restarted = if was_running {
                match self.spawn(id) {
                    Ok(()) => "it was started again".to_string(),
                    Err(start_error) => format!(
                        "starting it again failed ({start_error}); `eddy cluster start {id}` \
                         starts it"
                    ),
                }
            } else {
                "it stays stopped".to_string()
            };
            self.write_state()?;
            return Err(ClusterError::Operation(format!(
                "the cluster did not unregister node {id}: {error}; {restarted} and keeps its \
                 data"
            )));
        }
        self.forget_node(id);
        self.save_membership()?;
        ClusterFile::set_nodes(&self.spec.data_dir, self.spec.node_count())?;
        let data_dir = self.spec.node_data_dir(id);
        if let Err(error) = std::fs::remove_dir_all(&data_dir) {
            tracing::warn!(node = id, %error, "cannot delete {}", data_dir.display());
        }
        self.write_state()?;
        progress(format!("node {id} removed"));
        Ok(())
    }

    /// The nodes other than `id` that run, neither paused nor isolated.
    fn connected_without(&mut self, id: u16) -> BTreeSet<i32> {
        self.reap();
        self.nodes
            .iter()
            .filter(|node| node.id != id && node.child.is_some() && !node.paused && !node.isolated)
            .map(|node| i32::from(node.id))
            .collect()
    }

    fn forget_node(&mut self, id: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|node| node.id == id) {
            node.kill_now();
        }
        self.nodes.retain(|node| node.id != id);
        self.spec.remove_node(id);
        self.throttles.remove(&id);
    }

    fn save_membership(&self) -> Result<(), ClusterError> {
        Membership {
            nodes: self.spec.nodes.clone(),
            voters: self.spec.voters.clone(),
            throttles: self.throttles.clone(),
            applied_defaults: self.applied_defaults.clone(),
            highest_id: self.spec.highest_used_id(),
        }
        .write(&self.spec.data_dir)
    }

    /// A client for operations, over the running nodes.
    fn operations_client(&mut self) -> Client {
        self.reap();
        let addresses: Vec<String> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some() && !node.paused)
            .map(|node| self.spec.node_address(node.id))
            .collect();
        Client::new(addresses).with_node_timeout(OPERATION_NODE_TIMEOUT)
    }

    fn running_node(&mut self, id: u16) -> Result<(), ClusterError> {
        self.reap();
        if self.node_mut(id)?.child.is_none() {
            return Err(ClusterError::NodeNotRunning { node: id });
        }
        Ok(())
    }

    /// Slows node `id`'s replication to `bytes_per_second` with Kafka's
    /// replication throttles (see [`ops::slow`]): as a follower it falls
    /// behind and leaves the ISR after `replica.lag.time.max.ms`.
    pub async fn slow(&mut self, id: u16, bytes_per_second: u64) -> Result<(), ClusterError> {
        self.running_node(id)?;
        let mut client = self.operations_client();
        ops::slow(&mut client, i32::from(id), bytes_per_second).await?;
        self.throttles.insert(id, bytes_per_second);
        self.save_membership()?;
        self.write_state()
    }

    /// Cuts node `id` off from the other nodes (replication and controller
    /// links, both ways) while clients still reach it, through its fault
    /// file. Lasts until [`Supervisor::heal`] or the node's next start.
    pub fn isolate(&mut self, id: u16) -> Result<(), ClusterError> {
        self.running_node(id)?;
        write_atomically(
            &fault_file(&self.spec, id),
            b"{\"isolated\": true}\n",
            false,
        )?;
        self.node_mut(id)?.isolated = true;
        self.write_state()
    }

    /// Undoes [`Supervisor::isolate`] and [`Supervisor::slow`] on node `id`.
    pub async fn heal(&mut self, id: u16) -> Result<(), ClusterError> {
        self.node_mut(id)?;
        if self.spec.node_data_dir(id).exists() {
            write_atomically(
                &fault_file(&self.spec, id),
                b"{\"isolated\": false}\n",
                false,
            )?;
        }
        self.node_mut(id)?.isolated = false;
        self.write_state()?;
        let mut client = self.operations_client();
        ops::clear_throttle(&mut client, i32::from(id)).await?;
        self.throttles.remove(&id);
        self.save_membership()?;
        self.write_state()
    }

    /// `DATA/eddy.toml`.
    pub fn config_path(&self) -> PathBuf {
        ClusterFile::path(&self.spec.data_dir)
    }

    /// The last rejected edit of `DATA/eddy.toml`, until a good one.
    pub fn config_error(&self) -> Option<String> {
        self.config_error.clone()
    }

    /// Reads `DATA/eddy.toml` again and applies it, all or nothing: a
    /// raised `nodes` starts the new nodes, and `[defaults]` changes become
    /// cluster-wide broker configs (validated by the cluster first, and set
    /// only once the new nodes are ready). A syntax error, an unknown key, a
    /// lowered `nodes`, a changed `base_port`, a config the cluster refuses
    /// or a new node that fails to start changes nothing (should the
    /// cluster refuse the defaults after validating them, the error says
    /// that the nodes part was applied); the error is kept as
    /// [`Supervisor::config_error`].
    pub async fn reload_config(&mut self) -> Result<ConfigReload, ClusterError> {
        let result = self.apply_config_file().await;
        match &result {
            Ok(_) => self.config_error = None,
            Err(error) => self.config_error = Some(error.to_string()),
        }
        result
    }

    async fn apply_config_file(&mut self) -> Result<ConfigReload, ClusterError> {
        let Some((text, parsed)) = ClusterFile::read(&self.spec.data_dir)? else {
            return Ok(ConfigReload::default());
        };
        let file = parsed.map_err(|error| ClusterError::Config(rejected(error)))?;
        let refuse = |key: &str, message: String| {
            ClusterError::Config(rejected(FileError::at_key(&text, key, message)))
        };
        if file.base_port != self.spec.base_port {
            return Err(refuse(
                "base_port",
                format!(
                    "base_port changed from {} to {}; ports change only when the cluster \
                     starts again (`eddy cluster down`, then `eddy cluster up`)",
                    self.spec.base_port, file.base_port
                ),
            ));
        }
        let count = self.spec.node_count();
        if file.nodes < count {
            return Err(refuse(
                "nodes",
                format!(
                    "nodes lowered from {count} to {}; remove a node with `eddy cluster remove N`",
                    file.nodes
                ),
            ));
        }
        let mut probe = self.spec.clone();
        for _ in count..file.nodes {
            let id = probe.next_node_id();
            probe
                .validate_node(id)
                .map_err(|error| refuse("nodes", error))?;
            check_node_ports_free(&probe, id)
                .map_err(|error| refuse("nodes", error.to_string()))?;
            probe.nodes.insert(id);
        }
        let set: BTreeMap<String, String> = file
            .defaults
            .iter()
            .filter(|(key, value)| self.applied_defaults.get(*key) != Some(*value))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let delete: Vec<String> = self
            .applied_defaults
            .keys()
            .filter(|key| !file.defaults.contains_key(*key))
            .cloned()
            .collect();
        let mut reload = ConfigReload::default();
        let changes_defaults = !set.is_empty() || !delete.is_empty();
        let refused_at = |error: eddy_client::ClientError| {
            let message = error.to_string();
            let key = set
                .keys()
                .chain(delete.iter())
                .find(|key| message.contains(key.as_str()))
                .or_else(|| set.keys().next())
                .or_else(|| delete.first())
                .cloned()
                .unwrap_or_default();
            FileError::at_key(
                &text,
                &key,
                format!("the cluster refused [defaults]: {message}"),
            )
        };
        if changes_defaults {
            self.operations_client()
                .alter_broker_configs(None, &set, &delete, true)
                .await
                .map_err(|error| ClusterError::Config(rejected(refused_at(error))))?;
        }
        // The nodes first: they may fail to start, and then nothing of the
        // edit is applied (the defaults are not set yet).
        let mut added = Vec::new();
        for _ in count..file.nodes {
            match self.add_node_process() {
                Ok(id) => added.push(id),
                Err(error) => {
                    for id in added {
                        self.forget_node(id);
                        let _ = std::fs::remove_dir_all(self.spec.node_data_dir(id));
                    }
                    self.save_membership()?;
                    self.write_state()?;
                    return Err(error);
                }
            }
        }
        if !added.is_empty() {
            self.wait_added(&added).await?;
        }
        reload.started = added;
        if changes_defaults {
            let applied = self
                .operations_client()
                .alter_broker_configs(None, &set, &delete, false)
                .await;
            if let Err(error) = applied {
                let refusal = refused_at(error);
                if reload.started.is_empty() {
                    return Err(ClusterError::Config(rejected(refusal)));
                }
                let started: Vec<String> = reload.started.iter().map(ToString::to_string).collect();
                return Err(ClusterError::Config(format!(
                    "{refusal} — applied only in part: the nodes part of the edit is applied \
                     (started node {}), the [defaults] part is not",
                    started.join(", node ")
                )));
            }
            self.applied_defaults = file.defaults.clone();
            self.save_membership()?;
            reload.defaults_set = set;
            reload.defaults_deleted = delete;
        }
        Ok(reload)
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
        self.clear_faults(id)?;
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

    /// Clears node `id`'s fault file: a node (re)starts connected.
    fn clear_faults(&mut self, id: u16) -> Result<(), ClusterError> {
        let path = fault_file(&self.spec, id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ClusterError::Io {
                    what: format!("removing {}", path.display()),
                    source,
                });
            }
        }
        self.node_mut(id)?.isolated = false;
        Ok(())
    }

    fn node_mut(&mut self, id: u16) -> Result<&mut NodeProcess, ClusterError> {
        let nodes = self.spec.nodes.iter().copied().collect();
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
        check_node_ports_free(spec, node)?;
    }
    Ok(())
}

fn check_node_ports_free(spec: &ClusterSpec, node: u16) -> Result<(), ClusterError> {
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
    Ok(())
}

/// `DATA/node-N/faults.json`, which node N polls.
fn fault_file(spec: &ClusterSpec, id: u16) -> PathBuf {
    spec.node_data_dir(id).join(FAULT_FILE)
}

/// What a rejected cluster-file edit reads as.
fn rejected(error: impl std::fmt::Display) -> String {
    format!("{error} — ignored; the cluster is unchanged")
}

/// Takes the node ids from `DATA/nodes.json` and the base port and any
/// raised node count from `DATA/eddy.toml` (writing `eddy.toml` from
/// `spec` when there is none). Returns why `eddy.toml` was not followed,
/// if it was not.
fn reconcile_with_files(spec: &mut ClusterSpec) -> Result<Option<String>, ClusterError> {
    let membership = Membership::read(&spec.data_dir)?;
    let fresh = membership.is_none();
    if let Some(membership) = membership {
        spec.nodes = membership.nodes;
        spec.voters = membership.voters;
        spec.highest_id = membership.highest_id;
    }
    let (text, file) = match ClusterFile::read(&spec.data_dir)? {
        None => {
            ClusterFile::create_if_missing(&spec.data_dir, spec.node_count(), spec.base_port)?;
            return Ok(None);
        }
        Some((_, Err(error))) => {
            return Ok(Some(format!(
                "{error} — ignored; the cluster started as it was"
            )));
        }
        Some((text, Ok(file))) => (text, file),
    };
    spec.base_port = file.base_port;
    if fresh {
        spec.set_node_count(file.nodes);
        return Ok(None);
    }
    if file.nodes < spec.node_count() {
        return Ok(Some(format!(
            "{} — ignored; the cluster started with its {} nodes",
            FileError::at_key(
                &text,
                "nodes",
                format!(
                    "nodes = {} is fewer than the cluster's {} nodes; remove a node with `eddy cluster remove N`",
                    file.nodes,
                    spec.node_count()
                )
            ),
            spec.node_count()
        )));
    }
    while spec.node_count() < file.nodes {
        let id = spec.next_node_id();
        spec.nodes.insert(id);
    }
    Ok(None)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A spec whose "eddy" is `sh`, which exits at once: it cannot open a
    /// script named `broker`.
    fn failing_spec(data_dir: &std::path::Path) -> ClusterSpec {
        let mut spec = ClusterSpec::new(data_dir, "/bin/sh");
        spec.set_node_count(2);
        spec.base_port = free_base_port(2);
        spec
    }

    fn free_base_port(nodes: u16) -> u16 {
        loop {
            let base = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|listener| listener.local_addr())
                .expect("probing a port")
                .port();
            let mut spec = ClusterSpec {
                base_port: base,
                ..ClusterSpec::new("/unused", "/unused")
            };
            spec.set_node_count(nodes);
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
    fn the_data_dir_files_decide_which_nodes_start() {
        let dir = temporary_dir("files");
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut spec = ClusterSpec::new(&dir, "/bin/eddy");
        spec.base_port = 21000;
        // First start: eddy.toml is written from the spec.
        assert_eq!(reconcile_with_files(&mut spec).expect("reconciled"), None);
        let text = std::fs::read_to_string(ClusterFile::path(&dir)).expect("eddy.toml");
        assert!(
            text.contains("nodes = 3") && text.contains("base_port = 21000"),
            "{text}"
        );
        // Node 2 was removed and node 4 added.
        Membership {
            nodes: BTreeSet::from([1, 3, 4]),
            voters: vec![1, 2, 3],
            throttles: BTreeMap::new(),
            applied_defaults: BTreeMap::new(),
            // Nodes 5 and 6 were added and removed too.
            highest_id: 6,
        }
        .write(&dir)
        .expect("nodes.json");
        let mut again = ClusterSpec::new(&dir, "/bin/eddy");
        assert_eq!(reconcile_with_files(&mut again).expect("reconciled"), None);
        assert_eq!(again.nodes, BTreeSet::from([1, 3, 4]));
        assert_eq!(again.base_port, 21000, "the file's base port wins");
        // The file was raised while the cluster was down.
        ClusterFile::set_nodes(&dir, 4).expect("raised");
        let mut raised = ClusterSpec::new(&dir, "/bin/eddy");
        assert_eq!(reconcile_with_files(&mut raised).expect("reconciled"), None);
        assert_eq!(
            raised.nodes,
            BTreeSet::from([1, 3, 4, 7]),
            "removed ids are not given out again"
        );
        assert_eq!(raised.voters, vec![1, 2, 3]);
        // Lowered: the cluster starts as it was, and says why.
        ClusterFile::set_nodes(&dir, 2).expect("lowered");
        let mut lowered = ClusterSpec::new(&dir, "/bin/eddy");
        let error = reconcile_with_files(&mut lowered)
            .expect("reconciled")
            .expect("an error");
        assert!(error.contains("eddy cluster remove"), "{error}");
        assert_eq!(lowered.nodes, BTreeSet::from([1, 3, 4]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_node_stops_only_while_a_majority_of_voters_stays_live() {
        let all = BTreeSet::from([1, 2, 3, 4]);
        // Three voters, all up: any one may go (two of three stay).
        assert!(quorum_survives_without(&[1, 2, 3], 3, &BTreeSet::from([1, 2])).is_ok());
        // Voter 2 is down: stopping voter 3 leaves one of three.
        let error = quorum_survives_without(&[1, 2, 3], 3, &BTreeSet::from([1, 4]))
            .expect_err("quorum lost");
        assert!(
            error.contains("1 of the metadata quorum's 3 voters") && error.contains("majority"),
            "{error}"
        );
        // A learner may go while a majority of voters is up.
        assert!(quorum_survives_without(&[1, 2, 3], 4, &BTreeSet::from([1, 3])).is_ok());
        // Four voters (a learner promoted): two of four is only half.
        assert!(quorum_survives_without(&[1, 2, 3, 4], 4, &BTreeSet::from([1, 2])).is_err());
        assert!(quorum_survives_without(&[1, 2, 3, 4], 4, &all).is_ok());
        // A single voter cannot stop.
        assert!(quorum_survives_without(&[1], 1, &all).is_err());
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
