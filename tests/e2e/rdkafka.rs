//! librdkafka, through the `rdkafka` crate (librdkafka 2.12), against a real
//! node: an idempotent producer (acks=all) writes 12,000 records with each
//! compression codec, a consumer reads them back by assignment exactly and
//! in order, and the batches on disk carry the codec the producer chose,
//! the producer's id and gap-free sequence numbers.

mod support;

use std::time::Duration;

use eddy_protocol::records::Compression;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, Timestamp, TopicPartitionList};
use support::Node;
use support::kafka::{
    CLIENT_TIMEOUT, Outgoing, Received, block_on, client_config, consumer_config, create_topic,
    produce_all, read_partition,
};
use support::storage::stored_batches;

const RECORDS_PER_CODEC: usize = 12_000;
/// Small batches, so that many produce requests are in flight at once and
/// the node checks many sequence numbers.
const RECORDS_PER_BATCH: &str = "500";

/// Compressible, distinct records with a key, a header and a timestamp.
fn records(codec: Compression, count: usize) -> Vec<Outgoing> {
    // Timestamps in the recent past: far enough from retention and from
    // the broker's future-timestamp limit.
    let first_timestamp_ms = support::now_ms() - count as i64;
    (0..count)
        .map(|index| Outgoing {
            key: format!("key-{index:05}").into_bytes(),
            value: format!(
                "{codec} record {index:05}: {}",
                "the quick brown fox jumps over the lazy dog ".repeat(1 + index % 3)
            )
            .into_bytes(),
            headers: vec![("index".to_string(), index.to_string().into_bytes())],
            timestamp_ms: Some(first_timestamp_ms + index as i64),
        })
        .collect()
}

/// Fails with the first difference between what was sent and what came back.
fn assert_read_back(sent: &[Outgoing], received: &[Received]) {
    for (index, (sent, received)) in sent.iter().zip(received).enumerate() {
        let expected = Received {
            offset: index as i64,
            key: Some(sent.key.clone()),
            value: Some(sent.value.clone()),
            headers: sent
                .headers
                .iter()
                .map(|(key, value)| (key.clone(), Some(value.clone())))
                .collect(),
            timestamp: sent
                .timestamp_ms
                .map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
        };
        assert_eq!(received, &expected, "record {index} differs");
    }
    assert_eq!(received.len(), sent.len(), "records read back");
}

/// Produces with `codec`, reads back, then checks the stored batches.
fn idempotent_round_trip(codec: Compression) {
    let mut node = Node::start();
    let topic = format!("codec-{codec}");
    create_topic(&node.bootstrap(), &topic, 1, &[]);

    let sent = records(codec, RECORDS_PER_CODEC);
    let mut config = client_config(&node.bootstrap());
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", codec.name())
        .set("batch.num.messages", RECORDS_PER_BATCH);
    let offsets = produce_all(&config, &topic, 0, &sent);
    assert_eq!(
        offsets,
        (0..sent.len() as i64).collect::<Vec<_>>(),
        "each record acknowledged at its place in the stream"
    );

    assert_read_back(&sent, &read_partition(&node.bootstrap(), &topic, 0));

    // A clean stop, so that the segment holds everything the node wrote.
    let status = node.terminate();
    assert!(
        status.success(),
        "SIGTERM: clean exit expected, got {status}"
    );
    let batches = stored_batches(&node.partition_dir(&topic, 0));
    assert!(
        batches.len() >= RECORDS_PER_CODEC / 500,
        "expected many batches, found {}",
        batches.len()
    );
    let producer_id = batches[0].producer_id;
    assert!(producer_id >= 0, "idempotent batches carry a producer id");
    let (mut next_offset, mut next_sequence) = (0i64, 0i32);
    for (index, batch) in batches.iter().enumerate() {
        assert_eq!(
            batch.compression().ok(),
            Some(codec),
            "batch {index} stored with another codec: {batch:?}"
        );
        assert_eq!(
            batch.base_offset, next_offset,
            "batch {index}: offsets have a gap"
        );
        assert_eq!(batch.producer_id, producer_id, "batch {index}: producer id");
        assert_eq!(
            batch.base_sequence, next_sequence,
            "batch {index}: sequence gap"
        );
        next_offset = batch.next_offset();
        next_sequence += batch.records_count;
    }
    assert_eq!(next_offset, RECORDS_PER_CODEC as i64, "records stored");
}

#[test]
fn uncompressed_idempotent_produce_reads_back_exactly_and_is_stored_uncompressed() {
    idempotent_round_trip(Compression::None);
}

#[test]
fn gzip_idempotent_produce_reads_back_exactly_and_is_stored_as_gzip() {
    idempotent_round_trip(Compression::Gzip);
}

#[test]
fn snappy_idempotent_produce_reads_back_exactly_and_is_stored_as_snappy() {
    idempotent_round_trip(Compression::Snappy);
}

#[test]
fn lz4_idempotent_produce_reads_back_exactly_and_is_stored_as_lz4() {
    idempotent_round_trip(Compression::Lz4);
}

#[test]
fn zstd_idempotent_produce_reads_back_exactly_and_is_stored_as_zstd() {
    idempotent_round_trip(Compression::Zstd);
}

/// A consumer assigned to a partition at an offset reads from there, and
/// once caught up it is woken by new records rather than by its poll timer.
#[test]
fn assigned_consumer_reads_from_its_offset_and_then_follows_new_records() {
    let node = Node::start();
    let topic = "live-tail";
    create_topic(&node.bootstrap(), topic, 3, &[]);
    let first: Vec<Outgoing> = records(Compression::None, 10);
    let config = client_config(&node.bootstrap());
    produce_all(&config, topic, 2, &first);

    let consumer: BaseConsumer = consumer_config(&node.bootstrap())
        // Long polls: a record appended later must end the wait early.
        .set("fetch.wait.max.ms", "10000")
        .create()
        .expect("rdkafka consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 2, Offset::Offset(7))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut read = Vec::new();
    let poll_until = |read: &mut Vec<(i32, i64, Vec<u8>)>, count: usize| {
        let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
        while read.len() < count && std::time::Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("consuming");
                read.push((
                    message.partition(),
                    message.offset(),
                    message.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
    };
    poll_until(&mut read, 3);
    let expected: Vec<(i32, i64, Vec<u8>)> = (7..10)
        .map(|offset| (2, offset, first[offset as usize].value.clone()))
        .collect();
    assert_eq!(read, expected, "records from offset 7 on");

    let later = vec![Outgoing {
        key: b"later".to_vec(),
        value: b"appended while the consumer waits".to_vec(),
        headers: Vec::new(),
        timestamp_ms: None,
    }];
    let started = std::time::Instant::now();
    produce_all(&config, topic, 2, &later);
    poll_until(&mut read, 4);
    assert_eq!(
        read.get(3),
        Some(&(2, 10, later[0].value.clone())),
        "the new record"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the waiting fetch was not woken by the append (took {:?})",
        started.elapsed()
    );
}

/// On a LogAppendTime topic the node stamps its own clock on every batch,
/// whatever the producer set, and recomputes the CRC (which the consumer
/// checks here) over the changed header.
#[test]
fn log_append_time_topic_stamps_the_node_clock_on_compressed_batches() {
    let node = Node::start();
    let topic = "append-time";
    create_topic(
        &node.bootstrap(),
        topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let mut sent = records(Compression::Lz4, 1000);
    for record in &mut sent {
        // An hour old, as a producer replaying old data would set it.
        record.timestamp_ms = record.timestamp_ms.map(|ms| ms - 3_600_000);
    }
    let mut config = client_config(&node.bootstrap());
    config
        .set("compression.type", "lz4")
        .set("batch.num.messages", "100");
    let before_ms = support::now_ms();
    produce_all(&config, topic, 0, &sent);
    let after_ms = support::now_ms();

    let received = read_partition(&node.bootstrap(), topic, 0);
    assert_eq!(received.len(), sent.len(), "records read back");
    for (sent, received) in sent.iter().zip(&received) {
        assert_eq!(received.value.as_ref(), Some(&sent.value));
        match received.timestamp {
            Timestamp::LogAppendTime(ms) if (before_ms..=after_ms).contains(&ms) => {}
            other => panic!(
                "record {}: expected LogAppendTime within [{before_ms}, {after_ms}], got {other:?}",
                received.offset
            ),
        }
    }
}

/// DeleteRecords moves the partition's start: the earliest offset and a
/// consumer reading from the beginning both start there.
#[test]
fn delete_records_moves_the_start_of_the_partition() {
    let node = Node::start();
    let topic = "trimmed";
    create_topic(&node.bootstrap(), topic, 1, &[]);
    let sent = records(Compression::None, 20);
    produce_all(&client_config(&node.bootstrap()), topic, 0, &sent);

    let admin: AdminClient<DefaultClientContext> = client_config(&node.bootstrap())
        .create()
        .expect("rdkafka admin client");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(topic, 0, Offset::Offset(12))
        .expect("partition list");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let result = block_on(admin.delete_records(&before, &options)).expect("DeleteRecords");
    let element = result
        .find_partition(topic, 0)
        .expect("result for the partition");
    assert_eq!(element.error(), Ok(()), "DeleteRecords error");
    assert_eq!(element.offset(), Offset::Offset(12), "new low watermark");

    let consumer: BaseConsumer = consumer_config(&node.bootstrap())
        .create()
        .expect("rdkafka consumer");
    assert_eq!(
        consumer
            .fetch_watermarks(topic, 0, CLIENT_TIMEOUT)
            .expect("ListOffsets"),
        (12, 20),
        "low and high watermarks"
    );
    let offsets: Vec<i64> = read_partition(&node.bootstrap(), topic, 0)
        .iter()
        .map(|record| record.offset)
        .collect();
    assert_eq!(offsets, (12..20).collect::<Vec<_>>(), "records left");
}
