//! Fetch: whole record batches from each requested partition, as stored.
//!
//! Only a partition's leader serves it. Consumers read below the high
//! watermark; a follower (the request names its replica id) reads up to the
//! log end, and its fetch offset tells the leader what it has copied, which
//! moves the high watermark. A follower that names the epoch of its last
//! batch gets, instead of records, the point where its log and the leader's
//! diverge, when they do.
//!
//! A request that finds fewer than `min_bytes` waits (long poll) until an
//! append anywhere on this node or `max_wait_ms`, then reads again; other
//! connections are served meanwhile. Topics are named by id from v13 on.
//! Without transactions the last stable offset is the high watermark and
//! no transaction is aborted, so `read_committed` consumers (librdkafka's and
//! kafkajs' default) read everything. Incremental fetch sessions are declined
//! (session id 0): clients then send full requests.
//!
//! For a follower's fetch, partitions whose topic lists this leader in
//! `leader.replication.throttled.replicas` share the node's
//! `leader.replication.throttled.rate`: over it, they are answered without
//! records (the fetch offset still counts), in sync or not (Kafka spares
//! in-sync replicas; see [`crate::replication`]). While this node is isolated by
//! fault injection, a replica's fetch closes its connection.

use std::time::Duration;

use bytes::Bytes;
use eddy_protocol::messages::{
    FetchRequest, FetchResponse,
    fetch_response::{FetchableTopicResponse, PartitionData},
};
use eddy_protocol::{ErrorCode, StrBytes};
use tokio::time::Instant;

use crate::state::{Broker, Topic};

/// No fetch waits longer than this, whatever it asks.
const MAX_WAIT_LIMIT_MS: u64 = 30_000;
/// Bytes one response carries at most (Kafka's `fetch.max.bytes`).
const FETCH_MAX_BYTES: usize = 52_428_800;
/// Isolation level READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// Answers a fetch; `None` when the connection must be closed instead (a
/// replica's fetch while this node is isolated by fault injection).
pub async fn handle(broker: &Broker, request: FetchRequest, version: i16) -> Option<FetchResponse> {
    let from_replica = replica_id(&request, version) >= 0;
    let refused = || from_replica && crate::faults::isolated();
    if refused() {
        return None;
    }
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(MAX_WAIT_LIMIT_MS),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let mut appends = broker.subscribe_appends();
    loop {
        appends.borrow_and_update();
        if refused() {
            return None;
        }
        let (response, bytes, failed) = read_all(broker, &request, version);
        if failed || bytes >= min_bytes.max(1) || Instant::now() >= deadline {
            return Some(response);
        }
        // Woken by an append, or out of time: either way read again, once more at most after the deadline.
        if tokio::time::timeout_at(deadline, appends.changed())
            .await
            .is_err()
        {
            if refused() {
                return None;
            }
            return Some(read_all(broker, &request, version).0);
        }
    }
}

/// Reads every requested partition once: the response, the record bytes in
/// it, and whether any partition failed.
fn read_all(broker: &Broker, request: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    let mut budget = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(FETCH_MAX_BYTES);
    let mut total = 0;
    let mut failed = false;
    let read_committed = request.isolation_level == READ_COMMITTED;
    let replica_id = replica_id(request, version);
    // The leader throttle, for replicas' fetches of throttled partitions.
    let leader_rate = if replica_id >= 0 {
        broker.broker_config().leader_replication_throttled_rate()
    } else {
        None
    };
    let mut responses = Vec::with_capacity(request.topics.len());
    for fetch_topic in &request.topics {
        let topic = if version >= 13 {
            broker.topic_by_id(fetch_topic.topic_id)
        } else {
            broker.topic(&fetch_topic.topic)
        };
        let missing_topic = if version >= 13 {
            ErrorCode::UnknownTopicId
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        let mut partitions = Vec::with_capacity(fetch_topic.partitions.len());
        for wanted in &fetch_topic.partitions {
            let partition_max = usize::try_from(wanted.partition_max_bytes).unwrap_or(0);
            // The first batch is always sent whole, even past the limits (KIP-74).
            let limit = if total == 0 {
                partition_max.max(1)
            } else {
                partition_max.min(budget)
            };
            let throttled = leader_rate.is_some()
                && topic.as_ref().is_some_and(|topic| {
                    topic
                        .config
                        .read()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .leader_throttled(wanted.partition, broker.node_id)
                });
            // Over the leader quota, a throttled partition's fetch is
            // answered without records (its fetch offset still counts).
            let limit = if throttled {
                let allowed = crate::replication::leader_quota().available(leader_rate);
                Some(limit.min(usize::try_from(allowed).unwrap_or(0)))
                    .filter(|allowed| *allowed > 0)
            } else {
                Some(limit)
            };
            let data = match &topic {
                None => Err(missing_topic),
                Some(topic) if limit == Some(0) => Ok(bare_partition(
                    Some(topic),
                    wanted.partition,
                    ErrorCode::None,
                )),
                Some(topic) => read_partition(broker, topic, wanted, replica_id, limit),
            };
            let data = match data {
                Ok(mut data) => {
                    let size = data.records.as_ref().map_or(0, Bytes::len);
                    if throttled {
                        crate::replication::leader_quota().charge(leader_rate, size);
                    }
                    total += size;
                    budget = budget.saturating_sub(size);
                    data.aborted_transactions = read_committed.then(Vec::new);
                    data
                }
                Err(code) => {
                    failed = true;
                    bare_partition(topic.as_deref(), wanted.partition, code)
                }
            };
            partitions.push(data);
        }
        responses.push(FetchableTopicResponse {
            topic: topic.as_ref().map_or_else(
                || fetch_topic.topic.clone(),
                |topic| StrBytes::from(topic.name.as_str()),
            ),
            topic_id: fetch_topic.topic_id,
            partitions,
            ..Default::default()
        });
    }
    let response = FetchResponse {
        session_id: 0,
        responses,
        ..Default::default()
    };
    (response, total, failed)
}

/// The replica a fetch comes from; negative for consumers.
fn replica_id(request: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        request.replica_state.replica_id
    } else {
        request.replica_id
    }
}

fn read_partition(
    broker: &Broker,
    topic: &Topic,
    wanted: &eddy_protocol::messages::fetch_request::FetchPartition,
    replica_id: i32,
    max_bytes: Option<usize>,
) -> Result<PartitionData, ErrorCode> {
    let index = wanted.partition;
    let partition = topic.replica(index)?;
    partition.check_leader(broker.node_id, wanted.current_leader_epoch)?;
    let follower = replica_id >= 0;
    if follower && wanted.last_fetched_epoch >= 0 {
        let diverging = {
            let log = partition
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (epoch, end_offset) = log.end_offset_for_epoch(wanted.last_fetched_epoch);
            (end_offset < wanted.fetch_offset || epoch < wanted.last_fetched_epoch)
                .then_some((epoch, end_offset))
        };
        if let Some((epoch, end_offset)) = diverging {
            let mut data = bare_partition(Some(topic), index, ErrorCode::None);
            data.diverging_epoch.epoch = epoch;
            data.diverging_epoch.end_offset = end_offset;
            return Ok(data);
        }
    }
    if follower {
        partition.record_follower_fetch(replica_id, wanted.fetch_offset);
        if partition.advance_high_watermark() {
            broker.notify_appended();
        }
    }
    let high_watermark = partition.high_watermark();
    let log = partition
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let log_start_offset = log.log_start_offset();
    let max_offset = if follower { i64::MAX } else { high_watermark };
    let records = match max_bytes {
        Some(max_bytes) => log.read(wanted.fetch_offset, max_bytes, max_offset),
        None => log.read(wanted.fetch_offset, 0, wanted.fetch_offset),
    }
    .map_err(|error| {
        ErrorCode::from_code(error.kafka_error_code()).unwrap_or(ErrorCode::KafkaStorageError)
    })?;
    Ok(PartitionData {
        partition_index: index,
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset,
        preferred_read_replica: -1,
        records: Some(records),
        ..Default::default()
    })
}

/// A partition answered without records: empty, or with an error.
fn bare_partition(topic: Option<&Topic>, index: i32, code: ErrorCode) -> PartitionData {
    let (high_watermark, log_start_offset) = topic
        .and_then(|topic| topic.partition(index))
        .map(|partition| {
            let start = partition
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .log_start_offset();
            (partition.high_watermark(), start)
        })
        .unwrap_or((-1, -1));
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset,
        preferred_read_replica: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}
