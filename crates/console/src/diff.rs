//! What changed between two snapshots, as events with plain explanations:
//! nodes going down and coming back, the controller moving, leaders moving,
//! ISRs shrinking and growing, partitions going offline, topics and groups
//! coming and going, groups rebalancing.
//!
//! For a cluster whose controller explains itself (Eddy's `__eddy_events`),
//! the partition-level changes are left to the controller, which knows why;
//! the rest is still observed here.

use std::collections::HashMap;

use crate::model::{ClusterSnapshot, GroupSummary, NodeStatus, PartitionView};

/// An event before it gets a sequence number and a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub kind: &'static str,
    pub text: String,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub node: Option<i32>,
}

impl Observed {
    fn node(kind: &'static str, node: i32, text: String) -> Self {
        Self {
            kind,
            text,
            topic: None,
            partition: None,
            node: Some(node),
        }
    }

    fn partition(
        kind: &'static str,
        topic: &str,
        partition: i32,
        node: Option<i32>,
        text: String,
    ) -> Self {
        Self {
            kind,
            text,
            topic: Some(topic.to_string()),
            partition: Some(partition),
            node,
        }
    }
}

/// Events for what changed from `before` to `after`. With
/// `controller_explains`, leader, ISR and offline changes are left out.
pub fn diff(
    before: &ClusterSnapshot,
    after: &ClusterSnapshot,
    controller_explains: bool,
) -> Vec<Observed> {
    let mut events = Vec::new();
    nodes(before, after, &mut events);
    if before.controller_id != after.controller_id
        && let Some(controller) = after.controller_id
    {
        let text = match before.controller_id {
            Some(previous) => {
                format!("Node {controller} is now the active controller (node {previous} was)")
            }
            None => format!("Node {controller} is the active controller"),
        };
        events.push(Observed::node("controller_changed", controller, text));
    }
    topics(before, after, controller_explains, &mut events);
    if !controller_explains {
        reassignments(before, after, &mut events);
    }
    groups(&before.groups, &after.groups, &mut events);
    events
}

/// Reassignments that appeared or ended between two snapshots (for
/// clusters whose controller does not say so itself).
fn reassignments(before: &ClusterSnapshot, after: &ClusterSnapshot, events: &mut Vec<Observed>) {
    let key = |moving: &crate::model::ReassignmentView| (moving.topic.clone(), moving.partition);
    let was: HashMap<(String, i32), &crate::model::ReassignmentView> = before
        .reassignments
        .iter()
        .map(|moving| (key(moving), moving))
        .collect();
    let is: HashMap<(String, i32), &crate::model::ReassignmentView> = after
        .reassignments
        .iter()
        .map(|moving| (key(moving), moving))
        .collect();
    for moving in &after.reassignments {
        if !was.contains_key(&key(moving)) {
            events.push(Observed::partition(
                "reassignment_started",
                &moving.topic,
                moving.partition,
                None,
                format!(
                    "{}-{} is moving: adding {:?}, removing {:?}; new replicas catch up before old ones leave",
                    moving.topic, moving.partition, moving.adding, moving.removing
                ),
            ));
        }
    }
    for moving in &before.reassignments {
        if !is.contains_key(&key(moving)) {
            let replicas = after
                .topics
                .iter()
                .find(|topic| topic.name == moving.topic)
                .and_then(|topic| {
                    topic
                        .partitions
                        .iter()
                        .find(|partition| partition.partition == moving.partition)
                })
                .map(|partition| {
                    partition
                        .replicas
                        .iter()
                        .map(|replica| replica.node_id)
                        .collect::<Vec<_>>()
                });
            let text = match replicas {
                Some(replicas) => format!(
                    "{}-{} finished moving: its replicas are now {replicas:?}",
                    moving.topic, moving.partition
                ),
                None => format!("{}-{} is no longer moving", moving.topic, moving.partition),
            };
            events.push(Observed::partition(
                "reassignment_completed",
                &moving.topic,
                moving.partition,
                None,
                text,
            ));
        }
    }
}

fn nodes(before: &ClusterSnapshot, after: &ClusterSnapshot, events: &mut Vec<Observed>) {
    let previous: HashMap<i32, NodeStatus> = before
        .nodes
        .iter()
        .map(|node| (node.id, node.status))
        .collect();
    for node in &after.nodes {
        let Some(&was) = previous.get(&node.id) else {
            if !before.nodes.is_empty() {
                events.push(Observed::node(
                    "node_added",
                    node.id,
                    format!("Node {} joined the cluster", node.id),
                ));
            }
            continue;
        };
        if was == node.status {
            continue;
        }
        let id = node.id;
        let (kind, text) = match node.status {
            NodeStatus::Down => ("node_down", format!("Node {id} stopped answering")),
            NodeStatus::Paused => (
                "node_paused",
                format!("Node {id} is paused: its process is stopped and answers nothing"),
            ),
            NodeStatus::Fenced => (
                "node_fenced",
                format!("Node {id} is fenced: the controller no longer lets it lead"),
            ),
            NodeStatus::Up => match was {
                NodeStatus::Paused => (
                    "node_resumed",
                    format!("Node {id} runs again after a pause"),
                ),
                _ => ("node_up", format!("Node {id} is up and registered")),
            },
        };
        events.push(Observed::node(kind, id, text));
    }
}

fn topics(
    before: &ClusterSnapshot,
    after: &ClusterSnapshot,
    controller_explains: bool,
    events: &mut Vec<Observed>,
) {
    if controller_explains {
        // Topics created and deleted, leaders and ISRs: the controller says.
        return;
    }
    let previous: HashMap<&str, &crate::model::TopicView> = before
        .topics
        .iter()
        .map(|topic| (topic.name.as_str(), topic))
        .collect();
    let mut seen = std::collections::HashSet::with_capacity(after.topics.len());
    for topic in &after.topics {
        seen.insert(topic.name.as_str());
        let Some(old) = previous.get(topic.name.as_str()) else {
            if !before.topics.is_empty() || before.sequence > 0 {
                events.push(Observed {
                    kind: "topic_created",
                    text: format!(
                        "Topic {} was created with {} partitions and {} replicas each",
                        topic.name,
                        topic.partitions.len(),
                        topic.replication_factor
                    ),
                    topic: Some(topic.name.clone()),
                    partition: None,
                    node: None,
                });
            }
            continue;
        };
        for (partition, old_partition) in topic.partitions.iter().zip(old.partitions.iter()) {
            partition_changes(&topic.name, old_partition, partition, events);
        }
    }
    for topic in &before.topics {
        if !seen.contains(topic.name.as_str()) {
            events.push(Observed {
                kind: "topic_deleted",
                text: format!("Topic {} was deleted", topic.name),
                topic: Some(topic.name.clone()),
                partition: None,
                node: None,
            });
        }
    }
}

fn partition_changes(
    topic: &str,
    before: &PartitionView,
    after: &PartitionView,
    events: &mut Vec<Observed>,
) {
    let name = format!("{topic}-{}", after.partition);
    if before.leader != after.leader {
        if after.leader < 0 {
            events.push(Observed::partition(
                "partition_offline",
                topic,
                after.partition,
                None,
                format!("{name} has no leader: no in-sync replica is alive"),
            ));
        } else {
            let in_sync = if before.isr.contains(&after.leader) {
                ", which was in sync"
            } else {
                ""
            };
            let text = if before.leader < 0 {
                format!(
                    "{name} is back online: node {} leads it (epoch {})",
                    after.leader, after.leader_epoch
                )
            } else {
                format!(
                    "{name}: leadership moved from node {} to node {}{in_sync} (epoch {})",
                    before.leader, after.leader, after.leader_epoch
                )
            };
            events.push(Observed::partition(
                "leader_moved",
                topic,
                after.partition,
                Some(after.leader),
                text,
            ));
        }
    }
    for node in before.isr.iter().filter(|node| !after.isr.contains(node)) {
        events.push(Observed::partition(
            "isr_shrunk",
            topic,
            after.partition,
            Some(*node),
            format!("{name}: node {node} left the in-sync replicas"),
        ));
    }
    for node in after.isr.iter().filter(|node| !before.isr.contains(node)) {
        events.push(Observed::partition(
            "isr_expanded",
            topic,
            after.partition,
            Some(*node),
            format!("{name}: node {node} caught up and rejoined the in-sync replicas"),
        ));
    }
}

fn groups(before: &[GroupSummary], after: &[GroupSummary], events: &mut Vec<Observed>) {
    let previous: HashMap<&str, &GroupSummary> = before
        .iter()
        .map(|group| (group.group_id.as_str(), group))
        .collect();
    for group in after {
        let Some(old) = previous.get(group.group_id.as_str()) else {
            continue;
        };
        if old.state != group.state || old.members != group.members {
            let text = match group.state.as_str() {
                "PreparingRebalance" | "CompletingRebalance" => format!(
                    "Group {} is rebalancing ({} → {} members)",
                    group.group_id, old.members, group.members
                ),
                "Stable" => format!(
                    "Group {} is stable with {} members; partitions are assigned",
                    group.group_id, group.members
                ),
                "Empty" => format!("Group {} has no members", group.group_id),
                other => format!("Group {} is {other}", group.group_id),
            };
            events.push(Observed {
                kind: "group_rebalanced",
                text,
                topic: None,
                partition: None,
                node: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeView, ReplicaRole, ReplicaView, TopicView};

    fn node(id: i32, status: NodeStatus) -> NodeView {
        NodeView {
            id,
            host: "127.0.0.1".into(),
            port: 19091 + id as u16,
            status,
            pid: None,
            is_controller: false,
            leader_count: 0,
            replica_count: 0,
            isolated: false,
            throttle_rate: None,
        }
    }

    fn partition(leader: i32, epoch: i32, isr: &[i32]) -> PartitionView {
        PartitionView {
            partition: 0,
            leader,
            leader_epoch: epoch,
            replicas: [1, 2, 3]
                .iter()
                .map(|id| ReplicaView {
                    node_id: *id,
                    role: if *id == leader {
                        ReplicaRole::Leader
                    } else {
                        ReplicaRole::Follower
                    },
                    reassigning: None,
                })
                .collect(),
            isr: isr.to_vec(),
            log_start_offset: None,
            high_watermark: None,
        }
    }

    fn snapshot(sequence: u64, nodes: Vec<NodeView>, orders: PartitionView) -> ClusterSnapshot {
        ClusterSnapshot {
            sequence,
            nodes,
            topics: vec![TopicView {
                name: "orders".into(),
                internal: false,
                replication_factor: 3,
                partitions: vec![orders],
                under_replicated: 0,
                offline: 0,
                size_bytes: None,
                messages_per_sec: 0.0,
            }],
            ..ClusterSnapshot::default()
        }
    }

    #[test]
    fn a_dead_leader_shows_as_node_down_leader_moved_and_isr_shrunk() {
        let up = |id| node(id, NodeStatus::Up);
        let before = snapshot(1, vec![up(1), up(2), up(3)], partition(1, 3, &[1, 2, 3]));
        let after = snapshot(
            2,
            vec![node(1, NodeStatus::Down), up(2), up(3)],
            partition(2, 4, &[2, 3]),
        );
        let events = diff(&before, &after, false);
        let kinds: Vec<&str> = events.iter().map(|event| event.kind).collect();
        assert_eq!(kinds, ["node_down", "leader_moved", "isr_shrunk"]);
        assert_eq!(
            events[1].text,
            "orders-0: leadership moved from node 1 to node 2, which was in sync (epoch 4)"
        );
        // Eddy's controller explains the partition changes itself.
        let kinds: Vec<&str> = diff(&before, &after, true)
            .iter()
            .map(|event| event.kind)
            .collect();
        assert_eq!(kinds, ["node_down"]);
    }

    #[test]
    fn no_change_is_no_event() {
        let before = snapshot(1, vec![node(1, NodeStatus::Up)], partition(1, 0, &[1]));
        assert!(diff(&before, &before.clone(), false).is_empty());
    }

    #[test]
    fn a_reassignment_seen_to_start_and_end_is_explained_when_the_controller_is_silent() {
        let up = |id| node(id, NodeStatus::Up);
        let idle = snapshot(1, vec![up(1), up(2), up(3)], partition(1, 3, &[1, 2, 3]));
        let mut moving = snapshot(2, vec![up(1), up(2), up(3)], partition(1, 3, &[1, 2, 3]));
        moving.reassignments = vec![crate::model::ReassignmentView {
            topic: "orders".into(),
            partition: 0,
            replicas: vec![1, 2, 3],
            adding: vec![3],
            removing: vec![],
        }];
        let started: Vec<&str> = diff(&idle, &moving, false)
            .iter()
            .map(|event| event.kind)
            .collect();
        assert_eq!(started, ["reassignment_started"]);
        let ended = diff(&moving, &idle, false);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].kind, "reassignment_completed");
        assert_eq!(
            ended[0].text,
            "orders-0 finished moving: its replicas are now [1, 2, 3]"
        );
        // Eddy's controller says so itself.
        assert!(diff(&idle, &moving, true).is_empty());
    }
}
