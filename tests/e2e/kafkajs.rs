//! kafkajs 2.2 (its own protocol code) against a real node, as an admin and
//! an idempotent producer (`tests/clients/kafkajs_admin_produce.mjs`).
//! kafkajs consumers need consumer groups, which the node does not serve
//! yet, so the records are read back with rdkafka.
//!
//! Needs `node` with kafkajs (`npm ci` installs it).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Node;
use support::kafka::{create_topic, read_partition};

const RECORDS: usize = 200;
/// Records per kafkajs `send` in the script.
const SEND_SIZE: usize = 50;
/// Longer than the script's own 60 s watchdog, which names the step that hung.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn kafkajs_admin_manages_topics_and_its_idempotent_producer_writes_in_order() {
    let node = Node::start();
    let topic = "kafkajs-topic";
    let report = support::run_client_script(
        "node",
        "kafkajs_admin_produce.mjs",
        &[&node.bootstrap(), topic, &RECORDS.to_string()],
        SCRIPT_TIMEOUT,
    );

    assert_eq!(report["created"], json!(true), "CreateTopics");
    assert_eq!(
        report["partitions"],
        json!([0, 1, 2]),
        "partitions after CreatePartitions"
    );
    let before = &report["configs_before"];
    assert_eq!(before["error_code"], json!(0));
    assert_eq!(
        before["configs"]["retention.ms"],
        json!(["86400000", false])
    );
    assert_eq!(
        before["configs"]["segment.bytes"],
        json!(["1073741824", true])
    );
    assert_eq!(
        report["configs_after"]["configs"]["retention.ms"],
        json!(["3600000", false]),
        "retention.ms after AlterConfigs"
    );
    let user_topics: Vec<&serde_json::Value> = report["topics_after_delete"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter(|name| !name.as_str().is_some_and(|name| name.starts_with("__")))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        json!(user_topics),
        json!([topic]),
        "the deleted topic is gone, the other stays"
    );

    let produced: Vec<Value> = (0..RECORDS / SEND_SIZE)
        .map(|send| json!({"partition": 1, "error_code": 0, "base_offset": send * SEND_SIZE}))
        .collect();
    assert_eq!(report["produced"], json!(produced), "offsets of each send");
    assert_eq!(
        report["offsets"],
        json!([
            {"partition": 0, "low": 0, "high": 0},
            {"partition": 1, "low": 0, "high": RECORDS},
            {"partition": 2, "low": 0, "high": 0},
        ]),
        "ListOffsets per partition"
    );

    let records = read_partition(&node.bootstrap(), topic, 1);
    assert_eq!(records.len(), RECORDS, "records read back with rdkafka");
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.offset, index as i64);
        assert_eq!(
            record.key.as_deref(),
            Some(format!("key-{index}").as_bytes())
        );
        assert_eq!(
            record.value.as_deref(),
            Some(format!("kafkajs record {index}").as_bytes())
        );
        assert_eq!(
            record.headers,
            vec![("index".to_string(), Some(index.to_string().into_bytes()))]
        );
    }
}

/// kafkajs describes the cluster (DescribeCluster or Metadata) and finds
/// this node as its only broker and controller.
#[test]
fn kafkajs_describes_the_node_as_a_one_broker_cluster() {
    let node = Node::start();
    create_topic(&node.bootstrap(), "described", 2, &[]);
    let report = support::run_client_script(
        "node",
        "kafkajs_metadata.mjs",
        &[&node.bootstrap()],
        SCRIPT_TIMEOUT,
    );
    support::assert_describes_one_broker_cluster(&report, &node, "described", 2);
}
