//! Real clients on a three-node cluster with three replicas of everything,
//! through the leader moves they meet in production: kafka-python producing
//! while a partition's leader is SIGKILLed, a librdkafka group member whose
//! coordinator is SIGKILLed, and a librdkafka producer while a leader shuts
//! down cleanly (SIGTERM, a controlled shutdown).
//!
//! The kafka-python test needs `python3` with kafka-python (`.ci/run`
//! installs it).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use support::cluster::{Cluster, view_of};
use support::group::{GroupMember, committed_offsets, end_offsets, lag, member_config};
use support::kafka::{
    self, Outgoing, RecordingProducer, create_replicated_topic, read_partition, values,
};

/// Budget for leadership to move off a dead node.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// Budget for a restarted node to be back in every ISR.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
const REPLICAS: usize = 3;
/// `__consumer_offsets` partitions (Kafka's default).
const OFFSETS_PARTITIONS: i32 = 50;
/// Groups' offsets are replicated like everything else.
const CLUSTER_SETTINGS: &[&str] = &["offsets.topic.replication.factor=3"];
/// Longer than the script's own watchdog, which says what hung.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

/// Starts a cluster with a topic of `partitions` partitions, three replicas
/// each, all in sync.
fn cluster_with_topic(topic: &str, partitions: i32) -> Cluster {
    let cluster = Cluster::start(REPLICAS as i32, CLUSTER_SETTINGS);
    create_replicated_topic(
        &cluster.bootstrap(),
        topic,
        partitions,
        REPLICAS as i32,
        &[],
    );
    cluster
        .wait_for_full_isr(&[topic], REPLICAS, RECOVERY_TIMEOUT)
        .unwrap_or_else(|short| panic!("{topic} at the start: {short}"));
    cluster
}

/// Checks that `stored` (offset, value) holds each of `acknowledged`
/// (value, offset) at its offset, no value twice, and acknowledged values
/// in the order given.
fn assert_acknowledged_once_in_order(
    what: &str,
    stored: &[(i64, String)],
    acknowledged: &[(String, i64)],
) {
    let mut by_value: BTreeMap<&str, i64> = BTreeMap::new();
    for (offset, value) in stored {
        if let Some(first) = by_value.insert(value, *offset) {
            panic!("{what}: {value} is stored twice, at {first} and {offset}");
        }
    }
    let by_offset: BTreeMap<i64, &str> = stored
        .iter()
        .map(|(offset, value)| (*offset, value.as_str()))
        .collect();
    let mut previous = None;
    for (value, offset) in acknowledged {
        assert_eq!(
            by_offset.get(offset).copied(),
            Some(value.as_str()),
            "{what}: {value} was acknowledged at offset {offset}; it is stored at {:?}",
            by_value.get(value.as_str())
        );
        assert!(
            previous.is_none_or(|previous| previous < offset),
            "{what}: {value} (offset {offset}) is out of order"
        );
        previous = Some(offset);
    }
}

/// A client script running in the background, its stdout read line by line.
struct Script {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: std::thread::JoinHandle<String>,
}

impl Script {
    fn start(interpreter: &str, script: &str, args: &[&str]) -> Script {
        let mut child = Command::new(interpreter)
            .arg(support::clients_dir().join(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {script}: {error}"));
        let (sender, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        {
            let pipe = child.stdout.take().expect("piped stdout");
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    stdout.lock().expect("stdout").push(line.clone());
                    let _ = sender.send(line);
                }
            });
        }
        let mut pipe = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        });
        Script {
            name: script.to_string(),
            child,
            lines,
            stdout,
            stderr,
        }
    }

    /// Waits for a line starting with `prefix`; fails the test otherwise.
    fn wait_for_line(&mut self, prefix: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} printed no line starting {prefix:?} within {timeout:?}; stderr:\n{}",
                        self.name,
                        std::mem::replace(&mut self.stderr, std::thread::spawn(String::new))
                            .join()
                            .unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Waits for the script to exit successfully and returns the JSON object
    /// on its last line.
    fn finish(mut self, timeout: Duration) -> Value {
        let exited = support::wait_until(timeout, || {
            self.child.try_wait().expect("polling the script").is_some()
        });
        if !exited {
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("waiting for the script");
        let stderr = self.stderr.join().unwrap_or_default();
        assert!(
            exited && status.success(),
            "{} failed or hung ({status}):\n{stderr}",
            self.name
        );
        // The reader thread may still be taking the last line off the pipe.
        let mut last_line = String::new();
        support::wait_until(Duration::from_secs(5), || {
            last_line = self
                .stdout
                .lock()
                .expect("stdout")
                .last()
                .cloned()
                .unwrap_or_default();
            last_line.starts_with('{')
        });
        serde_json::from_str(&last_line).unwrap_or_else(|error| {
            panic!(
                "{} printed no JSON ({error}): {last_line}\nstderr:\n{stderr}",
                self.name
            )
        })
    }
}

#[test]
fn kafka_python_keeps_every_acknowledged_record_when_the_leader_is_killed() {
    let mut cluster = cluster_with_topic("python-failover", 1);
    let topic = "python-failover";
    let (leader, epoch, _) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, _| leader > 0)
        .expect("a leader");
    let (count, signal_after) = (3000, 1000);
    let mut script = Script::start(
        "python3",
        "kafka_python_failover_produce.py",
        &[
            &cluster.bootstrap(),
            topic,
            &count.to_string(),
            &signal_after.to_string(),
        ],
    );
    script.wait_for_line("acknowledged", Duration::from_secs(60));
    cluster.node(leader).kill();
    let killed = Instant::now();
    let (new_leader, new_epoch, _) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |new, _, _| {
            new > 0 && new != leader
        })
        .unwrap_or_else(|| panic!("no new leader for {topic}-0 after node {leader} died"));
    eprintln!(
        "{topic}-0: node {leader} killed after {signal_after} records; node {new_leader} leads \
         (epoch {epoch} -> {new_epoch}) after {:?}",
        killed.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    cluster.node(leader).restart();
    let report = script.finish(SCRIPT_TIMEOUT);

    let failed = report["failed"].as_array().expect("failed");
    assert!(
        failed.is_empty(),
        "{} records failed, first {:?}",
        failed.len(),
        failed.first()
    );
    let acknowledged: Vec<(String, i64)> = report["acknowledged"]
        .as_array()
        .expect("acknowledged")
        .iter()
        .map(|pair| {
            let sequence = pair[0].as_u64().expect("sequence");
            (
                format!("seq-{sequence:08}"),
                pair[1].as_i64().expect("offset"),
            )
        })
        .collect();
    assert_eq!(acknowledged.len(), count, "every record acknowledged");
    let consumed: Vec<(i64, String)> = report["consumed"]
        .as_array()
        .expect("consumed")
        .iter()
        .map(|pair| {
            let value = pair[1].as_str().expect("value").to_string();
            (pair[0].as_i64().expect("offset"), value)
        })
        .collect();
    assert_acknowledged_once_in_order(
        &format!("{topic}-0 as kafka-python read it"),
        &consumed,
        &acknowledged,
    );
    // The same through librdkafka, from the current leader.
    let records = read_partition(&cluster.bootstrap(), topic, 0);
    let stored: Vec<(i64, String)> = records
        .iter()
        .map(|record| record.offset)
        .zip(values(&records))
        .collect();
    assert_acknowledged_once_in_order(
        &format!("{topic}-0 as librdkafka read it"),
        &stored,
        &acknowledged,
    );
}

fn record(partition: i32, sequence: usize) -> Outgoing {
    Outgoing {
        key: format!("p{partition}").into_bytes(),
        value: format!("p{partition}-{sequence:06}").into_bytes(),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

/// Produces records `from..to` of each partition; fails the test unless all
/// are acknowledged.
fn produce(bootstrap: &str, topic: &str, partitions: i32, from: usize, to: usize) {
    let producer = RecordingProducer::new(&kafka::durable_producer_config(bootstrap));
    for sequence in from..to {
        for partition in 0..partitions {
            producer.send(topic, partition, sequence, &record(partition, sequence));
        }
    }
    producer.flush(kafka::CLIENT_TIMEOUT);
    let failed = producer.deliveries.failed.lock().expect("deliveries");
    assert!(failed.is_empty(), "records failed: {:?}", failed.first());
}

/// The group's committed offsets from one OffsetFetch through librdkafka
/// (`committed()`, as an application asks), by a fresh client.
fn fetch_committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, Option<i64>>, KafkaError> {
    let consumer: BaseConsumer = kafka::client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(list, kafka::CLIENT_TIMEOUT)?;
    Ok(committed
        .elements()
        .iter()
        .map(|element| {
            let offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            (element.partition(), offset)
        })
        .collect())
}

#[test]
fn a_group_member_finds_the_new_coordinator_and_its_commits_survive_the_old_one() {
    let topic = "coordinated";
    let partitions = 3;
    let group = "coordinator-failover";
    let per_round = 100;
    let mut cluster = cluster_with_topic(topic, partitions);
    let bootstrap = cluster.bootstrap();
    produce(&bootstrap, topic, partitions, 0, per_round);
    let mut member = GroupMember::start(
        "reader",
        &member_config(&bootstrap, group, "reader"),
        &[topic],
    );
    let caught_up = support::wait_until(Duration::from_secs(60), || {
        member.consumed_count() >= per_round * partitions as usize
            && lag(&bootstrap, group, topic, partitions) == 0
    });
    assert!(
        caught_up,
        "the member did not consume and commit the first records: {}",
        member.describe()
    );
    let before = committed_offsets(&bootstrap, group, topic, partitions);
    cluster
        .wait_for_full_isr(&["__consumer_offsets"], REPLICAS, RECOVERY_TIMEOUT)
        .unwrap_or_else(|short| panic!("__consumer_offsets: {short}"));

    let coordinator = cluster
        .group_coordinator(group, OFFSETS_PARTITIONS)
        .expect("the group has a coordinator");
    let controller = cluster.quorum_leader();
    cluster.node(coordinator).kill();
    let killed = Instant::now();
    let mut new_coordinator = None;
    support::wait_until(FAILOVER_TIMEOUT, || {
        new_coordinator = cluster
            .group_coordinator(group, OFFSETS_PARTITIONS)
            .filter(|now| *now != coordinator);
        new_coordinator.is_some()
    });
    let new_coordinator = new_coordinator
        .unwrap_or_else(|| panic!("no new coordinator after node {coordinator} died"));
    eprintln!(
        "{group}: coordinator node {coordinator} killed (the controller was {controller:?}); \
         node {new_coordinator} took over after {:?}",
        killed.elapsed()
    );
    // Asked the moment the new coordinator shows in its own metadata, as an
    // application would right after the failover; checked at the end.
    let first_fetch = fetch_committed(&bootstrap, group, topic, partitions);
    let first_fetch_after = killed.elapsed();
    let mut after = None;
    support::wait_until(FAILOVER_TIMEOUT, || {
        after = fetch_committed(&bootstrap, group, topic, partitions).ok();
        after.is_some()
    });
    let after = after.unwrap_or_else(|| {
        panic!("OffsetFetch for {group} refused for {FAILOVER_TIMEOUT:?} after the failover")
    });
    assert_eq!(after, before, "committed offsets survive the coordinator");

    produce(&bootstrap, topic, partitions, per_round, 2 * per_round);
    let all = 2 * per_round * partitions as usize;
    let resumed = support::wait_until(Duration::from_secs(60), || {
        let consumed: BTreeSet<Vec<u8>> = member
            .consumed()
            .into_iter()
            .map(|record| record.value)
            .collect();
        consumed.len() >= all && lag(&bootstrap, group, topic, partitions) == 0
    });
    assert!(
        resumed,
        "the member did not consume and commit the records sent after the coordinator died \
         (committed {:?}): {}",
        committed_offsets(&bootstrap, group, topic, partitions),
        member.describe()
    );
    cluster.node(coordinator).restart();
    member.close();

    let consumed = member.consumed();
    let distinct: BTreeSet<&[u8]> = consumed
        .iter()
        .map(|record| record.value.as_slice())
        .collect();
    assert_eq!(distinct.len(), all, "every record consumed");
    let end = end_offsets(&bootstrap, topic, partitions);
    let committed = committed_offsets(&bootstrap, group, topic, partitions);
    for (partition, end) in &end {
        assert_eq!(
            committed[partition],
            Some(*end),
            "{topic}-{partition}: the last commit holds"
        );
    }
    eprintln!(
        "{group}: {} records consumed ({} again after the failover); commit errors {:?}; errors {:?}",
        consumed.len(),
        consumed.len() - distinct.len(),
        member.commit_errors(),
        member.errors()
    );
    if let Err(error) = first_fetch {
        panic!(
            "OffsetFetch for {group}, {first_fetch_after:?} after node {coordinator} died and as \
             soon as node {new_coordinator} reported itself leader of the group's \
             __consumer_offsets partition, failed: {error}. A coordinator that leads the \
             partition but has not loaded it yet should answer COORDINATOR_LOAD_IN_PROGRESS \
             (librdkafka retries that) rather than NOT_COORDINATOR (librdkafka hands that to \
             the application)"
        );
    }
}

/// Delivery reports and librdkafka's log lines about failed produce requests.
#[derive(Clone, Default)]
struct LoggingRecorder {
    deliveries: kafka::Recorder,
    produce_errors: Arc<Mutex<Vec<String>>>,
    /// Every log line librdkafka handed over (to know the capture works).
    log_lines: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientContext for LoggingRecorder {
    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log_lines.fetch_add(1, Ordering::Relaxed);
        // librdkafka's "msg" debug context reports each failed ProduceRequest
        // ("MessageSet with N message(s) ... encountered error: ...").
        if message.contains("encountered error") {
            self.produce_errors
                .lock()
                .expect("log")
                .push(format!("{facility}: {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.deliveries.error(error, reason);
    }
}

impl ProducerContext for LoggingRecorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        self.deliveries.delivery(result, index);
    }
}

/// The state letter of a process (`R`, `S`, `Z` for exited but not yet
/// reaped, ...), or `None` if it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMMAND) STATE ...": the command may hold spaces, not ')'.
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn a_controlled_shutdown_moves_leadership_before_exit_and_loses_no_delivery() {
    let topic = "handover";
    let mut cluster = cluster_with_topic(topic, 1);
    let (leader, epoch, _) = cluster
        .wait_for_partition(topic, 0, FAILOVER_TIMEOUT, |leader, _, _| leader > 0)
        .expect("a leader");
    let context = LoggingRecorder::default();
    let producer: ThreadedProducer<LoggingRecorder> =
        kafka::durable_producer_config(&cluster.bootstrap())
            .set("debug", "msg")
            // Otherwise rust-rdkafka caps librdkafka's log at the `log` crate's
            // level, which no logger raised.
            .set_log_level(RDKafkaLogLevel::Debug)
            .create_with_context(context.clone())
            .expect("producer");
    let stop = Arc::new(AtomicBool::new(false));
    let sent = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("handover-{index:06}");
                let mut record = BaseRecord::<str, str, usize>::with_opaque_to(topic, index)
                    .partition(0)
                    .payload(&value);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((_, returned)) => {
                            record = returned;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                index += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            index
        });

        std::thread::sleep(Duration::from_secs(1));
        // Watches the other nodes for the new leader, noting whether the old
        // leader's process was still running at that moment.
        let pid = cluster.node(leader).pid();
        let others: Vec<String> = cluster
            .nodes
            .iter()
            .filter(|node| node.node_id() != leader)
            .map(|node| node.bootstrap())
            .collect();
        let watch_started = Instant::now();
        let watcher = scope.spawn(move || {
            while watch_started.elapsed() < FAILOVER_TIMEOUT {
                let moved = others.iter().find_map(|bootstrap| {
                    view_of(bootstrap)?
                        .partition(topic, 0)
                        .filter(|(now, new_epoch, _)| {
                            *now > 0 && *now != leader && *new_epoch > epoch
                        })
                });
                if let Some((new_leader, _, _)) = moved {
                    return Some((new_leader, watch_started.elapsed(), process_state(pid)));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            None
        });
        let status = cluster.node(leader).terminate();
        let exited_after = watch_started.elapsed();
        assert!(status.success(), "node {leader} exits cleanly: {status}");
        let moved = watcher.join().expect("the watcher");
        eprintln!(
            "{topic}-0: node {leader} got SIGTERM and exited after {exited_after:?}; new leader \
             (node, seen after, old process state then): {moved:?}"
        );
        let (_, _, state) = moved
            .unwrap_or_else(|| panic!("leadership of {topic}-0 did not move off node {leader}"));
        assert!(
            state.is_some_and(|state| state != 'Z'),
            "leadership moved only after node {leader} exited (its process was {state:?})"
        );

        std::thread::sleep(Duration::from_secs(1));
        cluster.node(leader).restart();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("the sender")
    });
    producer
        .flush(Duration::from_secs(60))
        .expect("every delivery reported");
    let log = cluster.node(leader).log();
    assert!(
        log.contains("controlled shutdown: leaderships handed over"),
        "node {leader} logs its hand-over"
    );

    let deliveries = &context.deliveries.0;
    assert_eq!(producer.client().fatal_error(), None, "no fatal error");
    let failed = deliveries.failed.lock().expect("deliveries").clone();
    assert!(
        failed.is_empty(),
        "{} of {sent} deliveries failed, first {:?}",
        failed.len(),
        failed.first()
    );
    let produce_errors = context.produce_errors.lock().expect("log").clone();
    // A request the old leader receives after the hand-over is refused with
    // NOT_LEADER_OR_FOLLOWER, as in Kafka: that is how the producer learns of
    // the move. It retries; what counts is that no delivery fails.
    let log_lines = context.log_lines.load(Ordering::Relaxed);
    assert!(
        log_lines > sent / 100,
        "librdkafka's debug log reached the test ({log_lines} lines for {sent} records)"
    );
    eprintln!(
        "{topic}: {sent} records sent; of {log_lines} librdkafka log lines, {} report a \
         failed produce request (retried): {:?}",
        produce_errors.len(),
        produce_errors.iter().take(5).collect::<Vec<_>>()
    );
    let mut acknowledged: Vec<(usize, i64)> = deliveries
        .acknowledged
        .lock()
        .expect("deliveries")
        .iter()
        .map(|&(index, _, offset)| (index, offset))
        .collect();
    acknowledged.sort_unstable();
    assert_eq!(acknowledged.len(), sent, "every record acknowledged");
    let acknowledged: Vec<(String, i64)> = acknowledged
        .into_iter()
        .map(|(index, offset)| (format!("handover-{index:06}"), offset))
        .collect();
    let records = read_partition(&cluster.bootstrap(), topic, 0);
    let stored: Vec<(i64, String)> = records
        .iter()
        .map(|record| record.offset)
        .zip(values(&records))
        .collect();
    assert_acknowledged_once_in_order(&format!("{topic}-0"), &stored, &acknowledged);
}
