//! Consumer groups against a real node, with real clients: librdkafka
//! (rdkafka crate) members that split partitions, take over from a member
//! that leaves and consume nothing twice when they commit synchronously;
//! cooperative-sticky rebalancing; kafka-python, confluent-kafka, kafkajs
//! and `kcat -G` group consumers; committed offsets and lag across a SIGKILL;
//! static membership, session expiry and fencing; the admin views of groups
//! (list, describe, offsets, delete); and hostile group requests over raw
//! TCP while a well-behaved group next door keeps working.
//!
//! Needs `python3` with kafka-python and confluent-kafka, `node` with
//! kafkajs, and `kcat` (`.ci/run` installs them).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_protocol::messages::{
    DescribeGroupsRequest, FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
    join_group_request::JoinGroupRequestProtocol,
    leave_group_request::MemberIdentity,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    },
    sync_group_request::SyncGroupRequestAssignment,
};
use eddy_protocol::{ApiKey, ErrorCode, RequestBody, ResponseBody, StrBytes};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use support::Node;
use support::group::{
    Consumed, GroupMember, Partition, RebalanceKind, SESSION_TIMEOUT, committed_offsets,
    consume_and_commit, end_offsets, lag, member_config, partitions, wait_for_balance,
};
use support::kafka::{CLIENT_TIMEOUT, Outgoing, RecordingProducer, client_config, create_topic};
use support::raw::RawConnection;
use support::storage::stored_batches;

/// Broker configs of every node here: a small `__consumer_offsets`, so that
/// the tests can look at each of its partitions.
const NODE_SETTINGS: &[&str] = &["offsets.topic.num.partitions=5"];
const OFFSETS_TOPIC_PARTITIONS: i32 = 5;
/// How long a group may take to form or settle after a member joins (the
/// coordinator's initial rebalance delay, a join round and a sync round).
const BALANCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack on top of the session timeout for a takeover or a static rejoin.
const TIMING_MARGIN: Duration = Duration::from_secs(2);
/// Longer than the client scripts' own watchdogs, which name the step that hung.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// The value of record `index`.
fn value(index: usize) -> Vec<u8> {
    format!("record {index}").into_bytes()
}

/// Produces records `indexes` (key `key-N`, value `record N`) to `topic`,
/// record N to partition N mod `partition_count`; fails the test on any
/// delivery error.
fn produce_records(bootstrap: &str, topic: &str, partition_count: i32, indexes: Range<usize>) {
    let producer = RecordingProducer::new(&client_config(bootstrap));
    for index in indexes.clone() {
        let record = Outgoing {
            key: format!("key-{index}").into_bytes(),
            value: value(index),
            headers: Vec::new(),
            timestamp_ms: None,
        };
        producer.send(topic, index as i32 % partition_count, index, &record);
    }
    producer.flush(CLIENT_TIMEOUT);
    assert_eq!(
        producer.deliveries.failed_count(),
        0,
        "producing to {topic}: {:?}",
        producer
            .deliveries
            .failed
            .lock()
            .expect("deliveries")
            .first()
    );
    assert_eq!(producer.deliveries.acknowledged_count(), indexes.len());
}

/// Fails unless `consumed` holds the value of each record in `expected`
/// exactly once, naming the duplicates and the missing.
fn assert_each_consumed_once(consumed: &[Consumed], expected: Range<usize>) {
    let mut seen: BTreeMap<&[u8], Vec<(i32, i64)>> = BTreeMap::new();
    for record in consumed {
        seen.entry(&record.value)
            .or_default()
            .push((record.partition, record.offset));
    }
    let duplicates: Vec<String> = seen
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(value, places)| format!("{} at {places:?}", String::from_utf8_lossy(value)))
        .collect();
    let missing: Vec<usize> = expected
        .clone()
        .filter(|index| !seen.contains_key(value(*index).as_slice()))
        .collect();
    assert!(
        duplicates.is_empty() && missing.is_empty(),
        "of {} records, the group consumed {} ({} distinct): {} consumed twice, first {:?}; {} never consumed, first {:?}",
        expected.len(),
        consumed.len(),
        seen.len(),
        duplicates.len(),
        duplicates.iter().take(5).collect::<Vec<_>>(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(consumed.len(), expected.len(), "records consumed");
}

/// Every record the members consumed.
fn all_consumed(members: &[&GroupMember]) -> Vec<Consumed> {
    members
        .iter()
        .flat_map(|member| member.consumed())
        .collect()
}

fn assert_no_commit_errors(members: &[&GroupMember]) {
    for member in members {
        assert!(
            member.commit_errors().is_empty(),
            "synchronous commits failed: {}",
            member.describe()
        );
    }
}

/// Fails unless `group` has committed the end of every partition of `topic`.
fn assert_caught_up(bootstrap: &str, group: &str, topic: &str, partition_count: i32) {
    let committed = committed_offsets(bootstrap, group, topic, partition_count);
    let ends: BTreeMap<i32, Option<i64>> = end_offsets(bootstrap, topic, partition_count)
        .into_iter()
        .map(|(partition, end)| (partition, Some(end)))
        .collect();
    assert_eq!(
        committed, ends,
        "{group}'s committed offsets against the end offsets"
    );
    assert_eq!(
        lag(bootstrap, group, topic, partition_count),
        0,
        "{group}'s lag"
    );
}

/// Three librdkafka members split six partitions two by two; when one
/// leaves, the other two take its partitions within the session timeout,
/// and with synchronous commits the group consumes every record once.
#[test]
fn librdkafka_members_split_partitions_and_take_over_from_a_leaver_without_duplicates() {
    const BEFORE: usize = 600;
    const TOTAL: usize = 1200;
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("trio", "trio-group");
    create_topic(&bootstrap, topic, 6, &[]);
    let all = partitions(topic, 6);
    produce_records(&bootstrap, topic, 6, 0..BEFORE);

    let mut members: Vec<GroupMember> = (0..3)
        .map(|index| {
            let name = format!("trio-{index}");
            GroupMember::start(&name, &member_config(&bootstrap, group, &name), &[topic])
        })
        .collect();
    wait_for_balance(&members.iter().collect::<Vec<_>>(), &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("three members never held two partitions each:\n{state}"));
    for member in &members {
        assert_eq!(member.assignment().len(), 2, "{}", member.describe());
    }

    // One member leaves (LeaveGroup on close) while records keep coming.
    let mut leaver = members.remove(0);
    let left_behind = leaver.assignment();
    leaver.close();
    let left = Instant::now();
    let producing = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || produce_records(&bootstrap, topic, 6, BEFORE..TOTAL))
    };
    let remaining: Vec<&GroupMember> = members.iter().collect();
    wait_for_balance(&remaining, &all, SESSION_TIMEOUT + BALANCE_TIMEOUT).unwrap_or_else(|state| {
        panic!("the two remaining members never took over {left_behind:?}:\n{state}")
    });
    let takeover = left.elapsed();
    eprintln!("the remaining members took over {left_behind:?} in {takeover:?}");
    assert!(
        takeover < SESSION_TIMEOUT + TIMING_MARGIN,
        "the remaining members took {takeover:?} to take over {left_behind:?} (session timeout {SESSION_TIMEOUT:?})"
    );
    for member in &members {
        assert_eq!(member.assignment().len(), 3, "{}", member.describe());
    }
    producing.join().expect("producer thread");

    let everyone = [&leaver, &members[0], &members[1]];
    let consumed_everything = support::wait_until(CLIENT_TIMEOUT, || {
        everyone
            .iter()
            .map(|member| member.consumed_count())
            .sum::<usize>()
            >= TOTAL
    });
    for member in &mut members {
        member.close();
    }
    let everyone = [&leaver, &members[0], &members[1]];
    assert!(
        consumed_everything,
        "the group did not consume {TOTAL} records:\n{}",
        everyone
            .iter()
            .map(|member| member.describe())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_no_commit_errors(&everyone);
    assert_each_consumed_once(&all_consumed(&everyone), 0..TOTAL);
    assert_caught_up(&bootstrap, group, topic, 6);
}

/// With librdkafka's cooperative-sticky assignor, members joining one by
/// one (one, two, three) end up balanced, and each rebalance is incremental:
/// a member only gives up partitions, it never has revoked one it keeps.
#[test]
fn cooperative_sticky_members_move_only_the_partitions_that_change_owner() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("sticky", "sticky-group");
    create_topic(&bootstrap, topic, 6, &[]);
    let all = partitions(topic, 6);
    let start = |index: usize| {
        let name = format!("sticky-{index}");
        let mut config = member_config(&bootstrap, group, &name);
        config.set("partition.assignment.strategy", "cooperative-sticky");
        GroupMember::start(&name, &config, &[topic])
    };

    let mut members = vec![start(0)];
    wait_for_balance(&[&members[0]], &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("the first member never got all six partitions:\n{state}"));
    for joiner in 1..3 {
        let before: Vec<(BTreeSet<Partition>, usize)> = members
            .iter()
            .map(|member| (member.assignment(), member.event_count()))
            .collect();
        members.push(start(joiner));
        wait_for_balance(&members.iter().collect::<Vec<_>>(), &all, BALANCE_TIMEOUT)
            .unwrap_or_else(|state| {
                panic!(
                    "{} members never split six partitions evenly:\n{state}",
                    joiner + 1
                )
            });
        for (member, (held, seen)) in members.iter().zip(&before) {
            let kept = member.assignment();
            assert!(
                kept.is_subset(held),
                "{} gained partitions while a member joined: held {held:?}, now {kept:?}",
                member.name
            );
            for event in &member.events()[*seen..] {
                assert!(
                    event.kind == RebalanceKind::Assign || event.partitions.is_disjoint(&kept),
                    "{} had partitions it kept revoked (not incremental): {event:?}, kept {kept:?}",
                    member.name
                );
            }
        }
        let newcomer = &members[joiner];
        assert_eq!(
            newcomer.assignment().len(),
            6 / (joiner + 1),
            "{}",
            newcomer.describe()
        );
        assert!(
            newcomer
                .events()
                .iter()
                .all(|event| event.kind == RebalanceKind::Assign),
            "{} had partitions revoked: {:?}",
            newcomer.name,
            newcomer.events()
        );
    }
    for member in &members {
        assert_eq!(
            member.protocol(),
            Some("cooperative"),
            "{}",
            member.describe()
        );
    }
}

/// Two kafka-python `KafkaConsumer` members in one group share a topic's
/// four partitions two by two, consume every record once and commit.
#[test]
fn kafka_python_group_members_share_partitions_and_commit() {
    const RECORDS: usize = 200;
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("kafka-python-shared", "kafka-python-group");
    create_topic(&bootstrap, topic, 4, &[]);
    let report = support::run_client_script(
        "python3",
        "kafka_python_group.py",
        &[&bootstrap, topic, group, &RECORDS.to_string()],
        SCRIPT_TIMEOUT,
    );

    let assignments: Vec<BTreeSet<Partition>> = report["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .map(|member| {
            member
                .as_array()
                .expect("a member's partitions")
                .iter()
                .map(|partition| {
                    (
                        topic.to_string(),
                        partition.as_i64().expect("partition") as i32,
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(assignments.len(), 2, "members: {report}");
    assert!(
        support::group::is_balanced(&assignments, &partitions(topic, 4))
            && assignments.iter().all(|assigned| assigned.len() == 2),
        "two partitions each expected: {assignments:?}"
    );
    let consumed = consumed_from_report(&report, topic);
    assert_each_consumed_once(&consumed, 0..RECORDS);
    for member in report["consumed_by_member"].as_array().expect("counts") {
        assert!(
            member.as_u64() > Some(0),
            "a member consumed nothing: {report}"
        );
    }
    let per_partition = RECORDS as i64 / 4;
    assert_eq!(
        report["committed"],
        json!({"0": per_partition, "1": per_partition, "2": per_partition, "3": per_partition}),
        "committed offsets as kafka-python's admin client reads them"
    );
    assert_caught_up(&bootstrap, group, topic, 4);
}

/// `[partition, offset, value]` triples of a script's report, as records.
fn consumed_from_report(report: &Value, topic: &str) -> Vec<Consumed> {
    report["consumed"]
        .as_array()
        .unwrap_or_else(|| panic!("no consumed records in {report}"))
        .iter()
        .map(|record| Consumed {
            topic: topic.to_string(),
            partition: record[0].as_i64().expect("partition") as i32,
            offset: record[1].as_i64().expect("offset"),
            value: record[2].as_str().expect("value").as_bytes().to_vec(),
        })
        .collect()
}

/// A confluent-kafka group consumer reads everything and commits; a second
/// run in the same group reads only what was produced after the commit.
#[test]
fn confluent_kafka_group_consumer_reads_everything_then_resumes_after_its_commit() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("confluent-shared", "confluent-group");
    create_topic(&bootstrap, topic, 3, &[]);
    produce_records(&bootstrap, topic, 3, 0..300);
    let run = |count: usize| {
        support::run_client_script(
            "python3",
            "confluent_kafka_group.py",
            &[&bootstrap, topic, group, &count.to_string()],
            SCRIPT_TIMEOUT,
        )
    };

    let report = run(300);
    assert_each_consumed_once(&consumed_from_report(&report, topic), 0..300);
    assert_eq!(
        report["committed"],
        json!({"0": 100, "1": 100, "2": 100}),
        "committed offsets as confluent-kafka reads them"
    );
    assert_caught_up(&bootstrap, group, topic, 3);

    produce_records(&bootstrap, topic, 3, 300..330);
    let report = run(30);
    let mut consumed = consumed_from_report(&report, topic);
    consumed.sort();
    assert_each_consumed_once(&consumed, 300..330);
    assert!(
        consumed.iter().all(|record| record.offset >= 100),
        "the second run read from before the commit: {consumed:?}"
    );
    assert_caught_up(&bootstrap, group, topic, 3);
}

/// A kafkajs group consumer (`eachMessage`) reads every record once, commits
/// and leaves; the group is then empty and keeps its offsets.
#[test]
fn kafkajs_group_consumer_reads_every_record_commits_and_leaves() {
    const RECORDS: usize = 200;
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("kafkajs-shared", "kafkajs-group");
    create_topic(&bootstrap, topic, 2, &[]);
    produce_records(&bootstrap, topic, 2, 0..RECORDS);
    let report = support::run_client_script(
        "node",
        "kafkajs_group.mjs",
        &[&bootstrap, topic, group, &RECORDS.to_string()],
        SCRIPT_TIMEOUT,
    );
    assert_each_consumed_once(&consumed_from_report(&report, topic), 0..RECORDS);
    assert_eq!(
        report["committed"],
        json!({"0": RECORDS / 2, "1": RECORDS / 2}),
        "committed offsets as kafkajs's admin reads them"
    );
    assert_eq!(
        report["described_while_running"]["state"],
        json!("Stable"),
        "{report}"
    );
    assert_eq!(
        report["described_while_running"]["members"],
        json!(1),
        "{report}"
    );
    assert_eq!(
        report["described_after_disconnect"],
        json!({"state": "Empty", "protocol_type": "consumer", "members": 0}),
        "the group after the consumer left"
    );
    assert_caught_up(&bootstrap, group, topic, 2);
}

/// `kcat -G` (librdkafka 2.0.2) consumes as a group member and commits on
/// exit; a second run resumes after what the first consumed.
#[test]
fn kcat_balanced_consumer_reads_as_a_group_and_resumes_after_its_commit() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("kcat-shared", "kcat-group");
    create_topic(&bootstrap, topic, 2, &[]);
    produce_records(&bootstrap, topic, 2, 0..50);
    let kcat = |count: usize| {
        let count = count.to_string();
        let finished = support::run(
            Command::new("kcat").args([
                "-b",
                &bootstrap,
                "-G",
                group,
                topic,
                "-c",
                &count,
                "-q",
                "-f",
                "%p %o %s\\n",
                // Not `-o beginning`: with -G, kcat seeks every assigned
                // partition there, whatever the group committed.
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
            ]),
            SCRIPT_TIMEOUT,
        );
        assert!(
            finished.status.success(),
            "kcat -G failed ({}):\n{}",
            finished.status,
            finished.stderr
        );
        finished
            .stdout
            .lines()
            .map(|line| {
                let mut fields = line.splitn(3, ' ');
                let mut next = || {
                    fields
                        .next()
                        .unwrap_or_else(|| panic!("kcat line {line:?}"))
                };
                Consumed {
                    topic: topic.to_string(),
                    partition: next().parse().expect("partition"),
                    offset: next().parse().expect("offset"),
                    value: next().as_bytes().to_vec(),
                }
            })
            .collect::<Vec<_>>()
    };

    assert_each_consumed_once(&kcat(50), 0..50);
    assert_caught_up(&bootstrap, group, topic, 2);
    produce_records(&bootstrap, topic, 2, 50..60);
    assert_each_consumed_once(&kcat(10), 50..60);
    assert_caught_up(&bootstrap, group, topic, 2);
}

/// The partition of `__consumer_offsets` that holds `group`, as Kafka
/// chooses it: `Utils.abs(group.hashCode()) % partitions` (Java's String
/// hash over UTF-16 code units; `Utils.abs` maps `Integer.MIN_VALUE` to 0).
fn offsets_partition(group: &str, partition_count: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partition_count
}

/// A member commits synchronously part-way through a topic; its committed
/// offsets and the group's lag read the same after a SIGKILL and restart,
/// the records sit in the `__consumer_offsets` partition Kafka would choose,
/// and a new member resumes exactly after the commit. A restart asking for
/// another `offsets.topic.num.partitions` changes nothing.
#[test]
fn committed_offsets_survive_sigkill_and_the_group_resumes_right_after_them() {
    let mut node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("ledger", "ledger-group");
    create_topic(&bootstrap, topic, 3, &[]);
    produce_records(&bootstrap, topic, 3, 0..300);

    let first = consume_and_commit(
        &member_config(&bootstrap, group, "ledger-first"),
        topic,
        130,
    );
    let expected: BTreeMap<i32, Option<i64>> = (0..3)
        .map(|partition| {
            let last = first
                .iter()
                .filter(|record| record.partition == partition)
                .map(|record| record.offset)
                .max();
            (partition, last.map(|offset| offset + 1))
        })
        .collect();
    assert_eq!(
        committed_offsets(&bootstrap, group, topic, 3),
        expected,
        "committed: one past the last record processed in each partition"
    );
    assert_eq!(
        lag(&bootstrap, group, topic, 3),
        170,
        "lag before the crash"
    );

    node.kill();
    node.restart();
    assert_eq!(
        committed_offsets(&bootstrap, group, topic, 3),
        expected,
        "committed offsets after SIGKILL and restart"
    );
    assert_eq!(
        lag(&bootstrap, group, topic, 3),
        170,
        "lag after the restart"
    );

    // The group's records live in the __consumer_offsets partition Kafka
    // would choose, and only there.
    assert_eq!(
        offsets_topic_partitions(&bootstrap),
        OFFSETS_TOPIC_PARTITIONS,
        "__consumer_offsets partitions (offsets.topic.num.partitions)"
    );
    let home = offsets_partition(group, OFFSETS_TOPIC_PARTITIONS);
    for partition in 0..OFFSETS_TOPIC_PARTITIONS {
        let dir = node.partition_dir("__consumer_offsets", partition);
        let batches = if dir.exists() {
            stored_batches(&dir).len()
        } else {
            0
        };
        if partition == home {
            assert!(
                batches > 0,
                "__consumer_offsets-{home} holds no batch for {group}"
            );
        } else {
            assert_eq!(
                batches, 0,
                "__consumer_offsets-{partition} holds batches; {group} belongs in partition {home}"
            );
        }
    }

    let second = consume_and_commit(
        &member_config(&bootstrap, group, "ledger-second"),
        topic,
        170,
    );
    for (partition, committed) in &expected {
        let resumed_at = second
            .iter()
            .filter(|record| record.partition == *partition)
            .map(|record| record.offset)
            .min();
        let end = 100;
        if committed.unwrap_or(0) < end {
            assert_eq!(
                resumed_at,
                Some(committed.unwrap_or(0)),
                "partition {partition}: the new member resumed elsewhere than the commit"
            );
        }
    }
    let mut everything = first;
    everything.extend(second);
    assert_each_consumed_once(&everything, 0..300);
    assert_caught_up(&bootstrap, group, topic, 3);

    // offsets.topic.num.partitions is fixed once the topic exists: restarted
    // with another count (which would place the group elsewhere), the node
    // keeps the topic as it is and finds the group where it was.
    let other_count = 7;
    assert_ne!(offsets_partition(group, other_count), home);
    let status = node.terminate();
    assert!(
        status.success(),
        "SIGTERM: clean exit expected, got {status}"
    );
    node.restart_with(&[&format!("offsets.topic.num.partitions={other_count}")]);
    assert_eq!(
        offsets_topic_partitions(&bootstrap),
        OFFSETS_TOPIC_PARTITIONS,
        "__consumer_offsets partitions after a restart asking for {other_count}"
    );
    assert_caught_up(&bootstrap, group, topic, 3);
}

/// The partitions of `__consumer_offsets`, from Metadata.
fn offsets_topic_partitions(bootstrap: &str) -> i32 {
    let consumer: BaseConsumer = client_config(bootstrap).create().expect("rdkafka consumer");
    let metadata = consumer
        .fetch_metadata(Some("__consumer_offsets"), CLIENT_TIMEOUT)
        .expect("Metadata for __consumer_offsets");
    metadata
        .topics()
        .first()
        .map_or(0, |topic| topic.partitions().len() as i32)
}

/// A static member (`group.instance.id`) closed and started again within
/// its session gets its partitions back while the other member sees no
/// rebalance; closed static members stay until removed by instance id in
/// one batched LeaveGroup.
#[test]
fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("static", "static-group");
    create_topic(&bootstrap, topic, 4, &[]);
    let all = partitions(topic, 4);
    let start =
        |name: &str, instance: &str| static_member(&bootstrap, group, topic, name, instance);

    // The first member leads the group; the second is the one restarted (a
    // static leader's rejoin rebalances in Kafka before JoinGroup v9).
    let mut steady = start("static-a", "instance-a");
    wait_for_balance(&[&steady], &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("the first member never got all partitions:\n{state}"));
    let mut restarting = start("static-b", "instance-b");
    wait_for_balance(&[&steady, &restarting], &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("two static members never split four partitions:\n{state}"));
    let steady_partitions = steady.assignment();
    let steady_events = steady.event_count();
    let returning = restarting.assignment();

    // Closing a static member sends no LeaveGroup; its replacement rejoins
    // with the same group.instance.id.
    restarting.close();
    let closed = Instant::now();
    let mut restarted = start("static-b-again", "instance-b");
    let rejoined = support::wait_until(SESSION_TIMEOUT, || restarted.assignment() == returning);
    assert!(
        rejoined,
        "the restarted static member did not get {returning:?} back within the session timeout:\n{}",
        restarted.describe()
    );
    assert!(
        closed.elapsed() < SESSION_TIMEOUT,
        "rejoin took {:?}",
        closed.elapsed()
    );

    // Until well past the old session's expiry, the other member sees no rebalance.
    let quiet_until = closed + SESSION_TIMEOUT + TIMING_MARGIN;
    let disturbed = support::wait_until(
        quiet_until.saturating_duration_since(Instant::now()),
        || steady.event_count() != steady_events,
    );
    assert!(
        !disturbed,
        "the other member went through a rebalance: {:?}",
        &steady.events()[steady_events..]
    );
    assert_eq!(steady.assignment(), steady_partitions);
    assert_eq!(restarted.assignment(), returning);
    assert!(
        restarted
            .events()
            .iter()
            .all(|event| event.kind == RebalanceKind::Assign && event.partitions == returning),
        "the restarted member went through more than taking its partitions back: {:?}",
        restarted.events()
    );

    // Closed static members stay in the group until their sessions expire
    // or an admin removes them: here both at once, by group.instance.id, in
    // one LeaveGroup (v3+).
    steady.close();
    restarted.close();
    let mut raw = RawConnection::open(&bootstrap, RAW_READ_TIMEOUT);
    let versions = GroupVersions::negotiate(&mut raw);
    let (state, members) = describe_group(&mut raw, versions.describe, group);
    assert_eq!(
        (state.as_str(), members.len()),
        ("Stable", 2),
        "static members closed without leaving"
    );
    assert!(
        versions.leave >= 3,
        "LeaveGroup v{} removes one member at a time",
        versions.leave
    );
    let by_instance = |instance: &str| MemberIdentity {
        member_id: "".into(),
        group_instance_id: Some(instance.into()),
        ..MemberIdentity::default()
    };
    let removed = leave(
        &mut raw,
        versions.leave,
        group,
        vec![by_instance("instance-a"), by_instance("instance-b")],
    );
    assert_eq!(
        removed,
        (
            "None".to_string(),
            vec!["None".to_string(), "None".to_string()]
        ),
        "LeaveGroup removing both static members by instance id"
    );
    let emptied = support::wait_until(Duration::from_secs(5), || {
        describe_group(&mut raw, versions.describe, group) == ("Empty".to_string(), Vec::new())
    });
    assert!(
        emptied,
        "after removing both members: {:?}",
        describe_group(&mut raw, versions.describe, group)
    );
}

/// A member of `group` subscribed to `topic` with `group.instance.id` = `instance`.
fn static_member(
    bootstrap: &str,
    group: &str,
    topic: &str,
    name: &str,
    instance: &str,
) -> GroupMember {
    let mut config = member_config(bootstrap, group, name);
    config.set("group.instance.id", instance);
    GroupMember::start(name, &config, &[topic])
}

/// A member that stops heartbeating without leaving (a static member's
/// close sends no LeaveGroup) is dropped when its session expires, not
/// before, and the remaining member takes its partitions.
#[test]
fn a_silent_member_is_expired_after_its_session_timeout() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("expiring", "expiring-group");
    create_topic(&bootstrap, topic, 2, &[]);
    let all = partitions(topic, 2);
    let survivor = static_member(&bootstrap, group, topic, "survivor", "survivor");
    wait_for_balance(&[&survivor], &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("the first member never got the partitions:\n{state}"));
    let mut silent = static_member(&bootstrap, group, topic, "silent", "silent");
    wait_for_balance(&[&survivor, &silent], &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("two members never split two partitions:\n{state}"));

    silent.close();
    let closed = Instant::now();
    let took_over = support::wait_until(SESSION_TIMEOUT + BALANCE_TIMEOUT, || {
        survivor.assignment() == all
    });
    let elapsed = closed.elapsed();
    assert!(
        took_over,
        "the silent member was never expired: {}",
        survivor.describe()
    );
    // Its last heartbeat was at most one interval (500 ms) before the close.
    assert!(
        elapsed > SESSION_TIMEOUT - Duration::from_secs(1),
        "the silent member was dropped {elapsed:?} after its last heartbeat, before its {SESSION_TIMEOUT:?} session ended"
    );
    assert!(
        elapsed < SESSION_TIMEOUT + TIMING_MARGIN,
        "the survivor took {elapsed:?} to take over (session timeout {SESSION_TIMEOUT:?})"
    );
}

/// Two live consumers with one group.instance.id: the newer one takes the
/// instance's partitions and the older one is told FENCED_INSTANCE_ID.
#[test]
fn a_second_member_with_the_same_instance_id_fences_the_first() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("twins", "twins-group");
    create_topic(&bootstrap, topic, 2, &[]);
    let all = partitions(topic, 2);
    let first = static_member(&bootstrap, group, topic, "twin-first", "twin");
    wait_for_balance(&[&first], &all, BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("the first twin never got the partitions:\n{state}"));
    let second = static_member(&bootstrap, group, topic, "twin-second", "twin");
    assert!(
        support::wait_until(BALANCE_TIMEOUT, || second.assignment() == all),
        "the second twin did not take the instance's partitions: {}",
        second.describe()
    );
    assert!(
        support::wait_until(BALANCE_TIMEOUT, || first
            .errors()
            .iter()
            .any(|error| error.to_lowercase().contains("fenced"))),
        "the first twin was not fenced: {}",
        first.describe()
    );
}

/// kafka-python's admin client sets an empty group's offsets, lists groups
/// (with a state filter), describes them with members and assignments,
/// reads committed offsets, deletes offsets and groups.
#[test]
fn admin_clients_list_describe_and_delete_groups_and_read_their_offsets() {
    let node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group, simple) = ("described", "described-group", "simple-group");
    create_topic(&bootstrap, topic, 3, &[]);
    produce_records(&bootstrap, topic, 3, 0..30);
    let mut members: Vec<GroupMember> = (0..2)
        .map(|index| {
            let name = format!("described-{index}");
            GroupMember::start(&name, &member_config(&bootstrap, group, &name), &[topic])
        })
        .collect();
    let running: Vec<&GroupMember> = members.iter().collect();
    wait_for_balance(&running, &partitions(topic, 3), BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("two members never split three partitions:\n{state}"));
    assert!(
        support::wait_until(CLIENT_TIMEOUT, || all_consumed(&running).len() >= 30),
        "the members did not consume the 30 records"
    );

    let report = support::run_client_script(
        "python3",
        "kafka_python_group_admin.py",
        &[&bootstrap, topic, group, simple],
        SCRIPT_TIMEOUT,
    );
    assert_eq!(
        report["altered"],
        json!({"0": "NoError", "1": "NoError", "2": "NoError"}),
        "OffsetCommit for an empty group (the admin path)"
    );
    assert_eq!(
        report["altered_live"],
        json!({"0": "UnknownMemberIdError"}),
        "OffsetCommit without a member for a group that has members"
    );
    let listed = report["listed"].as_array().expect("listed groups");
    assert!(
        listed
            .contains(&json!({"group_id": group, "protocol_type": "consumer", "state": "Stable"})),
        "{group} in ListGroups: {listed:?}"
    );
    assert!(
        listed.contains(&json!({"group_id": simple, "protocol_type": "", "state": "Empty"})),
        "{simple} in ListGroups: {listed:?}"
    );
    assert_eq!(
        report["listed_stable"],
        json!([group]),
        "ListGroups with a state filter of Stable"
    );

    let described = &report["described"][group];
    assert_eq!(described["error"], json!(null), "{described}");
    assert_eq!(described["group_state"], json!("Stable"));
    assert_eq!(described["protocol_type"], json!("consumer"));
    assert_eq!(
        described["protocol_data"],
        json!("range"),
        "the assignor both members chose first"
    );
    let described_members = described["members"].as_array().expect("members");
    let mut client_ids: Vec<&str> = described_members
        .iter()
        .map(|member| member["client_id"].as_str().expect("client id"))
        .collect();
    client_ids.sort();
    assert_eq!(client_ids, ["described-0", "described-1"]);
    let assignments: Vec<BTreeSet<Partition>> = described_members
        .iter()
        .map(|member| {
            assert_eq!(
                member["member_metadata"]["topics"],
                json!([topic]),
                "subscription in {member}"
            );
            member["member_assignment"]["assigned_partitions"]
                .as_array()
                .expect("assigned partitions")
                .iter()
                .flat_map(|assigned| {
                    assert_eq!(assigned["topic"], json!(topic));
                    assigned["partitions"]
                        .as_array()
                        .expect("partitions")
                        .iter()
                        .map(|partition| {
                            (
                                topic.to_string(),
                                partition.as_i64().expect("partition") as i32,
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect();
    assert!(
        support::group::is_balanced(&assignments, &partitions(topic, 3)),
        "described assignments {assignments:?}"
    );
    let described_simple = &report["described"][simple];
    assert_eq!(
        described_simple["group_state"],
        json!("Empty"),
        "{described_simple}"
    );
    assert_eq!(described_simple["members"], json!([]));
    // DescribeGroups before v6 calls an unknown group Dead; v6 answers GROUP_ID_NOT_FOUND.
    let unknown = &report["described_unknown"];
    assert!(
        (unknown["group_state"] == json!("Dead") && unknown["error"] == json!(null))
            || unknown["error"]
                .as_str()
                .is_some_and(|error| error.contains("GroupIdNotFound")),
        "DescribeGroups of a group that never existed: {unknown}"
    );

    assert_eq!(report["offsets"][group], json!({"0": 10, "1": 10, "2": 10}));
    assert_eq!(report["offsets"][simple], json!({"0": 7, "1": 3, "2": 9}));
    assert_eq!(
        report["lag"],
        json!({group: 0, simple: 11}),
        "end offset minus committed"
    );
    assert_eq!(
        report["offsets_deleted_live"],
        json!({"0": "GroupSubscribedToTopicError"}),
        "OffsetDelete of a topic the live group subscribes to"
    );
    assert_eq!(
        report["offsets_deleted"],
        json!({"1": "NoError"}),
        "OffsetDelete of partition 1"
    );
    assert_eq!(report["offsets_after_delete"], json!({"0": 7, "2": 9}));
    assert_eq!(
        report["deleted"],
        json!({group: "NonEmptyGroupError", simple: "OK"}),
        "DeleteGroups: a group with members stays"
    );
    let listed_after = report["listed_after_delete"]
        .as_array()
        .expect("listed groups");
    assert!(
        !listed_after
            .iter()
            .any(|listed| listed["group_id"] == json!(simple)),
        "{simple} still listed after DeleteGroups: {listed_after:?}"
    );

    // The members leave; rdkafka's ListGroups + DescribeGroups sees the group empty.
    for member in &mut members {
        member.close();
    }
    let consumer: BaseConsumer = client_config(&bootstrap)
        .create()
        .expect("rdkafka consumer");
    let groups = consumer
        .fetch_group_list(Some(group), CLIENT_TIMEOUT)
        .expect("rdkafka group list");
    let described: Vec<(&str, &str, usize)> = groups
        .groups()
        .iter()
        .map(|info| (info.name(), info.state(), info.members().len()))
        .collect();
    assert_eq!(
        described,
        [(group, "Empty", 0)],
        "the group after its members left"
    );
    assert_caught_up(&bootstrap, group, topic, 3);

    // Empty now, the group takes offsets from a client outside it (a reset).
    let mut reset = TopicPartitionList::new();
    reset
        .add_partition_offset(topic, 0, Offset::Offset(4))
        .expect("partition list");
    let outsider: BaseConsumer = client_config(&bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    outsider
        .commit(&reset, CommitMode::Sync)
        .expect("OffsetCommit to the empty group from outside it");
    assert_eq!(
        committed_offsets(&bootstrap, group, topic, 3),
        BTreeMap::from([(0, Some(4)), (1, Some(10)), (2, Some(10))]),
        "offsets after the reset"
    );
}

// Group requests over a raw connection, as no well-behaved client sends
// them: for the hostile-input test and for removing static members.

/// Raw-request timing: JoinGroup answers wait for the rebalance delay.
const RAW_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Newest versions the raw requests below are written for.
const JOIN_GROUP_NEWEST: i16 = 9;
const SYNC_GROUP_NEWEST: i16 = 5;
const LEAVE_GROUP_NEWEST: i16 = 5;
const HEARTBEAT_NEWEST: i16 = 4;
/// OffsetCommit v9 answers an unknown group with GROUP_ID_NOT_FOUND
/// instead of ILLEGAL_GENERATION; v8 keeps the classic answer.
const OFFSET_COMMIT_NEWEST: i16 = 8;
const OFFSET_FETCH_NEWEST: i16 = 8;
const DESCRIBE_GROUPS_NEWEST: i16 = 5;
const LIST_GROUPS_NEWEST: i16 = 4;

/// A consumer-protocol subscription (v0) to `topic`, as a member's metadata.
fn subscription(topic: &str) -> Bytes {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0i16.to_be_bytes());
    bytes.extend_from_slice(&1i32.to_be_bytes());
    bytes.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    bytes.extend_from_slice(topic.as_bytes());
    bytes.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(bytes)
}

fn error_name(code: i16) -> String {
    ErrorCode::from_code(code).map_or_else(
        || format!("error code {code}"),
        |error| format!("{error:?}"),
    )
}

/// A consumer-protocol JoinGroup with the suite's session timeout.
fn join_request(
    group: &str,
    member_id: &str,
    protocols: &[JoinGroupRequestProtocol],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION_TIMEOUT.as_millis() as i32,
        rebalance_timeout_ms: 10_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: protocols.to_vec(),
        ..JoinGroupRequest::default()
    }
}

fn join(raw: &mut RawConnection, version: i16, request: JoinGroupRequest) -> JoinGroupResponse {
    match raw.request(RequestBody::JoinGroup(request), version) {
        ResponseBody::JoinGroup(response) => response,
        other => panic!("not a JoinGroup response: {other:?}"),
    }
}

fn join_group(
    raw: &mut RawConnection,
    version: i16,
    group: &str,
    member_id: &str,
    protocols: &[JoinGroupRequestProtocol],
) -> JoinGroupResponse {
    join(raw, version, join_request(group, member_id, protocols))
}

/// The one protocol an ordinary member offers: `name`, subscribing to `topic`.
fn one_protocol(name: &str, topic: &str) -> [JoinGroupRequestProtocol; 1] {
    [JoinGroupRequestProtocol {
        name: name.into(),
        metadata: subscription(topic),
        ..JoinGroupRequestProtocol::default()
    }]
}

/// Joins `group` as a new member: with JoinGroup v4+ the first answer is
/// MEMBER_ID_REQUIRED with the id to join with. Returns the final answer.
fn join_as_new_member(
    raw: &mut RawConnection,
    version: i16,
    group: &str,
    protocols: &[JoinGroupRequestProtocol],
) -> JoinGroupResponse {
    let first = join_group(raw, version, group, "", protocols);
    if version < 4 {
        return first;
    }
    assert_eq!(
        error_name(first.error_code),
        "MemberIdRequired",
        "JoinGroup v{version} without a member id"
    );
    assert!(
        !first.member_id.is_empty(),
        "MEMBER_ID_REQUIRED without a member id"
    );
    join_group(raw, version, group, first.member_id.as_str(), protocols)
}

/// LeaveGroup for `members` (before v3 a request names one member id);
/// returns the top-level error and each member's.
fn leave(
    raw: &mut RawConnection,
    version: i16,
    group: &str,
    members: Vec<MemberIdentity>,
) -> (String, Vec<String>) {
    let request = LeaveGroupRequest {
        group_id: group.into(),
        member_id: members
            .first()
            .map(|member| member.member_id.clone())
            .unwrap_or_default(),
        members,
        ..LeaveGroupRequest::default()
    };
    match raw.request(RequestBody::LeaveGroup(request), version) {
        ResponseBody::LeaveGroup(response) => (
            error_name(response.error_code),
            response
                .members
                .iter()
                .map(|member| error_name(member.error_code))
                .collect(),
        ),
        other => panic!("not a LeaveGroup response: {other:?}"),
    }
}

/// One member leaves; returns the first error, top-level or the member's.
fn leave_group(raw: &mut RawConnection, version: i16, group: &str, member_id: &str) -> String {
    let member = MemberIdentity {
        member_id: member_id.into(),
        ..MemberIdentity::default()
    };
    let (top, members) = leave(raw, version, group, vec![member]);
    if top != "None" {
        return top;
    }
    members
        .into_iter()
        .find(|error| error != "None")
        .unwrap_or(top)
}

fn sync_group(
    raw: &mut RawConnection,
    version: i16,
    joined: &JoinGroupResponse,
    group: &str,
    assignment: Bytes,
) -> (i16, Bytes) {
    let request = SyncGroupRequest {
        group_id: group.into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        protocol_type: Some("consumer".into()),
        protocol_name: joined.protocol_name.clone(),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: joined.member_id.clone(),
            assignment,
            ..SyncGroupRequestAssignment::default()
        }],
        ..SyncGroupRequest::default()
    };
    match raw.request(RequestBody::SyncGroup(request), version) {
        ResponseBody::SyncGroup(response) => (response.error_code, response.assignment),
        other => panic!("not a SyncGroup response: {other:?}"),
    }
}

/// An OffsetCommit of `offset` to partitions 0-2 of `topic` by `member_id`
/// at `generation`.
fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        retention_time_ms: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: topic.into(),
            partitions: (0..3)
                .map(|partition| OffsetCommitRequestPartition {
                    partition_index: partition,
                    committed_offset: offset,
                    ..OffsetCommitRequestPartition::default()
                })
                .collect(),
            ..OffsetCommitRequestTopic::default()
        }],
        ..OffsetCommitRequest::default()
    }
}

/// The distinct partition errors of an OffsetCommit.
fn offset_commit(
    raw: &mut RawConnection,
    version: i16,
    request: OffsetCommitRequest,
) -> BTreeSet<String> {
    match raw.request(RequestBody::OffsetCommit(request), version) {
        ResponseBody::OffsetCommit(response) => response
            .topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .map(|partition| error_name(partition.error_code))
            .collect(),
        other => panic!("not an OffsetCommit response: {other:?}"),
    }
}

fn heartbeat(
    raw: &mut RawConnection,
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
) -> String {
    let request = HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member_id.into(),
        ..HeartbeatRequest::default()
    };
    match raw.request(RequestBody::Heartbeat(request), version) {
        ResponseBody::Heartbeat(response) => error_name(response.error_code),
        other => panic!("not a Heartbeat response: {other:?}"),
    }
}

/// Committed offsets from one OffsetFetch: per group, per (topic, partition),
/// the offset and the error name. Below v8 the request carries one group.
type Fetched = BTreeMap<String, BTreeMap<Partition, (i64, String)>>;
/// One group of an OffsetFetch: its id and the partitions asked for, per
/// topic (`None`: all the group has).
type FetchFor = (String, Option<Vec<(String, Vec<i32>)>>);

fn offset_fetch(raw: &mut RawConnection, version: i16, groups: &[FetchFor]) -> Fetched {
    let request = if version >= 8 {
        OffsetFetchRequest {
            groups: groups
                .iter()
                .map(|(group, topics)| OffsetFetchRequestGroup {
                    group_id: group.as_str().into(),
                    topics: topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .map(|(name, partitions)| OffsetFetchRequestTopics {
                                name: name.as_str().into(),
                                partition_indexes: partitions.clone(),
                                ..OffsetFetchRequestTopics::default()
                            })
                            .collect()
                    }),
                    ..OffsetFetchRequestGroup::default()
                })
                .collect(),
            ..OffsetFetchRequest::default()
        }
    } else {
        assert_eq!(groups.len(), 1, "OffsetFetch v{version} carries one group");
        let (group, topics) = &groups[0];
        OffsetFetchRequest {
            group_id: group.as_str().into(),
            topics: topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|(name, partitions)| OffsetFetchRequestTopic {
                        name: name.as_str().into(),
                        partition_indexes: partitions.clone(),
                        ..OffsetFetchRequestTopic::default()
                    })
                    .collect()
            }),
            ..OffsetFetchRequest::default()
        }
    };
    let response = match raw.request(RequestBody::OffsetFetch(request), version) {
        ResponseBody::OffsetFetch(response) => response,
        other => panic!("not an OffsetFetch response: {other:?}"),
    };
    if version >= 8 {
        response
            .groups
            .iter()
            .map(|group| {
                assert_eq!(
                    group.error_code,
                    0,
                    "OffsetFetch: group {} error",
                    group.group_id.as_str()
                );
                let offsets = group
                    .topics
                    .iter()
                    .flat_map(|topic| {
                        topic.partitions.iter().map(|partition| {
                            (
                                (topic.name.to_string(), partition.partition_index),
                                (partition.committed_offset, error_name(partition.error_code)),
                            )
                        })
                    })
                    .collect();
                (group.group_id.to_string(), offsets)
            })
            .collect()
    } else {
        assert_eq!(response.error_code, 0, "OffsetFetch error");
        let offsets = response
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|partition| {
                    (
                        (topic.name.to_string(), partition.partition_index),
                        (partition.committed_offset, error_name(partition.error_code)),
                    )
                })
            })
            .collect();
        BTreeMap::from([(groups[0].0.clone(), offsets)])
    }
}

/// The member ids of `group` and its state, from DescribeGroups.
fn describe_group(raw: &mut RawConnection, version: i16, group: &str) -> (String, Vec<String>) {
    let request = DescribeGroupsRequest {
        groups: vec![group.into()],
        ..DescribeGroupsRequest::default()
    };
    match raw.request(RequestBody::DescribeGroups(request), version) {
        ResponseBody::DescribeGroups(response) => {
            let described = response.groups.first().expect("one described group");
            assert_eq!(described.error_code, 0, "DescribeGroups {group}");
            (
                described.group_state.to_string(),
                described
                    .members
                    .iter()
                    .map(|member| member.member_id.to_string())
                    .collect(),
            )
        }
        other => panic!("not a DescribeGroups response: {other:?}"),
    }
}

fn listed_groups(raw: &mut RawConnection, version: i16) -> BTreeSet<String> {
    match raw.request(
        RequestBody::ListGroups(ListGroupsRequest::default()),
        version,
    ) {
        ResponseBody::ListGroups(response) => {
            assert_eq!(response.error_code, 0, "ListGroups");
            response
                .groups
                .iter()
                .map(|group| group.group_id.to_string())
                .collect()
        }
        other => panic!("not a ListGroups response: {other:?}"),
    }
}

/// A JoinGroup offering 10,000 protocols either completes as in Kafka (the
/// member's first protocol chosen, the leader's answer carrying only that
/// protocol's metadata) or is refused with a Kafka error that leaves nothing
/// behind: an ordinary member then joins the same group alone.
fn join_with_ten_thousand_protocols(raw: &mut RawConnection, versions: &GroupVersions) {
    let group = "hostile-protocols";
    let metadata = subscription("bystander");
    let protocols: Vec<JoinGroupRequestProtocol> = (0..10_000)
        .map(|index| JoinGroupRequestProtocol {
            name: format!("assignor-{index:05}").into(),
            metadata: metadata.clone(),
            ..JoinGroupRequestProtocol::default()
        })
        .collect();
    let first = join_group(raw, versions.join, group, "", &protocols);
    let joined = if error_name(first.error_code) == "MemberIdRequired" {
        join_group(
            raw,
            versions.join,
            group,
            first.member_id.as_str(),
            &protocols,
        )
    } else {
        first
    };
    assert!(
        raw.last_response_bytes < 4096,
        "the JoinGroup answer to 10,000 protocols is {} bytes",
        raw.last_response_bytes
    );
    match error_name(joined.error_code).as_str() {
        "None" => complete_membership(raw, versions, group, &joined, "assignor-00000", &metadata),
        "UnknownServerError" => panic!("JoinGroup with 10,000 protocols: UNKNOWN_SERVER_ERROR"),
        refused => {
            eprintln!("JoinGroup with 10,000 protocols refused: {refused}");
            let ordinary = [JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: metadata.clone(),
                ..JoinGroupRequestProtocol::default()
            }];
            let joined = join_as_new_member(raw, versions.join, group, &ordinary);
            assert_eq!(
                error_name(joined.error_code),
                "None",
                "an ordinary JoinGroup after the refused one"
            );
            complete_membership(raw, versions, group, &joined, "range", &metadata);
        }
    }
}

/// Checks a one-member group's JoinGroup answer (the member leads, with
/// `protocol` chosen and only its `metadata` echoed), then syncs and leaves.
fn complete_membership(
    raw: &mut RawConnection,
    versions: &GroupVersions,
    group: &str,
    joined: &JoinGroupResponse,
    protocol: &str,
    metadata: &Bytes,
) {
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(
        joined.protocol_name.as_ref().map(|name| name.to_string()),
        Some(protocol.to_string()),
        "the protocol chosen for {group}"
    );
    assert_eq!(joined.members.len(), 1, "members in the leader's answer");
    assert_eq!(
        &joined.members[0].metadata, metadata,
        "the chosen protocol's metadata"
    );
    let assignment = Bytes::from_static(b"\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff");
    let (error, assigned) = sync_group(raw, versions.sync, joined, group, assignment.clone());
    assert_eq!(error_name(error), "None", "SyncGroup in {group}");
    assert_eq!(assigned, assignment, "the leader's own assignment back");
    assert_eq!(
        leave_group(raw, versions.leave, group, joined.member_id.as_str()),
        "None",
        "LeaveGroup from {group}"
    );
}

/// A JoinGroup whose only protocol carries 4 MiB of garbage metadata gets an
/// answer (Kafka accepts it; refusing it with an error code is as good), and
/// the connection keeps working.
fn join_with_huge_metadata(raw: &mut RawConnection, versions: &GroupVersions) {
    let group = "hostile-metadata";
    let garbage: Vec<u8> = (0..4 << 20)
        .map(|index: u32| (index.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let protocols = [JoinGroupRequestProtocol {
        name: "range".into(),
        metadata: Bytes::from(garbage),
        ..JoinGroupRequestProtocol::default()
    }];
    let joined = join_as_new_member(raw, versions.join, group, &protocols);
    if joined.error_code != 0 {
        eprintln!(
            "JoinGroup with 4 MiB metadata refused: {}",
            error_name(joined.error_code)
        );
        return;
    }
    assert_eq!(joined.members.len(), 1, "members in the leader's answer");
    assert!(
        joined.members[0].metadata == protocols[0].metadata,
        "the leader's answer changed the member's 4 MiB metadata"
    );
    let (error, _) = sync_group(raw, versions.sync, &joined, group, Bytes::new());
    eprintln!(
        "SyncGroup after a 4 MiB-metadata join: {}",
        error_name(error)
    );
    let left = leave_group(raw, versions.leave, group, joined.member_id.as_str());
    eprintln!("LeaveGroup after a 4 MiB-metadata join: {left}");
}

/// Requests Kafka answers with an error before any group changes: an empty
/// group id, session timeouts out of range, a protocol the live group does
/// not use, a SyncGroup from a stranger, offset metadata over 4 KiB.
fn requests_refused_before_any_change(
    raw: &mut RawConnection,
    versions: &GroupVersions,
    live_group: &str,
    topic: &str,
) {
    let protocols = one_protocol("range", topic);
    assert_eq!(
        error_name(join_group(raw, versions.join, "", "", &protocols).error_code),
        "InvalidGroupId",
        "JoinGroup with an empty group id"
    );
    for session_timeout_ms in [10, 3_600_000] {
        let mut request = join_request("hostile-timeouts", "", &protocols);
        request.session_timeout_ms = session_timeout_ms;
        assert_eq!(
            error_name(join(raw, versions.join, request).error_code),
            "InvalidSessionTimeout",
            "JoinGroup with session.timeout.ms={session_timeout_ms}"
        );
    }
    let foreign = one_protocol("not-an-assignor", topic);
    assert_eq!(
        error_name(join_group(raw, versions.join, live_group, "", &foreign).error_code),
        "InconsistentGroupProtocol",
        "JoinGroup offering only a protocol the live group does not use"
    );
    let stranger = JoinGroupResponse {
        generation_id: 1,
        member_id: "ghost-member".into(),
        protocol_name: Some("range".into()),
        ..JoinGroupResponse::default()
    };
    let (error, _) = sync_group(raw, versions.sync, &stranger, live_group, Bytes::new());
    assert_eq!(
        error_name(error),
        "UnknownMemberId",
        "SyncGroup from a member the group does not have"
    );
    let metadata_group = "hostile-commit-metadata";
    // Over offset.metadata.max.bytes (4096), within what an int16-length
    // string (OffsetCommit before v8) can carry.
    let huge: StrBytes = "m".repeat(30_000).into();
    let mut request = commit_request(metadata_group, -1, "", topic, 5);
    for partition in &mut request.topics[0].partitions {
        partition.committed_metadata = Some(huge.clone());
    }
    assert_eq!(
        offset_commit(raw, versions.commit, request),
        BTreeSet::from(["OffsetMetadataTooLarge".to_string()]),
        "OffsetCommit with 30,000 bytes of metadata"
    );
    let fetched = offset_fetch(
        raw,
        versions.fetch,
        &[(
            metadata_group.to_string(),
            Some(vec![(topic.to_string(), vec![0, 1, 2])]),
        )],
    );
    assert!(
        fetched[metadata_group]
            .values()
            .all(|(offset, _)| *offset == -1),
        "a refused commit stored offsets: {:?}",
        fetched[metadata_group]
    );
}

/// FindCoordinator v4 asks for several groups at once; this node answers for each.
fn assert_batched_find_coordinator(raw: &mut RawConnection, node: &Node) {
    let version = raw.version_for(ApiKey::FindCoordinator, 4);
    assert!(version >= 4, "FindCoordinator v{version}: no batched form");
    let keys = ["bystander-group", "no-such-group", "hostile-protocols"];
    let request = FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: keys.iter().map(|key| (*key).into()).collect(),
        ..FindCoordinatorRequest::default()
    };
    let response = match raw.request(RequestBody::FindCoordinator(request), version) {
        ResponseBody::FindCoordinator(response) => response,
        other => panic!("not a FindCoordinator response: {other:?}"),
    };
    let mut answered: Vec<(String, i32, i32, String)> = response
        .coordinators
        .iter()
        .map(|coordinator| {
            (
                coordinator.key.to_string(),
                coordinator.node_id,
                coordinator.port,
                error_name(coordinator.error_code),
            )
        })
        .collect();
    answered.sort();
    let mut expected: Vec<(String, i32, i32, String)> = keys
        .iter()
        .map(|key| {
            (
                key.to_string(),
                1,
                i32::from(node.port()),
                "None".to_string(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(answered, expected, "batched FindCoordinator v{version}");
}

/// Versions of the group APIs both the node and these requests speak.
struct GroupVersions {
    join: i16,
    sync: i16,
    leave: i16,
    heartbeat: i16,
    commit: i16,
    fetch: i16,
    describe: i16,
    list: i16,
}

impl GroupVersions {
    fn negotiate(raw: &mut RawConnection) -> GroupVersions {
        GroupVersions {
            join: raw.version_for(ApiKey::JoinGroup, JOIN_GROUP_NEWEST),
            sync: raw.version_for(ApiKey::SyncGroup, SYNC_GROUP_NEWEST),
            leave: raw.version_for(ApiKey::LeaveGroup, LEAVE_GROUP_NEWEST),
            heartbeat: raw.version_for(ApiKey::Heartbeat, HEARTBEAT_NEWEST),
            commit: raw.version_for(ApiKey::OffsetCommit, OFFSET_COMMIT_NEWEST),
            fetch: raw.version_for(ApiKey::OffsetFetch, OFFSET_FETCH_NEWEST),
            describe: raw.version_for(ApiKey::DescribeGroups, DESCRIBE_GROUPS_NEWEST),
            list: raw.version_for(ApiKey::ListGroups, LIST_GROUPS_NEWEST),
        }
    }
}

/// Hostile group requests over raw TCP (10,000 protocols, 4 MiB of member
/// metadata, commits and heartbeats for unknown generations and members,
/// invalid joins, oversized offset metadata, OffsetFetch for 20,000
/// partitions and 1,001 groups) get Kafka's errors or bounded answers,
/// while an rdkafka member of another group consumes and commits
/// undisturbed; the node survives a SIGKILL of all that state.
#[test]
fn hostile_group_requests_get_kafka_errors_and_leave_other_groups_alone() {
    const POISON_OFFSET: i64 = 999_999;
    let mut node = Node::start_with(NODE_SETTINGS);
    let bootstrap = node.bootstrap();
    let (topic, group) = ("bystander", "bystander-group");
    create_topic(&bootstrap, topic, 3, &[]);
    produce_records(&bootstrap, topic, 3, 0..150);
    let mut bystander = GroupMember::start(
        "bystander",
        &member_config(&bootstrap, group, "bystander"),
        &[topic],
    );
    wait_for_balance(&[&bystander], &partitions(topic, 3), BALANCE_TIMEOUT)
        .unwrap_or_else(|state| panic!("the bystander never joined:\n{state}"));
    assert!(
        support::wait_until(CLIENT_TIMEOUT, || bystander.consumed_count() >= 150),
        "{}",
        bystander.describe()
    );
    let bystander_events = bystander.event_count();

    let mut raw = RawConnection::open(&bootstrap, RAW_READ_TIMEOUT);
    let versions = GroupVersions::negotiate(&mut raw);
    join_with_ten_thousand_protocols(&mut raw, &versions);
    join_with_huge_metadata(&mut raw, &versions);
    node.assert_running();

    // Commits and heartbeats for generations and members that do not exist.
    let (state, members) = describe_group(&mut raw, versions.describe, group);
    assert_eq!(
        (state.as_str(), members.len()),
        ("Stable", 1),
        "the bystander's group"
    );
    let member = &members[0];
    let commit = |raw: &mut RawConnection, group: &str, generation: i32, member: &str| {
        let request = commit_request(group, generation, member, topic, POISON_OFFSET);
        offset_commit(raw, versions.commit, request)
    };
    assert_eq!(
        commit(&mut raw, group, 1_000_000, member),
        BTreeSet::from(["IllegalGeneration".to_string()]),
        "OffsetCommit by a member with a generation the group never had"
    );
    assert_eq!(
        commit(&mut raw, group, 1, "ghost-member"),
        BTreeSet::from(["UnknownMemberId".to_string()]),
        "OffsetCommit by a member the group does not have"
    );
    assert_eq!(
        commit(&mut raw, "no-such-group", 3, "ghost-member"),
        BTreeSet::from(["IllegalGeneration".to_string()]),
        "OffsetCommit v{} with a generation for a group that does not exist",
        versions.commit
    );
    assert_eq!(
        heartbeat(&mut raw, versions.heartbeat, group, 1_000_000, member),
        "IllegalGeneration",
        "Heartbeat with a generation the group never had"
    );
    assert_eq!(
        heartbeat(&mut raw, versions.heartbeat, group, 1, "ghost-member"),
        "UnknownMemberId",
        "Heartbeat by a member the group does not have"
    );
    assert!(
        !listed_groups(&mut raw, versions.list).contains("no-such-group"),
        "a rejected commit created a group"
    );
    requests_refused_before_any_change(&mut raw, &versions, group, topic);
    assert_batched_find_coordinator(&mut raw, &node);

    // OffsetFetch for 20,000 partitions: each answered, nothing invented.
    let started = Instant::now();
    let many: Vec<i32> = (0..20_000).collect();
    let fetched = offset_fetch(
        &mut raw,
        versions.fetch,
        &[(
            group.to_string(),
            Some(vec![(topic.to_string(), many.clone())]),
        )],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "OffsetFetch of 20,000 partitions took {:?}",
        started.elapsed()
    );
    let offsets = &fetched[group];
    assert_eq!(offsets.len(), many.len(), "partitions answered");
    for ((_, partition), (offset, error)) in offsets {
        let expected = if *partition < 3 { 50 } else { -1 };
        assert_eq!(
            (*offset, error.as_str()),
            (expected, "None"),
            "{topic}-{partition}"
        );
    }
    // All of a group's offsets (topics = null), and 1,000 groups at once.
    let everything = offset_fetch(&mut raw, versions.fetch, &[(group.to_string(), None)]);
    let expected: BTreeMap<Partition, (i64, String)> = (0..3)
        .map(|partition| ((topic.to_string(), partition), (50, "None".to_string())))
        .collect();
    assert_eq!(
        everything[group], expected,
        "all of {group}'s committed offsets"
    );
    if versions.fetch >= 8 {
        let groups: Vec<FetchFor> = (0..1000)
            .map(|index| {
                (
                    format!("unknown-{index}"),
                    Some(vec![(topic.to_string(), vec![0, 1, 2])]),
                )
            })
            .chain([(
                group.to_string(),
                Some(vec![(topic.to_string(), vec![0, 1, 2])]),
            )])
            .collect();
        let fetched = offset_fetch(&mut raw, versions.fetch, &groups);
        assert_eq!(fetched.len(), 1001, "groups answered");
        assert_eq!(
            fetched[group], expected,
            "{group} among 1,000 unknown groups"
        );
        let unknown: BTreeMap<Partition, (i64, String)> = (0..3)
            .map(|partition| ((topic.to_string(), partition), (-1, "None".to_string())))
            .collect();
        assert!(
            (0..1000).all(|index| fetched[&format!("unknown-{index}")] == unknown),
            "an unknown group has offsets"
        );
    }
    node.assert_running();

    // The bystander noticed nothing and keeps consuming and committing.
    produce_records(&bootstrap, topic, 3, 150..300);
    assert!(
        support::wait_until(CLIENT_TIMEOUT, || bystander.consumed_count() >= 300),
        "{}",
        bystander.describe()
    );
    bystander.close();
    assert_eq!(
        bystander.events().len(),
        bystander_events + 1,
        "the bystander went through a rebalance before its own close: {:?}",
        bystander.events()
    );
    assert_no_commit_errors(&[&bystander]);
    assert_each_consumed_once(&bystander.consumed(), 0..300);
    assert_caught_up(&bootstrap, group, topic, 3);

    // What the hostile groups left in __consumer_offsets loads back.
    node.kill();
    node.restart();
    assert_caught_up(&bootstrap, group, topic, 3);
    node.assert_running();
}
