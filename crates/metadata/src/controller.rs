//! The active controller's duties, run on every node and acting only while
//! the node is the raft leader: register and unfence brokers that heartbeat,
//! fence brokers that stop, add non-voter nodes as raft learners (and make
//! them voters while there are fewer than [`MAX_VOTERS`]), take unregistered
//! nodes out of the raft group, move leadership back to preferred replicas,
//! and give the cluster its id.
//!
//! Liveness is kept in memory by this task alone. A node that becomes
//! controller starts every broker's clock at "now", so a new controller does
//! not fence everyone at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openraft::{BasicNode, ChangeMembers};
use tokio::sync::{mpsc, watch};

use crate::command::Command;
use crate::image::MetadataImage;
use crate::node::{MAX_VOTERS, Shared};
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
/// A learner whose log is at most this many entries behind the leader's may
/// become a voter.
const CAUGHT_UP_ENTRIES: u64 = 10;
/// Dynamic broker configs the controller reads for rebalancing.
const AUTO_LEADER_REBALANCE_CONFIG: &str = "auto.leader.rebalance.enable";
const LEADER_IMBALANCE_INTERVAL_CONFIG: &str = "leader.imbalance.check.interval.seconds";
const LEADER_IMBALANCE_PERCENTAGE_CONFIG: &str = "leader.imbalance.per.broker.percentage";

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

/// An event and when it happened: liveness is judged by when a heartbeat
/// came or a connection closed, not by when the controller task, perhaps
/// busy with a proposal, got to it.
type TimedEvent = (Instant, ControllerEvent);

#[derive(Clone)]
pub(crate) struct ControllerHandle {
    events: mpsc::Sender<TimedEvent>,
}

impl ControllerHandle {
    pub(crate) fn new() -> (Self, mpsc::Receiver<TimedEvent>) {
        let (events, receiver) = mpsc::channel(EVENT_QUEUE_LENGTH);
        (Self { events }, receiver)
    }

    pub(crate) fn send(&self, event: ControllerEvent) {
        if self.events.try_send((Instant::now(), event)).is_err() {
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
    /// The raft term this node last took over as leader in. A term, not a
    /// flag: a node can lose and regain leadership while one round of work
    /// waits on a proposal, and each new term is a new take-over.
    led_term: Option<u64>,
    learners_requested: HashMap<i32, Instant>,
    took_over_at: Instant,
    /// When leader imbalance was last checked (or this node took over).
    last_rebalance_check: Instant,
    /// Unregistered nodes already forgotten by the liveness tracking.
    forgotten: BTreeSet<i32>,
    /// Set while a raft membership change runs.
    membership_changing: Arc<AtomicBool>,
}

impl Controller {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            brokers: BTreeMap::new(),
            led_term: None,
            learners_requested: HashMap::new(),
            took_over_at: Instant::now(),
            last_rebalance_check: Instant::now(),
            forgotten: BTreeSet::new(),
            membership_changing: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<TimedEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some((at, event)) => self.record(at, event),
                    None => return,
                },
                _ = tick.tick() => self.act().await,
                _ = shutdown.changed() => return,
            }
        }
    }

    fn record(&mut self, at: Instant, event: ControllerEvent) {
        // A heartbeat can arrive between the election and the next tick: it
        // was sent to this term, so the take-over's reset must not drop it.
        // (Acting on it still waits for the tick.)
        self.follow_leadership();
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
                liveness.last_seen = at;
                liveness.latest = Some(heartbeat);
                liveness.connection_id = connection_id;
                liveness.connection_closed_at = None;
                liveness.heard_since_take_over = true;
            }
            ControllerEvent::ConnectionClosed { connection_id } => {
                for liveness in self.brokers.values_mut() {
                    if liveness.connection_id == Some(connection_id) {
                        liveness.connection_id = None;
                        liveness.connection_closed_at = Some(at);
                    }
                }
            }
        }
    }

    /// Takes over when this node leads a term it has not taken over in yet.
    fn follow_leadership(&mut self) {
        let term = self.shared.leader_term();
        if term.is_some() && term != self.led_term {
            self.take_over();
        }
        self.led_term = term;
    }

    /// Whether this node still leads the term it took over in. Each step
    /// of [`Controller::act`] asks first: the one before may have waited on
    /// proposals while leadership moved away and back.
    fn still_leading(&self) -> bool {
        self.led_term.is_some() && self.shared.leader_term() == self.led_term
    }

    async fn act(&mut self) {
        self.follow_leadership();
        if self.led_term.is_none() {
            return;
        }
        if self.shared.image().cluster_id.is_empty() {
            let cluster_id = crate::node::random_cluster_id();
            tracing::info!(%cluster_id, "creating the cluster id");
            self.propose(Command::InitCluster { cluster_id }).await;
        }
        self.forget_unregistered();
        if self.still_leading() {
            self.register_and_unfence().await;
        }
        // Fencing judges silence against the take-over time: never with
        // a take-over from an earlier term.
        if self.still_leading() {
            self.fence_silent().await;
        }
        if self.still_leading() {
            self.add_learners();
            self.change_voters();
        }
        if self.still_leading() {
            self.rebalance_leaders().await;
        }
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
        self.last_rebalance_check = now;
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
            if image.unregistered_brokers.contains(&id) && !self.forgotten.contains(&id) {
                // Heard before it was unregistered; forgotten next tick.
                continue;
            }
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

    /// Takes unregistered nodes out of the liveness tracking, so that a
    /// heartbeat they sent before they were unregistered does not register
    /// them again (a later one does: the node is still running).
    fn forget_unregistered(&mut self) {
        let image = self.shared.image();
        self.forgotten
            .retain(|id| image.unregistered_brokers.contains(id));
        for &id in &image.unregistered_brokers {
            if self.forgotten.insert(id) {
                tracing::info!(node = id, "node unregistered; forgetting its heartbeats");
                self.brokers.remove(&id);
                self.learners_requested.remove(&id);
            }
        }
    }

    /// The rebalancing settings: dynamic configs (this node's, then the
    /// cluster-wide default) over the node's static ones.
    fn rebalance_settings(&self, image: &MetadataImage) -> (bool, Duration, u32) {
        let config = self.shared.config();
        let own = self.shared.node_id.to_string();
        let dynamic = |name: &str| {
            [own.as_str(), ""].iter().find_map(|key| {
                image
                    .broker_configs
                    .get(*key)
                    .and_then(|configs| configs.get(name))
                    .map(|value| value.trim().to_ascii_lowercase())
            })
        };
        let enabled = dynamic(AUTO_LEADER_REBALANCE_CONFIG)
            .and_then(|value| value.parse::<bool>().ok())
            .unwrap_or(config.auto_leader_rebalance);
        let interval = dynamic(LEADER_IMBALANCE_INTERVAL_CONFIG)
            .and_then(|value| value.parse::<u64>().ok())
            .filter(|seconds| *seconds > 0)
            .map_or(config.leader_imbalance_check_interval, Duration::from_secs);
        let percentage = dynamic(LEADER_IMBALANCE_PERCENTAGE_CONFIG)
            .and_then(|value| value.parse::<u32>().ok())
            .filter(|percentage| *percentage <= 100)
            .unwrap_or(config.leader_imbalance_per_broker_percentage);
        (enabled, interval, percentage)
    }

    /// Every check interval, elects preferred replicas where a broker leads
    /// too few of the partitions it is preferred for.
    async fn rebalance_leaders(&mut self) {
        let image = self.shared.image();
        let (enabled, interval, percentage) = self.rebalance_settings(&image);
        let now = Instant::now();
        if !enabled || now.duration_since(self.last_rebalance_check) < interval {
            return;
        }
        self.last_rebalance_check = now;
        let partitions = imbalanced_partitions(&image, percentage);
        if partitions.is_empty() {
            return;
        }
        tracing::info!(
            partitions = ?partitions,
            "moving leadership back to preferred replicas"
        );
        self.propose(Command::ElectLeaders {
            partitions: Some(partitions),
            unclean: false,
            automatic: true,
        })
        .await;
    }

    /// Makes a caught-up live learner a voter while there are fewer than
    /// [`MAX_VOTERS`], and takes unregistered nodes out of the raft group
    /// when the live voters left are a majority. One change at a time; a
    /// change left half done (joint) by an earlier controller is finished.
    fn change_voters(&mut self) {
        if self.membership_changing.load(Ordering::Acquire) {
            return;
        }
        let metrics = self.shared.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let joint = membership.get_joint_config();
        if joint.len() > 1 {
            if let Some(last) = joint.last() {
                let voters = last.clone();
                self.change_membership(
                    ChangeMembers::ReplaceAllVoters(voters.clone()),
                    true,
                    format!("finishing the metadata quorum change to voters {voters:?}"),
                );
            }
            return;
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners: BTreeSet<u64> = membership.learner_ids().collect();
        let image = self.shared.image();
        let own = self.shared.node_id as u64;
        let live = |id: u64| {
            id == own
                || i32::try_from(id)
                    .ok()
                    .and_then(|id| image.broker(id))
                    .is_some_and(|broker| broker.is_live() && !broker.in_controlled_shutdown)
        };
        let unregistered =
            |id: u64| i32::try_from(id).is_ok_and(|id| image.unregistered_brokers.contains(&id));
        let gone = voters
            .iter()
            .chain(&learners)
            .copied()
            .filter(|id| *id != own && unregistered(*id));
        for id in gone {
            if learners.contains(&id) {
                self.change_membership(
                    ChangeMembers::RemoveNodes(BTreeSet::from([id])),
                    false,
                    format!("removing unregistered node {id} (a learner) from the metadata quorum"),
                );
                return;
            }
            let remaining: Vec<u64> = voters
                .iter()
                .copied()
                .filter(|voter| *voter != id)
                .collect();
            let live_remaining = remaining.iter().filter(|voter| live(**voter)).count();
            if !remaining.is_empty() && live_remaining * 2 > remaining.len() {
                self.change_membership(
                    ChangeMembers::RemoveVoters(BTreeSet::from([id])),
                    false,
                    format!(
                        "removing unregistered node {id} from the metadata quorum's voters ({} voters left)",
                        remaining.len()
                    ),
                );
                return;
            }
            tracing::debug!(
                node = id,
                "keeping unregistered voter: too few live voters would be left"
            );
        }
        if voters.len() >= MAX_VOTERS {
            return;
        }
        let last = metrics.last_log_index.unwrap_or(0);
        let replication = metrics.replication.clone().unwrap_or_default();
        let caught_up = |id: u64| {
            replication
                .get(&id)
                .and_then(|matched| matched.map(|log_id| log_id.index))
                .is_some_and(|matched| matched + CAUGHT_UP_ENTRIES >= last)
        };
        let candidate = learners
            .iter()
            .copied()
            .find(|id| live(*id) && !unregistered(*id) && caught_up(*id));
        if let Some(id) = candidate {
            self.change_membership(
                ChangeMembers::AddVoterIds(BTreeSet::from([id])),
                true,
                format!(
                    "making node {id} a voter of the metadata quorum ({} voters, at most {MAX_VOTERS})",
                    voters.len() + 1
                ),
            );
        }
    }

    fn change_membership(&self, change: ChangeMembers<u64, BasicNode>, retain: bool, what: String) {
        self.membership_changing.store(true, Ordering::Release);
        tracing::info!("{what}");
        let raft = self.shared.raft.clone();
        let changing = self.membership_changing.clone();
        self.shared.spawn(async move {
            // Not timed out: dropping it between the joint and the final
            // step would leave the joint configuration behind.
            match raft.change_membership(change, retain).await {
                Ok(_) => tracing::info!("{what}: done"),
                Err(error) => tracing::info!(%error, "{what}: not done"),
            }
            changing.store(false, Ordering::Release);
        });
    }
}

/// Partitions whose preferred replica (the first) should lead again: for
/// each live broker, if more than `percentage` % of the partitions it is
/// preferred for are led by others, those where it is in the ISR.
/// Partitions being reassigned are left alone.
pub(crate) fn imbalanced_partitions(image: &MetadataImage, percentage: u32) -> Vec<(String, i32)> {
    // Per preferred replica: how many partitions, and those led by others
    // (with whether it is in their ISR).
    type Preferred = (usize, Vec<(String, i32, bool)>);
    let mut preferred: BTreeMap<i32, Preferred> = BTreeMap::new();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            let Some(&first) = partition.replicas.first() else {
                continue;
            };
            if partition.is_reassigning() {
                continue;
            }
            let entry = preferred.entry(first).or_default();
            entry.0 += 1;
            if partition.leader != first {
                let in_sync = partition.isr.contains(&first);
                entry.1.push((topic.name.clone(), index as i32, in_sync));
            }
        }
    }
    let mut elect = Vec::new();
    for (broker, (total, led_by_others)) in preferred {
        let eligible = image.broker(broker).is_some_and(|registration| {
            registration.is_live() && !registration.in_controlled_shutdown
        });
        let imbalanced = led_by_others.len() as u64 * 100 > u64::from(percentage) * total as u64;
        if eligible && imbalanced {
            elect.extend(
                led_by_others
                    .into_iter()
                    .filter(|(_, _, in_sync)| *in_sync)
                    .map(|(topic, index, _)| (topic, index)),
            );
        }
    }
    elect
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::imbalanced_partitions;
    use crate::command::{Command, apply};
    use crate::image::MetadataImage;

    fn run(image: &mut MetadataImage, command: Command) {
        let index = image.applied_index + 1;
        image.applied_index = index;
        apply(image, index, index as i64, &command, false).expect("command succeeds");
    }

    /// Brokers 1-3; `assignments` for topic t; then node 1 is fenced and
    /// comes back, and rejoins the ISR of the partitions listed in `rejoin`.
    fn image_after_node_1_returns(assignments: Vec<Vec<i32>>, rejoin: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in 1..=3 {
            run(
                &mut image,
                Command::RegisterBroker {
                    id,
                    host: "127.0.0.1".into(),
                    port: 9092,
                    controller_address: "127.0.0.1:9093".into(),
                    incarnation: 1,
                },
            );
            run(&mut image, Command::UnfenceBroker { id });
        }
        run(
            &mut image,
            Command::CreateTopic {
                name: "t".into(),
                id: 1,
                partitions: -1,
                replication_factor: -1,
                assignments: Some(assignments),
                configs: BTreeMap::new(),
            },
        );
        run(
            &mut image,
            Command::FenceBroker {
                id: 1,
                reason: "gone".into(),
            },
        );
        run(&mut image, Command::UnfenceBroker { id: 1 });
        for &index in rejoin {
            let state = image.partition("t", index).unwrap().clone();
            let mut isr = state.isr.clone();
            isr.push(1);
            run(
                &mut image,
                Command::AlterPartition {
                    topic: "t".into(),
                    partition: index,
                    leader: state.leader,
                    leader_epoch: state.leader_epoch,
                    partition_epoch: state.partition_epoch,
                    isr,
                },
            );
        }
        image
    }

    #[test]
    fn a_returned_preferred_replica_in_sync_is_elected_when_imbalance_is_over_the_percentage() {
        let assignments = vec![vec![1, 2], vec![1, 3], vec![2, 1], vec![3, 1]];
        let image = image_after_node_1_returns(assignments.clone(), &[0]);
        // Node 1 is preferred for 2 partitions and leads neither (100 %);
        // only t-0 has it back in the ISR.
        assert_eq!(
            imbalanced_partitions(&image, 10),
            vec![("t".to_string(), 0)]
        );
        assert!(imbalanced_partitions(&image, 100).is_empty());

        let image = image_after_node_1_returns(assignments, &[]);
        assert!(
            imbalanced_partitions(&image, 10).is_empty(),
            "not in sync yet"
        );
    }

    #[test]
    fn imbalance_at_or_below_the_percentage_is_left_alone() {
        let assignments = vec![vec![1, 2], vec![1, 3], vec![1, 2], vec![1, 3]];
        let mut image = image_after_node_1_returns(assignments, &[0, 1, 2, 3]);
        assert_eq!(imbalanced_partitions(&image, 50).len(), 4);
        // Node 1 leads two of its four again: 50 % led by others.
        run(
            &mut image,
            Command::ElectLeaders {
                partitions: Some(vec![("t".into(), 0), ("t".into(), 1)]),
                unclean: false,
                automatic: false,
            },
        );
        assert!(imbalanced_partitions(&image, 50).is_empty());
        assert_eq!(
            imbalanced_partitions(&image, 49),
            vec![("t".to_string(), 2), ("t".to_string(), 3)]
        );
    }
}
