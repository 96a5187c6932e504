//! The cluster metadata as every node sees it after applying the log: brokers,
//! topics, partitions and the recent events that explain how they got there.
//!
//! The image is plain data. It changes only through [`crate::apply`], so two
//! nodes that applied the same entries hold equal images.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// How many events the image keeps; older ones are dropped.
pub const MAX_EVENTS: usize = 256;

/// The topic config that allows electing an out-of-sync replica as leader.
pub const UNCLEAN_LEADER_ELECTION_CONFIG: &str = "unclean.leader.election.enable";

/// Everything the metadata log describes, as of `applied_index`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Empty until the first controller sets it with `InitCluster`.
    pub cluster_id: String,
    /// Raft log index of the last applied entry.
    pub applied_index: u64,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicImage>,
    pub next_producer_id: i64,
    /// Dynamic broker configs set through the Kafka API: the key is the
    /// resource name, "" for the cluster-wide default or a node id.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Nodes forgotten with `UnregisterBroker` and not registered since:
    /// the controller takes them out of the raft membership.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unregistered_brokers: BTreeSet<i32>,
    /// The last [`MAX_EVENTS`] events, newest last.
    pub events: VecDeque<ClusterEvent>,
}

/// A node known to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub controller_address: String,
    /// A fenced broker leads nothing and is not in any ISR with other members.
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    /// Random per process start, sent in heartbeats: a new value means the
    /// node restarted.
    pub incarnation: u64,
}

impl BrokerRegistration {
    /// Whether the broker may lead partitions and join ISRs.
    pub fn is_live(&self) -> bool {
        !self.fenced
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: u128,
    /// Per-topic overrides only; defaults live with the broker.
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when the partition is offline.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// While a reassignment is in flight: replicas being added (not yet in
    /// the ISR) and replicas to be removed once they are. `replicas` holds
    /// both the target and the replicas being removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionState {
    pub fn is_offline(&self) -> bool {
        self.leader == NO_LEADER
    }

    /// Whether a reassignment of this partition is in flight.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }
}

/// The leader id of an offline partition.
pub const NO_LEADER: i32 = -1;

/// One thing that happened, in a plain sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// The log index of the entry that caused it.
    pub index: u64,
    /// When the entry was proposed.
    pub time_ms: i64,
    /// `broker_fenced`, `leader_elected`, `isr_shrunk`, ...
    pub kind: String,
    /// E.g. "node 2 stopped heartbeating; fenced after 2000 ms".
    pub text: String,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub node: Option<i32>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: u128) -> Option<&TopicImage> {
        self.topics.values().find(|topic| topic.id == id)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Registered brokers that are not fenced, in id order.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|broker| broker.is_live())
    }

    pub(crate) fn is_live(&self, id: i32) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(BrokerRegistration::is_live)
    }

    /// Appends an event, dropping the oldest beyond [`MAX_EVENTS`].
    pub(crate) fn push_event(&mut self, event: ClusterEvent) {
        self.events.push_back(event);
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }
}
