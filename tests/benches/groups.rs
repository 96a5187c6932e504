//! Consumer groups on one Eddy node against librdkafka's built-in mock
//! cluster, driven by the same librdkafka client in the same run: the time a
//! 10-member group takes to settle after an 11th member joins, and the
//! offset commits per second one member gets, synchronous (one at a time)
//! and asynchronous (all in flight, closed by one synchronous commit).
//!
//! Run on demand (not part of `npm test`):
//! `cargo bench -p eddy-e2e --bench groups`.
//! Each figure is the median of 5 runs, alternating mock and Eddy, printed
//! with the ratio Eddy / mock. The mock keeps everything in memory and only
//! ends a join phase when its rebalance timer fires (session timeout minus
//! one second), so its settle time measures that timer, not work; Eddy
//! writes every commit to `__consumer_offsets` on disk.

#[path = "../e2e/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Offset, TopicPartitionList};

use support::Node;
use support::group::{GroupMember, member_config, partitions, wait_for_balance};

const RUNS: usize = 5;
/// Members before the one whose join is timed.
const MEMBERS: usize = 10;
/// Two partitions for each of the 11 members.
const PARTITIONS: i32 = 22;
const SYNC_COMMITS: usize = 2_000;
const ASYNC_COMMITS: usize = 20_000;
const TIMEOUT: Duration = Duration::from_secs(120);

struct Target {
    name: &'static str,
    bootstrap: String,
}

fn create_topic(
    mock: &MockCluster<'static, DefaultProducerContext>,
    target: &Target,
    topic: &str,
    partitions: i32,
) {
    if target.name == "mock" {
        mock.create_topic(topic, partitions, 1).expect("mock topic");
    } else {
        support::kafka::create_topic(&target.bootstrap, topic, partitions, &[]);
    }
}

/// Forms a group of [`MEMBERS`], then times an extra member's join until
/// all of them hold an even split again.
fn settle_after_join(
    mock: &MockCluster<'static, DefaultProducerContext>,
    target: &Target,
    run: usize,
) -> Duration {
    let topic = format!("settle-{run}");
    let group = format!("settle-group-{run}");
    create_topic(mock, target, &topic, PARTITIONS);
    let all = partitions(&topic, PARTITIONS);
    let start = |index: usize| {
        let name = format!("member-{index}");
        GroupMember::start(
            &name,
            &member_config(&target.bootstrap, &group, &name),
            &[topic.as_str()],
        )
    };
    let mut members: Vec<GroupMember> = (0..MEMBERS).map(start).collect();
    wait_for_balance(&members.iter().collect::<Vec<_>>(), &all, TIMEOUT).unwrap_or_else(|state| {
        panic!("{}: {MEMBERS} members never settled:\n{state}", target.name)
    });
    let started = Instant::now();
    members.push(start(MEMBERS));
    wait_for_balance(&members.iter().collect::<Vec<_>>(), &all, TIMEOUT).unwrap_or_else(|state| {
        panic!(
            "{}: the group never settled after member {MEMBERS} joined:\n{state}",
            target.name
        )
    });
    let settled = started.elapsed();
    // Close them all at once: one at a time, each leave would rebalance the rest.
    std::thread::scope(|scope| {
        for mut member in members {
            scope.spawn(move || member.close());
        }
    });
    settled
}

/// A member of a fresh one-member group that holds `topic`'s one partition.
fn joined_member(target: &Target, topic: &str, group: &str) -> BaseConsumer {
    let consumer: BaseConsumer = member_config(&target.bootstrap, group, "committer")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + TIMEOUT;
    while consumer.assignment().map_or(0, |assigned| assigned.count()) == 0 {
        assert!(
            Instant::now() < deadline,
            "{}: the committer never joined",
            target.name
        );
        let _ = consumer.poll(Duration::from_millis(50));
    }
    consumer
}

fn offsets(topic: &str, offset: i64) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("partition list");
    list
}

/// Commits `count` increasing offsets one at a time; returns commits per second.
fn sync_commits(
    mock: &MockCluster<'static, DefaultProducerContext>,
    target: &Target,
    run: usize,
) -> f64 {
    let topic = format!("sync-commits-{run}");
    create_topic(mock, target, &topic, 1);
    let consumer = joined_member(target, &topic, &format!("sync-committer-{run}"));
    let started = Instant::now();
    for offset in 0..SYNC_COMMITS {
        consumer
            .commit(&offsets(&topic, offset as i64), CommitMode::Sync)
            .unwrap_or_else(|error| panic!("{}: sync commit {offset}: {error}", target.name));
    }
    SYNC_COMMITS as f64 / started.elapsed().as_secs_f64()
}

/// Sends [`ASYNC_COMMITS`] commits without waiting, then one synchronous
/// commit; returns commits per second.
fn async_commits(
    mock: &MockCluster<'static, DefaultProducerContext>,
    target: &Target,
    run: usize,
) -> f64 {
    let topic = format!("async-commits-{run}");
    create_topic(mock, target, &topic, 1);
    let consumer = joined_member(target, &topic, &format!("async-committer-{run}"));
    let started = Instant::now();
    for offset in 0..ASYNC_COMMITS {
        consumer
            .commit(&offsets(&topic, offset as i64), CommitMode::Async)
            .unwrap_or_else(|error| panic!("{}: async commit {offset}: {error}", target.name));
    }
    // rust-rdkafka reports no result for an async commit, but the answers
    // come back in request order on the coordinator connection: once a
    // final sync commit is answered, every earlier one is.
    let last = ASYNC_COMMITS as i64;
    consumer
        .commit(&offsets(&topic, last), CommitMode::Sync)
        .unwrap_or_else(|error| panic!("{}: closing sync commit: {error}", target.name));
    let rate = (ASYNC_COMMITS + 1) as f64 / started.elapsed().as_secs_f64();
    let mut partition = TopicPartitionList::new();
    partition.add_partition(&topic, 0);
    let committed = consumer
        .committed_offsets(partition, TIMEOUT)
        .expect("OffsetFetch");
    assert_eq!(
        committed
            .find_partition(&topic, 0)
            .map(|element| element.offset()),
        Some(Offset::Offset(last)),
        "{}: the offset committed last",
        target.name
    );
    rate
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

type Workload = fn(&MockCluster<'static, DefaultProducerContext>, &Target, usize) -> f64;

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing:
    // only run the real thing when asked.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("group benchmark: run with `cargo bench -p eddy-e2e --bench groups`");
        return;
    }
    let mock = MockCluster::new(1).expect("mock cluster");
    let node = Node::start();
    let targets = [
        Target {
            name: "mock",
            bootstrap: mock.bootstrap_servers(),
        },
        Target {
            name: "eddy",
            bootstrap: node.bootstrap(),
        },
    ];
    let settings = member_config("BOOTSTRAP", "GROUP", "CLIENT");
    let map = settings.config_map();
    let mut shown: Vec<_> = map
        .iter()
        .filter(|(key, _)| !["bootstrap.servers", "group.id", "client.id"].contains(*key))
        .collect();
    shown.sort();
    println!("member settings: {shown:?}");
    println!(
        "settle: {MEMBERS} members on {PARTITIONS} partitions, time from the 11th member's subscribe to an even split"
    );
    println!("commits: one member, one partition; {SYNC_COMMITS} sync, {ASYNC_COMMITS} async");
    println!("runs per figure: {RUNS}, alternating mock and eddy; ratio = eddy / mock (median)\n");
    println!(
        "{:<34} {:>14} {:>14} {:>8}",
        "workload", "mock", "eddy", "ratio"
    );

    let mut settle = [Vec::new(), Vec::new()];
    for run in 0..RUNS {
        for (index, target) in targets.iter().enumerate() {
            settle[index].push(settle_after_join(&mock, target, run).as_secs_f64() * 1000.0);
        }
    }
    let (mock_ms, eddy_ms) = (median(settle[0].clone()), median(settle[1].clone()));
    println!(
        "{:<34} {:>11.0} ms {:>11.0} ms {:>7.2}×",
        "settle after an 11th member joins",
        mock_ms,
        eddy_ms,
        eddy_ms / mock_ms
    );

    let workloads: [(&str, Workload); 2] = [
        ("offset commits/s, sync", sync_commits),
        ("offset commits/s, async", async_commits),
    ];
    for (label, workload) in workloads {
        let mut results = [Vec::new(), Vec::new()];
        for run in 0..RUNS {
            for (index, target) in targets.iter().enumerate() {
                results[index].push(workload(&mock, target, run));
            }
        }
        let (mock_rate, eddy_rate) = (median(results[0].clone()), median(results[1].clone()));
        println!(
            "{label:<34} {mock_rate:>14.0} {eddy_rate:>14.0} {:>7.2}×",
            eddy_rate / mock_rate
        );
    }
}
