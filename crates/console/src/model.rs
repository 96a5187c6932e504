//! Every type that crosses to the UI. Each derives `ts_rs::TS`; the
//! TypeScript bindings are generated into `ui/src/lib/bindings/` and a test
//! fails when they are stale. Field names are camelCase on the wire;
//! 64-bit integers travel as JSON numbers (exact up to 2^53, far above any
//! offset or timestamp a laptop sees).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a session is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub name: String,
    /// "local": the embedded cluster, with process control; "remote": any
    /// Kafka cluster, read-only unless allowed.
    pub kind: SessionKind,
    pub bootstrap_servers: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum SessionKind {
    Local,
    Remote,
}

/// The cluster at one moment, as polled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSnapshot {
    /// When the poll that produced it finished (ms since the epoch).
    #[ts(type = "number")]
    pub taken_at_ms: i64,
    /// Bumped for every snapshot of a session.
    #[ts(type = "number")]
    pub sequence: u64,
    pub cluster_id: String,
    /// The active controller, when known.
    pub controller_id: Option<i32>,
    pub quorum: Option<QuorumView>,
    pub nodes: Vec<NodeView>,
    pub topics: Vec<TopicView>,
    pub groups: Vec<GroupSummary>,
    /// Why parts of the snapshot are missing (a node that did not answer).
    pub problems: Vec<String>,
    /// Partition reassignments in flight (ListPartitionReassignments).
    pub reassignments: Vec<ReassignmentView>,
    /// Why the last edit of the local cluster's file was not applied, until
    /// a good edit replaces it.
    pub config_error: Option<String>,
}

/// A partition moving to another replica set: new replicas catch up
/// before the old ones leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReassignmentView {
    pub topic: String,
    pub partition: i32,
    /// Every replica while it moves: the target, then those leaving.
    pub replicas: Vec<i32>,
    /// Replicas being added (still catching up).
    pub adding: Vec<i32>,
    /// Replicas that leave once the new ones are in sync.
    pub removing: Vec<i32>,
}

/// One node (broker) of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub status: NodeStatus,
    /// The process id, for a local cluster's running nodes.
    pub pid: Option<u32>,
    pub is_controller: bool,
    /// Partitions this node leads.
    pub leader_count: usize,
    /// Partition replicas this node hosts.
    pub replica_count: usize,
    /// Cut off from the other nodes and the controller (local clusters);
    /// clients still reach it.
    pub isolated: bool,
    /// Its replication throttle in bytes per second, when it is slowed.
    #[ts(type = "number | null")]
    pub throttle_rate: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum NodeStatus {
    /// Registered and answering.
    Up,
    /// Its process is stopped with SIGSTOP (local clusters).
    Paused,
    /// Not running, or not answering.
    Down,
    /// Registered but fenced by the controller.
    Fenced,
}

/// The metadata quorum (KRaft's, or Eddy's): who leads and who keeps up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QuorumView {
    pub leader_id: Option<i32>,
    pub epoch: i32,
    pub healthy: bool,
    pub voters: Vec<VoterView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VoterView {
    pub id: i32,
    /// Metadata records behind the leader, when known.
    #[ts(type = "number | null")]
    pub lag: Option<i64>,
}

/// A topic with its partitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TopicView {
    pub name: String,
    pub internal: bool,
    pub replication_factor: usize,
    pub partitions: Vec<PartitionView>,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
    /// Bytes on disk over all replicas, when the nodes say.
    #[ts(type = "number | null")]
    pub size_bytes: Option<u64>,
    /// Records per second appended lately (from high-watermark moves).
    pub messages_per_sec: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PartitionView {
    pub partition: i32,
    /// -1 when the partition is offline.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<ReplicaView>,
    pub isr: Vec<i32>,
    #[ts(type = "number | null")]
    pub log_start_offset: Option<i64>,
    #[ts(type = "number | null")]
    pub high_watermark: Option<i64>,
}

/// One replica of a partition, on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaView {
    pub node_id: i32,
    pub role: ReplicaRole,
    /// Whether a reassignment in flight adds or removes this replica.
    pub reassigning: Option<Reassigning>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Reassigning {
    /// A new replica, catching up before it joins the ISR.
    Adding,
    /// An old replica, leaving once the new ones are in sync.
    Removing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaRole {
    Leader,
    Follower,
    OutOfSync,
    Offline,
}

/// A consumer group as the overview lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub members: usize,
    /// Lag summed over the partitions it has committed offsets for.
    #[ts(type = "number | null")]
    pub total_lag: Option<i64>,
}

/// A consumer group in full: members, assignments, offsets and lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GroupDetail {
    pub group_id: String,
    pub state: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
    pub partitions: Vec<PartitionLag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    #[ts(type = "number | null")]
    pub committed: Option<i64>,
    #[ts(type = "number | null")]
    pub end_offset: Option<i64>,
    #[ts(type = "number | null")]
    pub lag: Option<i64>,
    /// The member it is assigned to, if any.
    pub member_id: Option<String>,
}

/// Something that happened, with a plain explanation for learners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    /// Increasing within a session.
    #[ts(type = "number")]
    pub sequence: u64,
    #[ts(type = "number")]
    pub time_ms: i64,
    /// e.g. "broker_fenced", "leader_elected", "isr_shrunk", "node_down".
    pub kind: String,
    /// One line: "Node 2 stopped heartbeating; the controller fenced it
    /// after 2000 ms".
    pub text: String,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub node: Option<i32>,
    /// "controller" when Eddy's controller said why, "observed" when the
    /// console saw it in two snapshots.
    pub source: String,
}

/// What a topic's config looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntryView {
    pub name: String,
    pub value: Option<String>,
    /// "topic" (set on the topic), "default", "broker", ...
    pub source: String,
    pub read_only: bool,
}

/// Offsets of one partition: log start, high watermark, and every
/// replica's end offset and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PartitionOffsets {
    pub partition: i32,
    #[ts(type = "number | null")]
    pub log_start_offset: Option<i64>,
    #[ts(type = "number | null")]
    pub high_watermark: Option<i64>,
    pub replicas: Vec<ReplicaSize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSize {
    pub node_id: i32,
    #[ts(type = "number | null")]
    pub size_bytes: Option<u64>,
    /// How far this replica has copied (its log end offset).
    #[ts(type = "number | null")]
    pub end_offset: Option<i64>,
}

/// A record as the message browser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub partition: i32,
    #[ts(type = "number")]
    pub offset: i64,
    #[ts(type = "number")]
    pub timestamp_ms: i64,
    pub key: Option<Payload>,
    pub value: Option<Payload>,
    pub headers: Vec<HeaderView>,
}

/// Bytes shown three ways: as text when they are UTF-8, pretty JSON when
/// they parse, and always as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub text: Option<String>,
    pub json: Option<String>,
    pub hex: String,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HeaderView {
    pub key: String,
    pub value: Option<Payload>,
}

/// Where browsing starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum StartAt {
    Beginning,
    /// The last `count` records of each partition.
    End {
        count: u32,
    },
    Offset {
        #[ts(type = "number")]
        offset: i64,
    },
    Timestamp {
        #[ts(type = "number")]
        timestamp_ms: i64,
    },
}

/// Where a group's offsets are reset to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset {
        #[ts(type = "number")]
        offset: i64,
    },
    Timestamp {
        #[ts(type = "number")]
        timestamp_ms: i64,
    },
}

/// A node operation (local clusters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum NodeAction {
    /// SIGKILL: a crash.
    Kill,
    /// SIGTERM: a controlled shutdown that hands leadership over first.
    Stop,
    /// SIGSTOP: a hung process.
    Pause,
    /// SIGCONT after a pause.
    Resume,
    /// Stop (if running) and start again on the same data.
    Restart,
}

/// The demo workload's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DemoSettings {
    pub topic: String,
    pub partitions: i32,
    pub records_per_sec: u32,
    pub consumers: u32,
    /// How long each consumer spends on one record.
    pub processing_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DemoStatus {
    pub running: bool,
    pub settings: Option<DemoSettings>,
    pub group_id: String,
    #[ts(type = "number")]
    pub produced: u64,
    #[ts(type = "number")]
    pub consumed: u64,
    pub errors: Vec<String>,
}

/// A request from the UI. One type serves both shells: the desktop app's
/// `call` command and `eddy serve`'s `POST /api/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "op")]
pub enum Request {
    Session,
    Snapshot,
    /// Events with a sequence above `after`.
    Events {
        #[ts(type = "number")]
        after: u64,
    },
    NodeAction {
        node_id: i32,
        action: NodeAction,
    },
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    TopicConfigs {
        name: String,
    },
    AlterTopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    PartitionOffsets {
        topic: String,
    },
    Browse {
        topic: String,
        /// All partitions when `None`.
        partition: Option<i32>,
        start: StartAt,
        limit: u32,
        /// Case-insensitive text that key, value or a header must contain.
        filter: Option<String>,
    },
    Produce {
        topic: String,
        partition: Option<i32>,
        key: Option<String>,
        value: Option<String>,
        headers: Vec<(String, String)>,
    },
    /// Copies offsets `from..to` of one partition to another topic.
    Replay {
        topic: String,
        partition: i32,
        #[ts(type = "number")]
        from_offset: i64,
        #[ts(type = "number")]
        to_offset: i64,
        target_topic: String,
    },
    Group {
        group_id: String,
    },
    ResetOffsets {
        group_id: String,
        topic: String,
        to: ResetTo,
    },
    LagHistory {
        group_id: String,
        #[ts(type = "number")]
        since_ms: i64,
    },
    /// The lag chart as SVG (plotters).
    LagChart {
        group_id: String,
        #[ts(type = "number")]
        since_ms: i64,
    },
    DemoStart {
        settings: DemoSettings,
    },
    DemoUpdate {
        settings: DemoSettings,
    },
    DemoStop,
    DemoStatus,
    /// Moves leadership back to each partition's preferred (first) replica:
    /// every partition, a topic's, or one partition.
    ElectPreferredLeaders {
        topic: Option<String>,
        partition: Option<i32>,
    },
    /// Moves a partition to `replicas` (the first is the preferred leader);
    /// a different length changes its replication factor.
    Reassign {
        topic: String,
        partition: i32,
        replicas: Vec<i32>,
    },
    CancelReassignment {
        topic: String,
        partition: i32,
    },
    /// Starts one more node (local clusters).
    AddNode,
    /// Moves every replica off a node, then stops it and removes it from
    /// the cluster (local clusters).
    RemoveNode {
        node_id: i32,
    },
    /// Throttles a node's replication to `bytes_per_second`.
    SlowNode {
        node_id: i32,
        #[ts(type = "number")]
        bytes_per_second: u64,
    },
    /// Cuts a node off from the other nodes and the controller; clients
    /// still reach it (local clusters).
    IsolateNode {
        node_id: i32,
    },
    /// Lifts a node's isolation and replication throttle.
    HealNode {
        node_id: i32,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind",
    content = "data"
)]
pub enum Response {
    Session(SessionInfo),
    Snapshot(ClusterSnapshot),
    Events(Vec<ClusterEvent>),
    Done {
        message: String,
    },
    TopicConfigs(Vec<ConfigEntryView>),
    PartitionOffsets(Vec<PartitionOffsets>),
    Messages(Vec<MessageView>),
    Produced {
        partition: i32,
        #[ts(type = "number")]
        offset: i64,
    },
    Replayed {
        #[ts(type = "number")]
        copied: u64,
    },
    Group(GroupDetail),
    LagHistory(Vec<LagPoint>),
    Chart {
        svg: String,
    },
    Demo(DemoStatus),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LagPoint {
    #[ts(type = "number")]
    pub time_ms: i64,
    #[ts(type = "number")]
    pub lag: i64,
}

/// A failure shown to the user: what went wrong (with Kafka's error name
/// when Kafka said it) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// Kafka's error name (e.g. "TOPIC_ALREADY_EXISTS"), when Kafka said it.
    pub kafka_error: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// Pushed to the UI as things change (a Tauri channel, or the WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind",
    content = "data"
)]
pub enum Update {
    Snapshot(ClusterSnapshot),
    Events(Vec<ClusterEvent>),
    Progress(Progress),
}

/// Progress of a long operation (replay, offset reset, node restart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub operation: String,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number | null")]
    pub total: Option<u64>,
    pub finished: bool,
    pub message: String,
}
