//! The controller's reasons, as a topic anyone can read: `__eddy_events`.
//!
//! The metadata log keeps the latest events it caused (a node fenced after
//! its session timed out, a leader elected from the ISR, an ISR shrunk for
//! lag, a controlled shutdown), each tied to the log entry that caused it.
//! The node leading `__eddy_events` partition 0 appends every new one as a
//! record (key `INDEX.POSITION`, value the event as JSON), so a console —
//! Eddy's, or any Kafka client — tails the cluster's history the Kafka way.
//! The active controller creates the topic when it is missing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use eddy_metadata::{Command, MetadataImage};
use eddy_protocol::records::{Compression, Record, RecordBatch};

use crate::state::{Broker, Partition, now_ms, random_uuid};

pub const EVENTS_TOPIC: &str = "__eddy_events";
/// How long the topic keeps events (Kafka's default retention).
const RETENTION_MS: &str = "604800000";
/// Events written in one batch at most.
const MAX_BATCH_EVENTS: usize = 512;

/// Where the writer is: the last event written, as (log index, position
/// among that entry's events).
type Position = (u64, usize);

/// Writes new events while this node leads the topic, until the broker is
/// dropped.
pub async fn run(broker: Weak<Broker>) {
    let Some(strong) = broker.upgrade() else {
        return;
    };
    let mut images = strong.metadata.subscribe();
    drop(strong);
    let mut written: Option<Position> = None;
    let mut led_epoch: Option<i32> = None;
    loop {
        let image = images.borrow_and_update().clone();
        let Some(strong) = broker.upgrade() else {
            return;
        };
        if image.topic(EVENTS_TOPIC).is_none() {
            create_topic(&strong, &image).await;
        } else if let Some(partition) = strong
            .topic(EVENTS_TOPIC)
            .and_then(|topic| topic.partition(0))
            .filter(|partition| partition.is_leader(strong.node_id))
        {
            let epoch = partition.leader_epoch();
            if led_epoch != Some(epoch) {
                // A new leadership: what the log holds is what was written.
                written = last_written(&partition);
                led_epoch = Some(epoch);
            }
            if let Some(position) = append_new(&strong, &partition, epoch, &image, written) {
                written = Some(position);
            }
        } else {
            led_epoch = None;
        }
        drop(strong);
        // Metadata changes wake the writer; a periodic look covers the
        // moment leadership lands after the image that granted it.
        if tokio::time::timeout(Duration::from_secs(1), images.changed())
            .await
            .is_ok_and(|changed| changed.is_err())
        {
            return;
        }
    }
}

async fn create_topic(broker: &Arc<Broker>, image: &MetadataImage) {
    if broker.metadata.controller_id() != Some(broker.node_id) {
        return;
    }
    // Wait for the voters to register, so the topic gets their replicas
    // rather than only the first node's.
    let wanted = broker.metadata.quorum().voters.len().clamp(1, 3);
    let live = image.live_brokers().count();
    if live < wanted {
        return;
    }
    let live = live.clamp(1, 3) as i16;
    let result = broker
        .propose(Command::CreateTopic {
            name: EVENTS_TOPIC.to_string(),
            id: random_uuid().as_u128(),
            partitions: 1,
            replication_factor: live,
            assignments: None,
            configs: [("retention.ms".to_string(), RETENTION_MS.to_string())].into(),
        })
        .await;
    if let Err(error) = result
        && error.code != eddy_protocol::ErrorCode::TopicAlreadyExists
    {
        tracing::debug!(%error.message, "could not create the events topic yet");
    }
}

/// The position of the last event in the partition's log, if any.
fn last_written(partition: &Partition) -> Option<Position> {
    // The topic is small (a few hundred events an hour); read it through.
    let mut last = None;
    partition.for_each_record(|record| {
        if let Some(position) = record.key.as_deref().and_then(parse_key) {
            last = Some(position);
        }
    });
    last
}

fn parse_key(key: &[u8]) -> Option<Position> {
    let text = std::str::from_utf8(key).ok()?;
    let (index, position) = text.split_once('.')?;
    Some((index.parse().ok()?, position.parse().ok()?))
}

/// Appends the image's events after `written` while this node leads the
/// partition at `epoch`; returns the new position.
fn append_new(
    broker: &Broker,
    partition: &Partition,
    epoch: i32,
    image: &MetadataImage,
    written: Option<Position>,
) -> Option<Position> {
    let mut fresh = Vec::new();
    let mut position_in_entry = 0;
    let mut previous_index = None;
    for event in &image.events {
        if previous_index == Some(event.index) {
            position_in_entry += 1;
        } else {
            position_in_entry = 0;
            previous_index = Some(event.index);
        }
        let position = (event.index, position_in_entry);
        if written.is_none_or(|written| position > written) {
            fresh.push((position, event));
        }
    }
    fresh.truncate(MAX_BATCH_EVENTS);
    let (last, _) = *fresh.last()?;
    let now = now_ms();
    // Records carry the time each event happened.
    let base_ms = fresh
        .iter()
        .map(|(_, event)| event.time_ms)
        .min()
        .unwrap_or(now);
    let records = fresh
        .iter()
        .enumerate()
        .map(|(delta, ((index, position), event))| Record {
            attributes: 0,
            timestamp_delta: event.time_ms.saturating_sub(base_ms).max(0),
            offset_delta: delta as i32,
            key: Some(Bytes::from(format!("{index}.{position}"))),
            value: Some(Bytes::from(
                serde_json::json!({
                    "index": index,
                    "timeMs": event.time_ms,
                    "kind": event.kind,
                    "text": event.text,
                    "topic": event.topic,
                    "partition": event.partition,
                    "node": event.node,
                })
                .to_string(),
            )),
            headers: Vec::new(),
        })
        .collect();
    let batch = match RecordBatch::new(0, base_ms, records).encode(Compression::None) {
        Ok(batch) => batch,
        Err(error) => {
            tracing::warn!(%error, "could not encode events");
            return None;
        }
    };
    // Leadership may have moved while the batch was made. A batch stamped
    // with the new leader's epoch would be one its followers cannot tell
    // apart from the new leader's own writes at the same offsets; one with
    // the old epoch is truncated away like any unreplicated write.
    if partition.check_leader(broker.node_id, epoch).is_err() {
        return None;
    }
    let appended = partition
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .append(batch, epoch, now);
    match appended {
        Ok(_) => {
            partition.advance_high_watermark();
            broker.notify_appended();
            Some(last)
        }
        Err(error) => {
            tracing::warn!(%error, "could not append events");
            None
        }
    }
}
