//! A session: one cluster the console watches and acts on. A local session
//! runs the embedded cluster through `eddy-cluster` (process control
//! included); a remote one is any Kafka cluster's bootstrap servers.
//!
//! A poller gathers a snapshot every `poll_interval` with short per-node
//! timeouts, so a paused or dead node never freezes the view; it keeps the
//! latest snapshot, turns changes into events, and pushes both to every
//! subscriber.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_client::Client;
use eddy_cluster::{ClusterSpec, NodeState, Supervisor};
use tokio::sync::{broadcast, watch};

use crate::diff::{Observed, diff};
use crate::model::ReassignmentView;
use crate::model::{ClusterEvent, ClusterSnapshot, Failure, SessionInfo, SessionKind, Update};
use crate::snapshot::{Gathered, Process, build};

/// How long one node may take to answer a poll's request.
const NODE_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a local cluster may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Events kept in memory for late subscribers.
const MAX_EVENTS: usize = 5000;
/// How long lag and throughput history is kept, and how often older
/// samples are deleted.
const HISTORY_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// Updates buffered per subscriber before a slow one skips ahead.
const UPDATE_BUFFER: usize = 256;

/// How a session polls.
#[derive(Debug, Clone)]
pub struct Options {
    pub poll_interval: Duration,
    /// How often offsets, sizes and group lag are gathered (they cost a
    /// request per topic and per group, so a large cluster takes a while);
    /// a task of their own does it, so the cluster view never waits for it.
    pub detail_interval: Duration,
    /// The SQLite file lag and throughput history go to; none keeps no history.
    pub store_path: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            detail_interval: Duration::from_secs(1),
            store_path: None,
        }
    }
}

pub(crate) struct Inner {
    pub info: SessionInfo,
    pub bootstrap: Vec<String>,
    pub supervisor: Option<tokio::sync::Mutex<Supervisor>>,
    snapshot: watch::Sender<Arc<ClusterSnapshot>>,
    updates: broadcast::Sender<Update>,
    events: Mutex<EventLog>,
    stop: watch::Sender<bool>,
    options: Options,
    pub store: Option<eddy_store::Store>,
    pub demo: tokio::sync::Mutex<Option<crate::demo::Demo>>,
    /// What the detail task found last.
    detail: Mutex<Option<Arc<crate::detail::Detail>>>,
    /// Whether the cluster's controller explains itself (`__eddy_events`).
    controller_explains: std::sync::atomic::AtomicBool,
    /// Set when the user changed reassignments: the next poll lists them.
    pub reassignments_changed: std::sync::atomic::AtomicBool,
    /// Addresses of isolated nodes, asked nothing: an isolated node still
    /// answers clients, but with its stale view of the cluster.
    isolated_addresses: Mutex<Vec<String>>,
    /// Bumped when `isolated_addresses` changes, so pollers reconnect.
    bootstrap_generation: std::sync::atomic::AtomicU64,
    /// The node being removed: one removal at a time.
    pub removing: Mutex<Option<u16>>,
}

#[derive(Default)]
struct EventLog {
    events: VecDeque<ClusterEvent>,
    next_sequence: u64,
}

/// The console's handle on one session; cheap to clone.
#[derive(Clone)]
pub struct Console {
    pub(crate) inner: Arc<Inner>,
}

fn failure(message: impl Into<String>, hint: Option<&str>) -> Failure {
    Failure {
        kafka_error: None,
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

impl Console {
    /// Starts the local cluster described by `spec` (reusing its data) and
    /// watches it.
    pub async fn local(
        name: &str,
        spec: ClusterSpec,
        options: Options,
    ) -> Result<Console, Failure> {
        let bootstrap = spec.bootstrap_servers();
        let mut supervisor = Supervisor::start(spec).map_err(|error| {
            failure(
                format!("the local cluster did not start: {error}"),
                Some("another eddy may be using the same data directory or ports"),
            )
        })?;
        supervisor
            .wait_ready(START_TIMEOUT)
            .await
            .map_err(|error| {
                failure(
                    format!("the local cluster did not become ready: {error}"),
                    Some("see the node logs in the data directory"),
                )
            })?;
        let info = SessionInfo {
            name: name.to_string(),
            kind: SessionKind::Local,
            bootstrap_servers: bootstrap.clone(),
            read_only: false,
        };
        Ok(Self::watch(info, Some(supervisor), options).await)
    }

    /// Watches any Kafka cluster through its bootstrap servers.
    pub async fn remote(
        name: &str,
        bootstrap_servers: &str,
        read_only: bool,
        options: Options,
    ) -> Console {
        let info = SessionInfo {
            name: name.to_string(),
            kind: SessionKind::Remote,
            bootstrap_servers: bootstrap_servers.to_string(),
            read_only,
        };
        Self::watch(info, None, options).await
    }

    async fn watch(info: SessionInfo, supervisor: Option<Supervisor>, options: Options) -> Console {
        let store = match &options.store_path {
            Some(path) => match eddy_store::Store::open(path).await {
                Ok(store) => Some(store),
                Err(error) => {
                    tracing::warn!(%error, "no lag history: the database did not open");
                    None
                }
            },
            None => None,
        };
        let bootstrap = info
            .bootstrap_servers
            .split(',')
            .map(|address| address.trim().to_string())
            .filter(|address| !address.is_empty())
            .collect();
        let (snapshot, _) = watch::channel(Arc::new(ClusterSnapshot::default()));
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        let (stop, stopped) = watch::channel(false);
        let detail_stopped = stopped.clone();
        let events_stopped = stopped.clone();
        let console = Console {
            inner: Arc::new(Inner {
                info,
                bootstrap,
                supervisor: supervisor.map(tokio::sync::Mutex::new),
                snapshot,
                updates,
                events: Mutex::new(EventLog::default()),
                stop,
                options,
                store,
                demo: tokio::sync::Mutex::new(None),
                detail: Mutex::new(None),
                controller_explains: std::sync::atomic::AtomicBool::new(false),
                reassignments_changed: std::sync::atomic::AtomicBool::new(false),
                isolated_addresses: Mutex::new(Vec::new()),
                bootstrap_generation: std::sync::atomic::AtomicU64::new(0),
                removing: Mutex::new(None),
            }),
        };
        if console.inner.supervisor.is_some() {
            tokio::spawn(watch_cluster_file(console.clone(), stopped.clone()));
        }
        tokio::spawn(poll(console.clone(), stopped));
        tokio::spawn(poll_detail(console.clone(), detail_stopped));
        tokio::spawn(tail_events(console.clone(), events_stopped));
        console
    }

    pub fn info(&self) -> &SessionInfo {
        &self.inner.info
    }

    /// The latest snapshot (empty until the first poll finished).
    pub fn snapshot(&self) -> Arc<ClusterSnapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// Waits for the first snapshot with at least one node.
    pub async fn first_snapshot(&self, timeout: Duration) -> Option<Arc<ClusterSnapshot>> {
        let mut receiver = self.inner.snapshot.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                let snapshot = receiver.borrow_and_update().clone();
                if !snapshot.nodes.is_empty() {
                    return snapshot;
                }
                if receiver.changed().await.is_err() {
                    return snapshot;
                }
            }
        })
        .await
        .ok()
    }

    /// Updates from now on: snapshots, events and progress.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.inner.updates.subscribe()
    }

    /// Events with a sequence above `after`.
    pub fn events_after(&self, after: u64) -> Vec<ClusterEvent> {
        let log = self.lock_events();
        log.events
            .iter()
            .filter(|event| event.sequence > after)
            .cloned()
            .collect()
    }

    /// A client for one action, with the session's bootstrap servers.
    pub(crate) fn client(&self) -> Client {
        Client::new(self.bootstrap()).with_node_timeout(Duration::from_secs(5))
    }

    /// The bootstrap servers to ask now: all but isolated nodes (unless
    /// every one is isolated).
    fn bootstrap(&self) -> Vec<String> {
        let isolated = self
            .inner
            .isolated_addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let reachable: Vec<String> = self
            .inner
            .bootstrap
            .iter()
            .filter(|address| !isolated.contains(address))
            .cloned()
            .collect();
        if reachable.is_empty() {
            self.inner.bootstrap.clone()
        } else {
            reachable
        }
    }

    /// A poller's client, made again whenever the nodes to ask change.
    fn poll_client(&self, generation: &mut u64) -> Client {
        *generation = self
            .inner
            .bootstrap_generation
            .load(std::sync::atomic::Ordering::Relaxed);
        Client::new(self.bootstrap()).with_node_timeout(NODE_TIMEOUT)
    }

    fn bootstrap_changed(&self, generation: u64) -> bool {
        self.inner
            .bootstrap_generation
            .load(std::sync::atomic::Ordering::Relaxed)
            != generation
    }

    /// Remembers which nodes are isolated (from the supervisor).
    fn set_isolated(&self, processes: &[Process]) {
        let addresses: Vec<String> = processes
            .iter()
            .filter(|process| process.isolated)
            .map(|process| format!("127.0.0.1:{}", process.port))
            .collect();
        let mut current = self
            .inner
            .isolated_addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *current != addresses {
            *current = addresses;
            self.inner
                .bootstrap_generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(crate) fn publish(&self, update: Update) {
        let _ = self.inner.updates.send(update);
    }

    fn lock_events(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers and keeps events, and pushes them to subscribers.
    pub(crate) fn record_events(&self, events: Vec<(i64, Observed, &'static str)>) {
        if events.is_empty() {
            return;
        }
        let mut log = self.lock_events();
        let mut fresh = Vec::with_capacity(events.len());
        for (time_ms, observed, source) in events {
            log.next_sequence += 1;
            let event = ClusterEvent {
                sequence: log.next_sequence,
                time_ms,
                kind: observed.kind.to_string(),
                text: observed.text,
                topic: observed.topic,
                partition: observed.partition,
                node: observed.node,
                source: source.to_string(),
            };
            log.events.push_back(event.clone());
            fresh.push(event);
        }
        while log.events.len() > MAX_EVENTS {
            log.events.pop_front();
        }
        drop(log);
        self.publish(Update::Events(fresh));
    }

    /// Stops polling and, for a local session, stops the cluster.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        crate::demo::stop(self).await;
        if let Some(supervisor) = &self.inner.supervisor {
            supervisor
                .lock()
                .await
                .down(eddy_cluster::DEFAULT_DOWN_TIMEOUT)
                .await;
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// The poll loop: gather, build, diff, publish — until the session stops.
async fn poll(console: Console, mut stopped: watch::Receiver<bool>) {
    let mut generation = 0;
    let mut client = console.poll_client(&mut generation);
    let mut ticker = tokio::time::interval(console.inner.options.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sequence = 0u64;
    let mut state = PollState::new(&console);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        if console.bootstrap_changed(generation) {
            client = console.poll_client(&mut generation);
            state.reassignments_client = console.poll_client(&mut generation);
        }
        sequence += 1;
        let mut gathered = tokio::select! {
            gathered = gather(&console, &mut client, &mut state) => gathered,
            _ = stopped.changed() => return,
        };
        let detail = console
            .inner
            .detail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(detail) = detail {
            detail.fill(&mut gathered);
        }
        let previous = console.snapshot();
        let snapshot = Arc::new(build(gathered, Some(&previous), sequence));
        let controller_explains = console
            .inner
            .controller_explains
            .load(std::sync::atomic::Ordering::Relaxed);
        if previous.sequence > 0 {
            let observed = diff(&previous, &snapshot, controller_explains);
            console.record_events(
                observed
                    .into_iter()
                    .map(|event| (snapshot.taken_at_ms, event, "observed"))
                    .collect(),
            );
        }
        console.inner.snapshot.send_replace(snapshot.clone());
        console.publish(Update::Snapshot((*snapshot).clone()));
    }
}

/// Applies edits of a local cluster's file (DATA/eddy.toml) while it
/// runs: all or nothing, and the timeline says what changed or why nothing
/// did.
async fn watch_cluster_file(console: Console, mut stopped: watch::Receiver<bool>) {
    let Some(supervisor) = &console.inner.supervisor else {
        return;
    };
    let path = supervisor.lock().await.config_path();
    let mut changes = match eddy_cluster::watch_config(&path) {
        Ok(changes) => changes,
        Err(error) => {
            tracing::warn!(%error, "edits of the cluster file apply only after a restart");
            return;
        }
    };
    loop {
        tokio::select! {
            change = changes.recv() => if change.is_none() { return },
            _ = stopped.changed() => return,
        }
        let outcome = supervisor.lock().await.reload_config().await;
        let event = match outcome {
            Ok(reload) if reload.is_empty() => continue,
            Ok(reload) => {
                let mut changed = Vec::new();
                for node in &reload.started {
                    changed.push(format!("node {node} started"));
                }
                for (name, value) in &reload.defaults_set {
                    changed.push(format!("{name} = {value} on every node"));
                }
                for name in &reload.defaults_deleted {
                    changed.push(format!("{name} back to its default"));
                }
                Observed {
                    kind: "cluster_file_applied",
                    text: format!(
                        "The cluster file {} changed and was applied: {}",
                        path.display(),
                        changed.join(", ")
                    ),
                    topic: None,
                    partition: None,
                    node: None,
                }
            }
            Err(error) => Observed {
                kind: "cluster_file_rejected",
                text: format!("The edit of {} was not applied: {error}", path.display()),
                topic: None,
                partition: None,
                node: None,
            },
        };
        console.record_events(vec![(now_ms(), event, "observed")]);
    }
}

/// Tails the controller's `__eddy_events` on its own clock, so a slow or
/// moving events leader never holds the cluster view back.
async fn tail_events(console: Console, mut stopped: watch::Receiver<bool>) {
    let mut generation = 0;
    let mut client = console.poll_client(&mut generation);
    let mut ticker = tokio::time::interval(console.inner.options.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tail = crate::events::Tail::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        if console.bootstrap_changed(generation) {
            client = console.poll_client(&mut generation);
        }
        let events = tokio::select! {
            events = tail.poll(&mut client) => events,
            _ = stopped.changed() => return,
        };
        if tail.seen_any() {
            console
                .inner
                .controller_explains
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        console.record_events(
            events
                .into_iter()
                .map(|(time_ms, event)| (time_ms, event, "controller"))
                .collect(),
        );
    }
}

/// Offsets, sizes and groups with their lag, gathered on their own clock;
/// lag samples go to the store.
async fn poll_detail(console: Console, mut stopped: watch::Receiver<bool>) {
    let mut generation = 0;
    let mut client = console.poll_client(&mut generation);
    let mut ticker = tokio::time::interval(console.inner.options.detail_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = tokio::time::Instant::now() - PRUNE_INTERVAL;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        if console.bootstrap_changed(generation) {
            client = console.poll_client(&mut generation);
        }
        // A gather of a large cluster makes hundreds of requests: stopping
        // must not wait for it (against stopped nodes it would take minutes).
        let gathered = tokio::select! {
            gathered = async {
                let metadata = client.metadata().await.ok()?;
                Some(crate::detail::gather(&mut client, &metadata).await)
            } => gathered,
            _ = stopped.changed() => return,
        };
        let Some(detail) = gathered else {
            continue;
        };
        record_history(&console, &detail, now_ms()).await;
        if let Some(store) = &console.inner.store
            && last_prune.elapsed() >= PRUNE_INTERVAL
        {
            last_prune = tokio::time::Instant::now();
            if let Err(error) = store.prune_older_than(now_ms() - HISTORY_KEPT_MS).await {
                tracing::warn!(%error, "old history not pruned");
            }
        }
        *console
            .inner
            .detail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(detail));
    }
}

/// The name lag and throughput samples are kept under.
pub(crate) fn history_key(console: &Console) -> String {
    console.info().bootstrap_servers.clone()
}

/// Lag samples of every group's partitions, and each topic's message rate,
/// go to the store.
async fn record_history(console: &Console, detail: &crate::detail::Detail, time_ms: i64) {
    let Some(store) = &console.inner.store else {
        return;
    };
    let cluster = history_key(console);
    let samples: Vec<eddy_store::LagSample> = detail
        .lag
        .iter()
        .map(|lag| eddy_store::LagSample {
            time_ms,
            cluster: cluster.clone(),
            group: lag.group_id.clone(),
            topic: lag.topic.clone(),
            partition: lag.partition,
            committed: lag.committed,
            end_offset: lag.end_offset,
            lag: (lag.end_offset - lag.committed).max(0),
        })
        .collect();
    if let Err(error) = store.record_lag(&samples).await {
        tracing::warn!(%error, "lag samples not stored");
    }
    let throughput: Vec<eddy_store::ThroughputSample> = console
        .snapshot()
        .topics
        .iter()
        .filter(|topic| !topic.internal)
        .map(|topic| eddy_store::ThroughputSample {
            time_ms,
            cluster: cluster.clone(),
            topic: topic.name.clone(),
            messages_per_sec: topic.messages_per_sec,
            // Record bytes are not polled; the rate of messages is.
            bytes_per_sec: 0.0,
        })
        .collect();
    if let Err(error) = store.record_throughput(&throughput).await {
        tracing::warn!(%error, "throughput samples not stored");
    }
}

impl Console {
    /// A group's total lag over time, from the store.
    pub async fn lag_history(&self, group_id: &str, since_ms: i64) -> Vec<crate::model::LagPoint> {
        let Some(store) = &self.inner.store else {
            return Vec::new();
        };
        match store
            .lag_history(&history_key(self), group_id, since_ms, now_ms())
            .await
        {
            Ok(points) => points
                .into_iter()
                .map(|point| crate::model::LagPoint {
                    time_ms: point.time_ms,
                    lag: point.lag,
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "lag history not read");
                Vec::new()
            }
        }
    }
}

/// What the poll loop carries from one poll to the next.
struct PollState {
    /// A second client, so reassignments are listed while Metadata is asked.
    reassignments_client: Client,
    /// The reassignments in flight at the last look.
    reassignments: Vec<ReassignmentView>,
    /// Polls until reassignments are listed again.
    reassignments_due_in: u32,
    /// The processes as last seen, for polls while an operation holds the
    /// supervisor (adding or removing a node takes a while).
    processes: Vec<Process>,
    config_error: Option<String>,
}

/// Reassignments are listed every poll while some are in flight, else
/// every few polls; after a failure (a cluster without the API) rarely.
const REASSIGNMENTS_IDLE_POLLS: u32 = 4;
const REASSIGNMENTS_FAILED_POLLS: u32 = 40;

impl PollState {
    fn new(console: &Console) -> Self {
        Self {
            reassignments_client: console.poll_client(&mut 0),
            reassignments: Vec::new(),
            reassignments_due_in: 0,
            processes: Vec::new(),
            config_error: None,
        }
    }

    /// Lists reassignments when due (and right after the user asked for one).
    async fn reassignments(&mut self, console: &Console) {
        let asked = console
            .inner
            .reassignments_changed
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        if self.reassignments_due_in > 0 && !asked {
            self.reassignments_due_in -= 1;
            return;
        }
        match self
            .reassignments_client
            .list_partition_reassignments()
            .await
        {
            Ok(ongoing) => {
                self.reassignments = ongoing
                    .into_iter()
                    .map(|ongoing| ReassignmentView {
                        topic: ongoing.topic,
                        partition: ongoing.partition,
                        replicas: ongoing.replicas,
                        adding: ongoing.adding,
                        removing: ongoing.removing,
                    })
                    .collect();
                self.reassignments_due_in = if self.reassignments.is_empty() {
                    REASSIGNMENTS_IDLE_POLLS
                } else {
                    0
                };
            }
            Err(_) => self.reassignments_due_in = REASSIGNMENTS_FAILED_POLLS,
        }
    }
}

/// Metadata, quorum, reassignments and local processes: what every poll needs.
async fn gather(console: &Console, client: &mut Client, state: &mut PollState) -> Gathered {
    let mut gathered = Gathered::default();
    let (metadata, ()) = tokio::join!(client.metadata(), state.reassignments(console));
    match metadata {
        Ok(metadata) => gathered.metadata = Some(metadata),
        Err(error) => gathered
            .problems
            .push(format!("no node answered Metadata: {error}")),
    }
    gathered.reassignments = state.reassignments.clone();
    if let Ok(Some(quorum)) = client.describe_quorum().await {
        // Only the quorum's leader knows how far every voter is.
        let leader_address = quorum.leader_id.and_then(|leader| {
            let broker = gathered
                .metadata
                .as_ref()?
                .brokers
                .iter()
                .find(|broker| broker.id == leader)?;
            let address = format!("{}:{}", broker.host, broker.port);
            (address != quorum.answered_by).then_some(address)
        });
        gathered.quorum = Some(quorum);
        if let Some(address) = leader_address
            && let Ok(Some(quorum)) = client.describe_quorum_from(&address).await
        {
            gathered.quorum = Some(quorum);
        }
    }
    if let Some(supervisor) = &console.inner.supervisor {
        // An operation holding the supervisor (a node being added or
        // removed) must not freeze the view: the last processes stand in.
        if let Ok(mut supervisor) = supervisor.try_lock() {
            state.processes = supervisor
                .nodes()
                .into_iter()
                .map(|node| Process {
                    id: i32::from(node.id),
                    port: node.port,
                    pid: node.pid,
                    running: matches!(node.state, NodeState::Running | NodeState::Paused),
                    paused: node.state == NodeState::Paused,
                    isolated: node.isolated,
                    throttle_rate: node.throttle_rate,
                })
                .collect();
            state.config_error = supervisor.config_error();
            console.set_isolated(&state.processes);
        }
        gathered.processes = state.processes.clone();
        gathered.config_error = state.config_error.clone();
    }
    gathered.taken_at_ms = now_ms();
    gathered
}
