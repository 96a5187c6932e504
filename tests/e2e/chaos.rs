//! Chaos: a three-node cluster of real `eddy broker` processes, a topic of
//! three partitions with three replicas each, an idempotent acks=all
//! producer and a consumer group member committing as they go, while node
//! after node is SIGKILLed and restarted — sometimes the active controller,
//! sometimes the group's coordinator, sometimes any node, never more than
//! one at a time.
//!
//! Afterwards every acknowledged record must be stored exactly once, in
//! order, at the offset it was acknowledged with; every acknowledged commit
//! must still be there; and every replica must hold the same bytes below
//! the high watermark.
//!
//! The schedule comes from a seeded PRNG, printed at the start so a failure
//! replays: `EDDY_CHAOS_SEED=<seed> EDDY_CHAOS_ROUNDS=<n> cargo test -p
//! eddy-e2e --test chaos -- --nocapture` (defaults: a fixed seed, 5 rounds).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_protocol::records::batches_allowing_partial_tail;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use support::cluster::Cluster;
use support::kafka::{self, Outgoing, RecordingProducer, create_replicated_topic};

const TOPIC: &str = "chaos";
const PARTITIONS: i32 = 3;
const REPLICAS: usize = 3;
const GROUP: &str = "chaos-readers";
/// `__consumer_offsets` partitions (Kafka's default, set explicitly so the
/// coordinator's partition is known).
const OFFSETS_PARTITIONS: i32 = 50;
const DEFAULT_SEED: u64 = 0x00ED_D1C4_A05E;
const DEFAULT_ROUNDS: u32 = 5;
/// How long a killed node stays down: a random time in this range.
const DOWNTIME_MS: std::ops::Range<u64> = 300..1500;
/// Budget for the metadata quorum to elect a new controller.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Budget for every partition to have its full ISR again after a restart.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The producer sends one record to each partition this often.
const SEND_INTERVAL: Duration = Duration::from_millis(3);
/// The group member commits what it consumed this often.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// Budget for the member to join and commit once before the chaos starts.
const FIRST_COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget for a follower's log to reach the high watermark at the end.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(15);

/// SplitMix64: a tiny deterministic PRNG, so a seed replays a schedule.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `range` (not quite uniform; close enough for a schedule).
    fn in_range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
        Err(_) => default,
    }
}

/// Which node a round kills.
#[derive(Debug, Clone, Copy)]
enum Target {
    Controller,
    Coordinator,
    Random,
}

fn record(partition: i32, sequence: usize) -> Outgoing {
    Outgoing {
        key: format!("p{partition}").into_bytes(),
        value: value(partition, sequence).into_bytes(),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

fn value(partition: i32, sequence: usize) -> String {
    format!("p{partition}-{sequence:08}")
}

/// Sends one record per partition every [`SEND_INTERVAL`] until stopped;
/// record `sequence * PARTITIONS + partition` is `value(partition, sequence)`.
fn start_producer(bootstrap: &str, stop: Arc<AtomicBool>) -> JoinHandle<RecordingProducer> {
    let mut config = kafka::client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000")
        .set("retry.backoff.ms", "50")
        .set("request.timeout.ms", "5000")
        .set("socket.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "1000");
    let producer = RecordingProducer::new(&config);
    std::thread::spawn(move || {
        let mut sequence = 0;
        while !stop.load(Ordering::Relaxed) {
            for partition in 0..PARTITIONS {
                let index = sequence * PARTITIONS as usize + partition as usize;
                producer.send(TOPIC, partition, index, &record(partition, sequence));
            }
            sequence += 1;
            std::thread::sleep(SEND_INTERVAL);
        }
        producer
    })
}

/// What the group member saw.
#[derive(Default)]
struct MemberRecord {
    consumed: usize,
    /// The offsets of the last commit the coordinator acknowledged, per partition.
    last_acknowledged_commit: BTreeMap<i32, i64>,
    commits_acknowledged: usize,
    commit_errors: Vec<String>,
    errors: Vec<String>,
}

/// Eager assign and unassign, without rust-rdkafka's default calls into
/// librdkafka's group thread, which can hang once the consumer is closing
/// (confluentinc/librdkafka#4041).
struct EagerMember;

impl ClientContext for EagerMember {}

impl ConsumerContext for EagerMember {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let _ = match error {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => consumer.assign(list),
            _ => consumer.unassign(),
        };
    }
}

/// A member of [`GROUP`] consuming [`TOPIC`] until stopped, committing the
/// offsets after what it consumed every [`COMMIT_INTERVAL`], synchronously.
fn start_member(
    bootstrap: &str,
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<MemberRecord>>,
) -> JoinHandle<()> {
    let consumer: BaseConsumer<EagerMember> =
        support::group::member_config(bootstrap, GROUP, "chaos-member")
            .create_with_context(EagerMember)
            .expect("rdkafka consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    std::thread::spawn(move || {
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut last_commit = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(50)) {
                None => {}
                Some(Ok(message)) => {
                    next_offsets.insert(message.partition(), message.offset() + 1);
                    lock(&record).consumed += 1;
                }
                Some(Err(error)) => lock(&record).errors.push(error.to_string()),
            }
            if last_commit.elapsed() < COMMIT_INTERVAL || next_offsets.is_empty() {
                continue;
            }
            last_commit = Instant::now();
            let mut list = TopicPartitionList::new();
            for (partition, offset) in &next_offsets {
                list.add_partition_offset(TOPIC, *partition, Offset::Offset(*offset))
                    .expect("offset list");
            }
            let outcome = consumer.commit(&list, CommitMode::Sync);
            let mut record = lock(&record);
            match outcome {
                Ok(()) => {
                    record.commits_acknowledged += 1;
                    record.last_acknowledged_commit.extend(next_offsets.clone());
                }
                Err(error) => record.commit_errors.push(error.to_string()),
            }
        }
        drop(consumer);
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// (leader, epoch) of each partition of [`TOPIC`], as its leader reports.
fn leaderships(cluster: &Cluster) -> BTreeMap<i32, (i32, i32)> {
    (0..PARTITIONS)
        .filter_map(|partition| {
            let (leader, epoch, _) =
                cluster.wait_for_partition(TOPIC, partition, Duration::ZERO, |leader, _, _| {
                    leader > 0
                })?;
            Some((partition, (leader, epoch)))
        })
        .collect()
}

/// What the rounds did, for the summary.
#[derive(Default)]
struct Tally {
    /// Partitions of the topic whose leadership moved off a killed node.
    leader_failovers: usize,
    controller_kills: usize,
    controller_moves: usize,
    coordinator_kills: usize,
    coordinator_moves: usize,
}

/// One round: kill the chosen node, keep it down for a random time, restart
/// it and wait until every replica is back in sync.
fn run_round(cluster: &mut Cluster, rng: &mut SplitMix64, round: u32, tally: &mut Tally) {
    for node in &mut cluster.nodes {
        node.assert_running();
    }
    let target = match round % 3 {
        0 => Target::Controller,
        1 => Target::Coordinator,
        _ => Target::Random,
    };
    let random_node = rng.in_range(1..REPLICAS as u64 + 1) as i32;
    let downtime = Duration::from_millis(rng.in_range(DOWNTIME_MS));
    let controller = cluster.quorum_leader();
    let coordinator = cluster.group_coordinator(GROUP, OFFSETS_PARTITIONS);
    let victim = match target {
        Target::Controller => controller,
        Target::Coordinator => coordinator,
        Target::Random => None,
    }
    .unwrap_or(random_node);
    let before = leaderships(cluster);
    eprintln!(
        "round {round}: kill node {victim} ({target:?}; controller {controller:?}, \
         coordinator {coordinator:?}, leaders {before:?}) for {downtime:?}"
    );
    let killed = Instant::now();
    cluster.node(victim).kill();
    // A killed controller stays down until the quorum has elected another
    // (the followers' election timeout plus openraft's leader lease is
    // longer than the longest downtime), so that its rounds exercise the
    // controller's failover rather than only its restart.
    let await_election = matches!(target, Target::Controller) && controller == Some(victim);
    let mut restart_at = killed + downtime;
    let mut new_controller = None;
    let mut new_coordinator = None;
    loop {
        if controller == Some(victim) && new_controller.is_none() {
            new_controller = cluster
                .quorum_leader()
                .filter(|now| *now != victim)
                .map(|now| (now, killed.elapsed()));
            if await_election && new_controller.is_some() {
                restart_at = Instant::now() + downtime;
            }
        }
        if coordinator == Some(victim) && new_coordinator.is_none() {
            new_coordinator = cluster
                .group_coordinator(GROUP, OFFSETS_PARTITIONS)
                .filter(|now| *now != victim)
                .map(|now| (now, killed.elapsed()));
        }
        let elected = !await_election || new_controller.is_some();
        if elected && Instant::now() >= restart_at {
            break;
        }
        assert!(
            elected || killed.elapsed() < ELECTION_TIMEOUT,
            "round {round}: no new controller within {ELECTION_TIMEOUT:?} of killing node {victim}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.node(victim).restart();
    cluster
        .wait_for_full_isr(&[TOPIC, "__consumer_offsets"], REPLICAS, RECOVERY_TIMEOUT)
        .unwrap_or_else(|short| {
            panic!(
                "round {round}: after node {victim} restarted, replicas are {short}\n{}",
                describe_replicas(cluster)
            )
        });
    let after = leaderships(cluster);
    let moved = before
        .iter()
        .filter(|(partition, (leader, epoch))| {
            *leader == victim
                && after
                    .get(*partition)
                    .is_some_and(|(_, new_epoch)| new_epoch > epoch)
        })
        .count();
    tally.leader_failovers += moved;
    if controller == Some(victim) {
        tally.controller_kills += 1;
        tally.controller_moves += usize::from(new_controller.is_some());
        eprintln!(
            "round {round}: controller {victim} killed; new controller (node, after): \
             {new_controller:?}"
        );
    }
    if coordinator == Some(victim) {
        tally.coordinator_kills += 1;
        tally.coordinator_moves += usize::from(new_coordinator.is_some());
        eprintln!(
            "round {round}: coordinator {victim} killed; new coordinator while it was down \
             (node, after): {new_coordinator:?}"
        );
    }
    eprintln!(
        "round {round}: node {victim} back, all in sync after {:?}; leaders {after:?}",
        killed.elapsed()
    );
}

/// What each node holds of each partition of [`TOPIC`] (its leader epochs,
/// its last batches, its last log lines about it), for a failure message.
fn describe_replicas(cluster: &Cluster) -> String {
    let mut description = String::new();
    for partition in 0..PARTITIONS {
        let name = format!("{TOPIC}-{partition}");
        for node in &cluster.nodes {
            let directory = node.partition_dir(TOPIC, partition);
            let epochs = std::fs::read_to_string(directory.join("leader-epoch-checkpoint"))
                .unwrap_or_default()
                .replace('\n', " ");
            let batches: Vec<(i64, i64, i32)> = support::storage::stored_batches(&directory)
                .iter()
                .map(|batch| {
                    (
                        batch.base_offset,
                        batch.last_offset(),
                        batch.partition_leader_epoch,
                    )
                })
                .collect();
            let log = node.log();
            let lines: Vec<&str> = log
                .lines()
                .filter(|line| line.contains(&format!("\"{name}\"")))
                .collect();
            description += &format!(
                "node {} {name}: epoch checkpoint [{epochs}], last batches (base, last, epoch) \
                 {:?}, last log lines:\n  {}\n",
                node.node_id(),
                &batches[batches.len().saturating_sub(3)..],
                lines[lines.len().saturating_sub(6)..].join("\n  ")
            );
        }
    }
    description
}

/// The batches of a partition's log that end below `high_watermark`, as
/// (base offset, leader epoch, bytes), read from the node's segment files.
fn stored_prefix(
    cluster: &Cluster,
    node_id: i32,
    partition: i32,
    high_watermark: i64,
) -> Vec<(i64, i32, Bytes)> {
    let directory = cluster.nodes[(node_id - 1) as usize].partition_dir(TOPIC, partition);
    let mut prefix = Vec::new();
    for segment in support::storage::segment_files(&directory) {
        let bytes = Bytes::from(std::fs::read(&segment).unwrap_or_default());
        for batch in batches_allowing_partial_tail(&bytes) {
            let Ok((header, whole)) = batch else { break };
            if header.last_offset() < high_watermark {
                prefix.push((header.base_offset, header.partition_leader_epoch, whole));
            }
        }
    }
    prefix
}

/// Every replica holds the same batches, byte for byte, below the high
/// watermark (waiting a little for followers still fetching the tail).
fn assert_replicas_agree(cluster: &Cluster, partition: i32, high_watermark: i64, seed: u64) {
    let reaches_high_watermark = |prefix: &[(i64, i32, Bytes)]| match prefix.last() {
        None => high_watermark == 0,
        Some((base_offset, _, whole)) => {
            let header = eddy_protocol::records::BatchHeader::parse(whole).expect("batch header");
            debug_assert_eq!(header.base_offset, *base_offset);
            header.next_offset() == high_watermark
        }
    };
    let mut prefixes = BTreeMap::new();
    for node_id in 1..=REPLICAS as i32 {
        let mut prefix = Vec::new();
        let caught_up = support::wait_until(CATCH_UP_TIMEOUT, || {
            prefix = stored_prefix(cluster, node_id, partition, high_watermark);
            reaches_high_watermark(&prefix)
        });
        assert!(
            caught_up,
            "seed {seed}: node {node_id}'s log of {TOPIC}-{partition} does not reach the high \
             watermark {high_watermark}: its batches below it end at {:?}",
            prefix.last().map(|(base_offset, _, _)| base_offset)
        );
        prefixes.insert(node_id, prefix);
    }
    let reference = &prefixes[&1];
    for (node_id, prefix) in &prefixes {
        let differs = prefix
            .iter()
            .zip(reference)
            .position(|(mine, theirs)| mine != theirs);
        if let Some(index) = differs {
            let (base_offset, epoch, _) = &prefix[index];
            let (reference_offset, reference_epoch, _) = &reference[index];
            panic!(
                "seed {seed}: {TOPIC}-{partition}: node {node_id} differs from node 1 at batch \
                 {index}: base offset {base_offset} epoch {epoch} against base offset \
                 {reference_offset} epoch {reference_epoch}"
            );
        }
        assert_eq!(
            prefix.len(),
            reference.len(),
            "seed {seed}: {TOPIC}-{partition}: node {node_id} and node 1 hold different \
             numbers of batches below {high_watermark}"
        );
    }
}

#[test]
fn acknowledged_records_and_commits_survive_random_node_kills() {
    let seed = env_or("EDDY_CHAOS_SEED", DEFAULT_SEED);
    let rounds = env_or("EDDY_CHAOS_ROUNDS", DEFAULT_ROUNDS);
    eprintln!(
        "chaos: seed {seed}, {rounds} rounds (replay: EDDY_CHAOS_SEED={seed} \
         EDDY_CHAOS_ROUNDS={rounds})"
    );
    let started = Instant::now();
    let mut rng = SplitMix64(seed);
    let offsets_partitions = format!("offsets.topic.num.partitions={OFFSETS_PARTITIONS}");
    let mut cluster = Cluster::start(
        REPLICAS as i32,
        &["offsets.topic.replication.factor=3", &offsets_partitions],
    );
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, PARTITIONS, REPLICAS as i32, &[]);
    cluster
        .wait_for_full_isr(&[TOPIC], REPLICAS, RECOVERY_TIMEOUT)
        .unwrap_or_else(|short| panic!("{TOPIC} at the start: {short}"));

    let stop_producer = Arc::new(AtomicBool::new(false));
    let producer = start_producer(&bootstrap, stop_producer.clone());
    let stop_member = Arc::new(AtomicBool::new(false));
    let member_record = Arc::new(Mutex::new(MemberRecord::default()));
    let member = start_member(&bootstrap, stop_member.clone(), member_record.clone());
    let committed_once = support::wait_until(FIRST_COMMIT_TIMEOUT, || {
        lock(&member_record).commits_acknowledged > 0
    });
    assert!(
        committed_once,
        "the group member committed nothing within {FIRST_COMMIT_TIMEOUT:?}; commit errors {:?}",
        lock(&member_record).commit_errors
    );
    cluster
        .wait_for_full_isr(&[TOPIC, "__consumer_offsets"], REPLICAS, RECOVERY_TIMEOUT)
        .unwrap_or_else(|short| panic!("before the first round: {short}"));

    let mut tally = Tally::default();
    for round in 0..rounds {
        run_round(&mut cluster, &mut rng, round, &mut tally);
    }

    stop_producer.store(true, Ordering::Relaxed);
    let producer = producer.join().expect("the producer thread");
    producer.flush_expecting_every_record_acknowledged(
        Duration::from_secs(120),
        &format!("seed {seed} (acks=all, a majority always up): "),
    );
    // Let the member read a little past the last round before it stops.
    std::thread::sleep(COMMIT_INTERVAL * 3);
    stop_member.store(true, Ordering::Relaxed);
    member.join().expect("the member thread");

    let acknowledged = producer.acknowledged_in_offset_order(PARTITIONS as usize);
    for partition in 0..PARTITIONS {
        let records = acknowledged.get(&partition).cloned().unwrap_or_default();
        assert!(
            !records.is_empty(),
            "seed {seed}: nothing acknowledged on {partition}"
        );
        kafka::assert_acknowledged_at_offsets(
            &bootstrap,
            TOPIC,
            partition,
            &records,
            |sequence| value(partition, sequence),
            &format!("seed {seed}: "),
        );
    }

    let member = lock(&member_record);
    let committed = support::group::committed_offsets(&bootstrap, GROUP, TOPIC, PARTITIONS);
    for (partition, acknowledged_offset) in &member.last_acknowledged_commit {
        let stored = committed.get(partition).copied().flatten();
        assert!(
            stored.is_some_and(|stored| stored >= *acknowledged_offset),
            "seed {seed}: {GROUP} committed {acknowledged_offset} on {TOPIC}-{partition} and \
             the coordinator acknowledged it, but now it has {stored:?}"
        );
    }

    let high_watermarks = support::group::end_offsets(&bootstrap, TOPIC, PARTITIONS);
    for (partition, high_watermark) in &high_watermarks {
        assert_replicas_agree(&cluster, *partition, *high_watermark, seed);
    }

    let acknowledged_count: usize = acknowledged.values().map(Vec::len).sum();
    eprintln!(
        "chaos: seed {seed}: {rounds} rounds in {:?}; {acknowledged_count} records \
         acknowledged, high watermarks {high_watermarks:?}; {} partition leaderships moved off \
         killed nodes; controller killed {} times (replaced while down {}), coordinator killed \
         {} times (replaced while down {}); member consumed {}, {} commits acknowledged, last {:?}, {} commit errors \
         {:?}, {} consumer errors {:?}",
        started.elapsed(),
        tally.leader_failovers,
        tally.controller_kills,
        tally.controller_moves,
        tally.coordinator_kills,
        tally.coordinator_moves,
        member.consumed,
        member.commits_acknowledged,
        member.last_acknowledged_commit,
        member.commit_errors.len(),
        member.commit_errors.iter().take(3).collect::<Vec<_>>(),
        member.errors.len(),
        member.errors.iter().take(3).collect::<Vec<_>>(),
    );
}
