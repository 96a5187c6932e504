//! Consumer-group members as the group suite and the group benchmark use
//! them: an rdkafka consumer that subscribes on its own thread, commits
//! synchronously after every record it processes, and records what it
//! consumed and every rebalance it went through; plus waits on a set of
//! members' assignments and reads of a group's committed offsets.
//!
//! librdkafka serves rebalances inside `poll`, so each member polls on its
//! own thread for its whole life; closing it (dropping the consumer) runs
//! librdkafka's close, which revokes, commits nothing more and, for a dynamic
//! member, sends LeaveGroup.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::kafka::{CLIENT_TIMEOUT, client_config};

/// A topic partition: (topic, partition).
pub type Partition = (String, i32);

/// How long a member waits in one poll; short, so that closing is prompt.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long closing a member (its final revoke and LeaveGroup) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);
/// Members' `session.timeout.ms`: Kafka's smallest allowed session
/// (`group.min.session.timeout.ms`).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Every partition of `topic`, which has `count` partitions.
pub fn partitions(topic: &str, count: i32) -> BTreeSet<Partition> {
    (0..count)
        .map(|partition| (topic.to_string(), partition))
        .collect()
}

/// A group member's config: `group`, from the earliest offset when nothing
/// is committed, no automatic commits (members commit each record
/// synchronously), and the session and heartbeat timings the suite uses.
pub fn member_config(bootstrap: &str, group: &str, client_id: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("client.id", client_id)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "session.timeout.ms",
            SESSION_TIMEOUT.as_millis().to_string(),
        )
        // Members learn of a rebalance from a heartbeat: beat often.
        .set("heartbeat.interval.ms", "500");
    config
}

/// One record a member processed (and then committed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
}

impl Consumed {
    fn from_message(message: &impl Message) -> Consumed {
        Consumed {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            value: message.payload().unwrap_or_default().to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceKind {
    Assign,
    Revoke,
}

/// One rebalance callback as the member saw it: the partitions it carried
/// (all of them with the eager protocol, only the change with the
/// cooperative one) and the member's whole assignment afterwards.
#[derive(Debug, Clone)]
pub struct RebalanceEvent {
    pub kind: RebalanceKind,
    pub partitions: BTreeSet<Partition>,
    pub assignment_after: BTreeSet<Partition>,
}

/// What a member's thread and its librdkafka callbacks record.
#[derive(Default)]
struct Recorded {
    consumed: Mutex<Vec<Consumed>>,
    events: Mutex<Vec<RebalanceEvent>>,
    assignment: Mutex<BTreeSet<Partition>>,
    /// `eager` or `cooperative`, as librdkafka reports once the member has
    /// been through a rebalance.
    protocol: Mutex<Option<&'static str>>,
    commit_errors: Mutex<Vec<String>>,
    /// Client-level errors and consume errors; some are transient.
    errors: Mutex<Vec<String>>,
}

struct MemberContext {
    recorded: Arc<Recorded>,
    /// Whether the member's assignor is cooperative (incremental).
    cooperative: bool,
}

impl ClientContext for MemberContext {
    fn error(&self, error: KafkaError, reason: &str) {
        lock(&self.recorded.errors).push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for MemberContext {
    /// Does what rust-rdkafka's default does, without its two requests to
    /// librdkafka's group thread (the rebalance protocol, the assignment):
    /// once the consumer is closing, that thread may never answer and the
    /// callback hangs (confluentinc/librdkafka#4041). The member knows its
    /// protocol from its config and its assignment from the callbacks.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let partitions = partition_set(list);
        let (kind, outcome) = match (error, self.cooperative) {
            (RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, true) => {
                (RebalanceKind::Assign, consumer.incremental_assign(list))
            }
            (RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, false) => {
                (RebalanceKind::Assign, consumer.assign(list))
            }
            (RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, true) => {
                (RebalanceKind::Revoke, consumer.incremental_unassign(list))
            }
            (RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, false) => {
                (RebalanceKind::Revoke, consumer.unassign())
            }
            (other, cooperative) => {
                lock(&self.recorded.errors).push(format!("rebalance: {other:?}"));
                let _ = if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                };
                return;
            }
        };
        if let Err(error) = outcome {
            lock(&self.recorded.errors).push(format!("{kind:?} {partitions:?}: {error}"));
        }
        let mut assignment = lock(&self.recorded.assignment);
        match (kind, self.cooperative) {
            (RebalanceKind::Assign, true) => assignment.extend(partitions.iter().cloned()),
            (RebalanceKind::Revoke, true) => assignment.retain(|held| !partitions.contains(held)),
            (RebalanceKind::Assign, false) => *assignment = partitions.clone(),
            (RebalanceKind::Revoke, false) => assignment.clear(),
        }
        lock(&self.recorded.events).push(RebalanceEvent {
            kind,
            partitions,
            assignment_after: assignment.clone(),
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn partition_set(list: &TopicPartitionList) -> BTreeSet<Partition> {
    list.elements()
        .iter()
        .map(|element| (element.topic().to_string(), element.partition()))
        .collect()
}

/// An rdkafka group member running on its own thread until closed.
pub struct GroupMember {
    pub name: String,
    recorded: Arc<Recorded>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GroupMember {
    /// Creates the consumer with `config`, subscribes to `topics` and polls
    /// until closed; each record is committed synchronously after it is
    /// recorded.
    pub fn start(name: &str, config: &ClientConfig, topics: &[&str]) -> GroupMember {
        let recorded = Arc::new(Recorded::default());
        let context = MemberContext {
            recorded: recorded.clone(),
            cooperative: config
                .get("partition.assignment.strategy")
                .is_some_and(|strategy| strategy.contains("cooperative")),
        };
        let consumer: BaseConsumer<MemberContext> = config
            .create_with_context(context)
            .unwrap_or_else(|error| panic!("{name}: creating the consumer: {error}"));
        consumer
            .subscribe(topics)
            .unwrap_or_else(|error| panic!("{name}: subscribing to {topics:?}: {error}"));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (recorded, stop) = (recorded.clone(), stop.clone());
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || poll_until_stopped(consumer, &recorded, &stop))
                .expect("spawning a member thread")
        };
        GroupMember {
            name: name.to_string(),
            recorded,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops polling and closes the consumer (a dynamic member leaves the
    /// group; a static one does not). Returns once the close is done; fails
    /// the test if it takes longer than [`CLOSE_TIMEOUT`].
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // A hung close (a librdkafka bug) fails the test rather than hanging
        // the suite; the thread is left behind.
        assert!(
            super::wait_until(CLOSE_TIMEOUT, || thread.is_finished()),
            "{}: closing the consumer took over {CLOSE_TIMEOUT:?}",
            self.name
        );
        if thread.join().is_err() {
            panic!("{}: the member thread panicked", self.name);
        }
    }

    /// The partitions assigned after the last rebalance.
    pub fn assignment(&self) -> BTreeSet<Partition> {
        lock(&self.recorded.assignment).clone()
    }

    pub fn consumed(&self) -> Vec<Consumed> {
        lock(&self.recorded.consumed).clone()
    }

    pub fn consumed_count(&self) -> usize {
        lock(&self.recorded.consumed).len()
    }

    pub fn events(&self) -> Vec<RebalanceEvent> {
        lock(&self.recorded.events).clone()
    }

    pub fn event_count(&self) -> usize {
        lock(&self.recorded.events).len()
    }

    /// The rebalance protocol librdkafka reported at the last rebalance.
    pub fn protocol(&self) -> Option<&'static str> {
        *lock(&self.recorded.protocol)
    }

    pub fn commit_errors(&self) -> Vec<String> {
        lock(&self.recorded.commit_errors).clone()
    }

    pub fn errors(&self) -> Vec<String> {
        lock(&self.recorded.errors).clone()
    }

    /// A one-line summary for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{}: assigned {:?}, {} consumed, {} rebalance callbacks, commit errors {:?}, errors {:?}",
            self.name,
            self.assignment()
                .iter()
                .map(|(_, partition)| *partition)
                .collect::<Vec<_>>(),
            self.consumed_count(),
            self.event_count(),
            self.commit_errors(),
            self.errors()
        )
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && super::wait_until(CLOSE_TIMEOUT, || thread.is_finished())
        {
            let _ = thread.join();
        }
    }
}

fn poll_until_stopped(
    consumer: BaseConsumer<MemberContext>,
    recorded: &Recorded,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        // Asked here rather than in a callback (see MemberContext::rebalance).
        if lock(&recorded.protocol).is_none() && !lock(&recorded.events).is_empty() {
            *lock(&recorded.protocol) = Some(match consumer.rebalance_protocol() {
                RebalanceProtocol::Cooperative => "cooperative",
                RebalanceProtocol::Eager => "eager",
                RebalanceProtocol::None => "none",
            });
        }
        match consumer.poll(POLL_INTERVAL) {
            None => {}
            Some(Err(error)) => lock(&recorded.errors).push(format!("consume: {error}")),
            Some(Ok(message)) => {
                lock(&recorded.consumed).push(Consumed::from_message(&message));
                if let Err(error) = consumer.commit_message(&message, CommitMode::Sync) {
                    lock(&recorded.commit_errors).push(format!(
                        "{}-{} offset {}: {error}",
                        message.topic(),
                        message.partition(),
                        message.offset()
                    ));
                }
            }
        }
    }
    // Dropping the consumer closes it, serving the final revoke.
    drop(consumer);
}

/// Whether `assignments` split `all` evenly: disjoint, complete, and no
/// member holding more than one partition over another.
pub fn is_balanced(assignments: &[BTreeSet<Partition>], all: &BTreeSet<Partition>) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<&Partition> = assignments.iter().flatten().collect();
    let smallest = assignments.iter().map(BTreeSet::len).min().unwrap_or(0);
    let largest = assignments.iter().map(BTreeSet::len).max().unwrap_or(0);
    total == all.len()
        && union.len() == all.len()
        && union.into_iter().all(|partition| all.contains(partition))
        && largest - smallest <= 1
}

/// Waits until `members` hold a balanced split of `all` (see
/// [`is_balanced`]); returns how long that took, or the members' last
/// state if it did not happen within `timeout`.
pub fn wait_for_balance(
    members: &[&GroupMember],
    all: &BTreeSet<Partition>,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let balanced = super::wait_until(timeout, || {
        let assignments: Vec<BTreeSet<Partition>> =
            members.iter().map(|member| member.assignment()).collect();
        is_balanced(&assignments, all)
    });
    if balanced {
        Ok(started.elapsed())
    } else {
        Err(members
            .iter()
            .map(|member| member.describe())
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// Subscribes with `config`, processes exactly `count` records, committing
/// each synchronously, then closes; fails the test if that takes longer than
/// [`CLIENT_TIMEOUT`] or a commit fails.
pub fn consume_and_commit(config: &ClientConfig, topic: &str, count: usize) -> Vec<Consumed> {
    let consumer: BaseConsumer = config.create().expect("rdkafka consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut consumed = Vec::with_capacity(count);
    while consumed.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count} records of {topic} within {CLIENT_TIMEOUT:?}",
            consumed.len()
        );
        match consumer.poll(POLL_INTERVAL) {
            None => {}
            Some(Err(error)) => panic!("consuming {topic}: {error}"),
            Some(Ok(message)) => {
                consumed.push(Consumed::from_message(&message));
                consumer
                    .commit_message(&message, CommitMode::Sync)
                    .unwrap_or_else(|error| {
                        panic!(
                            "committing {topic}-{} offset {}: {error}",
                            message.partition(),
                            message.offset()
                        )
                    });
            }
        }
    }
    consumed
}

/// The committed offset of each partition of `topic` for `group` (OffsetFetch
/// through librdkafka, which retries while the coordinator loads); `None`
/// where the group has committed nothing.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partition_count: i32,
) -> BTreeMap<i32, Option<i64>> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partition_count {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("OffsetFetch for {group}: {error}"));
    committed
        .elements()
        .iter()
        .map(|element| {
            assert_eq!(
                element.error(),
                Ok(()),
                "OffsetFetch for {group}: {topic}-{}",
                element.partition()
            );
            let offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                Offset::Invalid => None,
                other => panic!(
                    "OffsetFetch for {group}: {topic}-{} has {other:?}",
                    element.partition()
                ),
            };
            (element.partition(), offset)
        })
        .collect()
}

/// The high watermark of each partition of `topic` (ListOffsets). Right
/// after a leader moves, librdkafka may ask the old leader and get
/// NOT_LEADER_OR_FOLLOWER; it is asked again until [`CLIENT_TIMEOUT`].
pub fn end_offsets(bootstrap: &str, topic: &str, partition_count: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = client_config(bootstrap).create().expect("rdkafka consumer");
    (0..partition_count)
        .map(|partition| {
            let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
            let high = loop {
                match consumer.fetch_watermarks(topic, partition, CLIENT_TIMEOUT) {
                    Ok((_, high)) => break high,
                    Err(error) if std::time::Instant::now() >= deadline => {
                        panic!("ListOffsets {topic}-{partition}: {error}")
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
                }
            };
            (partition, high)
        })
        .collect()
}

/// A group's lag on `topic`: the sum over partitions of the end offset minus
/// the committed offset (the whole partition where nothing is committed).
pub fn lag(bootstrap: &str, group: &str, topic: &str, partition_count: i32) -> i64 {
    let committed = committed_offsets(bootstrap, group, topic, partition_count);
    end_offsets(bootstrap, topic, partition_count)
        .iter()
        .map(|(partition, end)| end - committed[partition].unwrap_or(0))
        .sum()
}
