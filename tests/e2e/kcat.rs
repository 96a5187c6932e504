//! Debian's `kcat` 1.7.1 (librdkafka 2.0.2, an older client than the
//! rdkafka crate's) against a real node: the metadata listing, producing a
//! file line by line, and consuming by offset and by timestamp, with the
//! output compared exactly.
//!
//! Needs `kcat` on the PATH (`.ci/run` installs it).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::Node;
use support::kafka::create_topic;

const KCAT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs kcat with `args` and returns its stdout; fails the test on a
/// non-zero exit, with kcat's stderr.
fn kcat(args: &[&str]) -> String {
    let finished = support::run(Command::new("kcat").args(args), KCAT_TIMEOUT);
    assert!(
        finished.status.success(),
        "kcat {} failed ({}):\n{}",
        args.join(" "),
        finished.status,
        finished.stderr
    );
    finished.stdout
}

/// `kcat -P -l`: each line of `lines`, written to a file, is one record.
fn produce_lines(
    node: &Node,
    topic: &str,
    dir: &Path,
    name: &str,
    lines: &[String],
    extra: &[&str],
) {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("writing the records file");
    let bootstrap = node.bootstrap();
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["-P", "-b", &bootstrap, "-t", topic, "-p", "0", "-l"];
    args.extend_from_slice(extra);
    args.push(path);
    kcat(&args);
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("{prefix} {index}")).collect()
}

#[test]
fn kcat_lists_the_node_and_its_topics_as_json() {
    let node = Node::start();
    create_topic(&node.bootstrap(), "orders", 3, &[]);
    create_topic(&node.bootstrap(), "payments", 1, &[]);

    let listing: Value = serde_json::from_str(&kcat(&["-b", &node.bootstrap(), "-L", "-J"]))
        .expect("kcat -J output");
    assert_eq!(
        listing["brokers"],
        json!([{"id": 1, "name": node.bootstrap()}]),
        "brokers in {listing}"
    );
    assert_eq!(listing["controllerid"], json!(1));
    // Internal topics (`__eddy_events`) are the cluster's own, as on any Kafka.
    let mut topics: Vec<Value> = listing["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .filter(|topic| {
            !topic["topic"]
                .as_str()
                .is_some_and(|name| name.starts_with("__"))
        })
        .cloned()
        .collect();
    topics.sort_by_key(|topic| topic["topic"].as_str().unwrap_or_default().to_string());
    let described = |name: &str, count: i32| {
        let partitions: Vec<Value> = (0..count)
            .map(|partition| {
                json!({"partition": partition, "leader": 1, "replicas": [{"id": 1}], "isrs": [{"id": 1}]})
            })
            .collect();
        json!({"topic": name, "partitions": partitions})
    };
    assert_eq!(
        topics,
        vec![described("orders", 3), described("payments", 1)],
        "topics in {listing}"
    );
}

#[test]
fn kcat_produces_a_file_line_by_line_and_consumes_from_an_offset() {
    let node = Node::start();
    let topic = "lines";
    create_topic(&node.bootstrap(), topic, 1, &[]);
    let dir = tempfile::tempdir().expect("temporary directory");
    produce_lines(
        &node,
        topic,
        dir.path(),
        "plain.txt",
        &numbered("line", 0..10),
        &[],
    );
    // The same with compression, and keys (`key:value` lines).
    produce_lines(
        &node,
        topic,
        dir.path(),
        "snappy.txt",
        &numbered("line", 10..20),
        &["-z", "snappy"],
    );
    let keyed: Vec<String> = (20..25)
        .map(|index| format!("k{index}:line {index}"))
        .collect();
    produce_lines(
        &node,
        topic,
        dir.path(),
        "keyed.txt",
        &keyed,
        &["-K", ":", "-z", "gzip"],
    );

    let bootstrap = node.bootstrap();
    let consume = |extra: &[&str]| {
        let mut args = vec!["-C", "-b", &bootstrap, "-t", topic, "-p", "0", "-e", "-q"];
        args.extend_from_slice(extra);
        kcat(&args)
    };
    assert_eq!(
        consume(&["-o", "2", "-c", "3", "-f", "%s\n"]),
        "line 2\nline 3\nline 4\n",
        "three records from offset 2"
    );
    assert_eq!(
        consume(&["-o", "8", "-c", "4", "-f", "%o %s\n"]),
        "8 line 8\n9 line 9\n10 line 10\n11 line 11\n",
        "across the plain and snappy batches"
    );
    assert_eq!(
        consume(&["-o", "-3", "-f", "%k=%s@%o\n"]),
        "k22=line 22@22\nk23=line 23@23\nk24=line 24@24\n",
        "the last three records, relative to the end"
    );
    let everything = consume(&["-o", "beginning", "-f", "%s\n"]);
    assert_eq!(everything.lines().count(), 25, "all records:\n{everything}");
}

#[test]
fn kcat_produces_to_a_new_topic_and_consumes_from_a_timestamp() {
    let node = Node::start();
    // Never created: the producer's Metadata request creates it
    // (auto.create.topics.enable defaults to true, as in Kafka).
    let topic = "timed";
    let dir = tempfile::tempdir().expect("temporary directory");
    produce_lines(
        &node,
        topic,
        dir.path(),
        "before.txt",
        &numbered("before", 0..4),
        &[],
    );
    // Records produced from now on carry a timestamp at or after `boundary_ms`;
    // the ones above carry earlier ones.
    let boundary_ms = support::now_ms() + 1;
    while support::now_ms() <= boundary_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
    produce_lines(
        &node,
        topic,
        dir.path(),
        "after.txt",
        &numbered("after", 0..3),
        &[],
    );

    let bootstrap = node.bootstrap();
    let from_time = format!("s@{boundary_ms}");
    let output = kcat(&[
        "-C", "-b", &bootstrap, "-t", topic, "-p", "0", "-e", "-q", "-o", &from_time, "-f",
        "%o %s\n",
    ]);
    assert_eq!(
        output, "4 after 0\n5 after 1\n6 after 2\n",
        "records at or after {boundary_ms}"
    );
}
