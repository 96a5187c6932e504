//! The active controller's duties, run on every node and acting only while
//! the node is the raft leader: register and unfence brokers that heartbeat,
//! fence brokers that stop, add non-voter nodes as raft learners, and give
//! the cluster its id.
//!
//! Liveness is kept in memory by this task alone. A node that becomes
//! controller starts every broker's clock at "now", so a new controller does
//! not fence everyone at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::BasicNode;
use tokio::sync::{mpsc, watch};

use crate::command::Command;
use crate::node::Shared;
use crate::wire::Heartbeat;

/// How often the controller looks for work.
const TICK: Duration = Duration::from_millis(50);
/// How long one of the controller's own proposals may take.
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Events waiting for the controller task; heartbeats beyond it are dropped
/// (the next one will do).
pub(crate) const EVENT_QUEUE_LENGTH: usize = 1024;
/// How long to wait before asking again to add a learner.
const LEARNER_RETRY: Duration = Duration::from_secs(5);

pub(crate) enum ControllerEvent {
    /// `connection_id` is the controller-side connection it came on; `None`
    /// when the controller node heartbeats itself.
    Heartbeat {
        heartbeat: Heartbeat,
        connection_id: Option<u64>,
    },
    ConnectionClosed {
        connection_id: u64,
    },
}

#[derive(Clone)]
pub(crate) struct ControllerHandle {
    events: mpsc::Sender<ControllerEvent>,
}

impl ControllerHandle {
    pub(crate) fn new() -> (Self, mpsc::Receiver<ControllerEvent>) {
        let (events, receiver) = mpsc::channel(EVENT_QUEUE_LENGTH);
        (Self { events }, receiver)
    }

    pub(crate) fn send(&self, event: ControllerEvent) {
        if self.events.try_send(event).is_err() {
            tracing::debug!("controller queue full; dropping an event");
        }
    }
}

struct Liveness {
    /// The last heartbeat, or when this controller started watching.
    last_seen: Instant,
    /// The latest heartbeat since the broker was last fenced by this
    /// controller; needed to register or unfence it.
    latest: Option<Heartbeat>,
    connection_id: Option<u64>,
    connection_closed_at: Option<Instant>,
    /// Whether the broker has heartbeated to this controller since it took
    /// over (a live broker does within a few heartbeat intervals).
    heard_since_take_over: bool,
}

impl Liveness {
    fn watching_from(now: Instant) -> Self {
        Self {
            last_seen: now,
            latest: None,
            connection_id: None,
            connection_closed_at: None,
            heard_since_take_over: false,
        }
    }
}

pub(crate) struct Controller {
    shared: Arc<Shared>,
    brokers: BTreeMap<i32, Liveness>,
    was_leader: bool,
    learners_requested: HashMap<i32, Instant>,
    took_over_at: Instant,
}

impl Controller {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            brokers: BTreeMap::new(),
            was_leader: false,
            learners_requested: HashMap::new(),
            took_over_at: Instant::now(),
        }
    }

    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<ControllerEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.record(event),
                    None => return,
                },
                _ = tick.tick() => self.act().await,
                _ = shutdown.changed() => return,
            }
        }
    }

    fn record(&mut self, event: ControllerEvent) {
        let now = Instant::now();
        match event {
            ControllerEvent::Heartbeat {
                heartbeat,
                connection_id,
            } => {
                let liveness = self
                    .brokers
                    .entry(heartbeat.broker_id)
                    .or_insert_with(|| Liveness::watching_from(now));
                liveness.last_seen = now;
                liveness.latest = Some(heartbeat);
                liveness.connection_id = connection_id;
                liveness.connection_closed_at = None;
                liveness.heard_since_take_over = true;
            }
            ControllerEvent::ConnectionClosed { connection_id } => {
                for liveness in self.brokers.values_mut() {
                    if liveness.connection_id == Some(connection_id) {
                        liveness.connection_id = None;
                        liveness.connection_closed_at = Some(now);
                    }
                }
            }
        }
    }

    async fn act(&mut self) {
        let is_leader = self.shared.is_leader();
        if is_leader && !self.was_leader {
            self.take_over();
        }
        self.was_leader = is_leader;
        if !is_leader {
            return;
        }
        if self.shared.image().cluster_id.is_empty() {
            let cluster_id = crate::node::random_cluster_id();
            tracing::info!(%cluster_id, "creating the cluster id");
            self.propose(Command::InitCluster { cluster_id }).await;
        }
        self.register_and_unfence().await;
        self.fence_silent().await;
        self.add_learners();
    }

    /// Starts every known broker's clock now.
    fn take_over(&mut self) {
        let now = Instant::now();
        tracing::info!(
            node = self.shared.node_id,
            "this node is the active controller"
        );
        // What brokers said to an earlier term of this node may be stale:
        // registering or unfencing waits for a fresh heartbeat.
        for liveness in self.brokers.values_mut() {
            liveness.last_seen = now;
            liveness.latest = None;
            liveness.connection_closed_at = None;
            liveness.heard_since_take_over = false;
        }
        self.took_over_at = now;
        for &id in self.shared.image().brokers.keys() {
            self.brokers
                .entry(id)
                .or_insert_with(|| Liveness::watching_from(now));
        }
    }

    async fn propose(&self, command: Command) -> bool {
        match self.shared.propose_local(command, PROPOSAL_TIMEOUT).await {
            Ok((_, Ok(_))) => true,
            Ok((_, Err(error))) => {
                tracing::debug!(%error, "controller proposal refused");
                false
            }
            Err(error) => {
                tracing::debug!(%error, "controller proposal failed");
                false
            }
        }
    }

    async fn register_and_unfence(&mut self) {
        let session_timeout = self.shared.session_timeout();
        let now = Instant::now();
        let heard: Vec<Heartbeat> = self
            .brokers
            .values()
            .filter(|liveness| now.duration_since(liveness.last_seen) < session_timeout)
            .filter_map(|liveness| liveness.latest.clone())
            .collect();
        for heartbeat in heard {
            let image = self.shared.image();
            let id = heartbeat.broker_id;
            let registered = image.broker(id);
            let current = registered.is_some_and(|broker| {
                broker.incarnation == heartbeat.incarnation
                    && broker.host == heartbeat.host
                    && broker.port == heartbeat.port
                    && broker.controller_address == heartbeat.controller_address
            });
            if !current {
                tracing::info!(
                    node = id,
                    incarnation = heartbeat.incarnation,
                    "registering broker"
                );
                let registered = self
                    .propose(Command::RegisterBroker {
                        id,
                        host: heartbeat.host.clone(),
                        port: heartbeat.port,
                        controller_address: heartbeat.controller_address.clone(),
                        incarnation: heartbeat.incarnation,
                    })
                    .await;
                if !registered {
                    continue;
                }
            }
            let fenced = self
                .shared
                .image()
                .broker(id)
                .is_none_or(|broker| broker.fenced);
            if fenced && !heartbeat.wants_shutdown {
                tracing::info!(node = id, "unfencing broker");
                self.propose(Command::UnfenceBroker { id }).await;
            }
        }
    }

    async fn fence_silent(&mut self) {
        let session_timeout = self.shared.session_timeout();
        let fast_fence = self.shared.fast_fence();
        // A live broker heartbeats to a new controller as soon as it learns
        // of it (within a raft heartbeat of the election); one still silent
        // after a heartbeat interval died with the old controller (often it
        // was the old controller), so it need not wait out the whole
        // session timeout.
        let take_over_grace = self
            .shared
            .heartbeat_interval()
            .max(Duration::from_millis(300))
            .min(session_timeout);
        let now = Instant::now();
        let image = self.shared.image();
        let mut to_fence = Vec::new();
        for broker in image.live_brokers() {
            if broker.id == self.shared.node_id {
                continue;
            }
            let liveness = self
                .brokers
                .entry(broker.id)
                .or_insert_with(|| Liveness::watching_from(now));
            if now.duration_since(liveness.last_seen) >= session_timeout {
                let reason = format!(
                    "node {} stopped heartbeating; fenced after {} ms",
                    broker.id,
                    session_timeout.as_millis()
                );
                to_fence.push((broker.id, reason));
            } else if !liveness.heard_since_take_over
                && now.duration_since(self.took_over_at) >= take_over_grace
            {
                let reason = format!(
                    "node {} did not contact the new controller; fenced after {} ms",
                    broker.id,
                    take_over_grace.as_millis()
                );
                to_fence.push((broker.id, reason));
            } else if let Some(closed_at) = liveness.connection_closed_at
                && now.duration_since(closed_at) >= fast_fence
            {
                let reason = format!(
                    "node {}'s connection to the controller closed (process gone?); fenced after {} ms",
                    broker.id,
                    fast_fence.as_millis()
                );
                to_fence.push((broker.id, reason));
            }
        }
        for (id, reason) in to_fence {
            tracing::info!(node = id, %reason, "fencing broker");
            if self.propose(Command::FenceBroker { id, reason }).await
                && let Some(liveness) = self.brokers.get_mut(&id)
            {
                liveness.latest = None;
                liveness.connection_closed_at = None;
            }
        }
    }

    /// Every registered node that is not a raft member joins as a learner.
    fn add_learners(&mut self) {
        let members = self.shared.raft_member_ids();
        let image = self.shared.image();
        let now = Instant::now();
        for broker in image.brokers.values() {
            let Ok(raft_id) = u64::try_from(broker.id) else {
                continue;
            };
            if members.contains(&raft_id) {
                continue;
            }
            let recently = self
                .learners_requested
                .get(&broker.id)
                .is_some_and(|at| now.duration_since(*at) < LEARNER_RETRY);
            if recently {
                continue;
            }
            self.learners_requested.insert(broker.id, now);
            tracing::info!(node = broker.id, address = %broker.controller_address, "adding raft learner");
            let raft = self.shared.raft.clone();
            let node = BasicNode::new(&broker.controller_address);
            self.shared.spawn(async move {
                if let Err(error) = raft.add_learner(raft_id, node, false).await {
                    tracing::debug!(%error, node = raft_id, "adding learner failed");
                }
            });
        }
    }
}
