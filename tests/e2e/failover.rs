//! A three-node cluster of real `eddy broker` processes, replication factor
//! 3, and real clients through failures: leaders SIGKILLed, paused with
//! SIGSTOP, nodes stopped for good, the metadata quorum lost and regained.
//! Every acknowledged record must be there afterwards, exactly once and in
//! order.

mod support;

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use support::cluster::Cluster;
use support::kafka::{
    self, Outgoing, RecordingProducer, create_replicated_topic, read_partition, values,
};

/// Budget for leadership to move after a node dies (fencing takes about
/// broker.session.timeout.ms at most, 200 ms when the process is gone).
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);

fn durable_producer(bootstrap: &str) -> RecordingProducer {
    RecordingProducer::new(&kafka::durable_producer_config(bootstrap))
}

fn record(partition: i32, sequence: usize) -> Outgoing {
    Outgoing {
        key: format!("p{partition}").into_bytes(),
        value: format!("p{partition}-{sequence:06}").into_bytes(),
        headers: Vec::new(),
        timestamp_ms: None,
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
        |sequence| format!("p{partition}-{sequence:06}"),
    );
}

#[test]
fn killing_the_leader_moves_leadership_and_librdkafka_keeps_producing() {
    let mut cluster = Cluster::start(3, &[]);
    let topic = "orders";
    create_replicated_topic(&cluster.bootstrap(), topic, 3, 3, &[]);
    let (leader, epoch, isr) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("partition 0 gets a leader and a full ISR");
    assert_eq!(isr.len(), 3, "all three replicas start in sync");

    let producer = durable_producer(&cluster.bootstrap());
    let per_partition = 3000;
    let send = |from: usize, to: usize| {
        for sequence in from..to {
            for partition in 0..3 {
                producer.send(
                    topic,
                    partition,
                    partition as usize * per_partition + sequence,
                    &record(partition, sequence),
                );
            }
        }
    };
    send(0, 1000);
    cluster.node(leader).kill();
    let killed = Instant::now();
    send(1000, 2000);
    let (new_leader, new_epoch, _) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |new, _, _| {
            new > 0 && new != leader
        })
        .unwrap_or_else(|| panic!("no new leader for {topic}-0 after node {leader} died"));
    eprintln!(
        "leadership of {topic}-0 moved from node {leader} to node {new_leader} in {:?}",
        killed.elapsed()
    );
    assert!(new_epoch > epoch, "the leader epoch is bumped");
    cluster.node(leader).restart();
    send(2000, 3000);
    producer.flush_expecting_every_record_acknowledged(Duration::from_secs(60), "");

    // The returning node catches up and rejoins the ISR.
    cluster
        .wait_for_partition(topic, 0, Duration::from_secs(20), |_, _, isr| {
            isr.contains(&leader) && isr.len() == 3
        })
        .unwrap_or_else(|| panic!("node {leader} did not rejoin the ISR of {topic}-0"));
    // The controller said why, in the events topic any client can read.
    let events = values(&read_partition(&cluster.bootstrap(), "__eddy_events", 0));
    let said = |kind: &str, node: i32| {
        events.iter().any(|event| {
            let event: serde_json::Value = serde_json::from_str(event).unwrap_or_default();
            event["kind"] == kind && event["node"] == node
        })
    };
    assert!(
        said("broker_fenced", leader),
        "no broker_fenced event for node {leader} in {events:#?}"
    );
    assert!(
        said("leader_elected", new_leader),
        "no leader_elected event for node {new_leader} in {events:#?}"
    );
    let acknowledged = producer.acknowledged_sequences(per_partition);
    for partition in 0..3 {
        let sequences = acknowledged.get(&partition).cloned().unwrap_or_default();
        assert_eq!(
            sequences.len(),
            per_partition,
            "every record of partition {partition} was acknowledged"
        );
        assert_acknowledged_once_in_order(&cluster, topic, partition, &sequences);
    }
}

#[test]
fn min_insync_replicas_3_refuses_writes_while_a_node_is_down() {
    let mut cluster = Cluster::start(3, &[]);
    let topic = "strict";
    create_replicated_topic(
        &cluster.bootstrap(),
        topic,
        1,
        3,
        &[("min.insync.replicas", "3")],
    );
    let (leader, _, _) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let producer: ThreadedProducer<kafka::Recorder> = {
        let mut config = kafka::client_config(&cluster.bootstrap());
        config
            .set("acks", "all")
            .set("message.timeout.ms", "3000")
            .set("retries", "0");
        config
            .create_with_context(kafka::Recorder::default())
            .expect("producer")
    };
    let deliveries = producer.context().0.clone();
    let send = |index: usize| {
        producer
            .send(
                BaseRecord::<str, str, usize>::with_opaque_to(topic, index)
                    .partition(0)
                    .payload("x"),
            )
            .expect("queued");
        producer.flush(Duration::from_secs(10)).expect("flushed");
    };
    send(0);
    assert_eq!(
        deliveries.acknowledged_count(),
        1,
        "accepted with all three in sync"
    );

    cluster.node(follower).kill();
    cluster
        .wait_for_partition(topic, 0, Duration::from_secs(15), |_, _, isr| {
            !isr.contains(&follower)
        })
        .expect("the dead follower leaves the ISR");
    send(1);
    let failed = deliveries.failed.lock().expect("deliveries").clone();
    assert_eq!(failed.len(), 1, "refused with two in sync");
    assert!(
        matches!(
            failed[0].1,
            KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)
        ),
        "NOT_ENOUGH_REPLICAS, got {:?}",
        failed[0].1
    );

    cluster.node(follower).restart();
    cluster
        .wait_for_partition(topic, 0, Duration::from_secs(20), |_, _, isr| {
            isr.len() == 3
        })
        .expect("the follower rejoins the ISR");
    send(2);
    assert_eq!(
        deliveries.acknowledged_count(),
        2,
        "accepted again once the node is back; failures: {:?}",
        deliveries.failed.lock().expect("deliveries")
    );
}

#[test]
fn a_paused_leader_is_fenced_and_rejoins_as_a_follower_when_resumed() {
    let mut cluster = Cluster::start(3, &[]);
    let topic = "paused";
    create_replicated_topic(&cluster.bootstrap(), topic, 1, 3, &[]);
    let (leader, _, _) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");
    let producer = durable_producer(&cluster.bootstrap());
    for sequence in 0..200 {
        producer.send(topic, 0, sequence, &record(0, sequence));
    }
    producer.flush(Duration::from_secs(30));

    cluster.node(leader).pause();
    let paused = Instant::now();
    let (new_leader, _, isr) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |new, _, _| {
            new > 0 && new != leader
        })
        .unwrap_or_else(|| panic!("the paused leader {leader} was not replaced"));
    eprintln!(
        "node {leader} paused; node {new_leader} leads after {:?}",
        paused.elapsed()
    );
    assert!(!isr.contains(&leader), "the paused node left the ISR");
    for sequence in 200..400 {
        producer.send(topic, 0, sequence, &record(0, sequence));
    }
    producer.flush(Duration::from_secs(60));

    cluster.node(leader).resume();
    cluster
        .wait_for_partition(topic, 0, Duration::from_secs(20), |_, _, isr| {
            isr.contains(&leader)
        })
        .unwrap_or_else(|| panic!("node {leader} did not rejoin the ISR after SIGCONT"));
    let failed = producer.deliveries.failed_count();
    assert_eq!(failed, 0, "no acknowledged write was refused");
    let acknowledged = producer.acknowledged_sequences(usize::MAX);
    assert_acknowledged_once_in_order(&cluster, topic, 0, &acknowledged[&0]);
}

#[test]
fn losing_the_quorum_times_writes_out_and_a_returning_node_restores_them() {
    let mut cluster = Cluster::start(3, &[]);
    let topic = "quorum";
    create_replicated_topic(&cluster.bootstrap(), topic, 1, 3, &[]);
    cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");
    cluster.node(2).kill();
    cluster.node(3).kill();
    let producer: ThreadedProducer<kafka::Recorder> = {
        let mut config = kafka::client_config(&cluster.node(1).bootstrap());
        config
            .set("acks", "all")
            .set("message.timeout.ms", "4000")
            .set("request.timeout.ms", "2000");
        config
            .create_with_context(kafka::Recorder::default())
            .expect("producer")
    };
    let deliveries = producer.context().0.clone();
    let started = Instant::now();
    producer
        .send(
            BaseRecord::<str, str, usize>::with_opaque_to(topic, 0usize)
                .partition(0)
                .payload("lost"),
        )
        .expect("queued");
    producer.flush(Duration::from_secs(15)).expect("flushed");
    assert_eq!(
        deliveries.failed_count(),
        1,
        "the write fails without a quorum"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "it fails with a timeout, not a hang ({:?})",
        started.elapsed()
    );

    cluster.node(2).restart();
    let recovered = support::wait_until(Duration::from_secs(30), || {
        producer
            .send(
                BaseRecord::<str, str, usize>::with_opaque_to(topic, 1usize)
                    .partition(0)
                    .payload("back"),
            )
            .is_ok()
            && producer.flush(Duration::from_secs(6)).is_ok()
            && deliveries.acknowledged_count() > 0
    });
    assert!(
        recovered,
        "writes succeed again once two of three nodes run"
    );
}

/// acks=all Produce requests sent back to back on one connection (as
/// librdkafka pipelines them) are appended in order and answered in order,
/// each once the in-sync replicas have its batch, with a request that needs
/// no replication answered in its place between them.
#[test]
fn pipelined_acks_all_requests_are_answered_in_order() {
    use eddy_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use eddy_protocol::messages::{ApiVersionsRequest, ProduceRequest};
    use eddy_protocol::records::{Compression, Record, RecordBatch};
    use eddy_protocol::{ApiKey, RequestBody, ResponseBody};

    const PRODUCE_VERSION: i16 = 9;
    const RECORDS_PER_BATCH: i64 = 10;
    let cluster = Cluster::start(3, &[]);
    let topic = "pipelined";
    create_replicated_topic(&cluster.bootstrap(), topic, 1, 3, &[]);
    let (leader, _, _) = cluster
        .wait_for_agreed_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");
    let leader_address = cluster.nodes[(leader - 1) as usize].bootstrap();
    let produce = |batch: i64| {
        let records = (0..RECORDS_PER_BATCH)
            .map(|index| Record {
                offset_delta: index as i32,
                value: Some(format!("batch-{batch}-record-{index}").into()),
                ..Record::default()
            })
            .collect();
        let records = RecordBatch::new(0, support::now_ms(), records)
            .encode(Compression::None)
            .expect("encoding a batch");
        RequestBody::Produce(ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(records),
                    ..PartitionProduceData::default()
                }],
                ..TopicProduceData::default()
            }],
            ..ProduceRequest::default()
        })
    };
    let mut connection =
        support::raw::RawConnection::open(&leader_address, Duration::from_secs(15));
    // Produce, Produce, ApiVersions, Produce, Produce: all sent before any
    // answer is read.
    for request in 0..5 {
        if request == 2 {
            connection.send_request(RequestBody::ApiVersions(ApiVersionsRequest::default()), 3);
        } else {
            connection.send_request(produce(request), PRODUCE_VERSION);
        }
    }
    let mut offsets = Vec::new();
    for request in 0..5 {
        let key = if request == 2 {
            ApiKey::ApiVersions
        } else {
            ApiKey::Produce
        };
        let version = if request == 2 { 3 } else { PRODUCE_VERSION };
        let (correlation_id, body) = connection.read_next_response(key, version);
        assert_eq!(
            correlation_id,
            request + 1,
            "responses come in request order"
        );
        match body {
            ResponseBody::ApiVersions(versions) => assert_eq!(versions.error_code, 0),
            ResponseBody::Produce(response) => {
                let partition = &response.responses[0].partition_responses[0];
                assert_eq!(partition.error_code, 0, "{partition:?}");
                offsets.push(partition.base_offset);
            }
            other => panic!("unexpected response {other:?}"),
        }
    }
    assert_eq!(
        offsets,
        [
            0,
            RECORDS_PER_BATCH,
            2 * RECORDS_PER_BATCH,
            3 * RECORDS_PER_BATCH
        ],
        "the batches were appended in the order sent"
    );
    let stored = values(&read_partition(&cluster.bootstrap(), topic, 0));
    assert_eq!(stored.len(), 40, "every acknowledged record is stored");
}
