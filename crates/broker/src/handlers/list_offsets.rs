//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest
//! local (-4) and by timestamp, for either isolation level (without
//! transactions the last stable offset is the high watermark, which is the
//! log end offset on a single node).

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

pub fn handle(broker: &Broker, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic_request| {
            let topic = broker.topic(&topic_request.name);
            let partitions = topic_request
                .partitions
                .iter()
                .map(|wanted| {
                    let partition = topic
                        .as_ref()
                        .and_then(|topic| topic.partition(wanted.partition_index));
                    match partition {
                        None => ListOffsetsPartitionResponse {
                            partition_index: wanted.partition_index,
                            error_code: ErrorCode::UnknownTopicOrPartition.code(),
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            ..Default::default()
                        },
                        Some(partition) => {
                            let log = partition
                                .log
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                            let (error_code, timestamp, offset) = match wanted.timestamp {
                                LATEST => (0, -1, log.log_end_offset()),
                                EARLIEST | EARLIEST_LOCAL => (0, -1, log.log_start_offset()),
                                LATEST_TIERED => (0, -1, -1),
                                MAX_TIMESTAMP => found(log.max_timestamp()),
                                timestamp => found(log.offset_for_timestamp(timestamp)),
                            };
                            ListOffsetsPartitionResponse {
                                partition_index: wanted.partition_index,
                                error_code,
                                timestamp,
                                offset,
                                leader_epoch: 0,
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
