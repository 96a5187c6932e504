//! A [`ClusterSnapshot`] from what one poll gathered: the cluster's
//! Metadata (nodes, leaders, replicas, ISRs), its metadata quorum, what the
//! supervisor knows of local node processes, partition offsets, replica
//! sizes and consumer groups. Building is pure, so it is tested and
//! measured without a cluster.

use std::collections::{BTreeMap, HashMap};

use eddy_client::{ClusterMetadata, QuorumInfo};

use crate::model::{
    ClusterSnapshot, GroupSummary, NodeStatus, NodeView, PartitionView, QuorumView, ReplicaRole,
    ReplicaView, TopicView, VoterView,
};

/// What one poll gathered.
#[derive(Debug, Default)]
pub struct Gathered {
    pub taken_at_ms: i64,
    pub metadata: Option<ClusterMetadata>,
    pub quorum: Option<QuorumInfo>,
    /// Local clusters: each node's process state, with its pid and port.
    pub processes: Vec<Process>,
    /// (log start, high watermark) by topic and partition.
    pub offsets: HashMap<(String, i32), (i64, i64)>,
    /// Bytes on disk by topic, over all replicas.
    pub sizes: HashMap<String, u64>,
    pub groups: Vec<GroupSummary>,
    pub problems: Vec<String>,
}

/// A local node process, as the supervisor sees it.
#[derive(Debug, Clone)]
pub struct Process {
    pub id: i32,
    pub port: u16,
    pub pid: Option<u32>,
    pub running: bool,
    pub paused: bool,
}

/// Builds the snapshot; `previous` gives throughput (high-watermark moves).
pub fn build(
    gathered: Gathered,
    previous: Option<&ClusterSnapshot>,
    sequence: u64,
) -> ClusterSnapshot {
    let Gathered {
        taken_at_ms,
        metadata,
        quorum,
        processes,
        offsets,
        sizes,
        groups,
        problems,
    } = gathered;
    let metadata = metadata.unwrap_or_else(|| ClusterMetadata {
        answered_by: String::new(),
        cluster_id: None,
        controller_id: None,
        brokers: Vec::new(),
        topics: Vec::new(),
    });
    let controller_id = quorum
        .as_ref()
        .and_then(|quorum| quorum.leader_id)
        .or(metadata.controller_id);
    let nodes = node_views(&metadata, &processes, controller_id);
    let down: Vec<i32> = nodes
        .iter()
        .filter(|node| node.status != NodeStatus::Up)
        .map(|node| node.id)
        .collect();
    let elapsed_sec = previous
        .map(|previous| (taken_at_ms - previous.taken_at_ms) as f64 / 1000.0)
        .filter(|seconds| *seconds > 0.0);
    let previous_watermarks: HashMap<(&str, i32), i64> = previous
        .map(|previous| {
            previous
                .topics
                .iter()
                .flat_map(|topic| {
                    topic.partitions.iter().filter_map(move |partition| {
                        Some((
                            (topic.name.as_str(), partition.partition),
                            partition.high_watermark?,
                        ))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut topics: Vec<TopicView> = metadata
        .topics
        .iter()
        .map(|topic| {
            let partitions: Vec<PartitionView> = topic
                .partitions
                .iter()
                .map(|partition| {
                    let leader = partition.leader.unwrap_or(-1);
                    let (log_start_offset, high_watermark) = offsets
                        .get(&(topic.name.clone(), partition.partition))
                        .map_or((None, None), |(start, end)| (Some(*start), Some(*end)));
                    PartitionView {
                        partition: partition.partition,
                        leader,
                        leader_epoch: partition.leader_epoch,
                        replicas: partition
                            .replicas
                            .iter()
                            .map(|&node_id| ReplicaView {
                                node_id,
                                role: role(
                                    node_id,
                                    leader,
                                    &partition.isr,
                                    &partition.offline_replicas,
                                    &down,
                                ),
                            })
                            .collect(),
                        isr: partition.isr.clone(),
                        log_start_offset,
                        high_watermark,
                    }
                })
                .collect();
            let appended: i64 = elapsed_sec
                .map(|_| {
                    partitions
                        .iter()
                        .filter_map(|partition| {
                            let now = partition.high_watermark?;
                            let then = previous_watermarks
                                .get(&(topic.name.as_str(), partition.partition))?;
                            Some((now - then).max(0))
                        })
                        .sum()
                })
                .unwrap_or(0);
            TopicView {
                name: topic.name.clone(),
                internal: topic.internal || topic.name.starts_with("__"),
                replication_factor: partitions
                    .first()
                    .map_or(0, |partition| partition.replicas.len()),
                under_replicated: partitions
                    .iter()
                    .filter(|partition| partition.isr.len() < partition.replicas.len())
                    .count(),
                offline: partitions
                    .iter()
                    .filter(|partition| partition.leader < 0)
                    .count(),
                size_bytes: sizes.get(&topic.name).copied(),
                messages_per_sec: elapsed_sec.map_or(0.0, |seconds| appended as f64 / seconds),
                partitions,
            }
        })
        .collect();
    topics.sort_by(|left, right| left.name.cmp(&right.name));
    let nodes = count_roles(nodes, &topics);
    ClusterSnapshot {
        taken_at_ms,
        sequence,
        cluster_id: metadata.cluster_id.clone().unwrap_or_default(),
        controller_id,
        quorum: quorum.as_ref().map(|quorum| quorum_view(quorum, &nodes)),
        nodes,
        topics,
        groups,
        problems,
    }
}

fn role(node: i32, leader: i32, isr: &[i32], offline: &[i32], down: &[i32]) -> ReplicaRole {
    if leader < 0 || offline.contains(&node) || down.contains(&node) {
        ReplicaRole::Offline
    } else if node == leader {
        ReplicaRole::Leader
    } else if isr.contains(&node) {
        ReplicaRole::Follower
    } else {
        ReplicaRole::OutOfSync
    }
}

/// Nodes: those Metadata lists are up; a local cluster's other processes
/// are paused, down, or (running but unlisted) fenced.
fn node_views(
    metadata: &ClusterMetadata,
    processes: &[Process],
    controller: Option<i32>,
) -> Vec<NodeView> {
    let mut nodes: BTreeMap<i32, NodeView> = BTreeMap::new();
    for broker in &metadata.brokers {
        nodes.insert(
            broker.id,
            NodeView {
                id: broker.id,
                host: broker.host.clone(),
                port: u16::try_from(broker.port).unwrap_or(0),
                status: NodeStatus::Up,
                pid: None,
                is_controller: controller == Some(broker.id),
                leader_count: 0,
                replica_count: 0,
            },
        );
    }
    for process in processes {
        let node = nodes.entry(process.id).or_insert_with(|| NodeView {
            id: process.id,
            host: "127.0.0.1".into(),
            port: process.port,
            status: NodeStatus::Down,
            pid: None,
            is_controller: false,
            leader_count: 0,
            replica_count: 0,
        });
        node.pid = process.pid.filter(|_| process.running);
        node.status = if process.paused {
            NodeStatus::Paused
        } else if !process.running {
            NodeStatus::Down
        } else if node.status == NodeStatus::Up {
            NodeStatus::Up
        } else {
            NodeStatus::Fenced
        };
        node.is_controller = controller == Some(process.id) && process.running && !process.paused;
    }
    nodes.into_values().collect()
}

fn count_roles(mut nodes: Vec<NodeView>, topics: &[TopicView]) -> Vec<NodeView> {
    let mut leaders: HashMap<i32, usize> = HashMap::new();
    let mut replicas: HashMap<i32, usize> = HashMap::new();
    for partition in topics.iter().flat_map(|topic| &topic.partitions) {
        if partition.leader >= 0 {
            *leaders.entry(partition.leader).or_default() += 1;
        }
        for replica in &partition.replicas {
            *replicas.entry(replica.node_id).or_default() += 1;
        }
    }
    for node in &mut nodes {
        node.leader_count = leaders.get(&node.id).copied().unwrap_or(0);
        node.replica_count = replicas.get(&node.id).copied().unwrap_or(0);
    }
    nodes
}

/// The quorum is healthy when its leader runs and a majority of voters are
/// up and keeping up.
fn quorum_view(quorum: &QuorumInfo, nodes: &[NodeView]) -> QuorumView {
    let up = |id: i32| {
        nodes
            .iter()
            .any(|node| node.id == id && node.status == NodeStatus::Up)
    };
    let voters: Vec<VoterView> = quorum
        .voters
        .iter()
        .map(|voter| VoterView {
            id: voter.id,
            lag: voter.lag,
        })
        .collect();
    let working = quorum.voters.iter().filter(|voter| up(voter.id)).count();
    QuorumView {
        leader_id: quorum.leader_id,
        epoch: quorum.leader_epoch,
        healthy: quorum.leader_id.is_some_and(up) && working > quorum.voters.len() / 2,
        voters,
    }
}
