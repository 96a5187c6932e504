//! Eddy's controller says why things happen in the `__eddy_events` topic
//! (a node fenced after its session timed out, a leader elected from the
//! ISR, an ISR shrunk for lag); the console tails it like any consumer.
//! Other clusters have no such topic, and their events come from snapshot
//! diffs alone.

use std::time::Duration;

use eddy_client::{Client, ClientError};

use crate::diff::Observed;

pub const EVENTS_TOPIC: &str = "__eddy_events";
/// Bytes one poll reads at most.
const MAX_BYTES: i32 = 1 << 20;

/// Where the console is in the events topic.
#[derive(Debug, Default)]
pub struct Tail {
    next_offset: Option<i64>,
    seen: bool,
}

impl Tail {
    /// Whether the cluster's controller explains itself.
    pub fn seen_any(&self) -> bool {
        self.seen
    }

    /// New events since the last poll, with the time each happened. The
    /// first poll reads the topic from its start.
    pub async fn poll(&mut self, client: &mut Client) -> Vec<(i64, Observed)> {
        let offset = self.next_offset.unwrap_or(0);
        let fetched = match client
            .fetch(EVENTS_TOPIC, 0, offset, MAX_BYTES, Duration::ZERO)
            .await
        {
            Ok(fetched) => fetched,
            Err(ClientError::OffsetOutOfRange { .. }) => {
                // Retention took the start: begin again from the earliest.
                self.next_offset = None;
                return Vec::new();
            }
            Err(_) => return Vec::new(),
        };
        self.seen = true;
        self.next_offset = Some(fetched.next_offset);
        fetched
            .records
            .iter()
            .filter_map(|record| {
                let value: serde_json::Value =
                    serde_json::from_slice(record.value.as_deref()?).ok()?;
                let kind = value["kind"].as_str()?;
                Some((
                    value["timeMs"].as_i64().unwrap_or(record.timestamp_ms),
                    Observed {
                        kind: controller_kind(kind),
                        text: sentence(value["text"].as_str().unwrap_or(kind)),
                        topic: value["topic"].as_str().map(str::to_string),
                        partition: value["partition"]
                            .as_i64()
                            .map(|partition| partition as i32),
                        node: value["node"].as_i64().map(|node| node as i32),
                    },
                ))
            })
            .collect()
    }
}

/// The controller's kinds, as static names (unknown ones keep a generic name).
fn controller_kind(kind: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "broker_registered",
        "broker_fenced",
        "broker_unfenced",
        "controlled_shutdown",
        "leader_elected",
        "partition_offline",
        "isr_shrunk",
        "isr_expanded",
        "topic_created",
        "topic_deleted",
        "partitions_created",
        "topic_configs_altered",
        "cluster_initialized",
        "reassignment_started",
        "reassignment_completed",
        "reassignment_cancelled",
        "preferred_leader_elected",
        "broker_unregistered",
        "broker_configs_altered",
    ];
    KNOWN
        .iter()
        .find(|known| **known == kind)
        .copied()
        .unwrap_or("controller")
}

/// The controller writes lower-case phrases; the timeline shows sentences.
/// Only a leading common word is capitalised: a phrase may start with a
/// topic name, and topic names are case-sensitive.
fn sentence(text: &str) -> String {
    const WORDS: &[&str] = &["node", "topic", "cluster", "partition", "the", "a", "an"];
    let first_word = text.split(' ').next().unwrap_or_default();
    if !WORDS.contains(&first_word) {
        return text.to_string();
    }
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn sentences_start_with_a_capital_but_topic_names_keep_their_case() {
        assert_eq!(
            sentence("node 2 stopped heartbeating"),
            "Node 2 stopped heartbeating"
        );
        assert_eq!(
            sentence("orders-0: node 3 is leader (epoch 4)"),
            "orders-0: node 3 is leader (epoch 4)"
        );
    }
}
