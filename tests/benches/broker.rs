//! One Eddy node against librdkafka's built-in mock cluster, driven by the
//! same librdkafka client in the same run: produce throughput (100-byte and
//! 1 KiB records, acks=1 and acks=all), consume throughput, and
//! produce→consume latency at a steady rate with `linger.ms=0`; then a node's
//! idle memory and its time from exec to accepting connections.
//!
//! Run on demand (not part of `npm test`):
//! `cargo bench -p eddy-e2e --bench broker`.
//! Throughputs are the median of 5 runs each, alternating mock and Eddy,
//! printed as Eddy / mock. Eddy writes real segment files; the mock keeps
//! records in memory.

#[path = "../e2e/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use support::Node;

const RUNS: usize = 5;
const LATENCY_RATE_PER_SECOND: u64 = 10_000;
const LATENCY_DURATION: Duration = Duration::from_secs(3);
const TIMEOUT: Duration = Duration::from_secs(60);
/// Records read per consume run: 100-byte records, under the mock's 5 MB per partition.
const CONSUME_RECORDS: usize = 40_000;

/// Client settings, printed with the results.
const PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("queue.buffering.max.messages", "1000000"),
    ("compression.codec", "none"),
    ("enable.idempotence", "false"),
];
const CONSUMER_SETTINGS: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "10"),
    ("fetch.min.bytes", "1"),
    ("enable.auto.commit", "false"),
    ("enable.partition.eof", "false"),
];

struct Target {
    name: &'static str,
    bootstrap: String,
}

fn producer(bootstrap: &str, acks: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("acks", acks);
    for (key, value) in PRODUCER_SETTINGS.iter().chain(extra) {
        config.set(*key, *value);
    }
    config.create().expect("producer")
}

fn consumer(bootstrap: &str, topic: &str) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eddy-bench");
    for (key, value) in CONSUMER_SETTINGS {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// Produces `count` records of `size` bytes; returns records per second.
fn produce(target: &Target, topic: &str, count: usize, size: usize, acks: &str) -> f64 {
    let producer = producer(&target.bootstrap, acks, &[]);
    let payload = vec![b'x'; size];
    let started = Instant::now();
    for _ in 0..count {
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .partition(0)
            .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, returned))
                    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(1));
                    record = returned;
                }
                Err((error, _)) => panic!("{}: produce failed: {error}", target.name),
            }
        }
    }
    producer.flush(TIMEOUT).expect("flush");
    count as f64 / started.elapsed().as_secs_f64()
}

/// Reads `count` records from the beginning; returns records per second.
fn consume(target: &Target, topic: &str, count: usize) -> f64 {
    let consumer = consumer(&target.bootstrap, topic);
    let mut read = 0;
    let mut started = None;
    let deadline = Instant::now() + TIMEOUT;
    while read < count {
        assert!(
            Instant::now() < deadline,
            "{}: consumed only {read} of {count}",
            target.name
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("consume");
            started.get_or_insert_with(Instant::now);
            read += 1;
        }
    }
    // Timed from the first record, so connection set-up is not counted.
    (count - 1) as f64 / started.map_or(1.0, |started| started.elapsed().as_secs_f64())
}

/// Produces at a steady rate with linger.ms=0 while a consumer reads;
/// returns (p50, p99) of send→receive latency in microseconds.
fn latency(target: &Target, topic: &str) -> (f64, f64) {
    let consumer = consumer(&target.bootstrap, topic);
    // Let the consumer reach the (empty) partition before sending.
    let _ = consumer.poll(Duration::from_millis(500));
    let producer = producer(&target.bootstrap, "1", &[("linger.ms", "0")]);
    let origin = Instant::now();
    let total = (LATENCY_RATE_PER_SECOND * LATENCY_DURATION.as_secs()) as usize;
    let interval = Duration::from_nanos(1_000_000_000 / LATENCY_RATE_PER_SECOND);
    let mut latencies = Vec::with_capacity(total);
    let mut sent = 0;
    let deadline = origin + LATENCY_DURATION + TIMEOUT;
    while latencies.len() < total {
        assert!(
            Instant::now() < deadline,
            "{}: latency run stalled",
            target.name
        );
        while sent < total && origin.elapsed() >= interval * sent as u32 {
            let stamp = (origin.elapsed().as_nanos() as u64).to_be_bytes();
            let record = BaseRecord::<(), [u8]>::to(topic)
                .partition(0)
                .payload(&stamp);
            if producer.send(record).is_err() {
                break;
            }
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        while let Some(message) = consumer.poll(Duration::ZERO) {
            let message = message.expect("consume");
            let received = origin.elapsed().as_nanos() as u64;
            if let Some(stamp) = message
                .payload()
                .and_then(|payload| <[u8; 8]>::try_from(payload).ok())
            {
                latencies.push((received - u64::from_be_bytes(stamp)) as f64 / 1000.0);
            }
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    latencies.sort_by(f64::total_cmp);
    let percentile =
        |fraction: f64| latencies[((latencies.len() as f64 - 1.0) * fraction) as usize];
    (percentile(0.50), percentile(0.99))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass
    // nothing: only run the real thing when asked.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("broker benchmark: run with `cargo bench -p eddy-e2e --bench broker`");
        return;
    }
    let mock = MockCluster::new(3).expect("mock cluster");
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
    println!("producer settings: {PRODUCER_SETTINGS:?}");
    println!("consumer settings: {CONSUMER_SETTINGS:?}");
    println!("runs per figure: {RUNS}, alternating mock and eddy; ratio = eddy / mock (median)\n");
    println!(
        "{:<34} {:>14} {:>14} {:>8} {:>8}",
        "workload", "mock/s", "eddy/s", "ratio", "target"
    );

    let workloads: &[(&str, usize, usize, &str)] = &[
        ("produce 100 B acks=1", 300_000, 100, "1"),
        ("produce 100 B acks=all", 300_000, 100, "all"),
        ("produce 1 KiB acks=1", 100_000, 1024, "1"),
        ("produce 1 KiB acks=all", 100_000, 1024, "all"),
    ];
    let mut topic_number = 0;
    for (label, count, size, acks) in workloads {
        let mut results = [Vec::new(), Vec::new()];
        for _ in 0..RUNS {
            for (index, target) in targets.iter().enumerate() {
                topic_number += 1;
                let topic = format!("bench-{topic_number}");
                create_topic(&mock, target, &topic);
                results[index].push(produce(target, &topic, *count, *size, acks));
            }
        }
        report(label, &results, 0.9);
    }

    // The mock keeps at most 5 MB per partition, so the consumed data stays under that.
    let mut results = [Vec::new(), Vec::new()];
    for (index, target) in targets.iter().enumerate() {
        topic_number += 1;
        let topic = format!("bench-{topic_number}");
        create_topic(&mock, target, &topic);
        produce(target, &topic, CONSUME_RECORDS, 100, "1");
        for _ in 0..RUNS {
            results[index].push(consume(target, &topic, CONSUME_RECORDS));
        }
    }
    report("consume 100 B", &results, 0.9);

    println!();
    for target in &targets {
        topic_number += 1;
        let topic = format!("bench-{topic_number}");
        create_topic(&mock, target, &topic);
        let (p50, p99) = latency(target, &topic);
        let verdict = if target.name == "eddy" {
            if p99 <= 2000.0 {
                "met (p99 ≤ 2 ms)"
            } else {
                "MISSED (p99 ≤ 2 ms)"
            }
        } else {
            ""
        };
        println!(
            "latency {} at {LATENCY_RATE_PER_SECOND}/s, linger.ms=0: p50 {:.0} µs, p99 {:.0} µs {verdict}",
            target.name, p50, p99
        );
    }
    drop(node);
    idle_figures();
}

fn create_topic(
    mock: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    target: &Target,
    topic: &str,
) {
    if target.name == "mock" {
        mock.create_topic(topic, 1, 1).expect("mock topic");
    } else {
        support::kafka::create_topic(&target.bootstrap, topic, 1, &[]);
    }
}

fn report(label: &str, results: &[Vec<f64>; 2], target: f64) {
    let mock = median(results[0].clone());
    let eddy = median(results[1].clone());
    let ratio = eddy / mock;
    let verdict = if ratio >= target { "met" } else { "MISSED" };
    println!("{label:<34} {mock:>14.0} {eddy:>14.0} {ratio:>7.2}× {target:>6.1}× {verdict}");
}

/// Idle RSS of a node on an empty data dir, and exec → accepting connections.
fn idle_figures() {
    let mut startups = Vec::new();
    let mut rss_kib = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let node = Node::start();
        // Node::start returns once the ready line is printed, after the bind.
        startups.push(started.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(500));
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap_or_default();
        rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
    }
    let startup = median(startups);
    let rss_mib = rss_kib as f64 / 1024.0;
    println!(
        "\nidle RSS on an empty data dir: {rss_mib:.1} MiB (target ≤ 20 MiB: {})",
        if rss_mib <= 20.0 { "met" } else { "MISSED" }
    );
    println!(
        "exec to ready (listening): median {startup:.1} ms (target ≤ 100 ms: {})",
        if startup <= 100.0 { "met" } else { "MISSED" }
    );
}
