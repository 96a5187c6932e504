//! The rdkafka client (librdkafka 2.12) as the suites use it: create topics
//! with the admin client, produce with delivery reports kept per record, and
//! read a partition from its start to its end by assignment (no consumer
//! group: the node has no group APIs yet).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

/// Budget for an admin request or for reading a partition to its end.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a future (the admin client's) to completion on a small runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// A consumer config: offsets are never committed, so librdkafka uses no
/// group API. It still wants a `group.id` before `assign` ("Unknown group"
/// otherwise); with assign and no commits that costs one FindCoordinator.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", "eddy-e2e-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    config
}

/// A client config pointing at `bootstrap`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "eddy-e2e-rdkafka")
        // A refused connection during a restart should be retried soon.
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "200");
    config
}

/// A producer config as a careful application sets it: idempotent,
/// acks=all, retrying through leader moves, and giving up on a node that
/// does not answer (a paused one) after 5 s rather than librdkafka's 30.
pub fn durable_producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("retry.backoff.ms", "50")
        .set("request.timeout.ms", "5000")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000");
    config
}

/// Creates a topic with `partitions` partitions (replication factor 1) and
/// topic configs, and fails the test unless the node reports success.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    create_replicated_topic(bootstrap, topic, partitions, 1, configs);
}

/// Creates a topic with `replication_factor` replicas of each partition.
pub fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .expect("rdkafka admin client");
    let mut new_topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let results = block_on(admin.create_topics([&new_topic], &options))
        .unwrap_or_else(|error| panic!("CreateTopics {topic}: {error}"));
    for result in results {
        if let Err((name, code)) = result {
            panic!("CreateTopics {name}: {code:?}");
        }
    }
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: Option<i64>,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Timestamp,
}

/// What a producer heard back: per record (by index), its offset or error;
/// and the client-level errors librdkafka reported.
#[derive(Default)]
pub struct Deliveries {
    pub acknowledged: Mutex<Vec<(usize, i32, i64)>>,
    pub failed: Mutex<Vec<(usize, KafkaError)>>,
    pub client_errors: Mutex<Vec<String>>,
}

impl Deliveries {
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.lock().expect("deliveries").len()
    }

    pub fn failed_count(&self) -> usize {
        self.failed.lock().expect("deliveries").len()
    }
}

/// Producer context recording every delivery report into [`Deliveries`];
/// each record's opaque is its index.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Deliveries>);

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0
            .client_errors
            .lock()
            .expect("deliveries")
            .push(format!("{error}: {reason}"));
    }
}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        match result {
            Ok(message) => self.0.acknowledged.lock().expect("deliveries").push((
                index,
                message.partition(),
                message.offset(),
            )),
            Err((error, _)) => self
                .0
                .failed
                .lock()
                .expect("deliveries")
                .push((index, error.clone())),
        }
    }
}

/// A producer whose delivery reports land in a shared [`Deliveries`].
pub struct RecordingProducer {
    pub producer: ThreadedProducer<Recorder>,
    pub deliveries: Arc<Deliveries>,
}

impl RecordingProducer {
    pub fn new(config: &ClientConfig) -> RecordingProducer {
        let recorder = Recorder::default();
        let deliveries = recorder.0.clone();
        let producer = config
            .create_with_context(recorder)
            .expect("rdkafka producer");
        RecordingProducer {
            producer,
            deliveries,
        }
    }

    /// Queues record `index`, waiting while librdkafka's queue is full.
    pub fn send(&self, topic: &str, partition: i32, index: usize, record: &Outgoing) {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut base = BaseRecord::with_opaque_to(topic, index)
            .partition(partition)
            .key(&record.key)
            .payload(&record.value)
            .headers(headers);
        if let Some(timestamp_ms) = record.timestamp_ms {
            base = base.timestamp(timestamp_ms);
        }
        loop {
            match self.producer.send(base) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    base = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => panic!("queueing record {index}: {error}"),
            }
        }
    }

    /// Waits until every queued record has a delivery report.
    pub fn flush(&self, timeout: Duration) {
        self.producer
            .flush(timeout)
            .unwrap_or_else(|error| panic!("flushing the producer: {error}"));
    }

    /// librdkafka's fatal error (an idempotence violation, for one), if any.
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    /// Flushes, then fails the test on a fatal error (an idempotence
    /// violation) or on any record that was not acknowledged; `context`
    /// starts each message (a chaos seed, say).
    pub fn flush_expecting_every_record_acknowledged(&self, timeout: Duration, context: &str) {
        self.flush(timeout);
        assert_eq!(
            self.fatal_error(),
            None,
            "{context}no idempotence violation"
        );
        let failed = self.deliveries.failed.lock().expect("deliveries");
        assert!(
            failed.is_empty(),
            "{context}{} records failed, first: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }

    /// The acknowledged records of each partition, in the order sent, as
    /// `index % stride` (records numbered `partition × stride + sequence`
    /// give their sequence).
    pub fn acknowledged_sequences(&self, stride: usize) -> BTreeMap<i32, Vec<usize>> {
        let mut acknowledged = self
            .deliveries
            .acknowledged
            .lock()
            .expect("deliveries")
            .clone();
        acknowledged.sort_unstable();
        let mut by_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (index, partition, _) in acknowledged {
            by_partition
                .entry(partition)
                .or_default()
                .push(index % stride);
        }
        by_partition
    }

    /// The acknowledged records of each partition as (sequence, offset), in
    /// offset order, for records numbered round-robin over `partitions`
    /// (`sequence × partitions + partition`).
    pub fn acknowledged_in_offset_order(
        &self,
        partitions: usize,
    ) -> BTreeMap<i32, Vec<(usize, i64)>> {
        let mut by_partition: BTreeMap<i32, Vec<(usize, i64)>> = BTreeMap::new();
        for &(index, partition, offset) in self
            .deliveries
            .acknowledged
            .lock()
            .expect("deliveries")
            .iter()
        {
            by_partition
                .entry(partition)
                .or_default()
                .push((index / partitions, offset));
        }
        for acknowledged in by_partition.values_mut() {
            acknowledged.sort_unstable_by_key(|&(_, offset)| offset);
        }
        by_partition
    }
}

/// Produces `records` to one partition with `config` and returns each
/// record's offset, in order; fails the test on any delivery error.
pub fn produce_all(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    records: &[Outgoing],
) -> Vec<i64> {
    let producer = RecordingProducer::new(config);
    for (index, record) in records.iter().enumerate() {
        producer.send(topic, partition, index, record);
    }
    producer.flush(CLIENT_TIMEOUT);
    let failed = producer.deliveries.failed.lock().expect("deliveries");
    assert!(
        failed.is_empty(),
        "{} of {} records failed, first: {:?}",
        failed.len(),
        records.len(),
        failed.first()
    );
    assert_eq!(producer.fatal_error(), None, "producer fatal error");
    let mut offsets = vec![-1; records.len()];
    for &(index, delivered_partition, offset) in producer
        .deliveries
        .acknowledged
        .lock()
        .expect("deliveries")
        .iter()
    {
        assert_eq!(delivered_partition, partition);
        offsets[index] = offset;
    }
    offsets
}

/// Reads one partition by assignment from its first offset up to its end
/// (the high watermark when the read started catching up), checking every
/// batch's CRC on the way.
pub fn read_partition(bootstrap: &str, topic: &str, partition: i32) -> Vec<Received> {
    let consumer: BaseConsumer = consumer_config(bootstrap)
        .set("enable.partition.eof", "true")
        .set("check.crcs", "true")
        .create()
        .expect("rdkafka consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut records = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {topic}-{partition}: no end of partition within {CLIENT_TIMEOUT:?} ({} records read)",
            records.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return records,
            Some(Err(error)) => panic!("reading {topic}-{partition}: {error}"),
            Some(Ok(message)) => records.push(Received {
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|header| {
                                (header.key.to_string(), header.value.map(<[u8]>::to_vec))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: message.timestamp(),
            }),
        }
    }
}

/// The values of `records`, as text.
pub fn values(records: &[Received]) -> Vec<String> {
    records
        .iter()
        .map(|record| {
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned()
        })
        .collect()
}

/// Checks that every acknowledged record is stored exactly once and in the
/// order sent: `stored` are the values read back, `value_of` gives the value
/// sent with each acknowledged sequence number, `what` names the partition in
/// failures.
pub fn assert_acknowledged_once_in_order(
    what: &str,
    stored: &[String],
    acknowledged: &[usize],
    value_of: impl Fn(usize) -> String,
) {
    let mut position: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (index, value) in stored.iter().enumerate() {
        assert!(
            position.insert(value.as_str(), index).is_none(),
            "{what}: {value} is stored twice"
        );
    }
    let mut previous = None;
    for &sequence in acknowledged {
        let value = value_of(sequence);
        let at = *position
            .get(value.as_str())
            .unwrap_or_else(|| panic!("{what}: acknowledged {value} is missing"));
        if let Some(previous) = previous {
            assert!(at > previous, "{what}: {value} is out of order");
        }
        previous = Some(at);
    }
}

/// [`assert_acknowledged_once_in_order`] for records acknowledged with their
/// offsets, `(sequence, offset)`, read back from `topic`-`partition`: each is
/// also at the offset its acknowledgement gave. librdkafka acknowledges with
/// offset -1001 (unknown) the records of a request whose response it never
/// got once a later request of the same producer succeeds (the broker keeps
/// a producer's batches in order); those are checked by value alone.
/// `context` starts each failure message.
pub fn assert_acknowledged_at_offsets(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    acknowledged: &[(usize, i64)],
    value_of: impl Fn(usize) -> String,
    context: &str,
) {
    let what = format!("{context}{topic}-{partition}");
    let stored: Vec<(i64, String)> = read_partition(bootstrap, topic, partition)
        .into_iter()
        .map(|received| {
            let text = String::from_utf8_lossy(received.value.as_deref().unwrap_or_default());
            (received.offset, text.into_owned())
        })
        .collect();
    let at_offset: BTreeMap<i64, &str> = stored
        .iter()
        .map(|(offset, text)| (*offset, text.as_str()))
        .collect();
    for &(sequence, offset) in acknowledged.iter().filter(|(_, offset)| *offset >= 0) {
        let expected = value_of(sequence);
        let found = at_offset.get(&offset).copied();
        assert_eq!(
            found,
            Some(expected.as_str()),
            "{what}: {expected} was acknowledged at offset {offset}, which holds {found:?}; it is \
             stored at {:?}",
            stored
                .iter()
                .find(|(_, text)| *text == expected)
                .map(|(offset, _)| offset)
        );
    }
    let mut sequences: Vec<usize> = acknowledged.iter().map(|(sequence, _)| *sequence).collect();
    sequences.sort_unstable();
    let values: Vec<String> = stored.into_iter().map(|(_, text)| text).collect();
    assert_acknowledged_once_in_order(&what, &values, &sequences, value_of);
}
