//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest
//! local (-4) and by timestamp, for either isolation level (without
//! transactions the last stable offset is the high watermark), answered by
//! the partition's leader only; "latest" is the high watermark, and a
//! timestamp lookup never returns an offset at or above it. With Kafka's
//! debugging replica id (-2) any replica answers, and "latest" is its own
//! log end offset: how far that replica has copied.

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse,
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
};

use eddy_log::{LogError, TimestampOffset};

use crate::state::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Kafka's debugging replica id: the answer may come from any replica, and
/// "latest" is that replica's log end offset (how far it has copied).
const DEBUGGING_REPLICA_ID: i32 = -2;

pub fn handle(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let any_replica = request.replica_id == DEBUGGING_REPLICA_ID;
    let topics = request
        .topics
        .into_iter()
        .map(|topic_request| {
            let topic = broker.topic(&topic_request.name);
            let partitions = topic_request
                .partitions
                .iter()
                .map(|wanted| {
                    let partition = match &topic {
                        None => Err(ErrorCode::UnknownTopicOrPartition),
                        Some(topic) => {
                            topic.replica(wanted.partition_index).and_then(|partition| {
                                if any_replica {
                                    let epoch = partition.leader_epoch();
                                    return Ok((partition, epoch));
                                }
                                partition
                                    .check_leader(broker.node_id, wanted.current_leader_epoch)
                                    .map(|assignment| (partition, assignment.leader_epoch))
                            })
                        }
                    };
                    match partition {
                        Err(code) => ListOffsetsPartitionResponse {
                            partition_index: wanted.partition_index,
                            error_code: code.code(),
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            ..Default::default()
                        },
                        Ok((partition, leader_epoch)) => {
                            let high_watermark = partition.high_watermark();
                            let log = partition
                                .log
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                            let below = |(code, timestamp, offset): (i16, i64, i64)| {
                                if offset >= high_watermark {
                                    (code, -1, -1)
                                } else {
                                    (code, timestamp, offset)
                                }
                            };
                            let (error_code, timestamp, offset) = match wanted.timestamp {
                                LATEST if any_replica => (0, -1, log.log_end_offset()),
                                LATEST => (0, -1, high_watermark),
                                EARLIEST | EARLIEST_LOCAL => (0, -1, log.log_start_offset()),
                                LATEST_TIERED => (0, -1, -1),
                                MAX_TIMESTAMP => below(found(log.max_timestamp())),
                                timestamp => below(found(log.offset_for_timestamp(timestamp))),
                            };
                            ListOffsetsPartitionResponse {
                                partition_index: wanted.partition_index,
                                error_code,
                                timestamp,
                                offset,
                                leader_epoch,
                                ..Default::default()
                            }
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse {
                name: topic_request.name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}

/// (error code, timestamp, offset) for a lookup that may find nothing.
fn found(result: Result<Option<TimestampOffset>, LogError>) -> (i16, i64, i64) {
    match result {
        Ok(Some(found)) => (0, found.timestamp_ms, found.offset),
        Ok(None) => (0, -1, -1),
        Err(error) => (error.kafka_error_code(), -1, -1),
    }
}
