//! eddy-client against real `eddy broker` processes: version negotiation,
//! the admin helpers' view of a node, errors that name the node, the API and
//! the Kafka error code; topic administration, produce (partitioned as
//! librdkafka does) and fetch (any codec), offsets by time, leaders followed
//! across a three-node cluster, and group consumers sharing, handing over
//! and committing partitions.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_client::{
    AutoOffsetReset, Client, ClientError, ConfigEntry, ErrorCode, GroupConsumer,
    GroupConsumerOptions, ListedOffset, NewRecord, NewTopic, OffsetSpec, TimestampType,
    partition_for_key,
};
use rdkafka::producer::BaseRecord;
use support::Node;
use support::cluster::Cluster;
use support::kafka::{self, Outgoing, RecordingProducer};

const NODE_TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn metadata_describes_the_node_its_topics_and_their_leaders() {
    let node = Node::start();
    let address = node.bootstrap();
    runtime().block_on(async {
        let mut client = Client::new([address.as_str()]).with_node_timeout(NODE_TIMEOUT);
        client
            .create_topic_on(&address, "described", 3, 1)
            .await
            .expect("creating a topic");
        let metadata = client.metadata().await.expect("metadata");
        assert_eq!(metadata.answered_by, address);
        assert_eq!(metadata.controller_id, Some(1));
        assert!(
            metadata
                .cluster_id
                .as_deref()
                .is_some_and(|id| !id.is_empty())
        );
        assert_eq!(metadata.brokers.len(), 1);
        assert_eq!(metadata.brokers[0].id, 1);
        assert_eq!(metadata.brokers[0].port, i32::from(node.port()));
        let topic = metadata
            .topics
            .iter()
            .find(|topic| topic.name == "described")
            .expect("the topic is listed");
        assert_eq!(topic.error, None);
        assert_eq!(topic.partitions.len(), 3);
        for partition in &topic.partitions {
            assert_eq!(partition.leader, Some(1));
            assert_eq!(partition.replicas, vec![1]);
            assert_eq!(partition.isr, vec![1]);
        }
        // The only node leads every partition, internal topics' included.
        let partitions: usize = metadata
            .topics
            .iter()
            .map(|topic| topic.partitions.len())
            .sum();
        assert!(partitions >= 3);
        assert_eq!(metadata.leader_counts().get(&1), Some(&partitions));

        let description = client.describe_cluster().await.expect("describe cluster");
        assert_eq!(description.controller_id, Some(1));
        assert_eq!(Some(description.cluster_id), metadata.cluster_id);
    });
}

#[test]
fn describe_quorum_is_none_when_the_node_does_not_offer_it() {
    let node = Node::start();
    runtime().block_on(async {
        let mut client = Client::new([node.bootstrap()]).with_node_timeout(NODE_TIMEOUT);
        let supported = client
            .connection(&node.bootstrap())
            .await
            .expect("connecting")
            .supports(eddy_protocol::ApiKey::DescribeQuorum);
        let quorum = client.describe_quorum().await.expect("describe quorum");
        assert_eq!(quorum.is_some(), supported);
    });
}

#[test]
fn a_kafka_error_is_an_error_code_naming_the_node_and_api() {
    let node = Node::start();
    let address = node.bootstrap();
    runtime().block_on(async {
        let mut client = Client::new([address.as_str()]).with_node_timeout(NODE_TIMEOUT);
        client
            .create_topic_on(&address, "twice", 1, 1)
            .await
            .expect("first create");
        let error = client
            .create_topic_on(&address, "twice", 1, 1)
            .await
            .expect_err("the topic exists");
        assert_eq!(error.error_code(), Some(ErrorCode::TopicAlreadyExists));
        let text = error.to_string();
        assert!(
            text.contains(&address) && text.contains("CreateTopics"),
            "{text}"
        );
        // The connection survives a Kafka error.
        client
            .metadata_from(&address)
            .await
            .expect("metadata after the error");
    });
}

#[test]
fn an_unreachable_bootstrap_list_names_every_address_tried() {
    let first = format!("127.0.0.1:{}", support::free_port());
    let second = format!("127.0.0.1:{}", support::free_port());
    runtime().block_on(async {
        let mut client =
            Client::new([first.as_str(), second.as_str()]).with_node_timeout(NODE_TIMEOUT);
        let error = client.metadata().await.expect_err("nothing listens");
        assert!(
            matches!(error, ClientError::NoNodeAvailable { .. }),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains(&first) && text.contains(&second), "{text}");
    });
}

// ------------------------------------------------------------------ topics

/// A client for a comma-separated bootstrap list.
fn client_for(bootstrap: &str) -> Client {
    Client::new(bootstrap.split(',')).with_node_timeout(NODE_TIMEOUT)
}

fn config_of<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
    entries
        .iter()
        .find(|entry| entry.name == name)
        .unwrap_or_else(|| panic!("no config {name} in {entries:#?}"))
}

#[test]
fn topics_are_created_described_altered_grown_and_deleted() {
    let node = Node::start();
    runtime().block_on(async {
        let mut client = client_for(&node.bootstrap());
        let alpha = NewTopic {
            name: "alpha".into(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::from([("retention.ms".into(), "3600000".into())]),
        };
        let created = client
            .create_topics(&[alpha.clone(), NewTopic::new("beta", 1)])
            .await
            .expect("CreateTopics");
        assert_eq!(created.get("alpha"), Some(&Ok(())), "{created:?}");
        assert_eq!(created.get("beta"), Some(&Ok(())), "{created:?}");
        let again = client.create_topics(&[alpha]).await.expect("CreateTopics");
        let refusal = again["alpha"].as_ref().expect_err("alpha exists");
        assert_eq!(refusal.code, ErrorCode::TopicAlreadyExists);

        let configs = client
            .describe_topic_configs("alpha")
            .await
            .expect("DescribeConfigs");
        let retention = config_of(&configs, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("3600000"));
        assert_eq!(retention.source, "topic");
        assert_ne!(config_of(&configs, "cleanup.policy").source, "topic");

        client
            .alter_topic_configs(
                "alpha",
                BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
                vec!["retention.ms".into()],
            )
            .await
            .expect("IncrementalAlterConfigs");
        let configs = client
            .describe_topic_configs("alpha")
            .await
            .expect("DescribeConfigs");
        let policy = config_of(&configs, "cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("compact"));
        assert_eq!(policy.source, "topic");
        let retention = config_of(&configs, "retention.ms");
        assert_ne!(retention.source, "topic", "{retention:?}");
        assert_ne!(retention.value.as_deref(), Some("3600000"));

        client
            .create_partitions("alpha", 4)
            .await
            .expect("CreatePartitions");
        let metadata = client.metadata().await.expect("metadata");
        let alpha = metadata
            .topics
            .iter()
            .find(|topic| topic.name == "alpha")
            .expect("alpha is listed");
        assert_eq!(alpha.partitions.len(), 4);
        let shrink = client
            .create_partitions("alpha", 2)
            .await
            .expect_err("partitions never shrink");
        assert_eq!(shrink.error_code(), Some(ErrorCode::InvalidPartitions));

        let deleted = client
            .delete_topics(&["alpha".into(), "never-was".into()])
            .await
            .expect("DeleteTopics");
        assert_eq!(deleted.get("alpha"), Some(&Ok(())), "{deleted:?}");
        let missing = deleted["never-was"].as_ref().expect_err("no such topic");
        assert_eq!(missing.code, ErrorCode::UnknownTopicOrPartition);
        let metadata = client.metadata().await.expect("metadata");
        assert!(metadata.topics.iter().all(|topic| topic.name != "alpha"));
        assert!(metadata.topics.iter().any(|topic| topic.name == "beta"));
    });
}

// ------------------------------------------------------ produce and fetch

fn text(bytes: &Option<Bytes>) -> Option<String> {
    bytes
        .as_ref()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
}

#[test]
fn produce_by_key_picks_the_partition_librdkafka_picks() {
    let node = Node::start();
    let topic = "keyed";
    let partitions = 6;
    let keys: Vec<String> = (0..60).map(|index| format!("customer-{index}")).collect();
    runtime().block_on(async {
        let mut client = client_for(&node.bootstrap());
        let created = client
            .create_topics(&[NewTopic::new(topic, partitions)])
            .await
            .expect("CreateTopics");
        assert_eq!(created[topic], Ok(()));
    });

    let mut config = kafka::client_config(&node.bootstrap());
    config.set("partitioner", "murmur2_random");
    let producer = RecordingProducer::new(&config);
    for (index, key) in keys.iter().enumerate() {
        let record = BaseRecord::with_opaque_to(topic, index)
            .key(key.as_bytes())
            .payload("by librdkafka");
        if let Err((error, _)) = producer.producer.send(record) {
            panic!("queueing {key}: {error}");
        }
    }
    producer.flush(kafka::CLIENT_TIMEOUT);
    let librdkafka: BTreeMap<usize, i32> = producer
        .deliveries
        .acknowledged
        .lock()
        .expect("deliveries")
        .iter()
        .map(|(index, partition, _)| (*index, *partition))
        .collect();
    assert_eq!(librdkafka.len(), keys.len(), "every record was delivered");

    runtime().block_on(async {
        let mut client = client_for(&node.bootstrap());
        for (index, key) in keys.iter().enumerate() {
            let produced = client
                .produce(
                    topic,
                    None,
                    vec![NewRecord::new(Some(key.clone()), "by eddy-client")],
                    -1,
                )
                .await
                .expect("Produce");
            assert_eq!(
                produced.partition, librdkafka[&index],
                "{key} went elsewhere than librdkafka put it"
            );
            assert_eq!(
                partition_for_key(key.as_bytes(), partitions),
                produced.partition
            );
        }
        // Records without a key take the partitions in turn.
        let mut unkeyed = BTreeSet::new();
        for _ in 0..partitions {
            let produced = client
                .produce(
                    topic,
                    None,
                    vec![NewRecord::new(None::<Bytes>, "no key")],
                    1,
                )
                .await
                .expect("Produce");
            unkeyed.insert(produced.partition);
        }
        assert_eq!(unkeyed.len(), partitions as usize);
    });
}

#[test]
fn fetch_returns_records_with_headers_from_the_asked_offset_in_any_codec() {
    let node = Node::start();
    let topic = "browsed";
    runtime().block_on(async {
        let mut client = client_for(&node.bootstrap());
        client
            .create_topics(&[NewTopic::new(topic, 1)])
            .await
            .expect("CreateTopics");
        let records: Vec<NewRecord> = (0..5)
            .map(|index| NewRecord {
                key: (index != 3).then(|| Bytes::from(format!("key-{index}"))),
                value: Some(Bytes::from(format!("value-{index}"))),
                headers: vec![
                    ("trace".into(), Some(Bytes::from(format!("t{index}")))),
                    ("empty".into(), None),
                ],
                timestamp_ms: Some(1_700_000_000_000 + index),
            })
            .collect();
        let produced = client
            .produce(topic, Some(0), records, -1)
            .await
            .expect("Produce");
        assert_eq!(produced.base_offset, Some(0));

        let fetched = client
            .fetch(topic, 0, 0, 1 << 20, Duration::from_millis(500))
            .await
            .expect("Fetch");
        assert_eq!(fetched.records.len(), 5);
        assert_eq!(fetched.high_watermark, 5);
        assert_eq!(fetched.next_offset, 5);
        assert_eq!(fetched.log_start_offset, Some(0));
        let third = &fetched.records[3];
        assert_eq!(third.offset, 3);
        assert_eq!(third.key, None);
        assert_eq!(text(&third.value).as_deref(), Some("value-3"));
        assert_eq!(third.timestamp_ms, 1_700_000_000_003);
        assert_eq!(third.timestamp_type, TimestampType::CreateTime);
        assert_eq!(
            third.headers,
            vec![
                ("trace".to_string(), Some(Bytes::from_static(b"t3"))),
                ("empty".to_string(), None)
            ]
        );

        // The batch starts at 0: records before the asked offset are left out.
        let from_two = client
            .fetch(topic, 0, 2, 1 << 20, Duration::ZERO)
            .await
            .expect("Fetch");
        let offsets: Vec<i64> = from_two
            .records
            .iter()
            .map(|record| record.offset)
            .collect();
        assert_eq!(offsets, vec![2, 3, 4]);

        // At the end: nothing, after waiting at most max_wait.
        let started = Instant::now();
        let at_end = client
            .fetch(topic, 0, 5, 1 << 20, Duration::from_millis(300))
            .await
            .expect("Fetch");
        assert!(at_end.records.is_empty());
        assert_eq!(at_end.next_offset, 5);
        assert!(started.elapsed() < NODE_TIMEOUT);

        let error = client
            .fetch(topic, 0, 100, 1 << 20, Duration::ZERO)
            .await
            .expect_err("past the end");
        match &error {
            ClientError::OffsetOutOfRange {
                offset,
                log_start_offset,
                high_watermark,
                ..
            } => {
                assert_eq!(*offset, 100);
                assert_eq!(*log_start_offset, Some(0));
                assert_eq!(*high_watermark, Some(5));
            }
            other => panic!("expected OffsetOutOfRange, got {other}"),
        }
        assert!(error.to_string().contains("browsed-0"), "{error}");
    });

    // Batches compressed by librdkafka with each codec read back the same.
    let mut expected = 5;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let mut config = kafka::client_config(&node.bootstrap());
        config
            .set("compression.codec", codec)
            .set("linger.ms", "20");
        let outgoing: Vec<Outgoing> = (0..20)
            .map(|index| Outgoing {
                key: format!("{codec}-{index}").into_bytes(),
                value: format!("{codec} value {index} ").repeat(10).into_bytes(),
                headers: vec![("codec".into(), codec.as_bytes().to_vec())],
                timestamp_ms: None,
            })
            .collect();
        kafka::produce_all(&config, topic, 0, &outgoing);
        let first = expected;
        expected += outgoing.len() as i64;
        runtime().block_on(async {
            let mut client = client_for(&node.bootstrap());
            let fetched = client
                .fetch(topic, 0, first + 1, 1 << 20, Duration::ZERO)
                .await
                .expect("Fetch");
            assert_eq!(fetched.records.len(), outgoing.len() - 1, "{codec}");
            for (record, sent) in fetched.records.iter().zip(&outgoing[1..]) {
                assert_eq!(record.key.as_deref(), Some(&sent.key[..]), "{codec}");
                assert_eq!(record.value.as_deref(), Some(&sent.value[..]), "{codec}");
                assert_eq!(
                    record.headers,
                    vec![("codec".to_string(), Some(Bytes::from(codec)))]
                );
            }
            assert_eq!(fetched.next_offset, expected, "{codec}");
        });
    }
}

#[test]
fn list_offsets_by_timestamp_finds_the_first_record_at_or_after_it() {
    let node = Node::start();
    let topic = "timed";
    let base_ms = support::now_ms() - 60_000;
    runtime().block_on(async {
        let mut client = client_for(&node.bootstrap());
        client
            .create_topics(&[NewTopic::new(topic, 2)])
            .await
            .expect("CreateTopics");
        for step in 0..3 {
            let record = NewRecord {
                value: Some(Bytes::from(format!("at {step}"))),
                timestamp_ms: Some(base_ms + step * 1_000),
                ..NewRecord::default()
            };
            client
                .produce(topic, Some(0), vec![record], 1)
                .await
                .expect("Produce");
        }
        let listed = client
            .list_offsets(topic, &[0, 1], OffsetSpec::Timestamp(base_ms + 1_500))
            .await
            .expect("ListOffsets");
        assert_eq!(
            listed[&0],
            Ok(ListedOffset {
                offset: Some(2),
                timestamp_ms: Some(base_ms + 2_000)
            })
        );
        assert_eq!(listed[&1].as_ref().map(|found| found.offset), Ok(None));
        let exact = client
            .list_offsets(topic, &[0], OffsetSpec::Timestamp(base_ms + 1_000))
            .await
            .expect("ListOffsets");
        assert_eq!(exact[&0].as_ref().map(|found| found.offset), Ok(Some(1)));
        let later = client
            .list_offsets(topic, &[0], OffsetSpec::Timestamp(base_ms + 10_000))
            .await
            .expect("ListOffsets");
        assert_eq!(later[&0].as_ref().map(|found| found.offset), Ok(None));
        let earliest = client
            .list_offsets(topic, &[0, 1], OffsetSpec::Earliest)
            .await
            .expect("ListOffsets");
        assert_eq!(earliest[&0].as_ref().map(|found| found.offset), Ok(Some(0)));
        let latest = client
            .list_offsets(topic, &[0, 1], OffsetSpec::Latest)
            .await
            .expect("ListOffsets");
        assert_eq!(latest[&0].as_ref().map(|found| found.offset), Ok(Some(3)));
        assert_eq!(latest[&1].as_ref().map(|found| found.offset), Ok(Some(0)));
        let unknown = client
            .list_offsets(topic, &[7], OffsetSpec::Latest)
            .await
            .expect("ListOffsets");
        let failure = unknown[&7].as_ref().expect_err("no partition 7");
        assert_eq!(failure.code, ErrorCode::UnknownTopicOrPartition);

        let dirs = client
            .describe_log_dirs_from(&node.bootstrap())
            .await
            .expect("DescribeLogDirs");
        let replica = dirs
            .iter()
            .flat_map(|dir| &dir.replicas)
            .find(|replica| replica.topic == topic && replica.partition == 0)
            .unwrap_or_else(|| panic!("no replica of {topic}-0 in {dirs:#?}"));
        assert!(replica.size_bytes > 0, "{replica:?}");
    });
}

// -------------------------------------------------------------- a cluster

/// Budget for a three-node cluster to settle (full ISRs, a new leader).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A three-node cluster with `topic` (`partitions` partitions, three
/// replicas each) created through the client and fully in sync.
fn cluster_with_topic(topic: &str, partitions: i32) -> Cluster {
    let cluster = Cluster::start(3, &["offsets.topic.replication.factor=3"]);
    runtime().block_on(async {
        let mut client = client_for(&cluster.bootstrap());
        let created = client
            .create_topics(&[NewTopic {
                name: topic.into(),
                partitions,
                replication_factor: 3,
                configs: BTreeMap::new(),
            }])
            .await
            .expect("CreateTopics");
        assert_eq!(created[topic], Ok(()));
    });
    cluster
        .wait_for_full_isr(&[topic], 3, SETTLE_TIMEOUT)
        .unwrap_or_else(|short| panic!("{topic}: {short}"));
    cluster
}

#[test]
fn the_client_follows_partition_leaders_and_a_dead_leaders_successor() {
    let topic = "spread";
    let mut cluster = cluster_with_topic(topic, 3);
    let bootstrap = cluster.bootstrap();
    let runtime = runtime();
    let mut client = client_for(&bootstrap);
    runtime.block_on(async {
        for partition in 0..3 {
            let records = (0..4)
                .map(|index| NewRecord::new(None::<Bytes>, format!("{partition}:{index}")))
                .collect();
            let produced = client
                .produce(topic, Some(partition), records, -1)
                .await
                .expect("Produce at the leader");
            assert_eq!(produced.base_offset, Some(0));
        }
        let latest = client
            .list_offsets(topic, &[0, 1, 2], OffsetSpec::Latest)
            .await
            .expect("ListOffsets");
        for partition in 0..3 {
            assert_eq!(
                latest[&partition],
                Ok(ListedOffset {
                    offset: Some(4),
                    timestamp_ms: None
                })
            );
        }
    });
    let leaders: BTreeSet<i32> = (0..3)
        .filter_map(|partition| cluster.view()?.partition(topic, partition))
        .map(|(leader, _, _)| leader)
        .collect();
    eprintln!("leaders of {topic}: {leaders:?}");

    let (leader, _, _) = cluster
        .view()
        .and_then(|view| view.partition(topic, 0))
        .expect("partition 0 has a leader");
    cluster.node(leader).kill();
    let killed = Instant::now();
    runtime.block_on(async {
        // The cached leader is dead: the client finds the new one.
        let produced = client
            .produce(
                topic,
                Some(0),
                vec![NewRecord::new(None::<Bytes>, "after the kill")],
                -1,
            )
            .await
            .expect("Produce after the leader died");
        eprintln!(
            "produced to {topic}-0 {:?} after its leader (node {leader}) was killed",
            killed.elapsed()
        );
        assert_eq!(produced.base_offset, Some(4));
        let fetched = client
            .fetch(topic, 0, 0, 1 << 20, Duration::ZERO)
            .await
            .expect("Fetch from the new leader");
        let values: Vec<String> = fetched
            .records
            .iter()
            .filter_map(|record| text(&record.value))
            .collect();
        assert_eq!(values, ["0:0", "0:1", "0:2", "0:3", "after the kill"]);
    });
    let (new_leader, _, _) = cluster
        .view()
        .and_then(|view| view.partition(topic, 0))
        .expect("partition 0 has a leader");
    assert_ne!(new_leader, leader);
}

// ------------------------------------------------------------------ groups

/// What the consuming tasks share with the test.
#[derive(Default)]
struct Consumption {
    /// (consumer, partition, offset) of every record handed out.
    records: Mutex<Vec<(&'static str, i32, i64)>>,
    /// Each consumer's latest (generation, partitions of the topic).
    assignments: Mutex<BTreeMap<&'static str, (i32, Vec<i32>)>>,
    stop: AtomicBool,
}

impl Consumption {
    fn distinct(&self) -> BTreeSet<(i32, i64)> {
        let records = self.records.lock().expect("records");
        records
            .iter()
            .map(|(_, partition, offset)| (*partition, *offset))
            .collect()
    }

    fn assert_each_record_once(&self) {
        let records = self.records.lock().expect("records");
        let mut seen = BTreeSet::new();
        for (consumer, partition, offset) in records.iter() {
            assert!(
                seen.insert((*partition, *offset)),
                "{consumer} got {partition}@{offset} a second time"
            );
        }
    }
}

/// Polls and commits until told to stop, noting what it got; returns the
/// consumer.
async fn consume(
    name: &'static str,
    mut consumer: GroupConsumer,
    shared: Arc<Consumption>,
) -> GroupConsumer {
    while !shared.stop.load(Ordering::SeqCst) {
        let records = consumer
            .poll(Duration::from_millis(200))
            .await
            .unwrap_or_else(|error| panic!("{name} polling: {error}"));
        {
            let mut seen = shared.records.lock().expect("records");
            seen.extend(
                records
                    .iter()
                    .map(|record| (name, record.partition, record.offset)),
            );
        }
        if let Err(error) = consumer.commit().await {
            let rebalancing = matches!(
                error.error_code(),
                Some(
                    ErrorCode::RebalanceInProgress
                        | ErrorCode::IllegalGeneration
                        | ErrorCode::UnknownMemberId
                )
            );
            assert!(rebalancing, "{name} committing: {error}");
        }
        let partitions = consumer
            .assignment()
            .into_iter()
            .flat_map(|(_, partitions)| partitions)
            .collect();
        shared
            .assignments
            .lock()
            .expect("assignments")
            .insert(name, (consumer.generation_id(), partitions));
    }
    consumer
}

/// Waits (without blocking the runtime) until `condition` holds.
async fn eventually(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn group_options() -> GroupConsumerOptions {
    GroupConsumerOptions {
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 15_000,
        heartbeat_interval_ms: 300,
        auto_offset_reset: AutoOffsetReset::Earliest,
        ..GroupConsumerOptions::default()
    }
}

async fn produce_round(client: &mut Client, topic: &str, partitions: i32, per_partition: usize) {
    for partition in 0..partitions {
        let records = (0..per_partition)
            .map(|index| NewRecord::new(None::<Bytes>, format!("{partition}:{index}")))
            .collect();
        client
            .produce(topic, Some(partition), records, -1)
            .await
            .expect("Produce");
    }
}

#[test]
fn two_group_consumers_split_partitions_consume_everything_once_and_hand_over() {
    let topic = "work";
    let partitions = 4;
    let group = "workers";
    let cluster = cluster_with_topic(topic, partitions);
    let bootstrap = cluster.bootstrap();
    let topics = vec![topic.to_string()];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut admin = client_for(&bootstrap);
        let shared = Arc::new(Consumption::default());
        let first = GroupConsumer::join(client_for(&bootstrap), group, &topics, group_options())
            .await
            .expect("the first member joins");
        assert_eq!(
            first.assignment(),
            vec![(topic.to_string(), vec![0, 1, 2, 3])]
        );
        let first_task = tokio::spawn(consume("first", first, shared.clone()));
        let second = GroupConsumer::join(client_for(&bootstrap), group, &topics, group_options())
            .await
            .expect("the second member joins");
        let second_task = tokio::spawn(consume("second", second, shared.clone()));
        eventually(
            "both members hold two partitions of one generation",
            SETTLE_TIMEOUT,
            || {
                let assignments = shared.assignments.lock().expect("assignments");
                let (Some(first), Some(second)) =
                    (assignments.get("first"), assignments.get("second"))
                else {
                    return false;
                };
                first.0 == second.0 && first.1.len() == 2 && second.1.len() == 2
            },
        )
        .await;

        let per_round = 40;
        produce_round(&mut admin, topic, partitions, per_round).await;
        let expected = partitions as usize * per_round;
        eventually("every record consumed", SETTLE_TIMEOUT, || {
            shared.distinct().len() >= expected
        })
        .await;
        shared.stop.store(true, Ordering::SeqCst);
        let mut first = first_task.await.expect("first consumer");
        let second = second_task.await.expect("second consumer");
        shared.assert_each_record_once();
        {
            let records = shared.records.lock().expect("records");
            for name in ["first", "second"] {
                let theirs: BTreeSet<i32> = records
                    .iter()
                    .filter(|(consumer, _, _)| *consumer == name)
                    .map(|(_, partition, _)| *partition)
                    .collect();
                assert_eq!(theirs.len(), 2, "{name} read from {theirs:?}");
            }
        }

        let description = admin
            .describe_groups(&[group.to_string()])
            .await
            .expect("DescribeGroups")
            .remove(0);
        assert_eq!(description.state, "Stable");
        assert_eq!(description.protocol_type, "consumer");
        assert_eq!(description.protocol, "range");
        assert_eq!(description.members.len(), 2);
        for consumer in [&first, &second] {
            let member = description
                .members
                .iter()
                .find(|member| member.member_id == consumer.member_id())
                .unwrap_or_else(|| panic!("{} is not described", consumer.member_id()));
            assert_eq!(member.assignment, consumer.assignment());
            assert_eq!(member.subscription, topics);
        }
        let listing = admin.list_groups().await.expect("ListGroups");
        assert!(listing.failures.is_empty(), "{:?}", listing.failures);
        let listed = listing
            .groups
            .iter()
            .find(|listed| listed.group_id == group)
            .expect("the group is listed");
        assert_eq!(listed.protocol_type, "consumer");

        let committed = admin.group_offsets(group).await.expect("OffsetFetch");
        for partition in 0..partitions {
            assert_eq!(
                committed.get(&(topic.to_string(), partition)),
                Some(&(per_round as i64)),
                "{committed:?}"
            );
        }

        // The second leaves; the first takes every partition and carries on
        // from where the second committed.
        second.leave().await.expect("LeaveGroup");
        first.commit().await.expect("commit");
        shared.stop.store(false, Ordering::SeqCst);
        let first_task = tokio::spawn(consume("first", first, shared.clone()));
        produce_round(&mut admin, topic, partitions, 10).await;
        let expected = partitions as usize * (per_round + 10);
        eventually("the first consumes all the rest", SETTLE_TIMEOUT, || {
            shared.distinct().len() >= expected
        })
        .await;
        shared.stop.store(true, Ordering::SeqCst);
        let mut first = first_task.await.expect("first consumer");
        shared.assert_each_record_once();
        assert_eq!(
            first.assignment(),
            vec![(topic.to_string(), vec![0, 1, 2, 3])]
        );
        first.commit().await.expect("commit");
        first.leave().await.expect("LeaveGroup");

        // An empty group takes an admin commit; a group with a member refuses it.
        let description = admin
            .describe_groups(&[group.to_string()])
            .await
            .expect("DescribeGroups")
            .remove(0);
        assert_eq!(description.state, "Empty");
        assert!(description.members.is_empty());
        let rewind = BTreeMap::from([((topic.to_string(), 0), 7)]);
        admin
            .commit_group_offsets(group, &rewind)
            .await
            .expect("an admin commit to an empty group");
        let committed = admin.group_offsets(group).await.expect("OffsetFetch");
        assert_eq!(committed.get(&(topic.to_string(), 0)), Some(&7));
        assert_eq!(committed.get(&(topic.to_string(), 1)), Some(&50));

        let mut third =
            GroupConsumer::join(client_for(&bootstrap), group, &topics, group_options())
                .await
                .expect("a third member joins");
        let refused = admin
            .commit_group_offsets(group, &rewind)
            .await
            .expect_err("the group has a member");
        assert_eq!(
            refused.error_code(),
            Some(ErrorCode::UnknownMemberId),
            "{refused}"
        );
        let records = third.poll(Duration::from_secs(2)).await.expect("poll");
        assert_eq!(
            records
                .iter()
                .filter(|record| record.partition == 0)
                .map(|record| record.offset)
                .min(),
            Some(7),
            "the third starts partition 0 from the rewound offset"
        );
        third.leave().await.expect("LeaveGroup");

        let deleted = admin
            .delete_groups(&[group.to_string(), "no-such-group".to_string()])
            .await
            .expect("DeleteGroups");
        assert_eq!(deleted[group], Ok(()));
        assert!(deleted["no-such-group"].is_err(), "{deleted:?}");
        let listing = admin.list_groups().await.expect("ListGroups");
        assert!(listing.groups.iter().all(|listed| listed.group_id != group));
    });
}

/// `__consumer_offsets` partitions (Kafka's default, and Eddy's).
const OFFSETS_PARTITIONS: i32 = 50;

#[test]
fn a_group_consumer_carries_on_when_its_coordinator_dies() {
    let topic = "moving";
    let partitions = 2;
    let group = "movers";
    let mut cluster = cluster_with_topic(topic, partitions);
    let bootstrap = cluster.bootstrap();
    let topics = vec![topic.to_string()];
    let runtime = runtime();
    let (mut consumer, mut admin) = runtime.block_on(async {
        let mut admin = client_for(&bootstrap);
        let consumer = GroupConsumer::join(client_for(&bootstrap), group, &topics, group_options())
            .await
            .expect("joining");
        produce_round(&mut admin, topic, partitions, 20).await;
        (consumer, admin)
    });
    let mut seen = BTreeSet::new();
    let mut consume_until = |consumer: &mut GroupConsumer, count: usize| {
        runtime.block_on(async {
            let deadline = Instant::now() + SETTLE_TIMEOUT;
            let mut committed = false;
            while seen.len() < count || !committed {
                assert!(
                    Instant::now() < deadline,
                    "{} of {count} records, committed: {committed}",
                    seen.len()
                );
                let records = consumer
                    .poll(Duration::from_millis(200))
                    .await
                    .expect("poll");
                seen.extend(
                    records
                        .iter()
                        .map(|record| (record.partition, record.offset)),
                );
                // Commits may fail while the coordinator moves; the last must not.
                committed = consumer.commit().await.is_ok();
            }
        })
    };
    consume_until(&mut consumer, 40);

    let coordinator = cluster
        .group_coordinator(group, OFFSETS_PARTITIONS)
        .expect("the group has a coordinator");
    cluster.node(coordinator).kill();
    let killed = Instant::now();
    runtime.block_on(produce_round(&mut admin, topic, partitions, 20));
    consume_until(&mut consumer, 80);
    eprintln!(
        "consumed and committed everything {:?} after the coordinator (node {coordinator}) died",
        killed.elapsed()
    );
    let new_coordinator = cluster
        .group_coordinator(group, OFFSETS_PARTITIONS)
        .expect("the group has a coordinator");
    assert_ne!(new_coordinator, coordinator);
    runtime.block_on(async {
        let committed = admin.group_offsets(group).await.expect("OffsetFetch");
        for partition in 0..partitions {
            assert_eq!(committed.get(&(topic.to_string(), partition)), Some(&40));
        }
        consumer.leave().await.expect("LeaveGroup");
    });
}
