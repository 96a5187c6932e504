//! A [`ClusterSnapshot`] from what one poll gathered: the cluster's
//! Metadata (nodes, leaders, replicas, ISRs), its metadata quorum, what the
//! supervisor knows of local node processes, partition offsets, replica
//! sizes and consumer groups. Building is pure, so it is tested and
//! measured without a cluster.

use std::collections::{BTreeMap, HashMap};

use eddy_client::{ClusterMetadata, QuorumInfo};

use crate::model::{
    ClusterSnapshot, GroupSummary, NodeStatus, NodeView, PartitionView, QuorumView, Reassigning,
    ReassignmentView, ReplicaRole, ReplicaView, TopicView, VoterView,
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
    /// Partition reassignments in flight.
    pub reassignments: Vec<ReassignmentView>,
    /// The local cluster file's last rejected edit.
    pub config_error: Option<String>,
}

/// A local node process, as the supervisor sees it.
#[derive(Debug, Clone)]
pub struct Process {
    pub id: i32,
    pub port: u16,
    pub pid: Option<u32>,
    pub running: bool,
    pub paused: bool,
    /// Cut off from the other nodes by the supervisor.
    pub isolated: bool,
    /// Its replication throttle (bytes per second), when slowed.
    pub throttle_rate: Option<u64>,
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
        reassignments,
        config_error,
    } = gathered;
    let moving: HashMap<(&str, i32), &ReassignmentView> = reassignments
        .iter()
        .map(|moving| ((moving.topic.as_str(), moving.partition), moving))
        .collect();
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
                    let moving = moving.get(&(topic.name.as_str(), partition.partition));
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
                                reassigning: moving.and_then(|moving| {
                                    if moving.adding.contains(&node_id) {
                                        Some(Reassigning::Adding)
                                    } else if moving.removing.contains(&node_id) {
                                        Some(Reassigning::Removing)
                                    } else {
                                        None
                                    }
                                }),
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
        reassignments,
        config_error,
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
                isolated: false,
                throttle_rate: None,
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
            isolated: false,
            throttle_rate: None,
        });
        node.isolated = process.isolated;
        node.throttle_rate = process.throttle_rate;
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

#[cfg(test)]
mod tests {
    use eddy_client::{BrokerInfo, PartitionInfo, TopicInfo};

    use super::*;

    fn broker(id: i32) -> BrokerInfo {
        BrokerInfo {
            id,
            host: "127.0.0.1".into(),
            port: 19091 + id,
            rack: None,
        }
    }

    fn process(id: i32, isolated: bool, throttle_rate: Option<u64>) -> Process {
        Process {
            id,
            port: 19091 + id as u16,
            pid: Some(100 + id as u32),
            running: true,
            paused: false,
            isolated,
            throttle_rate,
        }
    }

    #[test]
    fn moving_replicas_and_node_faults_show_in_the_snapshot() {
        // orders-0 moves from nodes 1, 2 to nodes 1, 3: 3 catches up, 2 leaves.
        let gathered = Gathered {
            metadata: Some(ClusterMetadata {
                answered_by: "127.0.0.1:19092".into(),
                cluster_id: Some("c".into()),
                controller_id: Some(1),
                brokers: vec![broker(1), broker(2), broker(3)],
                topics: vec![TopicInfo {
                    name: "orders".into(),
                    topic_id: String::new(),
                    internal: false,
                    error: None,
                    partitions: vec![PartitionInfo {
                        partition: 0,
                        leader: Some(1),
                        leader_epoch: 0,
                        replicas: vec![1, 3, 2],
                        isr: vec![1, 2],
                        offline_replicas: Vec::new(),
                        error: None,
                    }],
                }],
            }),
            processes: vec![
                process(1, false, None),
                process(2, true, None),
                process(3, false, Some(10_000)),
            ],
            reassignments: vec![ReassignmentView {
                topic: "orders".into(),
                partition: 0,
                replicas: vec![1, 3, 2],
                adding: vec![3],
                removing: vec![2],
            }],
            config_error: Some("nodes: cannot lower".into()),
            ..Gathered::default()
        };
        let snapshot = build(gathered, None, 1);
        let moving: Vec<(i32, ReplicaRole, Option<Reassigning>)> = snapshot.topics[0].partitions[0]
            .replicas
            .iter()
            .map(|replica| (replica.node_id, replica.role, replica.reassigning))
            .collect();
        assert_eq!(
            moving,
            vec![
                (1, ReplicaRole::Leader, None),
                (3, ReplicaRole::OutOfSync, Some(Reassigning::Adding)),
                (2, ReplicaRole::Follower, Some(Reassigning::Removing)),
            ]
        );
        let faults: Vec<(i32, bool, Option<u64>)> = snapshot
            .nodes
            .iter()
            .map(|node| (node.id, node.isolated, node.throttle_rate))
            .collect();
        assert_eq!(
            faults,
            vec![(1, false, None), (2, true, None), (3, false, Some(10_000))]
        );
        assert_eq!(snapshot.reassignments.len(), 1);
        assert_eq!(
            snapshot.config_error.as_deref(),
            Some("nodes: cannot lower")
        );
    }
}
