//! Python's two Kafka clients against a real node: kafka-python 3.0 (its
//! own protocol code) and confluent-kafka 2.16 (librdkafka 2.16). Each
//! script in `tests/clients/` takes a topic through its life — create,
//! describe configs, alter retention.ms incrementally, produce (idempotent,
//! compressed), consume by assignment, delete — and prints what it saw as
//! JSON, which the tests here hold to Kafka's behaviour.
//!
//! Needs `python3` with kafka-python and confluent-kafka (`.ci/run` installs them).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Node;
use support::kafka::{create_topic, read_partition};

const RECORDS: usize = 200;
/// Longer than the scripts' own 60 s watchdog, which names the step that hung.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Checks one script's report of the topic's life; `client` names its records.
fn assert_topic_life(report: &Value, topic: &str, client: &str) {
    assert_eq!(
        report["partitions"],
        json!([0, 1]),
        "partitions after CreateTopics"
    );

    let before = &report["configs_before"];
    assert_eq!(
        before["retention.ms"],
        json!(["86400000", "DYNAMIC_TOPIC_CONFIG"]),
        "retention.ms as set at creation"
    );
    assert_eq!(
        before["max.message.bytes"],
        json!(["1048588", "DEFAULT_CONFIG"]),
        "a config left at Kafka's default"
    );
    assert_eq!(
        before["cleanup.policy"],
        json!(["delete", "DEFAULT_CONFIG"])
    );
    let after = &report["configs_after"];
    assert_eq!(
        after["retention.ms"],
        json!(["3600000", "DYNAMIC_TOPIC_CONFIG"]),
        "retention.ms after IncrementalAlterConfigs"
    );
    assert_eq!(
        after["max.message.bytes"], before["max.message.bytes"],
        "an incremental change leaves other configs alone"
    );

    let offsets: Vec<i64> = (0..RECORDS as i64).collect();
    assert_eq!(
        report["produced_offsets"],
        json!(offsets),
        "acknowledged offsets"
    );
    let expected: Vec<Value> = (0..RECORDS)
        .map(|index| {
            json!([
                index,
                format!("key-{index}"),
                format!("{client} record {index}"),
                [["index", index.to_string()]]
            ])
        })
        .collect();
    assert_eq!(
        report["consumed"],
        json!(expected),
        "records consumed by assignment"
    );
    assert_eq!(report["end_offset"], json!(RECORDS), "high watermark");

    let topics = report["topics_after_delete"]
        .as_array()
        .expect("topics after delete");
    assert!(
        !topics.iter().any(|name| name == topic),
        "{topic} still listed after DeleteTopics: {topics:?}"
    );
}

/// A topic created again under a deleted topic's name starts empty.
fn assert_recreated_topic_is_empty(node: &Node, topic: &str) {
    create_topic(&node.bootstrap(), topic, 2, &[]);
    let records = read_partition(&node.bootstrap(), topic, 1);
    assert!(
        records.is_empty(),
        "the new {topic} holds {} records of the deleted one",
        records.len()
    );
}

#[test]
fn kafka_python_creates_configures_produces_consumes_and_deletes_a_topic() {
    let node = Node::start();
    let topic = "kafka-python-life";
    let report = support::run_client_script(
        "python3",
        "kafka_python_round_trip.py",
        &[&node.bootstrap(), topic, &RECORDS.to_string()],
        SCRIPT_TIMEOUT,
    );
    assert_eq!(report["created"], json!([{"name": topic, "error_code": 0}]));
    assert_eq!(report["alter_result"], json!("OK"));
    assert_eq!(report["deleted"], json!([{"name": topic, "error_code": 0}]));
    assert_topic_life(&report, topic, "kafka-python");
    assert_recreated_topic_is_empty(&node, topic);
}

#[test]
fn confluent_kafka_creates_configures_produces_consumes_and_deletes_a_topic() {
    let node = Node::start();
    let topic = "confluent-kafka-life";
    let report = support::run_client_script(
        "python3",
        "confluent_kafka_round_trip.py",
        &[&node.bootstrap(), topic, &RECORDS.to_string()],
        SCRIPT_TIMEOUT,
    );
    assert_eq!(report["created"], json!([topic]));
    assert_eq!(report["deleted"], json!([topic]));
    assert_topic_life(&report, topic, "confluent-kafka");
    assert_recreated_topic_is_empty(&node, topic);
}

/// kafka-python guesses the broker's version from ApiVersions and then
/// describes the cluster; it must find this node as broker and controller.
#[test]
fn kafka_python_describes_the_node_as_a_one_broker_cluster() {
    let node = Node::start();
    create_topic(&node.bootstrap(), "described", 3, &[]);
    let report = support::run_client_script(
        "python3",
        "kafka_python_metadata.py",
        &[&node.bootstrap()],
        SCRIPT_TIMEOUT,
    );
    support::assert_describes_one_broker_cluster(&report, &node, "described", 3);
}
