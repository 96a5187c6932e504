//! Cluster operations on a cluster of real `eddy broker` processes, driven
//! through the Kafka API with `eddy-client` while real clients keep working:
//!
//! - partition reassignment (AlterPartitionReassignments,
//!   ListPartitionReassignments): moving a partition to other nodes and
//!   raising its replication factor under a steady acks=all idempotent load,
//!   with every acknowledged record present once and in order afterwards;
//! - preferred-leader election (ElectLeaders) on request, and automatically
//!   after a killed node returns (`auto.leader.rebalance.enable`);
//! - dynamic broker configs (IncrementalAlterConfigs on the cluster-wide
//!   default): a new default applies to the next topic, a bad value is
//!   refused and changes nothing.
//! - reassignment traffic throttled with Kafka's replication throttles: the
//!   move waits for the throttled copy and completes once it is lifted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eddy_client::{
    Client, ElectionType, ErrorCode, OngoingReassignment, PartitionInfo, PartitionReassignment,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use support::cluster::Cluster;
use support::kafka::{
    self, CLIENT_TIMEOUT, Outgoing, RecordingProducer, block_on, read_partition, values,
};
use support::wait_until;

/// Budget for a partition to get a leader and a full ISR, or to move.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one node gets to answer the admin client.
const NODE_TIMEOUT: Duration = Duration::from_secs(3);
/// Sequence numbers per partition at most: a record's index is
/// `partition * MAX_SEQUENCES + sequence`.
const MAX_SEQUENCES: usize = 1_000_000;

/// One runtime for every admin call of the process: a client's connections
/// live on the runtime that opened them.
fn run<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
        .block_on(future)
}

fn admin(cluster: &Cluster) -> Client {
    let bootstrap: Vec<String> = cluster.nodes.iter().map(|node| node.bootstrap()).collect();
    Client::new(bootstrap).with_node_timeout(NODE_TIMEOUT)
}

/// Creates `topic` with the given replicas per partition (the first is the
/// preferred leader) and waits until every partition's ISR is full.
fn create_assigned_topic(cluster: &Cluster, topic: &str, assignment: &[&[i32]]) {
    let admin: AdminClient<DefaultClientContext> = kafka::client_config(&cluster.bootstrap())
        .create()
        .expect("rdkafka admin client");
    let new_topic = NewTopic::new(
        topic,
        assignment.len() as i32,
        TopicReplication::Variable(assignment),
    );
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    for result in block_on(admin.create_topics([&new_topic], &options)).expect("CreateTopics") {
        if let Err((name, code)) = result {
            panic!("CreateTopics {name}: {code:?}");
        }
    }
    for (partition, replicas) in assignment.iter().enumerate() {
        cluster
            .wait_for_agreed_partition(
                topic,
                partition as i32,
                PARTITION_TIMEOUT,
                |leader, _, isr| leader == replicas[0] && isr.len() == replicas.len(),
            )
            .unwrap_or_else(|| panic!("{topic}-{partition} did not get its leader and full ISR"));
    }
}

/// The partition as the cluster's metadata describes it.
fn partition_info(client: &mut Client, topic: &str, partition: i32) -> Option<PartitionInfo> {
    let metadata = run(client.metadata()).ok()?;
    metadata
        .topics
        .into_iter()
        .find(|candidate| candidate.name == topic)?
        .partitions
        .into_iter()
        .find(|candidate| candidate.partition == partition)
}

fn sorted(nodes: &[i32]) -> Vec<i32> {
    let mut nodes = nodes.to_vec();
    nodes.sort_unstable();
    nodes
}

/// Waits until every node reports `topic`-`partition` with exactly
/// `replicas` (in this order) all in sync and a leader among them, and no
/// reassignment is in flight; panics with what it saw otherwise.
fn wait_for_replicas(
    cluster: &Cluster,
    client: &mut Client,
    topic: &str,
    partition: i32,
    replicas: &[i32],
) {
    let mut seen = None;
    let mut in_flight = Vec::new();
    let settled = wait_until(PARTITION_TIMEOUT, || {
        in_flight = run(client.list_partition_reassignments()).unwrap_or_default();
        if !in_flight.is_empty() {
            return false;
        }
        seen = partition_info(client, topic, partition);
        let Some(info) = &seen else { return false };
        info.replicas == replicas
            && sorted(&info.isr) == sorted(replicas)
            && info.leader.is_some_and(|leader| replicas.contains(&leader))
            && cluster
                .wait_for_agreed_partition(topic, partition, Duration::ZERO, |leader, _, isr| {
                    replicas.contains(&leader) && isr.len() == replicas.len()
                })
                .is_some()
    });
    assert!(
        settled,
        "{topic}-{partition} did not settle on replicas {replicas:?}: metadata says {seen:?}, in flight {in_flight:?}"
    );
}

fn record(partition: i32, sequence: usize) -> Outgoing {
    Outgoing {
        key: format!("p{partition}").into_bytes(),
        value: format!("p{partition}-{sequence:07}").into_bytes(),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

/// A steady acks=all idempotent load on some partitions of one topic: one
/// record per partition every couple of milliseconds, until stopped.
struct Load<'a> {
    producer: &'a RecordingProducer,
    topic: &'a str,
    partitions: &'a [i32],
    stop: AtomicBool,
    sent: AtomicUsize,
}

impl Load<'_> {
    fn run(&self) {
        let mut sequence = 0;
        while !self.stop.load(Ordering::Relaxed) && sequence < MAX_SEQUENCES {
            for &partition in self.partitions {
                let index = partition as usize * MAX_SEQUENCES + sequence;
                self.producer
                    .send(self.topic, partition, index, &record(partition, sequence));
            }
            sequence += 1;
            self.sent.store(sequence, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until `more` further records of each partition are acknowledged.
    fn wait_for_progress(&self, more: usize) {
        let target = self.producer.deliveries.acknowledged_count() + more * self.partitions.len();
        assert!(
            wait_until(PARTITION_TIMEOUT, || {
                self.producer.deliveries.acknowledged_count() >= target
            }),
            "the load stalled at {} acknowledged records; failures: {:?}",
            self.producer.deliveries.acknowledged_count(),
            self.producer
                .deliveries
                .failed
                .lock()
                .expect("deliveries")
                .first()
        );
    }
}

/// Checks that every acknowledged record of `partition` is stored once, in
/// the order sent.
fn assert_acknowledged_once_in_order(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    acknowledged: &[usize],
) {
    let stored = values(&read_partition(&cluster.bootstrap(), topic, partition));
    kafka::assert_acknowledged_once_in_order(
        &format!("{topic}-{partition}"),
        &stored,
        acknowledged,
        |sequence| format!("p{partition}-{sequence:07}"),
    );
}

#[test]
fn reassigning_a_partition_and_raising_its_replication_factor_under_load_loses_nothing() {
    let cluster = Cluster::start(4, &[]);
    let topic = "moving";
    create_assigned_topic(&cluster, topic, &[&[1, 2], &[2, 1]]);
    let mut client = admin(&cluster);
    let producer = RecordingProducer::new(&kafka::durable_producer_config(&cluster.bootstrap()));
    let load = Load {
        producer: &producer,
        topic,
        partitions: &[0, 1],
        stop: AtomicBool::new(false),
        sent: AtomicUsize::new(0),
    };
    std::thread::scope(|scope| {
        scope.spawn(|| load.run());
        load.wait_for_progress(200);

        // Partition 0 moves from nodes 1 and 2 to nodes 3 and 4.
        let started = Instant::now();
        let outcome = run(
            client.alter_partition_reassignments(&[PartitionReassignment {
                topic: topic.to_string(),
                partition: 0,
                replicas: Some(vec![3, 4]),
            }]),
        )
        .expect("AlterPartitionReassignments");
        assert_eq!(
            outcome,
            BTreeMap::from([((topic.to_string(), 0), Ok(()))]),
            "the reassignment is accepted"
        );
        // In flight: the new replicas copy the log before the old ones go.
        let in_flight =
            run(client.list_partition_reassignments()).expect("ListPartitionReassignments");
        let expected = OngoingReassignment {
            topic: topic.to_string(),
            partition: 0,
            replicas: vec![3, 4, 1, 2],
            adding: vec![3, 4],
            removing: vec![1, 2],
        };
        assert_eq!(in_flight, [expected], "the reassignment is in flight");
        load.wait_for_progress(100);
        wait_for_replicas(&cluster, &mut client, topic, 0, &[3, 4]);
        eprintln!(
            "{topic}-0 moved to nodes 3 and 4 in {:?}",
            started.elapsed()
        );
        let info = partition_info(&mut client, topic, 0).expect("partition 0");
        assert!(
            info.leader.is_some_and(|leader| [3, 4].contains(&leader)),
            "the leader is one of the new replicas: {info:?}"
        );
        // The old replicas deleted their copies.
        for node in [1, 2] {
            let dir = cluster.nodes[node - 1].partition_dir(topic, 0);
            assert!(
                wait_until(PARTITION_TIMEOUT, || !dir.exists()),
                "node {node} still has {}",
                dir.display()
            );
        }

        // Partition 1 grows from two replicas to three.
        load.wait_for_progress(100);
        let outcome = run(
            client.alter_partition_reassignments(&[PartitionReassignment {
                topic: topic.to_string(),
                partition: 1,
                replicas: Some(vec![2, 1, 3]),
            }]),
        )
        .expect("AlterPartitionReassignments");
        assert_eq!(outcome[&(topic.to_string(), 1)], Ok(()));
        load.wait_for_progress(100);
        wait_for_replicas(&cluster, &mut client, topic, 1, &[2, 1, 3]);

        load.wait_for_progress(100);
        load.stop.store(true, Ordering::Relaxed);
    });
    producer.flush_expecting_every_record_acknowledged(Duration::from_secs(60), "");
    let sent = load.sent.load(Ordering::Relaxed);
    let acknowledged = producer.acknowledged_sequences(MAX_SEQUENCES);
    for partition in [0, 1] {
        let sequences = acknowledged.get(&partition).cloned().unwrap_or_default();
        assert_eq!(
            sequences.len(),
            sent,
            "every record of partition {partition} was acknowledged"
        );
        assert_acknowledged_once_in_order(&cluster, topic, partition, &sequences);
    }
    eprintln!("{sent} records per partition acknowledged and stored once, in order");
}

#[test]
fn reassignment_requests_are_checked_per_partition() {
    let cluster = Cluster::start(3, &[]);
    let topic = "checked";
    create_assigned_topic(&cluster, topic, &[&[1, 2]]);
    let mut client = admin(&cluster);
    let change = |partition: i32, replicas: Option<Vec<i32>>| PartitionReassignment {
        topic: topic.to_string(),
        partition,
        replicas,
    };
    let code = |outcome: &BTreeMap<(String, i32), Result<(), eddy_client::KafkaFailure>>,
                partition: i32| {
        outcome[&(topic.to_string(), partition)]
            .as_ref()
            .err()
            .map(|failure| failure.code)
    };
    let outcome = run(client.alter_partition_reassignments(&[change(0, Some(vec![1, 9]))]))
        .expect("AlterPartitionReassignments");
    assert_eq!(code(&outcome, 0), Some(ErrorCode::InvalidReplicaAssignment));
    let outcome = run(client.alter_partition_reassignments(&[change(0, None)]))
        .expect("AlterPartitionReassignments");
    assert_eq!(code(&outcome, 0), Some(ErrorCode::NoReassignmentInProgress));
    let outcome = run(client.alter_partition_reassignments(&[change(5, Some(vec![1]))]))
        .expect("AlterPartitionReassignments");
    assert_eq!(code(&outcome, 5), Some(ErrorCode::UnknownTopicOrPartition));
    assert_eq!(
        run(client.list_partition_reassignments()).expect("ListPartitionReassignments"),
        []
    );
    let info = partition_info(&mut client, topic, 0).expect("partition 0");
    assert_eq!(info.replicas, [1, 2], "refused requests change nothing");
}

#[test]
fn reordering_the_replicas_makes_the_new_first_one_the_preferred_leader() {
    // Automatic rebalancing off: only the API moves leadership here.
    let cluster = Cluster::start(3, &["auto.leader.rebalance.enable=false"]);
    let topic = "reordered";
    create_assigned_topic(&cluster, topic, &[&[1, 2, 3]]);
    let mut client = admin(&cluster);
    let outcome = run(
        client.alter_partition_reassignments(&[PartitionReassignment {
            topic: topic.to_string(),
            partition: 0,
            replicas: Some(vec![2, 1, 3]),
        }]),
    )
    .expect("AlterPartitionReassignments");
    assert!(
        outcome.values().all(Result::is_ok),
        "the reorder is accepted: {outcome:?}"
    );
    // Nothing to copy: the new order is in place at once.
    wait_for_replicas(&cluster, &mut client, topic, 0, &[2, 1, 3]);
    let preferred = (topic.to_string(), 0);
    let outcome = run(client.elect_leaders(ElectionType::Preferred, Some(vec![preferred.clone()])))
        .expect("ElectLeaders");
    assert_eq!(outcome[&preferred], Ok(()), "{outcome:?}");
    cluster
        .wait_for_agreed_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, _| leader == 2)
        .expect("node 2, now the preferred replica, leads");
}

#[test]
fn elect_leaders_gives_leadership_back_to_the_preferred_replica() {
    // Automatic rebalancing off: only the API moves leadership back here.
    let mut cluster = Cluster::start(3, &["auto.leader.rebalance.enable=false"]);
    let topic = "elected";
    create_assigned_topic(&cluster, topic, &[&[1, 2, 3], &[2, 3, 1]]);
    let mut client = admin(&cluster);
    let preferred = (topic.to_string(), 0);

    // The preferred replica leads: nothing to do.
    let outcome = run(client.elect_leaders(ElectionType::Preferred, Some(vec![preferred.clone()])))
        .expect("ElectLeaders");
    let failure = outcome[&preferred]
        .as_ref()
        .expect_err("election not needed");
    assert_eq!(failure.code, ErrorCode::ElectionNotNeeded);

    // Node 1 dies; partition 0's leadership moves away and stays away when
    // node 1 is back in sync.
    cluster.node(1).kill();
    cluster
        .wait_for_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, _| leader > 1)
        .expect("partition 0 fails over");
    cluster.node(1).restart();
    cluster
        .wait_for_agreed_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, isr| {
            leader != 1 && isr.len() == 3
        })
        .expect("node 1 rejoins the ISR as a follower");

    let outcome = run(client.elect_leaders(ElectionType::Preferred, Some(vec![preferred.clone()])))
        .expect("ElectLeaders");
    assert_eq!(outcome[&preferred], Ok(()), "{outcome:?}");
    cluster
        .wait_for_agreed_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, _| leader == 1)
        .expect("node 1 leads partition 0 again");
    // Every partition: those already led by their preferred replica are not
    // listed, as Kafka does.
    let outcome = run(client.elect_leaders(ElectionType::Preferred, None)).expect("ElectLeaders");
    assert!(
        outcome.values().all(Result::is_ok),
        "nothing else to elect: {outcome:?}"
    );
    let outcome =
        run(client.elect_leaders(ElectionType::Preferred, Some(vec![(topic.to_string(), 7)])))
            .expect("ElectLeaders");
    assert_eq!(
        outcome[&(topic.to_string(), 7)]
            .as_ref()
            .err()
            .map(|failure| failure.code),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
}

#[test]
fn preferred_leadership_comes_back_automatically_after_a_node_returns() {
    let interval = Duration::from_secs(2);
    let mut cluster = Cluster::start(3, &["leader.imbalance.check.interval.seconds=2"]);
    let topic = "rebalanced";
    create_assigned_topic(&cluster, topic, &[&[1, 2, 3], &[1, 3, 2], &[2, 1, 3]]);
    cluster.node(1).kill();
    for partition in [0, 1] {
        cluster
            .wait_for_partition(topic, partition, PARTITION_TIMEOUT, |leader, _, _| {
                leader > 1
            })
            .unwrap_or_else(|| panic!("partition {partition} fails over"));
    }
    cluster.node(1).restart();
    let back_in_sync = cluster
        .wait_for_agreed_partition(topic, 0, PARTITION_TIMEOUT, |_, _, isr| isr.len() == 3)
        .map(|_| Instant::now())
        .expect("node 1 rejoins the ISR");
    cluster
        .wait_for_agreed_partition(topic, 1, PARTITION_TIMEOUT, |_, _, isr| isr.len() == 3)
        .expect("node 1 rejoins the ISR of partition 1");
    // Within one check interval (plus a margin for the check itself and
    // for every node to apply it), node 1 leads its preferred partitions.
    let margin = Duration::from_secs(3);
    for partition in [0, 1] {
        cluster
            .wait_for_agreed_partition(topic, partition, interval + margin, |leader, _, _| {
                leader == 1
            })
            .unwrap_or_else(|| {
                panic!(
                    "node 1 does not lead {topic}-{partition} {:?} after rejoining the ISR",
                    back_in_sync.elapsed()
                )
            });
    }
    eprintln!(
        "preferred leadership restored {:?} after node 1 was back in sync",
        back_in_sync.elapsed()
    );
    let leaders: BTreeSet<i32> = (0..3)
        .filter_map(|partition| {
            cluster
                .view()
                .and_then(|view| view.partition(topic, partition))
        })
        .map(|(leader, _, _)| leader)
        .collect();
    assert_eq!(
        leaders,
        BTreeSet::from([1, 2]),
        "each partition led by its preferred replica"
    );
}

#[test]
fn a_dynamic_default_applies_to_new_topics_and_a_bad_value_changes_nothing() {
    let cluster = Cluster::start(3, &[]);
    let mut client = admin(&cluster);
    let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    };

    // validate_only checks and changes nothing.
    run(client.alter_broker_configs(None, &set(&[("num.partitions", "3")]), &[], true))
        .expect("a valid change validates");
    let created = run(client.create_topics(&[eddy_client::NewTopic::new("before", -1)]))
        .expect("CreateTopics");
    assert_eq!(created["before"], Ok(()));
    // The partition count of `topic`, once the node asked knows it.
    let partitions = |client: &mut Client, topic: &str| {
        let mut count = None;
        wait_until(PARTITION_TIMEOUT, || {
            count = run(client.metadata())
                .ok()
                .and_then(|metadata| {
                    metadata
                        .topics
                        .into_iter()
                        .find(|candidate| candidate.name == topic)
                })
                .map(|found| found.partitions.len());
            count.is_some()
        });
        count
    };
    assert_eq!(partitions(&mut client, "before"), Some(1));

    run(client.alter_broker_configs(None, &set(&[("num.partitions", "3")]), &[], false))
        .expect("num.partitions is dynamic");
    // Every node applies the new default (any of them may create the topic).
    let created = run(client.create_topics(&[eddy_client::NewTopic::new("after", -1)]))
        .expect("CreateTopics");
    assert_eq!(created["after"], Ok(()));
    assert_eq!(partitions(&mut client, "after"), Some(3));
    // Auto-created topics too, through a real client's Metadata request,
    // on a node other than the one that took the change.
    for node in &cluster.nodes {
        // Each node reports the cluster-wide default once it applied it.
        assert!(
            wait_until(PARTITION_TIMEOUT, || {
                dynamic_default(&node.bootstrap(), "num.partitions") == Some("3".to_string())
            }),
            "node {} does not report num.partitions=3 as a dynamic default",
            node.node_id()
        );
        let topic = format!("auto-{}", node.node_id());
        kafka_auto_create(&node.bootstrap(), &topic);
        let mut one = Client::new([node.bootstrap()]).with_node_timeout(NODE_TIMEOUT);
        assert_eq!(
            partitions(&mut one, &topic),
            Some(3),
            "{topic}, auto-created on node {}",
            node.node_id()
        );
    }

    // A bad value, or a read-only config, refuses the whole change.
    let error = run(client.alter_broker_configs(
        None,
        &set(&[("num.partitions", "0"), ("log.retention.ms", "1000")]),
        &[],
        false,
    ))
    .expect_err("num.partitions=0 is refused");
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::InvalidConfig),
        "{error}"
    );
    let error = run(client.alter_broker_configs(
        Some(2),
        &set(&[("node.id", "7"), ("log.retention.ms", "1000")]),
        &[],
        false,
    ))
    .expect_err("node.id is read-only");
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::InvalidRequest),
        "{error}"
    );
    assert!(error.to_string().contains("node.id"), "{error}");
    let retention = run(client.describe_topic_configs("after"))
        .expect("DescribeConfigs")
        .into_iter()
        .find(|entry| entry.name == "retention.ms")
        .expect("retention.ms");
    assert_eq!(
        retention.value.as_deref(),
        Some("604800000"),
        "nothing changed"
    );
    let created = run(client.create_topics(&[eddy_client::NewTopic::new("later", -1)]))
        .expect("CreateTopics");
    assert_eq!(created["later"], Ok(()));
    assert_eq!(partitions(&mut client, "later"), Some(3));

    // Deleting the default goes back to the static value.
    run(client.alter_broker_configs(
        None,
        &BTreeMap::new(),
        &["num.partitions".to_string()],
        false,
    ))
    .expect("deleting a dynamic default");
    let created = run(client.create_topics(&[eddy_client::NewTopic::new("reverted", -1)]))
        .expect("CreateTopics");
    assert_eq!(created["reverted"], Ok(()));
    assert_eq!(partitions(&mut client, "reverted"), Some(1));
}

/// The value of `name` among the cluster-wide dynamic broker configs, as
/// the node at `bootstrap` describes them (DescribeConfigs on the BROKER
/// resource "", source DYNAMIC_DEFAULT_BROKER_CONFIG).
fn dynamic_default(bootstrap: &str, name: &str) -> Option<String> {
    use eddy_protocol::messages::DescribeConfigsRequest;
    use eddy_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use eddy_protocol::{ApiKey, RequestBody, ResponseBody};
    let response = support::cluster::request(
        bootstrap,
        RequestBody::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 4,
                resource_name: "".into(),
                configuration_keys: None,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::DescribeConfigs,
        4,
    )?;
    let ResponseBody::DescribeConfigs(response) = response else {
        return None;
    };
    let entry = response
        .results
        .first()?
        .configs
        .iter()
        .find(|entry| &*entry.name == name)?;
    assert_eq!(entry.config_source, 3, "{name} is a dynamic default");
    entry.value.as_deref().map(str::to_string)
}

/// Asks `bootstrap` for `topic`'s metadata with auto-creation allowed, as a
/// producer does on its first record.
fn kafka_auto_create(bootstrap: &str, topic: &str) {
    use eddy_protocol::messages::MetadataRequest;
    use eddy_protocol::messages::metadata_request::MetadataRequestTopic;
    use eddy_protocol::{ApiKey, RequestBody};
    let _ = support::cluster::request(
        bootstrap,
        RequestBody::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: true,
            ..Default::default()
        }),
        ApiKey::Metadata,
        12,
    );
}

/// A reassignment whose new replica is throttled (Kafka's way: the topic's
/// `follower.replication.throttled.replicas` and the node's
/// `follower.replication.throttled.rate`) stays in flight while the copy
/// crawls, and completes once the throttle is lifted.
#[test]
fn a_throttled_reassignment_waits_for_its_copy_and_completes_when_the_throttle_lifts() {
    let cluster = Cluster::start(3, &["auto.leader.rebalance.enable=false"]);
    let topic = "throttled-move";
    create_assigned_topic(&cluster, topic, &[&[1, 2]]);
    let mut client = admin(&cluster);
    // 2 MiB of records: 40 s of copying at 50 kB/s.
    for _ in 0..8 {
        let records = (0..64)
            .map(|index| eddy_client::NewRecord::new(None::<Vec<u8>>, vec![index as u8; 4096]))
            .collect();
        run(client.produce(topic, Some(0), records, -1)).expect("produce 256 KiB");
    }
    run(client.alter_broker_configs(
        Some(3),
        &BTreeMap::from([(
            "follower.replication.throttled.rate".to_string(),
            "50000".to_string(),
        )]),
        &[],
        false,
    ))
    .expect("throttle node 3");
    run(client.alter_topic_configs(
        topic,
        BTreeMap::from([(
            "follower.replication.throttled.replicas".to_string(),
            "0:3".to_string(),
        )]),
        Vec::new(),
    ))
    .expect("throttle replica 0:3");
    let outcome = run(
        client.alter_partition_reassignments(&[PartitionReassignment {
            topic: topic.to_string(),
            partition: 0,
            replicas: Some(vec![1, 2, 3]),
        }]),
    )
    .expect("AlterPartitionReassignments");
    assert!(outcome.values().all(Result::is_ok), "{outcome:?}");

    std::thread::sleep(Duration::from_secs(3));
    let in_flight = run(client.list_partition_reassignments()).expect("list reassignments");
    assert_eq!(
        in_flight,
        [OngoingReassignment {
            topic: topic.to_string(),
            partition: 0,
            replicas: vec![1, 2, 3],
            adding: vec![3],
            removing: vec![],
        }],
        "the throttled copy is still under way after 3 s"
    );

    let lifted = Instant::now();
    run(client.alter_topic_configs(
        topic,
        BTreeMap::new(),
        vec!["follower.replication.throttled.replicas".to_string()],
    ))
    .expect("lift the throttle");
    wait_for_replicas(&cluster, &mut client, topic, 0, &[1, 2, 3]);
    println!(
        "throttled reassignment completed {:?} after the throttle was lifted",
        lifted.elapsed()
    );
}
