//! Nodes of one metadata quorum in this process, talking over loopback.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_metadata::{
    Command, CommandOutput, MetadataConfig, MetadataError, MetadataImage, MetadataNode,
};
use tempfile::TempDir;
use tokio::net::TcpListener;

const PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);

struct TestCluster {
    nodes: BTreeMap<i32, MetadataNode>,
    voters: BTreeMap<i32, String>,
    dirs: BTreeMap<i32, TempDir>,
}

fn config(id: i32, dir: &TempDir, voters: &BTreeMap<i32, String>) -> MetadataConfig {
    let address = voters
        .get(&id)
        .map_or("127.0.0.1:0".to_string(), Clone::clone);
    let mut config = MetadataConfig::new(
        id,
        dir.path().join("metadata"),
        address.parse().expect("socket address"),
    );
    config.voters = voters.clone();
    config.broker_port = 19092 + id as u16;
    config.heartbeat_interval_ms = 100;
    config.session_timeout_ms = 1000;
    config.election_timeout_min_ms = 300;
    config.election_timeout_max_ms = 600;
    config
}

impl TestCluster {
    async fn start(size: i32) -> Self {
        Self::start_with(size, |_| {}).await
    }

    async fn start_with(size: i32, adjust: impl Fn(&mut MetadataConfig)) -> Self {
        let mut listeners = BTreeMap::new();
        let mut voters = BTreeMap::new();
        for id in 1..=size {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            voters.insert(id, listener.local_addr().expect("address").to_string());
            listeners.insert(id, listener);
        }
        let mut cluster = TestCluster {
            nodes: BTreeMap::new(),
            voters,
            dirs: BTreeMap::new(),
        };
        for (id, listener) in listeners {
            let dir = TempDir::new().expect("temporary directory");
            let mut config = config(id, &dir, &cluster.voters);
            adjust(&mut config);
            let node = MetadataNode::start_with_listener(config, listener)
                .await
                .expect("node starts");
            cluster.nodes.insert(id, node);
            cluster.dirs.insert(id, dir);
        }
        cluster
    }

    fn node(&self, id: i32) -> &MetadataNode {
        &self.nodes[&id]
    }

    /// Waits until every running node agrees on one controller, the cluster
    /// id is set, and every running node is registered and unfenced.
    async fn settled(&self) -> i32 {
        let mut controller = None;
        eventually("the cluster settles", Duration::from_secs(5), || {
            let leaders: Vec<Option<i32>> = self
                .nodes
                .values()
                .map(MetadataNode::controller_id)
                .collect();
            controller = leaders[0];
            let images: Vec<_> = self.nodes.values().map(MetadataNode::image).collect();
            controller.is_some()
                && leaders.iter().all(|leader| *leader == controller)
                && images.iter().all(|image| {
                    !image.cluster_id.is_empty()
                        && image.cluster_id == images[0].cluster_id
                        && self
                            .nodes
                            .keys()
                            .all(|id| image.broker(*id).is_some_and(|broker| !broker.fenced))
                })
        })
        .await;
        controller.expect("a controller")
    }

    async fn stop(&mut self, id: i32) {
        let node = self.nodes.remove(&id).expect("running node");
        node.shutdown().await;
    }

    fn follower_of(&self, controller: i32) -> i32 {
        *self
            .nodes
            .keys()
            .find(|id| **id != controller)
            .expect("a follower")
    }
}

async fn eventually(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn create_topic(name: &str, assignments: Vec<Vec<i32>>) -> Command {
    Command::CreateTopic {
        name: name.to_string(),
        id: 42,
        partitions: assignments.len() as i32,
        replication_factor: assignments[0].len() as i16,
        assignments: Some(assignments),
        configs: BTreeMap::new(),
    }
}

fn partition_leader(image: &MetadataImage, topic: &str) -> Option<i32> {
    image.partition(topic, 0).map(|partition| partition.leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_controller_and_agree_on_the_cluster_id() {
    let cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let cluster_id = cluster.node(1).image().cluster_id.clone();
    assert_eq!(cluster_id.len(), 22, "Kafka-style id: {cluster_id}");
    let quorum = cluster.node(controller).quorum();
    assert_eq!(quorum.leader_id, Some(controller));
    assert_eq!(quorum.voters.len(), 3);
    assert!(quorum.observers.is_empty());
    eventually("the quorum is healthy", Duration::from_secs(2), || {
        cluster.node(controller).quorum().healthy
    })
    .await;
    let follower = cluster.follower_of(controller);
    eventually("a follower reports health", Duration::from_secs(2), || {
        cluster.node(follower).quorum().healthy
    })
    .await;
    let events = &cluster.node(follower).image().events;
    assert!(events.iter().any(|event| event.kind == "broker_registered"));
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topic_on_a_follower_is_forwarded_and_seen_by_every_node() {
    let cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let follower = cluster.follower_of(controller);
    let result = cluster
        .node(follower)
        .propose(
            Command::CreateTopic {
                name: "orders".into(),
                id: 7,
                partitions: 3,
                replication_factor: 3,
                assignments: None,
                configs: BTreeMap::new(),
            },
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered");
    let Ok(CommandOutput::TopicCreated { id: 7, partitions }) = result else {
        panic!("unexpected result {result:?}");
    };
    assert_eq!(partitions.len(), 3);
    // The proposer's own view has it as soon as propose returns.
    assert!(cluster.node(follower).image().topic("orders").is_some());
    eventually("every node sees the topic", Duration::from_secs(2), || {
        cluster.nodes.values().all(|node| {
            node.image()
                .topic("orders")
                .is_some_and(|topic| topic.partitions == partitions)
        })
    })
    .await;

    let again = cluster
        .node(follower)
        .propose(create_topic("orders", vec![vec![1]]), PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered");
    assert_eq!(
        again.expect_err("duplicate topic").code,
        eddy_protocol::ErrorCode::TopicAlreadyExists
    );
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_controller_moves_control_to_another_node() {
    let mut cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    cluster.stop(controller).await;
    let stopped_at = Instant::now();
    let mut new_controller = None;
    eventually("another node is controller", Duration::from_secs(3), || {
        new_controller = cluster
            .nodes
            .values()
            .find_map(|node| node.controller_id().filter(|id| *id != controller));
        new_controller.is_some()
    })
    .await;
    assert!(
        stopped_at.elapsed() < Duration::from_millis(2500),
        "failover took {:?}",
        stopped_at.elapsed()
    );
    let survivor = *cluster.nodes.keys().next().expect("a node");
    let result = cluster
        .node(survivor)
        .propose(
            create_topic("after-failover", vec![vec![survivor]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered");
    assert!(result.is_ok(), "{result:?}");
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_heartbeating_is_fenced_and_loses_leadership_to_the_isr() {
    let mut cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let victim = cluster.follower_of(controller);
    let others: Vec<i32> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != victim)
        .collect();
    let replicas = vec![victim, others[0], others[1]];
    cluster
        .node(controller)
        .propose(create_topic("payments", vec![replicas]), PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered")
        .expect("topic created");
    assert_eq!(
        partition_leader(&cluster.node(controller).image(), "payments"),
        Some(victim)
    );

    cluster.stop(victim).await;
    let stopped_at = Instant::now();
    eventually(
        "the silent broker is fenced",
        Duration::from_secs(3),
        || {
            cluster
                .node(controller)
                .image()
                .broker(victim)
                .is_some_and(|broker| broker.fenced)
        },
    )
    .await;
    let fenced_after = stopped_at.elapsed();
    let image = cluster.node(controller).image();
    let said = |kind: &str| {
        image
            .events
            .iter()
            .filter(|event| event.kind == kind)
            .map(|event| event.text.as_str())
            .collect::<Vec<_>>()
    };
    assert!(
        fenced_after < Duration::from_millis(900),
        "fast fencing took {fenced_after:?}; fencing events {:?}; controller now {:?} (was {controller})",
        said("broker_fenced"),
        cluster.node(controller).controller_id()
    );

    let partition = image.partition("payments", 0).expect("partition");
    assert_eq!(
        partition.leader, others[0],
        "first in-sync replica in replica order"
    );
    assert_eq!(partition.leader_epoch, 1);
    assert_eq!(partition.isr, vec![others[0], others[1]]);
    let fenced = image
        .events
        .iter()
        .find(|event| event.kind == "broker_fenced")
        .expect("a fencing event");
    assert_eq!(fenced.node, Some(victim));
    assert!(
        fenced.text.contains("connection to the controller closed"),
        "{}",
        fenced.text
    );
    assert!(
        image
            .events
            .iter()
            .any(|event| event.kind == "leader_elected")
    );
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_proposals_time_out_and_the_quorum_is_unhealthy() {
    let mut cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    // Keep the controller and stop both followers: a leader without a quorum.
    let followers: Vec<i32> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != controller)
        .collect();
    for id in followers {
        cluster.stop(id).await;
    }
    let started = Instant::now();
    let result = cluster
        .node(controller)
        .propose(
            create_topic("lost", vec![vec![controller]]),
            Duration::from_millis(800),
        )
        .await;
    let elapsed = started.elapsed();
    let Err(MetadataError::Timeout { message }) = result else {
        panic!("expected a timeout, got {result:?}");
    };
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    assert!(message.contains("1 of 3 voters reachable"), "{message}");
    eventually(
        "the quorum is reported unhealthy",
        Duration::from_secs(2),
        || !cluster.node(controller).quorum().healthy,
    )
    .await;
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_follower_times_out_naming_the_missing_quorum() {
    let mut cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let follower = cluster.follower_of(controller);
    let others: Vec<i32> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != follower)
        .collect();
    for id in others {
        cluster.stop(id).await;
    }
    let started = Instant::now();
    let result = cluster
        .node(follower)
        .propose(
            create_topic("lost", vec![vec![follower]]),
            Duration::from_millis(1500),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2200),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(result, Err(MetadataError::Timeout { .. })),
        "{result:?}"
    );
    eventually(
        "the follower reports an unhealthy quorum",
        Duration::from_secs(3),
        || !cluster.node(follower).quorum().healthy,
    )
    .await;
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_restarted_from_its_data_dir_recovers_its_image() {
    let dir = TempDir::new().expect("temporary directory");
    let voters = BTreeMap::new();
    let node = MetadataNode::start(config(1, &dir, &voters))
        .await
        .expect("node starts");
    eventually(
        "the lone node registers itself",
        Duration::from_secs(5),
        || node.image().broker(1).is_some_and(|broker| !broker.fenced),
    )
    .await;
    let result = node
        .propose(create_topic("kept", vec![vec![1]]), PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered");
    assert!(result.is_ok(), "{result:?}");
    assert!(node.quorum().healthy);
    let before = node.image();
    node.shutdown().await;

    let node = MetadataNode::start(config(1, &dir, &voters))
        .await
        .expect("node restarts");
    eventually("the image is recovered", Duration::from_secs(5), || {
        node.image().applied_index >= before.applied_index
    })
    .await;
    let after = node.image();
    assert_eq!(after.cluster_id, before.cluster_id);
    assert_eq!(after.topic("kept"), before.topic("kept"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_recovers_and_catches_up() {
    let mut cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let follower = cluster.follower_of(controller);
    cluster
        .node(controller)
        .propose(
            create_topic("first", vec![vec![controller]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic created");
    eventually("the follower has the topic", Duration::from_secs(2), || {
        cluster.node(follower).image().topic("first").is_some()
    })
    .await;
    cluster.stop(follower).await;
    cluster
        .node(controller)
        .propose(
            create_topic("second", vec![vec![controller]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic created");

    let dir = &cluster.dirs[&follower];
    let restarted = MetadataNode::start(config(follower, dir, &cluster.voters))
        .await
        .expect("node restarts");
    eventually(
        "the restarted follower catches up",
        Duration::from_secs(5),
        || {
            let image = restarted.image();
            image.topic("first").is_some() && image.topic("second").is_some()
        },
    )
    .await;
    // It registers again with a new incarnation and is unfenced.
    eventually(
        "the restarted node is unfenced",
        Duration::from_secs(3),
        || {
            restarted
                .image()
                .broker(follower)
                .is_some_and(|broker| !broker.fenced)
        },
    )
    .await;
    cluster.nodes.insert(follower, restarted);
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_voters_joins_and_becomes_a_voter_while_there_are_fewer_than_five() {
    let mut cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let dir = TempDir::new().expect("temporary directory");
    let learner = MetadataNode::start(config(4, &dir, &cluster.voters))
        .await
        .expect("learner starts");
    eventually(
        "the learner is registered and unfenced",
        Duration::from_secs(5),
        || {
            cluster
                .node(controller)
                .image()
                .broker(4)
                .is_some_and(|broker| !broker.fenced)
        },
    )
    .await;
    eventually(
        "the new node is promoted to voter",
        Duration::from_secs(5),
        || {
            let quorum = cluster.node(controller).quorum();
            quorum.voters.iter().any(|voter| voter.node_id == 4)
                && quorum.voters.len() == 4
                && quorum.observers.is_empty()
        },
    )
    .await;
    cluster
        .node(controller)
        .propose(
            create_topic("seen-by-learner", vec![vec![4, controller]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic created");
    eventually(
        "the learner applies the log",
        Duration::from_secs(3),
        || learner.image().topic("seen-by-learner").is_some(),
    )
    .await;
    // Proposals from a learner are forwarded too.
    learner
        .propose(create_topic("from-learner", vec![vec![4]]), PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered")
        .expect("topic created");
    assert!(learner.image().topic("from-learner").is_some());
    cluster.nodes.insert(4, learner);
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_oversized_frames_close_only_their_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = TempDir::new().expect("temporary directory");
    let node = MetadataNode::start(config(1, &dir, &BTreeMap::new()))
        .await
        .expect("node starts");
    for garbage in [
        [&5u32.to_be_bytes()[..], b"{{{{{"].concat(),
        u32::MAX.to_be_bytes().to_vec(),
        [&13u32.to_be_bytes()[..], br#"{"id":1,"x":2}"#].concat(),
    ] {
        let mut stream = tokio::net::TcpStream::connect(node.controller_address())
            .await
            .expect("connect");
        stream.write_all(&garbage).await.expect("write");
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .expect("the node closes the connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    eventually("the node still works", Duration::from_secs(5), || {
        node.image().broker(1).is_some_and(|broker| !broker.fenced)
    })
    .await;
    node.propose(create_topic("still-fine", vec![vec![1]]), PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered")
        .expect("topic created");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarts_from_a_snapshot_and_the_log_after_it() {
    let dir = TempDir::new().expect("temporary directory");
    let voters = BTreeMap::new();
    let node = MetadataNode::start(config(1, &dir, &voters))
        .await
        .expect("node starts");
    eventually(
        "the lone node registers itself",
        Duration::from_secs(5),
        || node.image().broker(1).is_some_and(|broker| !broker.fenced),
    )
    .await;
    // Enough entries for a snapshot (every 1000) and a purged log.
    for _ in 0..1050 {
        node.propose(
            Command::AllocateProducerIds {
                broker_id: 1,
                count: 10,
            },
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("ids allocated");
    }
    let snapshot = dir.path().join("metadata").join("snapshot.json");
    eventually("a snapshot is written", Duration::from_secs(5), || {
        snapshot.exists()
    })
    .await;
    let before = node.image();
    assert_eq!(before.next_producer_id, 10_500);
    node.shutdown().await;

    let node = MetadataNode::start(config(1, &dir, &voters))
        .await
        .expect("node restarts");
    eventually("the image is recovered", Duration::from_secs(5), || {
        node.image().applied_index >= before.applied_index
    })
    .await;
    assert_eq!(node.image().next_producer_id, 10_500);
    assert_eq!(node.image().cluster_id, before.cluster_id);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_silent_for_the_session_timeout_is_fenced() {
    // Fast fencing off: only the session timeout (1000 ms here) applies.
    let mut cluster = TestCluster::start_with(3, |config| config.fast_fence_ms = 60_000).await;
    let controller = cluster.settled().await;
    let victim = cluster.follower_of(controller);
    cluster.stop(victim).await;
    let stopped_at = Instant::now();
    eventually(
        "the silent broker is fenced",
        Duration::from_secs(3),
        || {
            cluster
                .node(controller)
                .image()
                .broker(victim)
                .is_some_and(|broker| broker.fenced)
        },
    )
    .await;
    let fenced_after = stopped_at.elapsed();
    assert!(
        fenced_after >= Duration::from_millis(800),
        "fenced after {fenced_after:?}"
    );
    let image = cluster.node(controller).image();
    let fenced = image
        .events
        .iter()
        .find(|event| event.kind == "broker_fenced")
        .expect("a fencing event");
    assert_eq!(
        fenced.text,
        format!("node {victim} stopped heartbeating; fenced after 1000 ms")
    );
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_moves_leadership_before_the_node_stops() {
    let cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let leaving = cluster.follower_of(controller);
    let others: Vec<i32> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != leaving)
        .collect();
    cluster
        .node(controller)
        .propose(
            create_topic("moving", vec![vec![leaving, others[0], others[1]]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic created");
    cluster
        .node(leaving)
        .controlled_shutdown(PROPOSE_TIMEOUT)
        .await
        .expect("controlled shutdown");
    let image = cluster.node(leaving).image();
    assert_eq!(partition_leader(&image, "moving"), Some(others[0]));
    let broker = image.broker(leaving).expect("still registered");
    assert!(broker.in_controlled_shutdown && !broker.fenced);
    // Its heartbeats do not bring it back while it shuts down.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let image = cluster.node(controller).image();
    assert!(
        image
            .broker(leaving)
            .is_some_and(|broker| broker.in_controlled_shutdown)
    );
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_five_voters_a_new_node_stays_a_learner() {
    let cluster = TestCluster::start(5).await;
    let controller = cluster.settled().await;
    let dir = TempDir::new().expect("temporary directory");
    let learner = MetadataNode::start(config(6, &dir, &cluster.voters))
        .await
        .expect("node 6 starts");
    eventually("node 6 is a raft observer", Duration::from_secs(5), || {
        let quorum = cluster.node(controller).quorum();
        quorum
            .observers
            .iter()
            .any(|observer| observer.node_id == 6)
    })
    .await;
    eventually("node 6 has caught up", Duration::from_secs(5), || {
        learner.image().applied_index >= cluster.node(controller).image().applied_index
    })
    .await;
    // A caught-up live learner: the controller would promote it within a
    // few ticks if the voters were not full.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quorum = cluster.node(controller).quorum();
    assert_eq!(quorum.voters.len(), 5);
    assert_eq!(quorum.observers.len(), 1);
    learner.shutdown().await;
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_node_leaves_the_quorum() {
    let cluster = TestCluster::start(3).await;
    let controller = cluster.settled().await;
    let dir = TempDir::new().expect("temporary directory");
    let added = MetadataNode::start(config(4, &dir, &cluster.voters))
        .await
        .expect("node 4 starts");
    eventually("node 4 is a voter", Duration::from_secs(5), || {
        let quorum = cluster.node(controller).quorum();
        quorum.voters.iter().any(|voter| voter.node_id == 4)
    })
    .await;
    cluster
        .node(controller)
        .propose(
            create_topic("kept", vec![vec![4, controller]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic created");
    added.shutdown().await;
    let refused = cluster
        .node(controller)
        .propose(Command::UnregisterBroker { id: 4 }, PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered")
        .expect_err("node 4 hosts a replica");
    assert!(
        refused.message.contains("still hosts replicas of kept-0"),
        "{}",
        refused.message
    );
    cluster
        .node(controller)
        .propose(
            Command::DeleteTopic {
                name: "kept".into(),
            },
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic deleted");
    cluster
        .node(controller)
        .propose(Command::UnregisterBroker { id: 4 }, PROPOSE_TIMEOUT)
        .await
        .expect("proposal answered")
        .expect("node 4 unregistered");
    eventually(
        "node 4 is out of the raft group",
        Duration::from_secs(5),
        || {
            let quorum = cluster.node(controller).quorum();
            quorum.voters.len() == 3
                && quorum.observers.is_empty()
                && quorum.voters.iter().all(|voter| voter.node_id != 4)
        },
    )
    .await;
    // The quorum still works, and node 4 stays forgotten.
    cluster
        .node(controller)
        .propose(
            create_topic("after", vec![vec![controller]]),
            PROPOSE_TIMEOUT,
        )
        .await
        .expect("proposal answered")
        .expect("topic created");
    let image = cluster.node(controller).image();
    assert!(image.broker(4).is_none());
    assert!(
        image
            .events
            .iter()
            .any(|event| event.kind == "broker_unregistered" && event.node == Some(4))
    );
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_moves_leadership_back_to_the_preferred_replica() {
    let cluster = TestCluster::start_with(3, |config| {
        config.leader_imbalance_check_interval = Duration::from_millis(300);
    })
    .await;
    let controller = cluster.settled().await;
    let preferred = cluster.follower_of(controller);
    let others: Vec<i32> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != preferred)
        .collect();
    let node = cluster.node(controller);
    node.propose(
        create_topic("orders", vec![vec![preferred, others[0], others[1]]]),
        PROPOSE_TIMEOUT,
    )
    .await
    .expect("proposal answered")
    .expect("topic created");
    // The preferred replica is fenced (leadership moves on), heartbeats
    // again (is unfenced), and its leader takes it back into the ISR.
    node.propose(
        Command::FenceBroker {
            id: preferred,
            reason: "test".into(),
        },
        PROPOSE_TIMEOUT,
    )
    .await
    .expect("proposal answered")
    .expect("fenced");
    assert_eq!(partition_leader(&node.image(), "orders"), Some(others[0]));
    eventually("the node is unfenced", Duration::from_secs(5), || {
        node.image()
            .broker(preferred)
            .is_some_and(|broker| !broker.fenced)
    })
    .await;
    let state = node
        .image()
        .partition("orders", 0)
        .expect("partition")
        .clone();
    node.propose(
        Command::AlterPartition {
            topic: "orders".into(),
            partition: 0,
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr: vec![others[0], others[1], preferred],
        },
        PROPOSE_TIMEOUT,
    )
    .await
    .expect("proposal answered")
    .expect("back in the ISR");
    let rejoined = Instant::now();
    eventually(
        "the preferred replica leads again",
        Duration::from_secs(3),
        || partition_leader(&node.image(), "orders") == Some(preferred),
    )
    .await;
    assert!(rejoined.elapsed() < Duration::from_secs(2));
    let image = node.image();
    let event = image
        .events
        .iter()
        .rev()
        .find(|event| event.kind == "preferred_leader_elected")
        .expect("an election event");
    assert!(
        event.text.ends_with("(automatic rebalance)"),
        "{}",
        event.text
    );
    for node in cluster.nodes.into_values() {
        node.shutdown().await;
    }
}
