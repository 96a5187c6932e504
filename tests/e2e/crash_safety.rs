//! A node that crashes keeps what it acknowledged. SIGKILL in the middle of
//! an idempotent produce stream: after a restart every acknowledged record
//! is there exactly once, at the offset it was acknowledged with, and the
//! producer carries on without an idempotence error. A segment whose last
//! write was torn mid-batch: on restart the torn batch is cut off and every
//! complete batch before it stays readable, and the log takes new records.

mod support;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use support::Node;
use support::kafka::{
    CLIENT_TIMEOUT, Outgoing, RecordingProducer, client_config, create_topic, read_partition,
};
use support::storage::{last_segment, segment_batches, segment_files};

/// Acknowledged records to wait for before each kill, and after the last restart.
const RECORDS_BETWEEN_KILLS: usize = 4_000;
const KILLS: usize = 2;
/// Records the producer queues while the node is down.
const RECORDS_WHILE_DOWN: usize = 1_000;
/// How long the stream may take to reach the next mark.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(30);

fn record(index: usize, size_bytes: usize) -> Outgoing {
    let mut value = format!("record {index:06} ").into_bytes();
    value.resize(size_bytes.max(value.len()), b'.');
    Outgoing {
        key: format!("{index}").into_bytes(),
        value,
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

/// The index a record was produced with, from its value.
fn index_of(value: &[u8]) -> usize {
    let text = String::from_utf8_lossy(value);
    text.split_whitespace()
        .nth(1)
        .and_then(|index| index.parse().ok())
        .unwrap_or_else(|| panic!("unexpected record value {text:?}"))
}

/// An idempotent producer that rides over node restarts.
fn patient_idempotent_producer(bootstrap: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        // librdkafka refuses acks=1 with idempotence. On a one-node cluster
        // acks=all waits for the same thing acks=1 does: the leader's append.
        .set("acks", "all")
        .set("message.timeout.ms", "120000")
        .set("linger.ms", "2")
        .set("batch.num.messages", "200");
    config
}

#[test]
fn sigkill_during_an_idempotent_stream_keeps_every_acknowledged_record_exactly_once() {
    let mut node = Node::start();
    let topic = "crash";
    create_topic(&node.bootstrap(), topic, 1, &[]);

    let producer = Arc::new(RecordingProducer::new(&patient_idempotent_producer(
        &node.bootstrap(),
    )));
    let deliveries = producer.deliveries.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let queued = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (producer, stop, queued) = (producer.clone(), stop.clone(), queued.clone());
        std::thread::spawn(move || {
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                producer.send(topic, 0, index, &record(index, 100));
                index += 1;
                queued.store(index, Ordering::Relaxed);
                // About 50,000 records a second: requests are always in flight.
                if index % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            index
        })
    };

    let acknowledged = || deliveries.acknowledged_count();
    for kill in 1..=KILLS {
        let mark = acknowledged() + RECORDS_BETWEEN_KILLS;
        assert!(
            support::wait_until(PROGRESS_TIMEOUT, || acknowledged() >= mark),
            "before kill {kill}: {} of {mark} records acknowledged",
            acknowledged()
        );
        node.kill();
        let queued_at_kill = queued.load(Ordering::Relaxed);
        assert!(
            support::wait_until(PROGRESS_TIMEOUT, || {
                queued.load(Ordering::Relaxed) >= queued_at_kill + RECORDS_WHILE_DOWN
            }),
            "the producer stopped queueing while the node was down"
        );
        node.restart();
    }
    let mark = acknowledged() + RECORDS_BETWEEN_KILLS;
    assert!(
        support::wait_until(PROGRESS_TIMEOUT, || acknowledged() >= mark),
        "after the last restart: {} of {mark} records acknowledged",
        acknowledged()
    );
    stop.store(true, Ordering::Relaxed);
    let produced = stream.join().expect("producer thread");
    producer.flush(CLIENT_TIMEOUT);

    assert_eq!(
        producer.fatal_error(),
        None,
        "the producer hit a fatal (idempotence) error"
    );
    let client_errors = deliveries.client_errors.lock().expect("deliveries").clone();
    assert!(
        !client_errors
            .iter()
            .any(|error| error.contains("OUT_OF_ORDER_SEQUENCE")),
        "sequence errors: {client_errors:?}"
    );
    let failed = deliveries.failed.lock().expect("deliveries");
    assert!(
        failed.is_empty(),
        "{} records failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    drop(failed);

    let stored = read_partition(&node.bootstrap(), topic, 0);
    let mut offset_of: HashMap<usize, i64> = HashMap::with_capacity(stored.len());
    for record in &stored {
        let index = index_of(record.value.as_deref().unwrap_or_default());
        if let Some(first) = offset_of.insert(index, record.offset) {
            panic!(
                "record {index} stored twice, at offsets {first} and {}",
                record.offset
            );
        }
    }
    let indexes: Vec<usize> = stored
        .iter()
        .map(|record| index_of(record.value.as_deref().unwrap_or_default()))
        .collect();
    assert!(
        indexes.windows(2).all(|pair| pair[0] < pair[1]),
        "records stored out of production order"
    );
    let acknowledged = deliveries.acknowledged.lock().expect("deliveries");
    assert_eq!(acknowledged.len(), produced, "every record acknowledged");
    for &(index, _, offset) in acknowledged.iter() {
        match offset_of.get(&index) {
            None => panic!("record {index}, acknowledged at offset {offset}, is missing"),
            Some(&stored_at) => assert_eq!(
                stored_at, offset,
                "record {index} acknowledged at offset {offset} but stored at {stored_at}"
            ),
        }
    }
    assert_eq!(stored.len(), produced, "records stored");
}

/// Produces `count` records of 1 KB in flushes of `per_batch`, one batch each.
fn produce_batches(node: &Node, topic: &str, first: usize, count: usize, per_batch: usize) {
    let producer = RecordingProducer::new(&client_config(&node.bootstrap()));
    for start in (first..first + count).step_by(per_batch) {
        for index in start..(start + per_batch).min(first + count) {
            producer.send(topic, 0, index, &record(index, 1000));
        }
        producer.flush(CLIENT_TIMEOUT);
    }
    assert_eq!(producer.deliveries.failed_count(), 0, "produce failed");
}

/// Reads the partition and checks it holds records `0..count`, in order.
fn assert_holds_first_records(node: &Node, topic: &str, count: i64) {
    let stored = read_partition(&node.bootstrap(), topic, 0);
    let indexes: Vec<(i64, usize)> = stored
        .iter()
        .map(|record| {
            (
                record.offset,
                index_of(record.value.as_deref().unwrap_or_default()),
            )
        })
        .collect();
    let expected: Vec<(i64, usize)> = (0..count).map(|offset| (offset, offset as usize)).collect();
    assert_eq!(
        indexes.len(),
        expected.len(),
        "records readable after the restart"
    );
    assert_eq!(indexes, expected, "records at their offsets");
}

/// Cuts the newest segment inside its last batch, `kept_bytes` into it;
/// returns the offset of the first record lost with it.
fn tear_last_batch(node: &Node, topic: &str, kept_bytes: impl Fn(usize) -> usize) -> i64 {
    let segment = last_segment(&node.partition_dir(topic, 0));
    let (position, header) = *segment_batches(&segment)
        .last()
        .expect("a batch in the last segment");
    let length = position + kept_bytes(header.total_size()) as u64;
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|file| file.set_len(length))
        .expect("cutting the segment");
    header.base_offset
}

#[test]
fn a_segment_torn_mid_batch_is_cut_back_on_restart_and_every_complete_batch_stays_readable() {
    let mut node = Node::start();
    let topic = "torn";
    // Small segments, so the cut happens in the newest of several.
    create_topic(&node.bootstrap(), topic, 1, &[("segment.bytes", "1048576")]);
    let records = 3_000;
    produce_batches(&node, topic, 0, records, 100);
    assert!(node.terminate().success(), "clean shutdown");
    let segments = segment_files(&node.partition_dir(topic, 0));
    assert!(
        segments.len() >= 2,
        "expected several segments, found {segments:?}"
    );

    // A write torn in the middle of the last batch.
    let kept = tear_last_batch(&node, topic, |size| size / 2);
    assert!(kept > 0 && kept < records as i64);
    node.restart();
    assert_holds_first_records(&node, topic, kept);
    // The log goes on from the cut: new records take the lost offsets.
    produce_batches(&node, topic, kept as usize, 250, 50);
    assert_holds_first_records(&node, topic, kept + 250);

    // A write torn inside the next batch's length field.
    assert!(node.terminate().success(), "clean shutdown");
    let kept = tear_last_batch(&node, topic, |_| 5);
    node.restart();
    assert_holds_first_records(&node, topic, kept);

    // And the same after a crash rather than a clean stop.
    produce_batches(&node, topic, kept as usize, 100, 100);
    node.kill();
    let kept = tear_last_batch(&node, topic, |size| size - 1);
    node.restart();
    assert_holds_first_records(&node, topic, kept);
}
