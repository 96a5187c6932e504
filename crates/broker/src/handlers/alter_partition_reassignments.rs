//! AlterPartitionReassignments (key 45): starts moving partitions to new
//! replicas (or cancels a move in flight, with null replicas).
//!
//! The controller checks each partition (INVALID_REPLICA_ASSIGNMENT for an
//! empty list, a node named twice or a node not in the cluster;
//! NO_REASSIGNMENT_IN_PROGRESS to cancel one that is not moving;
//! UNKNOWN_TOPIC_OR_PARTITION) and records the reassignment. The new
//! replicas then fetch from the leader and join the ISR once caught up; when
//! every target replica is in sync the controller drops the others. The
//! answer comes as soon as the move is recorded, not when it completes.
//! A partition named twice in one request is INVALID_REQUEST for the whole
//! request, as in Kafka.

use std::collections::{BTreeMap, BTreeSet};

use eddy_metadata::{Command, CommandOutput};
use eddy_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use eddy_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use eddy_protocol::{ErrorCode, StrBytes};

use super::error_message;
use crate::state::{ApiError, Broker};

type Change = (String, i32, Option<Vec<i32>>);

pub async fn handle(
    broker: &Broker,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let changes: Vec<Change> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (
                    topic.name.to_string(),
                    partition.partition_index,
                    partition.replicas.clone(),
                )
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    if let Some((topic, partition, _)) = changes
        .iter()
        .find(|(topic, partition, _)| !seen.insert((topic.clone(), *partition)))
    {
        return refused(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{topic}-{partition} is named twice in one request"),
        ));
    }
    if changes.is_empty() {
        return AlterPartitionReassignmentsResponse::default();
    }
    let requested: Vec<(String, i32)> = changes
        .iter()
        .map(|(topic, partition, _)| (topic.clone(), *partition))
        .collect();
    let output = match broker
        .propose(Command::AlterReassignments {
            changes: changes.clone(),
        })
        .await
    {
        Ok(CommandOutput::PerPartition(results)) => results,
        Ok(_) => {
            return refused(ApiError::new(
                ErrorCode::UnknownServerError,
                "the controller did not answer per partition",
            ));
        }
        Err(error) => return refused(error),
    };
    let mut outcomes: BTreeMap<(String, i32), Option<ApiError>> = output
        .into_iter()
        .map(|(topic, partition, error)| {
            let error = error.map(|error| ApiError::new(error.code, error.message));
            ((topic, partition), error)
        })
        .collect();
    for (topic, partition, replicas) in &changes {
        if let Some(None) = outcomes.get(&(topic.clone(), *partition)) {
            match replicas {
                Some(replicas) => {
                    tracing::info!(topic, partition, ?replicas, "reassigning a partition")
                }
                None => tracing::info!(topic, partition, "cancelled a reassignment"),
            }
        }
    }
    let mut topics: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for (topic, partition) in requested {
        let error = outcomes
            .remove(&(topic.clone(), partition))
            .unwrap_or_else(|| {
                Some(ApiError::new(
                    ErrorCode::UnknownServerError,
                    "the controller did not answer for this partition",
                ))
            });
        let (error_code, message) = match error {
            None => (ErrorCode::None.code(), None),
            Some(error) => (error.code.code(), error_message(&error.message)),
        };
        topics
            .entry(topic)
            .or_default()
            .push(ReassignablePartitionResponse {
                partition_index: partition,
                error_code,
                error_message: message,
                ..Default::default()
            });
    }
    AlterPartitionReassignmentsResponse {
        responses: topics
            .into_iter()
            .map(|(name, partitions)| ReassignableTopicResponse {
                name: StrBytes::from(name),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The whole request refused with `error`.
fn refused(error: ApiError) -> AlterPartitionReassignmentsResponse {
    AlterPartitionReassignmentsResponse {
        error_code: error.code.code(),
        error_message: error_message(&error.message),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use eddy_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };

    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    fn request(changes: &[(&str, i32, Option<&[i32]>)]) -> AlterPartitionReassignmentsRequest {
        AlterPartitionReassignmentsRequest {
            topics: changes
                .iter()
                .map(|(topic, partition, replicas)| ReassignableTopic {
                    name: StrBytes::from(topic.to_string()),
                    partitions: vec![ReassignablePartition {
                        partition_index: *partition,
                        replicas: replicas.map(<[i32]>::to_vec),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn codes(response: &AlterPartitionReassignmentsResponse) -> Vec<(i32, i16)> {
        response
            .responses
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|partition| (partition.partition_index, partition.error_code))
            })
            .collect()
    }

    #[tokio::test]
    async fn each_partition_is_checked_by_the_controller() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 3, &[]).await;
        let response = handle(
            &broker,
            request(&[
                ("orders", 0, Some(&[1])),
                ("orders", 1, Some(&[1, 9])),
                ("orders", 2, None),
                ("missing", 0, Some(&[1])),
            ]),
        )
        .await;
        assert_eq!(response.error_code, 0);
        let mut codes = codes(&response);
        codes.sort_unstable();
        assert_eq!(
            codes,
            [
                (0, 0),
                (0, ErrorCode::UnknownTopicOrPartition.code()),
                (1, ErrorCode::InvalidReplicaAssignment.code()),
                (2, ErrorCode::NoReassignmentInProgress.code()),
            ]
        );
        assert!(
            !broker
                .image()
                .topic("orders")
                .unwrap()
                .partitions
                .iter()
                .any(|partition| partition.is_reassigning())
        );
    }

    #[tokio::test]
    async fn a_partition_named_twice_refuses_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = handle(
            &broker,
            request(&[("orders", 0, Some(&[1])), ("orders", 0, None)]),
        )
        .await;
        assert_eq!(response.error_code, ErrorCode::InvalidRequest.code());
        assert!(
            response
                .error_message
                .as_deref()
                .unwrap()
                .contains("orders-0")
        );
        assert!(response.responses.is_empty());
    }
}
