//! A cluster of `eddy broker` processes for the failover suites: nodes
//! 1..=N on free ports, each with its controller listener, all of them
//! voters of the metadata quorum. Each node can be killed, stopped,
//! paused and restarted on its ports and data, like the supervisor does.
//!
//! [`ClusterView`] reads what the cluster says about itself through the
//! Kafka protocol (Metadata, DescribeQuorum), from whichever node answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use eddy_protocol::messages::{
    DescribeQuorumRequest, MetadataRequest, MetadataResponse, RequestHeader,
    describe_quorum_request::{PartitionData, TopicData},
};
use eddy_protocol::{ApiKey, RequestBody, RequestFrame, ResponseBody, ResponseFrame};

use super::{Node, wait_until};

/// How long a cluster may take from its first process to every node
/// registered.
const FORMATION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request to one node may take in a probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct Cluster {
    pub nodes: Vec<Node>,
}

/// What one node reports: each partition's leader, epoch and ISR, the live
/// nodes and the controller.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub brokers: Vec<i32>,
    pub controller_id: i32,
    pub metadata: MetadataResponse,
}

impl ClusterView {
    /// (leader, leader epoch, isr) of one partition, if the topic is known.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<(i32, i32, Vec<i32>)> {
        let topic = self
            .metadata
            .topics
            .iter()
            .find(|candidate| candidate.name.as_deref() == Some(topic))?;
        let partition = topic
            .partitions
            .iter()
            .find(|candidate| candidate.partition_index == partition)?;
        Some((
            partition.leader_id,
            partition.leader_epoch,
            partition.isr_nodes.clone(),
        ))
    }
}

impl Cluster {
    /// Starts `count` nodes (voters of the metadata quorum) with broker
    /// configs `settings`, and waits until every node lists all of them.
    pub fn start(count: i32, settings: &[&str]) -> Cluster {
        for attempt in 1..=FORMATION_ATTEMPTS {
            match Cluster::try_start(count, settings) {
                Ok(cluster) => {
                    cluster.wait_for_brokers(count as usize, FORMATION_TIMEOUT);
                    return cluster;
                }
                // Another process took a chosen port between the probe and
                // the bind: choose again.
                Err(reason) if attempt < FORMATION_ATTEMPTS && port_was_taken(&reason) => {
                    eprintln!("cluster start, attempt {attempt}: a port was taken; retrying");
                }
                Err(reason) => panic!("{reason}"),
            }
        }
        unreachable!("the last attempt panics")
    }

    fn try_start(count: i32, settings: &[&str]) -> Result<Cluster, String> {
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (listen_port(), listen_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .take(5)
            .map(|(index, (_, controller))| format!("{}@127.0.0.1:{controller}", index + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(index, (port, controller))| {
                Node::try_start_member(
                    index as i32 + 1,
                    *port,
                    vec![
                        "--controller-listen".into(),
                        format!("127.0.0.1:{controller}"),
                        "--voters".into(),
                        voters.clone(),
                    ],
                    settings,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cluster { nodes })
    }

    /// Every node's address, comma separated (clients' bootstrap servers).
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(Node::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&mut self, node_id: i32) -> &mut Node {
        &mut self.nodes[(node_id - 1) as usize]
    }

    /// What the first node that answers reports.
    pub fn view(&self) -> Option<ClusterView> {
        self.nodes
            .iter()
            .find_map(|node| view_of(&node.bootstrap()))
    }

    /// What node `node_id` reports, if it answers.
    pub fn view_from(&self, node_id: i32) -> Option<ClusterView> {
        view_of(&self.nodes[(node_id - 1) as usize].bootstrap())
    }

    /// Waits until some node lists `count` live brokers; panics otherwise.
    pub fn wait_for_brokers(&self, count: usize, timeout: Duration) {
        let formed = wait_until(timeout, || {
            self.nodes
                .iter()
                .filter_map(|node| view_of(&node.bootstrap()))
                .any(|view| view.brokers.len() == count)
        });
        assert!(
            formed,
            "the cluster did not list {count} live nodes within {timeout:?}; it says {:?}",
            self.view().map(|view| view.brokers)
        );
    }

    /// Waits until `condition` holds for the partition as its leader reports
    /// it (a restarted node may still report what it knew before it died,
    /// so the leader's word is the one that counts); returns (leader,
    /// epoch, isr) then.
    pub fn wait_for_partition(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
        mut condition: impl FnMut(i32, i32, &[i32]) -> bool,
    ) -> Option<(i32, i32, Vec<i32>)> {
        let mut seen = None;
        let held = wait_until(timeout, || {
            for node in &self.nodes {
                let Some((leader, _, _)) =
                    view_of(&node.bootstrap()).and_then(|view| view.partition(topic, partition))
                else {
                    continue;
                };
                let Some(leader_node) = self.nodes.iter().find(|node| node.node_id() == leader)
                else {
                    continue;
                };
                if let Some(state) = view_of(&leader_node.bootstrap())
                    .and_then(|view| view.partition(topic, partition))
                    .filter(|state| state.0 == leader)
                {
                    let holds = condition(state.0, state.1, &state.2);
                    seen = Some(state);
                    if holds {
                        return true;
                    }
                }
            }
            false
        });
        held.then_some(seen).flatten()
    }

    /// The active controller, as DescribeQuorum on any answering node says.
    pub fn quorum_leader(&self) -> Option<i32> {
        self.nodes.iter().find_map(|node| {
            let response = request(
                &node.bootstrap(),
                RequestBody::DescribeQuorum(DescribeQuorumRequest {
                    topics: vec![TopicData {
                        topic_name: "__cluster_metadata".into(),
                        partitions: vec![PartitionData {
                            partition_index: 0,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ApiKey::DescribeQuorum,
                1,
            )?;
            let ResponseBody::DescribeQuorum(response) = response else {
                return None;
            };
            let leader = response.topics.first()?.partitions.first()?.leader_id;
            (leader >= 0).then_some(leader)
        })
    }
}

/// (leader, leader epoch, isr) of one partition.
pub type PartitionState = (i32, i32, Vec<i32>);

/// The `__consumer_offsets` partition holding `group`: Kafka's
/// `Utils.abs(group.hashCode()) % partitions`, with Java's UTF-16 string hash.
pub fn group_partition(group: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

impl Cluster {
    /// The node coordinating `group`: the leader of its `__consumer_offsets`
    /// partition (the topic has `offsets_partitions` partitions), as that
    /// leader reports it. `None` while the topic does not exist or the
    /// partition has no leader.
    pub fn group_coordinator(&self, group: &str, offsets_partitions: i32) -> Option<i32> {
        let partition = group_partition(group, offsets_partitions);
        self.wait_for_partition(
            "__consumer_offsets",
            partition,
            Duration::ZERO,
            |leader, _, _| leader > 0,
        )
        .map(|(leader, _, _)| leader)
    }

    /// Waits until every partition of each of `topics` has `replicas` in-sync
    /// replicas, as each partition's leader reports it. On timeout, returns
    /// the partitions still short, with their (leader, epoch, isr).
    pub fn wait_for_full_isr(
        &self,
        topics: &[&str],
        replicas: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut short = Vec::new();
        let in_sync = wait_until(timeout, || {
            short = self.partitions_short_of(topics, replicas);
            short.is_empty()
        });
        if in_sync {
            Ok(())
        } else {
            Err(format!(
                "not in sync after {timeout:?} (partition: leader, epoch, isr): {short:?}"
            ))
        }
    }

    /// The partitions of `topics` whose leader reports fewer than `replicas`
    /// in-sync replicas (or which no leader reports).
    fn partitions_short_of(
        &self,
        topics: &[&str],
        replicas: usize,
    ) -> Vec<(String, Option<PartitionState>)> {
        let views: Vec<(i32, ClusterView)> = self
            .nodes
            .iter()
            .filter_map(|node| Some((node.node_id(), view_of(&node.bootstrap())?)))
            .collect();
        let Some((_, any_view)) = views.first() else {
            return vec![("no node answers".into(), None)];
        };
        let mut short = Vec::new();
        for topic in topics {
            let count = any_view
                .metadata
                .topics
                .iter()
                .find(|candidate| candidate.name.as_deref() == Some(*topic))
                .map_or(0, |found| found.partitions.len() as i32);
            if count == 0 {
                short.push((format!("{topic} (unknown)"), None));
            }
            for partition in 0..count {
                let reported = views.iter().find_map(|(_, view)| {
                    let (leader, _, _) = view.partition(topic, partition)?;
                    let (_, leader_view) = views.iter().find(|(id, _)| *id == leader)?;
                    leader_view
                        .partition(topic, partition)
                        .filter(|state| state.0 == leader)
                });
                if reported
                    .as_ref()
                    .is_none_or(|(_, _, isr)| isr.len() < replicas)
                {
                    short.push((format!("{topic}-{partition}"), reported));
                }
            }
        }
        short
    }
}

/// Metadata from one node, or `None` if it does not answer in time.
pub fn view_of(bootstrap: &str) -> Option<ClusterView> {
    let response = request(
        bootstrap,
        RequestBody::Metadata(MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            ..Default::default()
        }),
        ApiKey::Metadata,
        12,
    )?;
    let ResponseBody::Metadata(metadata) = response else {
        return None;
    };
    let mut brokers: Vec<i32> = metadata
        .brokers
        .iter()
        .map(|broker| broker.node_id)
        .collect();
    brokers.sort_unstable();
    Some(ClusterView {
        brokers,
        controller_id: metadata.controller_id,
        metadata,
    })
}

/// One request on a fresh connection; `None` on any failure or timeout.
pub fn request(
    bootstrap: &str,
    body: RequestBody,
    key: ApiKey,
    version: i16,
) -> Option<ResponseBody> {
    let address = bootstrap.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&address, PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let frame = RequestFrame {
        header: RequestHeader {
            request_api_key: key as i16,
            request_api_version: version,
            correlation_id: 1,
            client_id: Some("eddy-e2e-probe".into()),
            ..Default::default()
        },
        body,
    };
    let mut encoded = frame.encode().ok()?;
    let mut bytes = Vec::new();
    while bytes::Buf::has_remaining(&encoded) {
        let chunk = bytes::Buf::chunk(&encoded).to_vec();
        bytes::Buf::advance(&mut encoded, chunk.len());
        bytes.extend(chunk);
    }
    stream.write_all(&bytes).ok()?;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let length = usize::try_from(i32::from_be_bytes(length)).ok()?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    let decoded = ResponseFrame::decode(&Bytes::from(body), key, version).ok()?;
    Some(decoded.body)
}

/// How far above its client port `eddy cluster up` puts a node's
/// controller port.
pub const SUPERVISOR_CONTROLLER_PORT_OFFSET: u16 = 100;

/// A base port for `eddy cluster up --nodes NODES --base-port PORT`: the
/// client ports PORT..PORT+NODES and the controller ports 100 above were
/// free a moment ago. Picked at random in 20000-30000 (below Linux's
/// ephemeral range) so parallel runs rarely collide.
/// How many times [`Cluster::start`] chooses ports again when one was taken.
const FORMATION_ATTEMPTS: usize = 3;

/// Whether a node failed to start because its port was in use.
fn port_was_taken(reason: &str) -> bool {
    reason.contains("Address already in use")
        || reason.contains("cannot listen")
        || reason.contains("controller listener")
}

/// Claims `ports` for this test process if none was handed out before and
/// all are free now. Tests of one binary run in parallel: a probe only says
/// a port is free at this moment, and a cluster whose raft peers answer on
/// another test cluster's port is a cluster talking to a stranger.
fn claim(ports: &[u16]) -> bool {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let free = ports.iter().all(|port| {
        !handed_out.contains(port) && std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok()
    });
    if free {
        handed_out.extend(ports);
    }
    free
}

/// A random number in `from..from + span`.
fn random_port(from: u16, span: u16) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    from + (hasher.finish() % u64::from(span)) as u16
}

/// A free port below the kernel's ephemeral range (32768 and up on Linux), so
/// the nodes' own outgoing connections cannot take it before a node binds it
/// (a port from `bind(0)` is ephemeral, and node 1 connecting to the other
/// controllers may get it as its local port). Never one handed out before in
/// this process.
fn listen_port() -> u16 {
    for _ in 0..1000 {
        let port = random_port(20_000, 12_000);
        if claim(&[port]) {
            return port;
        }
    }
    panic!("no free port below the ephemeral range")
}

/// A base port for `eddy cluster up --base-port` with room for `nodes`
/// nodes: their Kafka ports and controller ports, all free and never handed
/// out before in this process.
pub fn free_base_port(nodes: u16) -> u16 {
    for _ in 0..200 {
        let base = random_port(20_000, 10_000);
        let ports: Vec<u16> = (0..nodes)
            .flat_map(|offset| {
                [
                    base + offset,
                    base + SUPERVISOR_CONTROLLER_PORT_OFFSET + offset,
                ]
            })
            .collect();
        if claim(&ports) {
            return base;
        }
    }
    panic!("no free port range for {nodes} nodes");
}

impl Cluster {
    /// Waits until every node that answers reports the same state of the
    /// partition and `condition` holds for it; returns (leader, epoch, isr)
    /// then. Stricter than [`Cluster::wait_for_partition`]: a node restarted
    /// a moment ago may still see itself as the leader it was before it
    /// died, and confirm its own claim.
    pub fn wait_for_agreed_partition(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
        mut condition: impl FnMut(i32, i32, &[i32]) -> bool,
    ) -> Option<(i32, i32, Vec<i32>)> {
        let mut agreed = None;
        let held = wait_until(timeout, || {
            let states: Vec<Option<(i32, i32, Vec<i32>)>> = self
                .nodes
                .iter()
                .filter_map(|node| view_of(&node.bootstrap()))
                .map(|view| view.partition(topic, partition))
                .collect();
            let Some(Some(first)) = states.first() else {
                return false;
            };
            if states.iter().any(|state| state.as_ref() != Some(first)) {
                return false;
            }
            agreed = Some(first.clone());
            condition(first.0, first.1, &first.2)
        });
        held.then_some(agreed).flatten()
    }
}
