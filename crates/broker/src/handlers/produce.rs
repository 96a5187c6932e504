//! Produce: validate each partition's record batch as Kafka does (exactly one
//! magic v2 batch, CRC, size), append it as produced with this leader's
//! epoch, and answer with the offsets assigned — or, for an idempotent retry,
//! the offsets first assigned.
//!
//! Only the partition's leader appends (others answer NOT_LEADER_OR_FOLLOWER
//! so the client refreshes its metadata). acks=1 is answered once the batch
//! is in the leader's log; acks=all once the high watermark passes it, that
//! is once every in-sync replica has it, and only while the ISR has at least
//! `min.insync.replicas` members (NOT_ENOUGH_REPLICAS before the append,
//! NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank meanwhile).
//! acks=0 gets no response; if any partition failed, the connection is
//! closed so that the client notices, as Kafka does.

use eddy_protocol::messages::{
    ProduceRequest, ProduceResponse,
    produce_response::{PartitionProduceResponse, TopicProduceResponse},
};
use eddy_protocol::records::validate_produce_batch_for_version;
use eddy_protocol::{ErrorCode, ResponseBody, StrBytes};

use std::sync::Arc;
use std::time::Duration;

use super::error_message;
use crate::state::{ApiError, Broker, Partition, now_ms};

pub enum Outcome {
    Respond(ProduceResponse),
    /// acks=all: the batches are in the leader's log; the response is ready
    /// once the in-sync replicas have them. The connection reads its next
    /// request meanwhile and keeps responses in order.
    Replicating(super::PendingBody),
    Nothing,
    Close(String),
}

pub async fn handle(broker: &Arc<Broker>, request: ProduceRequest, version: i16) -> Outcome {
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
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut failures = 0;
    let mut appended = false;
    // acks=all: (topic position, partition position, partition, last offset).
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
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
                    acks,
                ),
            };
            partition_responses.push(match result {
                Ok((response, partition, last_offset)) => {
                    appended = true;
                    if acks == -1 {
                        waits.push((
                            responses.len(),
                            partition_responses.len(),
                            partition,
                            last_offset,
                        ));
                    }
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
    if acks == -1 && !waits.is_empty() {
        let broker = broker.clone();
        return Outcome::Replicating(Box::pin(async move {
            wait_for_replicas(&broker, &mut responses, waits, timeout).await;
            ResponseBody::Produce(ProduceResponse {
                responses,
                ..Default::default()
            })
        }));
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

/// Waits until the in-sync replicas have each acks=all batch, marking the
/// partitions whose wait failed.
async fn wait_for_replicas(
    broker: &Broker,
    responses: &mut [TopicProduceResponse],
    waits: Vec<(usize, usize, Arc<Partition>, i64)>,
    timeout: Duration,
) {
    for (topic_position, partition_position, partition, last_offset) in waits {
        let outcome = match partition
            .wait_replicated(broker.node_id, last_offset, timeout)
            .await
        {
            Ok(()) => check_min_insync(broker, &partition)
                .map_err(|_| ErrorCode::NotEnoughReplicasAfterAppend),
            Err(code) => Err(code),
        };
        if let Err(code) = outcome {
            let response = &mut responses[topic_position].partition_responses[partition_position];
            response.error_code = code.code();
            response.error_message = error_message(&format!(
                "{}: {}",
                partition.name(),
                match code {
                    ErrorCode::RequestTimedOut =>
                        "the in-sync replicas did not all copy the batch in time",
                    ErrorCode::NotEnoughReplicasAfterAppend =>
                        "the ISR shrank below min.insync.replicas while the batch was replicated",
                    _ => "this node lost leadership while the batch was replicated",
                }
            ));
        }
    }
}

/// Refuses acks=all while the ISR is smaller than `min.insync.replicas`.
fn check_min_insync(broker: &Broker, partition: &Partition) -> Result<(), ApiError> {
    let assignment = partition.assignment();
    let Some(topic) = broker.topic(&partition.topic) else {
        return Ok(());
    };
    let needed = topic
        .config
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .min_insync_replicas(&broker.broker_config(), assignment.replicas.len());
    if assignment.isr.len() < needed {
        return Err(ApiError::new(
            ErrorCode::NotEnoughReplicas,
            format!(
                "{} has {} in-sync replicas ({:?}); min.insync.replicas is {needed}",
                partition.name(),
                assignment.isr.len(),
                assignment.isr
            ),
        ));
    }
    Ok(())
}

fn append(
    broker: &Broker,
    topic: &crate::state::Topic,
    index: i32,
    records: Option<bytes::Bytes>,
    version: i16,
    acks: i16,
) -> Result<(PartitionProduceResponse, Arc<Partition>, i64), ApiError> {
    let partition = topic.replica(index).map_err(|code| {
        ApiError::new(
            code,
            if code == ErrorCode::NotLeaderOrFollower {
                format!(
                    "node {} does not lead {}-{index}",
                    broker.node_id, topic.name
                )
            } else {
                format!("topic '{}' has no partition {index}", topic.name)
            },
        )
    })?;
    let assignment = partition.check_leader(broker.node_id, -1).map_err(|code| {
        ApiError::new(
            code,
            format!(
                "node {} does not lead {} (node {} does)",
                broker.node_id,
                partition.name(),
                partition.assignment().leader
            ),
        )
    })?;
    if acks == -1 {
        check_min_insync(broker, &partition)?;
    }
    let records = records.ok_or_else(|| ApiError::new(ErrorCode::InvalidRecord, "no records"))?;
    let max_bytes = {
        let defaults = broker.broker_config();
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
        .append(records, assignment.leader_epoch, now_ms())
        .map_err(|error| {
            ApiError::new(
                ErrorCode::from_code(error.kafka_error_code())
                    .unwrap_or(ErrorCode::KafkaStorageError),
                error.to_string(),
            )
        })?;
    let response = PartitionProduceResponse {
        error_code: 0,
        base_offset: outcome.base_offset,
        log_append_time_ms: outcome.log_append_time_ms,
        log_start_offset: log.log_start_offset(),
        ..Default::default()
    };
    drop(log);
    // With this node alone in the ISR, the batch is committed already.
    if partition.advance_high_watermark() {
        broker.notify_appended();
    }
    Ok((response, partition, outcome.last_offset))
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
