//! DeleteRecords (key 21): moves partitions' log start offsets forward, so
//! the records before them can no longer be read and their segments go.
//!
//! Follows Kafka's `Partition.deleteRecordsOnLeader`: offset -1 means the
//! high watermark; any other
//! negative offset, or one past the high watermark, is OFFSET_OUT_OF_RANGE;
//! an offset at or below the current log start changes nothing. Each
//! partition answers its low watermark (the log start offset afterwards), or
//! -1 with an error. Unknown topics and partitions are
//! UNKNOWN_TOPIC_OR_PARTITION; internal topics (named `__...`, as Metadata
//! reports them) are refused with INVALID_TOPIC_EXCEPTION, as Kafka refuses
//! to delete `__consumer_offsets` records. The response carries no messages,
//! so the reasons go to the log at debug level.

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use eddy_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use eddy_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::state::{ApiError, Broker, Partition, Topic};

/// The offset that stands for the high watermark.
const HIGH_WATERMARK: i64 = -1;
/// The low watermark answered with an error.
const INVALID_LOW_WATERMARK: i64 = -1;

pub fn handle(broker: &Broker, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| delete_in_topic(broker, topic))
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

fn delete_in_topic(broker: &Broker, request: &DeleteRecordsTopic) -> DeleteRecordsTopicResult {
    let topic = broker.topic(&request.name);
    let partitions = request
        .partitions
        .iter()
        .map(|partition| {
            let outcome = match &topic {
                Some(topic) => delete_in_partition(broker.node_id, topic, partition),
                None => Err(ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", request.name),
                )),
            };
            result(&request.name, partition.partition_index, outcome)
        })
        .collect();
    DeleteRecordsTopicResult {
        name: request.name.clone(),
        partitions,
        ..Default::default()
    }
}

/// Deletes the records of one partition before the requested offset and
/// returns the new log start offset.
fn delete_in_partition(
    node_id: i32,
    topic: &Topic,
    request: &DeleteRecordsPartition,
) -> Result<i64, ApiError> {
    if topic.is_internal() {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("cannot delete records of internal topic '{}'", topic.name),
        ));
    }
    let partition = topic.replica(request.partition_index).map_err(|code| {
        ApiError::new(
            code,
            format!("{}-{} is not led here", topic.name, request.partition_index),
        )
    })?;
    partition.check_leader(node_id, -1).map_err(|code| {
        ApiError::new(code, format!("{} is led by another node", partition.name()))
    })?;
    delete_before(&partition, request.offset)
}

fn delete_before(partition: &Partition, offset: i64) -> Result<i64, ApiError> {
    let mut log = partition
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let high_watermark = partition.high_watermark();
    let offset = if offset == HIGH_WATERMARK {
        high_watermark
    } else {
        offset
    };
    if !(0..=high_watermark).contains(&offset) {
        return Err(ApiError::new(
            ErrorCode::OffsetOutOfRange,
            format!(
                "cannot delete records before offset {offset}: the high watermark is {high_watermark}"
            ),
        ));
    }
    log.delete_records_before(offset).map_err(|error| {
        let code =
            ErrorCode::from_code(error.kafka_error_code()).unwrap_or(ErrorCode::UnknownServerError);
        ApiError::new(code, error.to_string())
    })
}

fn result(
    topic: &str,
    partition_index: i32,
    outcome: Result<i64, ApiError>,
) -> DeleteRecordsPartitionResult {
    let (low_watermark, error_code) = match outcome {
        Ok(low_watermark) => (low_watermark, ErrorCode::None.code()),
        Err(error) => {
            tracing::debug!(topic, partition = partition_index, code = ?error.code, error.message, "records not deleted");
            (INVALID_LOW_WATERMARK, error.code.code())
        }
    };
    DeleteRecordsPartitionResult {
        partition_index,
        low_watermark,
        error_code,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use eddy_protocol::StrBytes;
    use eddy_protocol::records::{Compression, Record, RecordBatch};

    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    /// Appends `count` one-record batches to a partition.
    fn append(broker: &Broker, topic: &str, partition: i32, count: usize) {
        let partition = broker.topic(topic).unwrap().partition(partition).unwrap();
        let mut log = partition.log.lock().unwrap();
        for _ in 0..count {
            let record = Record {
                value: Some(Bytes::from_static(b"value")),
                ..Default::default()
            };
            let batch = RecordBatch::new(0, 1_700_000_000_000, vec![record])
                .encode(Compression::None)
                .unwrap();
            log.append(batch, 0, 1_700_000_000_000).unwrap();
        }
        drop(log);
        // The only replica: committed at once.
        partition.advance_high_watermark();
    }

    async fn delete(broker: &Broker, topic: &str, offsets: &[(i32, i64)]) -> Vec<(i32, i64, i16)> {
        let request = DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: StrBytes::from(topic),
                partitions: offsets
                    .iter()
                    .map(|(partition_index, offset)| DeleteRecordsPartition {
                        partition_index: *partition_index,
                        offset: *offset,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = handle(broker, request);
        assert_eq!(&*response.topics[0].name, topic);
        response.topics[0]
            .partitions
            .iter()
            .map(|result| {
                (
                    result.partition_index,
                    result.low_watermark,
                    result.error_code,
                )
            })
            .collect()
    }

    fn log_start_offset(broker: &Broker, topic: &str, partition: i32) -> i64 {
        let partition = broker.topic(topic).unwrap().partition(partition).unwrap();
        let log = partition.log.lock().unwrap();
        log.log_start_offset()
    }

    #[tokio::test]
    async fn deleting_raises_the_log_start_offset() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 2, &[]).await;
        append(&broker, "orders", 0, 5);
        append(&broker, "orders", 1, 3);
        assert_eq!(
            delete(&broker, "orders", &[(0, 3), (1, -1)]).await,
            [(0, 3, 0), (1, 3, 0)]
        );
        assert_eq!(log_start_offset(&broker, "orders", 0), 3);
        assert_eq!(log_start_offset(&broker, "orders", 1), 3);
        // An offset below the log start changes nothing.
        assert_eq!(delete(&broker, "orders", &[(0, 1)]).await, [(0, 3, 0)]);
        assert_eq!(log_start_offset(&broker, "orders", 0), 3);
    }

    #[tokio::test]
    async fn offsets_past_the_high_watermark_or_negative_are_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        append(&broker, "orders", 0, 2);
        let out_of_range = ErrorCode::OffsetOutOfRange.code();
        assert_eq!(
            delete(&broker, "orders", &[(0, 3), (0, -2)]).await,
            [(0, -1, out_of_range), (0, -1, out_of_range)]
        );
        assert_eq!(log_start_offset(&broker, "orders", 0), 0);
    }

    #[tokio::test]
    async fn unknown_topics_and_partitions_and_internal_topics_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        create_topic(&broker, "__consumer_offsets", 1, &[]).await;
        let unknown = ErrorCode::UnknownTopicOrPartition.code();
        assert_eq!(
            delete(&broker, "missing", &[(0, 0)]).await,
            [(0, -1, unknown)]
        );
        assert_eq!(
            delete(&broker, "orders", &[(4, 0)]).await,
            [(4, -1, unknown)]
        );
        let internal = ErrorCode::InvalidTopicException.code();
        assert_eq!(
            delete(&broker, "__consumer_offsets", &[(0, 0)]).await,
            [(0, -1, internal)]
        );
    }
}
