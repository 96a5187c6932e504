//! A compacted topic as a consumer sees it: after the node's cleaner runs,
//! reading from the beginning yields only the latest value per key, in
//! offset order, at the offsets they were written at (never renumbered);
//! records still in the active segment are untouched.

mod support;

use std::time::{Duration, Instant};

use support::Node;
use support::kafka::{Outgoing, client_config, create_topic, produce_all, read_partition};

const KEYS: usize = 10;
const ROUNDS: usize = 5;
const CLEANER_DEADLINE: Duration = Duration::from_secs(30);

fn keyed(key: &str, value: &str) -> Outgoing {
    Outgoing {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_per_key_at_its_original_offset() {
    let node = Node::start_with(&["log.cleaner.backoff.ms=200"]);
    let topic = "compacted";
    create_topic(
        &node.bootstrap(),
        topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1024"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    // One record per batch, so small segments roll often.
    let mut config = client_config(&node.bootstrap());
    config.set("linger.ms", "0").set("batch.num.messages", "1");
    let mut sent = Vec::new();
    for round in 0..ROUNDS {
        for key in 0..KEYS {
            sent.push(keyed(&format!("k{key}"), &format!("v{round}")));
        }
    }
    // Fillers push every tested record out of the active segment.
    for filler in 0..30 {
        sent.push(keyed(&format!("filler-{filler}"), "x"));
    }
    let offsets = produce_all(&config, topic, 0, &sent);
    assert_eq!(offsets, (0..sent.len() as i64).collect::<Vec<_>>());

    let latest_offset = |key: usize| ((ROUNDS - 1) * KEYS + key) as i64;
    let deadline = Instant::now() + CLEANER_DEADLINE;
    loop {
        let records = read_partition(&node.bootstrap(), topic, 0);
        let tested: Vec<(i64, String, String)> = records
            .iter()
            .filter(|record| {
                record
                    .key
                    .as_deref()
                    .is_some_and(|key| key.starts_with(b"k"))
            })
            .map(|record| {
                (
                    record.offset,
                    String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                        .into_owned(),
                )
            })
            .collect();
        let expected: Vec<(i64, String, String)> = (0..KEYS)
            .map(|key| {
                (
                    latest_offset(key),
                    format!("k{key}"),
                    format!("v{}", ROUNDS - 1),
                )
            })
            .collect();
        if tested == expected {
            // Offsets ascend and the fillers are all still there.
            assert!(
                records
                    .windows(2)
                    .all(|pair| pair[0].offset < pair[1].offset)
            );
            let fillers = records
                .iter()
                .filter(|record| {
                    record
                        .key
                        .as_deref()
                        .is_some_and(|key| key.starts_with(b"filler"))
                })
                .count();
            assert_eq!(fillers, 30);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {CLEANER_DEADLINE:?} the keyed records are still {} (expected only the latest per key): {:?}",
            tested.len(),
            &tested[..tested.len().min(12)]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
