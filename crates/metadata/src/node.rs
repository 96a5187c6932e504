//! One node of the metadata quorum: raft over the controller listener, the
//! controller duties while this node leads, and heartbeats to whoever
//! leads.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::storage::Adaptor;
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::command::{Command, CommandResult};
use crate::controller::{Controller, ControllerEvent, ControllerHandle};
use crate::image::MetadataImage;
use crate::network::{Network, ReplicaTimes, SharedReplicaTimes};
use crate::peers::{CallError, Peers};
use crate::store::{FileStore, OpenError};
use crate::types::{Raft, Request, now_ms};
use crate::wire::{ForwardReply, Heartbeat, HeartbeatReply, Rpc, RpcReply};

/// Raft voters at most; other nodes are learners.
pub const MAX_VOTERS: usize = 5;
const RAFT_HEARTBEAT_INTERVAL_MS: u64 = 100;
/// A snapshot is taken after this many entries, and older entries purged.
const SNAPSHOT_EVERY_ENTRIES: u64 = 1000;
/// Entries kept behind a snapshot, so that slightly lagging followers catch
/// up from the log rather than from a snapshot.
const ENTRIES_KEPT_AFTER_SNAPSHOT: u64 = 100;
/// How long to wait between attempts while no controller is known.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// How to run one node of the metadata quorum.
#[derive(Debug, Clone)]
pub struct MetadataConfig {
    pub node_id: i32,
    /// Holds the raft vote, log and snapshots; created if missing.
    pub data_dir: PathBuf,
    /// Where the controller listener binds; port 0 picks a free port.
    pub controller_listen: SocketAddr,
    /// Node id to controller "host:port". Empty means a single-node quorum
    /// of just this node. The first [`MAX_VOTERS`] are voters.
    pub voters: BTreeMap<i32, String>,
    /// This node's Kafka endpoint, registered with the controller.
    pub broker_host: String,
    pub broker_port: u16,
    /// `broker.heartbeat.interval.ms`
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`
    pub session_timeout_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// After a broker's controller connection closes, fence it if it has not
    /// heartbeated again within this time.
    pub fast_fence_ms: u64,
    /// The broker default of `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable`: the controller moves leadership back
    /// to preferred replicas.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`
    pub leader_imbalance_check_interval: Duration,
    /// `leader.imbalance.per.broker.percentage`
    pub leader_imbalance_per_broker_percentage: u32,
}

impl MetadataConfig {
    /// Kafka's defaults for everything but the node's identity and places.
    pub fn new(node_id: i32, data_dir: PathBuf, controller_listen: SocketAddr) -> Self {
        Self {
            node_id,
            data_dir,
            controller_listen,
            voters: BTreeMap::new(),
            broker_host: "127.0.0.1".to_string(),
            broker_port: 0,
            heartbeat_interval_ms: 300,
            session_timeout_ms: 2000,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            fast_fence_ms: 200,
            unclean_leader_election: false,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval: Duration::from_secs(5),
            leader_imbalance_per_broker_percentage: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("controller listener {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] OpenError),
    #[error("invalid metadata config: {0}")]
    Config(String),
    #[error("raft: {0}")]
    Raft(String),
    /// The operation did not finish in time; `message` says why, e.g. "no
    /// metadata quorum: 1 of 3 voters reachable".
    #[error("{message}")]
    Timeout { message: String },
    #[error("the metadata node is shutting down")]
    ShuttingDown,
}

/// DescribeQuorum's view of the raft group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub leader_id: Option<i32>,
    /// The raft term.
    pub leader_epoch: u64,
    /// The last log index applied here (committed).
    pub high_watermark: u64,
    /// A leader is known and, on the leader, a majority acknowledged it
    /// within the maximum election timeout; on others, the leader was heard
    /// from within twice that.
    pub healthy: bool,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub node_id: i32,
    /// The last log index known to be on that replica.
    pub log_end_offset: u64,
    /// -1 when unknown.
    pub last_fetch_ms: i64,
    /// -1 when unknown.
    pub last_caught_up_ms: i64,
}

/// A running metadata node. Cheap to clone.
#[derive(Clone)]
pub struct MetadataNode {
    shared: Arc<Shared>,
}

/// What the node's tasks share.
pub(crate) struct Shared {
    pub node_id: i32,
    pub raft: Raft,
    pub controller: ControllerHandle,
    config: MetadataConfig,
    /// Voter id to controller address, as resolved at start.
    voters: BTreeMap<i32, String>,
    controller_address: SocketAddr,
    incarnation: u64,
    images: watch::Receiver<Arc<MetadataImage>>,
    peers: Peers,
    replica_times: SharedReplicaTimes,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    last_leader_contact: Mutex<Option<Instant>>,
    wants_shutdown: AtomicBool,
    /// Where to send heartbeats while no leader is known.
    heartbeat_cursor: AtomicUsize,
    controller_hint: Mutex<Option<i32>>,
}

impl MetadataNode {
    /// Binds `config.controller_listen` and starts the node.
    pub async fn start(config: MetadataConfig) -> Result<MetadataNode, MetadataError> {
        let address = config.controller_listen;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| MetadataError::Listen { address, source })?;
        Self::start_with_listener(config, listener).await
    }

    /// Starts the node on a listener bound by the caller (so the caller can
    /// learn the port before starting); `config.controller_listen` is
    /// ignored.
    pub async fn start_with_listener(
        config: MetadataConfig,
        listener: TcpListener,
    ) -> Result<MetadataNode, MetadataError> {
        let controller_address = listener
            .local_addr()
            .map_err(|source| MetadataError::Listen {
                address: config.controller_listen,
                source,
            })?;
        let node_id = config.node_id;
        let raft_id = u64::try_from(node_id)
            .map_err(|_| MetadataError::Config(format!("node id {node_id} is negative")))?;
        let mut voters: BTreeMap<i32, String> = config
            .voters
            .iter()
            .take(MAX_VOTERS)
            .map(|(id, address)| (*id, address.clone()))
            .collect();
        if voters.is_empty() {
            voters.insert(node_id, controller_address.to_string());
        }
        if voters.keys().any(|id| *id < 0) {
            return Err(MetadataError::Config(
                "voter ids must not be negative".into(),
            ));
        }

        let raft_config = Config {
            cluster_name: "eddy-metadata".to_string(),
            heartbeat_interval: RAFT_HEARTBEAT_INTERVAL_MS,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            install_snapshot_timeout: config.election_timeout_max_ms.max(1000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
            max_in_snapshot_log_to_keep: ENTRIES_KEPT_AFTER_SNAPSHOT,
            ..Config::default()
        }
        .validate()
        .map_err(|error| MetadataError::Config(error.to_string()))?;

        let (image_sender, images) = watch::channel(Arc::new(MetadataImage::default()));
        let store = FileStore::open(
            &config.data_dir,
            image_sender,
            config.unclean_leader_election,
        )?;
        let (log_store, state_machine) = Adaptor::new(store);
        let peers = Peers::default();
        let replica_times = SharedReplicaTimes::default();
        // Raft's metrics do not exist before raft; the network reads them
        // through a channel filled once raft is up.
        let (metrics_sender, metrics) = watch::channel(openraft::RaftMetrics::new_initial(raft_id));
        let network = Network {
            peers: peers.clone(),
            replica_times: replica_times.clone(),
            metrics,
        };
        let raft = Raft::new(
            raft_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|error| MetadataError::Raft(error.to_string()))?;

        let (controller, controller_events) = ControllerHandle::new();
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let shared = Arc::new(Shared {
            node_id,
            raft: raft.clone(),
            controller,
            config,
            voters: voters.clone(),
            controller_address,
            incarnation: random_u64(),
            images,
            peers,
            replica_times,
            shutdown,
            tasks: Mutex::new(Vec::new()),
            last_leader_contact: Mutex::new(None),
            wants_shutdown: AtomicBool::new(false),
            heartbeat_cursor: AtomicUsize::new(0),
            controller_hint: Mutex::new(None),
        });

        shared.spawn(forward_metrics(
            raft.clone(),
            metrics_sender,
            shutdown_receiver.clone(),
        ));
        shared.spawn(crate::server::serve(
            listener,
            shared.clone(),
            shutdown_receiver.clone(),
        ));
        shared.spawn(
            Controller::new(shared.clone()).run(controller_events, shutdown_receiver.clone()),
        );
        shared.spawn(send_heartbeats(shared.clone(), shutdown_receiver));

        // A node with a log has been initialised before (openraft logs an
        // error when asked again).
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|error| MetadataError::Raft(error.to_string()))?;
        if voters.contains_key(&node_id) && !initialized {
            let members: BTreeMap<u64, BasicNode> = voters
                .iter()
                .map(|(id, address)| (*id as u64, BasicNode::new(address)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node = node_id, "initialized the metadata quorum"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(error) => return Err(MetadataError::Raft(error.to_string())),
            }
        }
        tracing::info!(
            node = node_id,
            address = %controller_address,
            voters = ?voters,
            "metadata node started"
        );
        Ok(MetadataNode { shared })
    }

    pub fn node_id(&self) -> i32 {
        self.shared.node_id
    }

    /// This process's registration incarnation: a registration in the
    /// image with another one is this node's previous run.
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// The bound controller address.
    pub fn controller_address(&self) -> SocketAddr {
        self.shared.controller_address
    }

    /// This node's applied view.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.shared.image()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.shared.images.clone()
    }

    /// The current raft leader: the active controller.
    pub fn controller_id(&self) -> Option<i32> {
        self.shared.leader_id()
    }

    /// Applies a command through the active controller (here if this node
    /// leads, else forwarded to the leader, retrying across leader changes),
    /// then waits until this node has applied it, so the caller's next read
    /// sees it. A forwarded proposal whose reply was lost is sent again, so a
    /// command may be applied twice (e.g. a retried CreateTopic answers
    /// TOPIC_ALREADY_EXISTS).
    pub async fn propose(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<CommandResult, MetadataError> {
        let deadline = Instant::now() + timeout;
        let request = Request {
            time_ms: now_ms(),
            command,
        };
        let (index, result) = self.shared.write(request, deadline, timeout).await?;
        self.shared.wait_applied(index, deadline, timeout).await?;
        Ok(result)
    }

    pub fn quorum(&self) -> QuorumStatus {
        self.shared.quorum()
    }

    /// Asks the controller to move this node's partition leaderships away;
    /// returns once that is committed and applied here.
    pub async fn controlled_shutdown(&self, timeout: Duration) -> Result<(), MetadataError> {
        self.shared.wants_shutdown.store(true, Ordering::Relaxed);
        let id = self.shared.node_id;
        match self
            .propose(Command::ControlledShutdown { id }, timeout)
            .await?
        {
            Ok(_) => Ok(()),
            Err(error) => Err(MetadataError::Raft(error.to_string())),
        }
    }

    /// Stops raft, the listener and every connection. Storage is synced on
    /// each write, so there is nothing left to flush.
    pub async fn shutdown(self) {
        let shared = self.shared;
        tracing::info!(node = shared.node_id, "metadata node shutting down");
        let _ = shared.shutdown.send(true);
        let tasks = std::mem::take(
            &mut *shared
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        shared.peers.close();
        if let Err(error) = shared.raft.shutdown().await {
            tracing::warn!(%error, "raft did not stop cleanly");
        }
    }
}

impl Shared {
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tasks.retain(|task| !task.is_finished());
        if *self.shutdown.borrow() {
            handle.abort();
        }
        tasks.push(handle);
    }

    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.images.borrow().clone()
    }

    pub(crate) fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.config.session_timeout_ms)
    }

    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.config.heartbeat_interval_ms.max(1))
    }

    pub(crate) fn config(&self) -> &MetadataConfig {
        &self.config
    }

    pub(crate) fn fast_fence(&self) -> Duration {
        Duration::from_millis(self.config.fast_fence_ms)
    }

    pub(crate) fn leader_id(&self) -> Option<i32> {
        let metrics = self.raft.metrics();
        let leader = metrics.borrow().current_leader;
        leader.and_then(|id| i32::try_from(id).ok())
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leader_term().is_some()
    }

    /// The raft term this node leads, if it is the leader.
    pub(crate) fn leader_term(&self) -> Option<u64> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leading = metrics.state == ServerState::Leader
            && metrics.current_leader == Some(self.node_id as u64);
        leading.then_some(metrics.current_term)
    }

    /// Ids of raft voters and learners.
    pub(crate) fn raft_member_ids(&self) -> BTreeSet<u64> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .nodes()
            .map(|(id, _)| *id)
            .collect()
    }

    /// The controller address of node `id`.
    fn address_of(&self, id: i32) -> Option<String> {
        let metrics = self.raft.metrics();
        let from_membership = metrics
            .borrow()
            .membership_config
            .nodes()
            .find(|(node, _)| **node == id as u64)
            .map(|(_, node)| node.addr.clone());
        from_membership
            .or_else(|| self.voters.get(&id).cloned())
            .or_else(|| {
                self.image()
                    .broker(id)
                    .map(|broker| broker.controller_address.clone())
            })
    }

    /// Writes through the local raft, which must be the leader.
    pub(crate) async fn propose_local(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<(u64, CommandResult), String> {
        let request = Request {
            time_ms: now_ms(),
            command,
        };
        match tokio::time::timeout(timeout, self.raft.client_write(request)).await {
            Ok(Ok(response)) => Ok((response.log_id.index, response.data)),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("not committed within {} ms", timeout.as_millis())),
        }
    }

    /// Gets `request` into the log through whoever leads; returns its index
    /// and result.
    async fn write(
        &self,
        request: Request,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(u64, CommandResult), MetadataError> {
        let mut problem: Option<String> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.timeout_error(timeout, problem));
            }
            let Some(leader) = self.leader_id() else {
                problem = None;
                tokio::time::sleep(RETRY_PAUSE.min(remaining)).await;
                continue;
            };
            if leader == self.node_id {
                let written =
                    tokio::time::timeout(remaining, self.raft.client_write(request.clone())).await;
                match written {
                    Ok(Ok(response)) => return Ok((response.log_id.index, response.data)),
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {}
                    Ok(Err(RaftError::Fatal(_))) => return Err(MetadataError::ShuttingDown),
                    Ok(Err(error)) => problem = Some(error.to_string()),
                    Err(_) => {
                        problem = Some(format!("controller {leader} (this node) could not commit"))
                    }
                }
                tokio::time::sleep(RETRY_PAUSE.min(remaining)).await;
                continue;
            }
            let Some(address) = self.address_of(leader) else {
                problem = Some(format!("the address of controller {leader} is unknown"));
                tokio::time::sleep(RETRY_PAUSE.min(remaining)).await;
                continue;
            };
            let forward = Rpc::Forward {
                request: request.clone(),
                timeout_ms: remaining.as_millis() as u64,
            };
            match self.peers.call(&address, forward, remaining).await {
                Ok(RpcReply::Forward(ForwardReply::Applied { index, result })) => {
                    return Ok((index, result));
                }
                Ok(RpcReply::Forward(ForwardReply::NotLeader { .. })) => problem = None,
                Ok(RpcReply::Forward(ForwardReply::Failed { message })) => {
                    problem = Some(format!("controller {leader}: {message}"));
                }
                Ok(_) => problem = Some(format!("controller {leader} answered another request")),
                Err(CallError::ShuttingDown) => return Err(MetadataError::ShuttingDown),
                Err(error) => {
                    problem = Some(format!("controller {leader} did not answer: {error}"))
                }
            }
            tokio::time::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())))
                .await;
        }
    }

    async fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), MetadataError> {
        let mut images = self.images.clone();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let applied = tokio::time::timeout(
            remaining,
            images.wait_for(|image| image.applied_index >= index),
        )
        .await;
        match applied {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(MetadataError::ShuttingDown),
            Err(_) => Err(MetadataError::Timeout {
                message: format!(
                    "entry {index} was committed but node {} did not apply it within {} ms",
                    self.node_id,
                    timeout.as_millis()
                ),
            }),
        }
    }

    fn timeout_error(&self, timeout: Duration, problem: Option<String>) -> MetadataError {
        let reachable = self.reachable_voters();
        let total = self.voters.len();
        let message = match (self.leader_id(), problem) {
            (Some(leader), Some(problem)) if leader != self.node_id => format!(
                "{problem} within {} ms ({reachable} of {total} voters reachable)",
                timeout.as_millis()
            ),
            (Some(leader), None) if leader != self.node_id => format!(
                "controller {leader} did not answer within {} ms ({reachable} of {total} voters reachable)",
                timeout.as_millis()
            ),
            _ => format!("no metadata quorum: {reachable} of {total} voters reachable"),
        };
        MetadataError::Timeout { message }
    }

    /// Voters that answered recently, counting this node.
    fn reachable_voters(&self) -> usize {
        let window = Duration::from_millis(2 * self.config.election_timeout_max_ms);
        self.voters
            .iter()
            .filter(|(id, address)| {
                **id == self.node_id || self.peers.answered_within(address, window)
            })
            .count()
    }

    fn quorum(&self) -> QuorumStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let election_max = Duration::from_millis(self.config.election_timeout_max_ms);
        let is_leader = metrics.state == ServerState::Leader;
        let healthy = match metrics.current_leader {
            None => false,
            Some(_) if is_leader => metrics
                .millis_since_quorum_ack
                .is_some_and(|millis| millis <= election_max.as_millis() as u64),
            Some(_) => self
                .last_leader_contact
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .is_some_and(|at| at.elapsed() <= 2 * election_max),
        };
        let times = self
            .replica_times
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let replication = metrics.replication.clone().unwrap_or_default();
        let now = now_ms();
        let status = |id: u64| {
            if id == self.node_id as u64 {
                return ReplicaStatus {
                    node_id: id as i32,
                    log_end_offset: metrics.last_log_index.unwrap_or(0),
                    last_fetch_ms: now,
                    last_caught_up_ms: now,
                };
            }
            let known = times.get(&id).copied().unwrap_or(ReplicaTimes::default());
            let matched = if is_leader {
                replication
                    .get(&id)
                    .and_then(|log_id| log_id.map(|log_id| log_id.index))
            } else {
                None
            };
            ReplicaStatus {
                node_id: id as i32,
                log_end_offset: matched.unwrap_or(0),
                last_fetch_ms: known.last_fetch_ms.filter(|_| is_leader).unwrap_or(-1),
                last_caught_up_ms: known.last_caught_up_ms.filter(|_| is_leader).unwrap_or(-1),
            }
        };
        let membership = metrics.membership_config.membership();
        QuorumStatus {
            leader_id: metrics.current_leader.map(|id| id as i32),
            leader_epoch: metrics.current_term,
            high_watermark: metrics.last_applied.map_or(0, |log_id| log_id.index),
            healthy,
            voters: membership.voter_ids().map(status).collect(),
            observers: membership.learner_ids().map(status).collect(),
        }
    }

    /// Answers one request from another node.
    pub(crate) async fn handle(&self, rpc: Rpc, connection_id: u64) -> RpcReply {
        match rpc {
            Rpc::AppendEntries(request) => {
                let result = self.raft.append_entries(request).await;
                if result.is_ok() {
                    self.heard_from_leader();
                }
                RpcReply::AppendEntries(result)
            }
            Rpc::Vote(request) => RpcReply::Vote(self.raft.vote(request).await),
            Rpc::InstallSnapshot(request) => {
                let result = self.raft.install_snapshot(request).await;
                if result.is_ok() {
                    self.heard_from_leader();
                }
                RpcReply::InstallSnapshot(result)
            }
            Rpc::Forward {
                request,
                timeout_ms,
            } => RpcReply::Forward(
                self.forwarded(request, Duration::from_millis(timeout_ms))
                    .await,
            ),
            Rpc::Heartbeat(heartbeat) => {
                RpcReply::Heartbeat(self.heartbeat(heartbeat, Some(connection_id)))
            }
        }
    }

    fn heard_from_leader(&self) {
        *self
            .last_leader_contact
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }

    async fn forwarded(&self, request: Request, timeout: Duration) -> ForwardReply {
        if !self.is_leader() {
            return ForwardReply::NotLeader {
                leader_id: self.leader_id().map(|id| id as u64),
            };
        }
        match tokio::time::timeout(timeout, self.raft.client_write(request)).await {
            Ok(Ok(response)) => ForwardReply::Applied {
                index: response.log_id.index,
                result: response.data,
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                ForwardReply::NotLeader {
                    leader_id: forward.leader_id,
                }
            }
            Ok(Err(error)) => ForwardReply::Failed {
                message: error.to_string(),
            },
            Err(_) => ForwardReply::Failed {
                message: "could not commit".to_string(),
            },
        }
    }

    /// Records a heartbeat if this node is the controller, and says whether
    /// the broker is fenced and who the controller is.
    fn heartbeat(&self, heartbeat: Heartbeat, connection_id: Option<u64>) -> HeartbeatReply {
        let broker_id = heartbeat.broker_id;
        if self.is_leader() {
            self.controller.send(ControllerEvent::Heartbeat {
                heartbeat,
                connection_id,
            });
        }
        HeartbeatReply {
            fenced: self
                .image()
                .broker(broker_id)
                .is_none_or(|broker| broker.fenced),
            controller_id: self.leader_id(),
        }
    }

    fn own_heartbeat(&self) -> Heartbeat {
        Heartbeat {
            broker_id: self.node_id,
            incarnation: self.incarnation,
            host: self.config.broker_host.clone(),
            port: self.config.broker_port,
            controller_address: self.controller_address.to_string(),
            wants_shutdown: self.wants_shutdown.load(Ordering::Relaxed),
        }
    }

    /// Who to send the next heartbeat to: the leader, else the last hint,
    /// else the voters in turn.
    fn heartbeat_target(&self) -> Option<i32> {
        if let Some(leader) = self.leader_id() {
            return Some(leader);
        }
        let hint = *self
            .controller_hint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if hint.is_some() {
            return hint;
        }
        let others: Vec<i32> = self
            .voters
            .keys()
            .copied()
            .filter(|id| *id != self.node_id)
            .collect();
        if others.is_empty() {
            return None;
        }
        let turn = self.heartbeat_cursor.fetch_add(1, Ordering::Relaxed);
        Some(others[turn % others.len()])
    }

    async fn send_heartbeat(&self) {
        let Some(target) = self.heartbeat_target() else {
            return;
        };
        let heartbeat = self.own_heartbeat();
        if target == self.node_id {
            self.heartbeat(heartbeat, None);
            return;
        }
        let Some(address) = self.address_of(target) else {
            return;
        };
        let timeout = Duration::from_millis(self.config.heartbeat_interval_ms.max(200));
        let reply = self
            .peers
            .call(&address, Rpc::Heartbeat(heartbeat), timeout)
            .await;
        let hint = match reply {
            Ok(RpcReply::Heartbeat(reply)) => reply.controller_id.filter(|id| *id != target),
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, controller = target, "heartbeat failed");
                None
            }
        };
        *self
            .controller_hint
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = hint;
    }
}

/// After a leader change, a second heartbeat follows the immediate one this
/// much later, in case the first was lost on a connection to the old leader.
const LEADER_CHANGE_FOLLOW_UP: Duration = Duration::from_millis(80);

async fn send_heartbeats(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(shared.config.heartbeat_interval_ms.max(1));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A new controller hears from this node at once rather than at the next
    // tick, so it can tell the live nodes from the dead ones sooner.
    // A second one follows shortly after, in case the first was lost.
    let mut metrics = shared.raft.metrics();
    let mut leader = metrics.borrow().current_leader;
    let mut follow_up: Option<tokio::time::Instant> = None;
    loop {
        let follow_up_at = follow_up;
        tokio::select! {
            _ = tick.tick() => {}
            () = async {
                match follow_up_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => follow_up = None,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = metrics.borrow_and_update().current_leader;
                if current == leader || current.is_none() {
                    continue;
                }
                leader = current;
                follow_up = Some(tokio::time::Instant::now() + LEADER_CHANGE_FOLLOW_UP);
            }
            _ = shutdown.changed() => return,
        }
        shared.send_heartbeat().await;
    }
}

/// Copies raft's metrics to the network, which exists before raft does.
async fn forward_metrics(
    raft: Raft,
    sender: watch::Sender<openraft::RaftMetrics<u64, BasicNode>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut metrics = raft.metrics();
    loop {
        sender.send_replace(metrics.borrow_and_update().clone());
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// 64 random bits from the standard library's randomly keyed hasher.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}

/// A Kafka-style cluster id: 16 random bytes in URL-safe base64 (22 chars).
pub(crate) fn random_cluster_id() -> String {
    let value = (u128::from(random_u64()) << 64) | u128::from(random_u64());
    eddy_protocol::Uuid::from_u128(value).to_string()
}
