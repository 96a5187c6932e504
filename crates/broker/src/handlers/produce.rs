//! Produce: validate each partition's record batch as Kafka does (exactly one
//! magic v2 batch, CRC, size), append it as produced, and answer with the
//! offsets assigned — or, for an idempotent retry, the offsets first assigned.
//!
//! acks=0 gets no response; if any partition failed, the connection is
//! closed so that the client notices, as Kafka does. With one node the
//! in-sync replica set is this node, so acks=1 and acks=all are answered the
//! same way, once the batch is in the log.

use eddy_protocol::messages::{
    ProduceRequest, ProduceResponse,
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
};
use eddy_protocol::records::validate_produce_batch_for_version;
use eddy_protocol::{ErrorCode, StrBytes};

use super::error_message;
use crate::state::{ApiError, Broker, now_ms};

/// Leader epoch stamped on batches: a single node leads every partition at epoch 0.
const LEADER_EPOCH: i32 = 0;

pub enum Outcome {
    Respond(ProduceResponse),
    Nothing,
    Close(String),
}

pub fn handle(broker: &Broker, request: ProduceRequest, version: i16) -> Outcome {
    let acks = request.acks;
    if !matches!(acks, -1..=1) {
        let response = answer_all(
            &request,
            ApiError::new(
                ErrorCode::InvalidRequiredAcks,
                format!("acks must be -1, 0 or 1, not {acks}"),
            ),
        );
        return if acks == 0 {
            Outcome::Close("invalid acks".into())
        } else {
            Outcome::Respond(response)
        };
    }
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut failures = 0;
    let mut appended = false;
    for topic_data in request.topic_data {
        let topic = broker.topic(&topic_data.name);
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for partition_data in topic_data.partition_data {
            let result = match &topic {
                None => Err(ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", topic_data.name),
                )),
                Some(topic) => append(
                    broker,
                    topic,
                    partition_data.index,
                    partition_data.records,
                    version,
                ),
            };
            partition_responses.push(match result {
                Ok(response) => {
                    appended = true;
                    PartitionProduceResponse {
                        index: partition_data.index,
                        ..response
                    }
                }
                Err(error) => {
                    failures += 1;
                    PartitionProduceResponse {
                        index: partition_data.index,
                        error_code: error.code.code(),
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        error_message: error_message(&error.message),
                        ..Default::default()
                    }
                }
            });
        }
        responses.push(TopicProduceResponse {
            name: topic_data.name,
            partition_responses,
            ..Default::default()
        });
    }
    if appended {
        broker.notify_appended();
    }
    match acks {
        0 if failures > 0 => {
            Outcome::Close(format!("acks=0 produce failed on {failures} partitions"))
        }
        0 => Outcome::Nothing,
        _ => Outcome::Respond(ProduceResponse {
            responses,
            ..Default::default()
        }),
    }
}

fn append(
    broker: &Broker,
    topic: &crate::state::Topic,
    index: i32,
    records: Option<bytes::Bytes>,
    version: i16,
) -> Result<PartitionProduceResponse, ApiError> {
    let partition = topic.partition(index).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{}' has no partition {index}", topic.name),
        )
    })?;
    let records = records.ok_or_else(|| ApiError::new(ErrorCode::InvalidRecord, "no records"))?;
    let max_bytes = {
        let defaults = broker
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = topic
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        config.max_message_bytes(&defaults)
    };
    if records.len() > max_bytes {
        return Err(ApiError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "the batch is {} bytes, more than max.message.bytes ({max_bytes})",
                records.len()
            ),
        ));
    }
    validate_produce_batch_for_version(&records, version).map_err(|error| {
        ApiError::new(
            ErrorCode::from_code(error.kafka_error_code()).unwrap_or(ErrorCode::CorruptMessage),
            error.to_string(),
        )
    })?;
    let mut log = partition
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcome = log
        .append(records, LEADER_EPOCH, now_ms())
        .map_err(|error| {
            ApiError::new(
                ErrorCode::from_code(error.kafka_error_code())
                    .unwrap_or(ErrorCode::KafkaStorageError),
                error.to_string(),
            )
        })?;
    Ok(PartitionProduceResponse {
        error_code: 0,
        base_offset: outcome.base_offset,
        log_append_time_ms: outcome.log_append_time_ms,
        log_start_offset: log.log_start_offset(),
        ..Default::default()
    })
}

/// The same error for every partition (a request-level failure).
fn answer_all(request: &ProduceRequest, error: ApiError) -> ProduceResponse {
    ProduceResponse {
        responses: request
            .topic_data
            .iter()
            .map(|topic| TopicProduceResponse {
                name: topic.name.clone(),
                partition_responses: topic
                    .partition_data
                    .iter()
                    .map(|partition| PartitionProduceResponse {
                        index: partition.index,
                        error_code: error.code.code(),
                        base_offset: -1,
                        error_message: Some(StrBytes::from(error.message.as_str())),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
