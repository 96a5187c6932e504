//! Hostile input over raw TCP, while a well-behaved rdkafka producer and
//! consumer keep working beside it. Garbage, impossible or oversized frame
//! lengths, truncated frames and unknown APIs close their own connection
//! (as Kafka does); a Produce with a corrupt batch, a negative or unknown
//! partition or an oversized batch gets Kafka's error code and writes
//! nothing. Throughout, the node's process stays alive, keeps its memory,
//! and the well-behaved client loses no record.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_protocol::messages::{
    ApiVersionsRequest, ProduceRequest,
    produce_request::{PartitionProduceData, TopicProduceData},
};
use eddy_protocol::records::{Compression, Record, RecordBatch};
use eddy_protocol::{ApiKey, ErrorCode, RequestBody, ResponseBody};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use support::Node;
use support::kafka::{
    CLIENT_TIMEOUT, Outgoing, RecordingProducer, client_config, consumer_config, create_topic,
    read_partition,
};
use support::raw::RawConnection;

/// How long the node may take to close a connection it should close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's default `socket.request.max.bytes`, which the node keeps.
const SOCKET_REQUEST_MAX_BYTES: i32 = 104_857_600;
/// Kafka's default `message.max.bytes`, which the node keeps.
const MESSAGE_MAX_BYTES: usize = 1_048_588;
/// Produce version the raw requests use (flexible, topic names).
const PRODUCE_VERSION: i16 = 9;
/// Resident memory the node may reach while clients claim huge frames.
const MAX_RSS_BYTES: u64 = 256 << 20;
/// Address space twenty 100 MB frame claims may add (buffers that grow with
/// the bytes that arrive, not with the claim).
const MAX_RESERVED_FOR_CLAIMS_BYTES: u64 = 512 << 20;

/// A raw connection to `node` whose reads give up after [`CLOSE_TIMEOUT`].
fn open(node: &Node) -> RawConnection {
    RawConnection::open(&node.bootstrap(), CLOSE_TIMEOUT)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn random_bytes(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// A frame: a length prefix, then `body` (which claims whatever it claims).
fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// One of the node's memory figures from /proc (`VmRSS`, `VmSize`), in bytes.
fn memory_bytes(node: &Node, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid()))
        .expect("reading the node's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("{field} in /proc status"))
}

/// An rdkafka producer and an assigned consumer working on one partition
/// in the background while the test is hostile elsewhere.
struct WellBehavedClient {
    topic: &'static str,
    producer: Arc<RecordingProducer>,
    stop: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    consumed: Arc<AtomicUsize>,
    producing: JoinHandle<usize>,
    consuming: JoinHandle<Vec<(i64, Vec<u8>)>>,
    /// Set once the producer is done: how many records the consumer must see.
    expected: Arc<AtomicUsize>,
}

impl WellBehavedClient {
    fn start(node: &Node, topic: &'static str) -> WellBehavedClient {
        create_topic(&node.bootstrap(), topic, 1, &[]);
        let mut config = client_config(&node.bootstrap());
        config
            .set("enable.idempotence", "true")
            .set("linger.ms", "1");
        let producer = Arc::new(RecordingProducer::new(&config));
        let stop = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let producing = {
            let (producer, stop, queued) = (producer.clone(), stop.clone(), queued.clone());
            std::thread::spawn(move || {
                let mut index = 0;
                while !stop.load(Ordering::Relaxed) {
                    let record = Outgoing {
                        key: index.to_string().into_bytes(),
                        value: format!("steady {index}").into_bytes(),
                        headers: Vec::new(),
                        timestamp_ms: None,
                    };
                    producer.send(topic, 0, index, &record);
                    index += 1;
                    queued.store(index, Ordering::Relaxed);
                    if index % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                index
            })
        };

        let consumer: BaseConsumer = consumer_config(&node.bootstrap())
            .create()
            .expect("rdkafka consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .expect("assignment");
        consumer.assign(&assignment).expect("assign");
        let consumed = Arc::new(AtomicUsize::new(0));
        let expected = Arc::new(AtomicUsize::new(usize::MAX));
        let consuming = {
            let (consumed, expected) = (consumed.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut records = Vec::new();
                let mut deadline = None;
                while records.len() < expected.load(Ordering::Relaxed) {
                    if expected.load(Ordering::Relaxed) != usize::MAX {
                        let deadline =
                            *deadline.get_or_insert_with(|| Instant::now() + CLIENT_TIMEOUT);
                        if Instant::now() > deadline {
                            break;
                        }
                    }
                    match consumer.poll(Duration::from_millis(100)) {
                        None => {}
                        Some(Ok(message)) => {
                            records.push((
                                message.offset(),
                                message.payload().unwrap_or_default().to_vec(),
                            ));
                            consumed.store(records.len(), Ordering::Relaxed);
                        }
                        Some(Err(error)) => panic!("well-behaved consumer: {error}"),
                    }
                }
                records
            })
        };
        WellBehavedClient {
            topic,
            producer,
            stop,
            queued,
            consumed,
            producing,
            consuming,
            expected,
        }
    }

    /// Fails the test unless both the producer and the consumer move on
    /// within a few seconds: the hostile input next door does not stall them.
    fn assert_making_progress(&self, after: &str) {
        let (acknowledged, consumed) = (
            self.producer.deliveries.acknowledged_count(),
            self.consumed.load(Ordering::Relaxed),
        );
        assert!(
            support::wait_until(CLIENT_TIMEOUT, || {
                self.producer.deliveries.acknowledged_count() >= acknowledged + 100
                    && self.consumed.load(Ordering::Relaxed) >= consumed + 100
            }),
            "after {after}: the well-behaved client stalled ({} queued, {} acknowledged, {} consumed)",
            self.queued.load(Ordering::Relaxed),
            self.producer.deliveries.acknowledged_count(),
            self.consumed.load(Ordering::Relaxed)
        );
    }

    /// Stops producing and checks that every record was acknowledged at its
    /// place and consumed exactly once, in order.
    fn finish(self, node: &Node) {
        self.stop.store(true, Ordering::Relaxed);
        let produced = self.producing.join().expect("producer thread");
        self.producer.flush(CLIENT_TIMEOUT);
        assert_eq!(
            self.producer.deliveries.failed_count(),
            0,
            "well-behaved producer: failed deliveries {:?}",
            self.producer
                .deliveries
                .failed
                .lock()
                .expect("deliveries")
                .first()
        );
        assert_eq!(self.producer.fatal_error(), None);
        self.expected.store(produced, Ordering::Relaxed);
        let consumed = self.consuming.join().expect("consumer thread");
        let expected: Vec<(i64, Vec<u8>)> = (0..produced)
            .map(|index| (index as i64, format!("steady {index}").into_bytes()))
            .collect();
        assert_eq!(consumed.len(), produced, "records the live consumer saw");
        assert!(consumed == expected, "the live consumer saw other records");
        let stored = read_partition(&node.bootstrap(), self.topic, 0);
        assert_eq!(stored.len(), produced, "records stored");
    }
}

#[test]
fn garbage_and_impossible_frames_close_only_their_own_connection() {
    let mut node = Node::start();
    let client = WellBehavedClient::start(&node, "steady");
    client.assert_making_progress("start");

    // Lengths no frame can have: negative, far over socket.request.max.bytes, one over it.
    for claimed in [-1, i32::MIN, i32::MAX, SOCKET_REQUEST_MAX_BYTES + 1] {
        let mut connection = open(&node);
        connection.send_bytes(&claimed.to_be_bytes());
        connection.send_bytes(b"a few bytes of body");
        connection.assert_closed_by_node(&format!("frame length {claimed}"), CLOSE_TIMEOUT);
    }
    node.assert_running();

    // Frames that claim 100 MB (within the limit) and send little: the node
    // must not set 100 MB aside for each; the client then gives up mid-frame.
    let virtual_before = memory_bytes(&node, "VmSize");
    let claims: Vec<RawConnection> = (0..20)
        .map(|_| {
            let mut connection = open(&node);
            connection.send_bytes(&SOCKET_REQUEST_MAX_BYTES.to_be_bytes());
            connection.send_bytes(&random_bytes(7, 1024));
            connection
        })
        .collect();
    client.assert_making_progress("twenty 100 MB claims");
    let resident = memory_bytes(&node, "VmRSS");
    assert!(
        resident < MAX_RSS_BYTES,
        "node holds {} MiB with twenty 100 MB claims open",
        resident >> 20
    );
    // Untouched allocations do not show in the resident size; they do in the
    // address space, which twenty 100 MB buffers would grow by 2 GB.
    let reserved = memory_bytes(&node, "VmSize").saturating_sub(virtual_before);
    assert!(
        reserved < MAX_RESERVED_FOR_CLAIMS_BYTES,
        "twenty 100 MB claims grew the node's address space by {} MiB",
        reserved >> 20
    );
    for connection in claims {
        connection.finish_sending();
        connection.assert_closed_by_node("a truncated 100 MB frame", CLOSE_TIMEOUT);
    }
    node.assert_running();

    // Random bytes as a stream, then the client stops sending.
    for seed in 1..=10 {
        let mut connection = open(&node);
        connection.send_bytes(&random_bytes(seed, 64 * 1024));
        connection.finish_sending();
        connection.assert_closed_by_node(&format!("random stream, seed {seed}"), CLOSE_TIMEOUT);
    }
    // Well-framed random bodies: random API keys, versions and fields.
    for seed in 11..=40 {
        let mut connection = open(&node);
        let length = 16 + (seed as usize * 97) % 4000;
        connection.send_bytes(&framed(&random_bytes(seed, length)));
        connection.assert_closed_by_node(&format!("random frame, seed {seed}"), CLOSE_TIMEOUT);
    }
    // Frames too short for a request header.
    for length in [0, 1, 3, 7] {
        let mut connection = open(&node);
        connection.send_bytes(&framed(&random_bytes(99, length)));
        connection.assert_closed_by_node(&format!("{length}-byte frame"), CLOSE_TIMEOUT);
    }
    node.assert_running();
    client.assert_making_progress("random bytes");

    // Unknown API keys, in an otherwise valid v1 request header.
    for key in [-1i16, 9999, i16::MAX] {
        let mut header = key.to_be_bytes().to_vec();
        header.extend_from_slice(&0i16.to_be_bytes()); // version
        header.extend_from_slice(&1i32.to_be_bytes()); // correlation id
        header.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        let mut connection = open(&node);
        connection.send_bytes(&framed(&header));
        connection.assert_closed_by_node(&format!("API key {key}"), CLOSE_TIMEOUT);
    }
    node.assert_running();

    // Small frames whose arrays claim billions of elements: Metadata v4 with
    // an int32 topic count, and v9 with a compact (varint) one. Decoding must
    // fail on the missing bytes, not allocate what the count asks for.
    let mut classic = Vec::new();
    classic.extend_from_slice(&(ApiKey::Metadata as i16).to_be_bytes());
    classic.extend_from_slice(&4i16.to_be_bytes());
    classic.extend_from_slice(&1i32.to_be_bytes());
    classic.extend_from_slice(&(-1i16).to_be_bytes());
    classic.extend_from_slice(&i32::MAX.to_be_bytes());
    let mut compact = Vec::new();
    compact.extend_from_slice(&(ApiKey::Metadata as i16).to_be_bytes());
    compact.extend_from_slice(&9i16.to_be_bytes());
    compact.extend_from_slice(&1i32.to_be_bytes());
    compact.extend_from_slice(&(-1i16).to_be_bytes());
    compact.push(0); // no tagged fields in the header
    compact.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    for (what, body) in [("int32 count", classic), ("varint count", compact)] {
        let mut connection = open(&node);
        connection.send_bytes(&framed(&body));
        connection.assert_closed_by_node(
            &format!("Metadata claiming a huge array ({what})"),
            CLOSE_TIMEOUT,
        );
    }
    node.assert_running();

    // A newcomer is still served.
    let mut connection = open(&node);
    let response = connection.request(RequestBody::ApiVersions(ApiVersionsRequest::default()), 3);
    let ResponseBody::ApiVersions(versions) = response else {
        panic!("not an ApiVersions response: {response:?}");
    };
    assert_eq!(versions.error_code, 0);
    client.assert_making_progress("unknown API keys");
    client.finish(&node);
    node.assert_running();
}

/// A v2 batch of `count` small records, encoded as a producer would.
fn batch(count: usize, value_bytes: usize) -> Bytes {
    let records = (0..count)
        .map(|index| Record {
            offset_delta: index as i32,
            key: Some(Bytes::from(format!("raw-{index}"))),
            value: Some(Bytes::from(vec![b'x'; value_bytes])),
            ..Record::default()
        })
        .collect();
    RecordBatch::new(0, support::now_ms(), records)
        .encode(Compression::None)
        .expect("encoding a batch")
}

fn produce(topic: &str, partition: i32, acks: i16, records: Bytes) -> RequestBody {
    RequestBody::Produce(ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..PartitionProduceData::default()
            }],
            ..TopicProduceData::default()
        }],
        ..ProduceRequest::default()
    })
}

/// Sends a Produce and returns the one partition's error code and base offset.
fn produce_outcome(
    connection: &mut RawConnection,
    request: RequestBody,
) -> (Option<ErrorCode>, i64) {
    let response = connection.request(request, PRODUCE_VERSION);
    let ResponseBody::Produce(response) = response else {
        panic!("not a Produce response: {response:?}");
    };
    let partition = &response.responses[0].partition_responses[0];
    (
        ErrorCode::from_code(partition.error_code),
        partition.base_offset,
    )
}

#[test]
fn bad_produce_requests_get_kafka_errors_and_write_nothing() {
    let mut node = Node::start();
    let client = WellBehavedClient::start(&node, "steady");
    let topic = "target";
    create_topic(&node.bootstrap(), topic, 1, &[]);
    let mut connection = open(&node);

    // One flipped bit in the records: the CRC no longer matches.
    let mut corrupt = batch(5, 10).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    assert_eq!(
        produce_outcome(
            &mut connection,
            produce(topic, 0, -1, Bytes::from(corrupt.clone()))
        )
        .0,
        Some(ErrorCode::CorruptMessage),
        "a batch with a bad CRC"
    );
    for partition in [-1, i32::MIN, 1, 1000] {
        assert_eq!(
            produce_outcome(&mut connection, produce(topic, partition, -1, batch(1, 10))).0,
            Some(ErrorCode::UnknownTopicOrPartition),
            "partition {partition}"
        );
    }
    assert_eq!(
        produce_outcome(
            &mut connection,
            produce(topic, 0, -1, batch(2, MESSAGE_MAX_BYTES / 2 + 1000))
        )
        .0,
        Some(ErrorCode::MessageTooLarge),
        "a batch over message.max.bytes"
    );
    node.assert_running();
    client.assert_making_progress("bad produce requests");

    // The same connection still works, and the log holds only this batch.
    assert_eq!(
        produce_outcome(&mut connection, produce(topic, 0, -1, batch(3, 10))),
        (Some(ErrorCode::None), 0),
        "a good batch after the bad ones"
    );
    let stored = read_partition(&node.bootstrap(), topic, 0);
    let keys: Vec<Option<Vec<u8>>> = stored.iter().map(|record| record.key.clone()).collect();
    assert_eq!(
        keys,
        (0..3)
            .map(|index| Some(format!("raw-{index}").into_bytes()))
            .collect::<Vec<_>>(),
        "only the good batch is stored"
    );

    // acks=0 has no response to carry the error: Kafka closes the connection.
    let mut silent = open(&node);
    silent.send_request(produce(topic, 0, 0, Bytes::from(corrupt)), PRODUCE_VERSION);
    silent.assert_closed_by_node("an acks=0 produce with a bad CRC", CLOSE_TIMEOUT);
    assert_eq!(
        read_partition(&node.bootstrap(), topic, 0).len(),
        3,
        "the acks=0 corrupt batch wrote nothing"
    );

    client.finish(&node);
    node.assert_running();
}
