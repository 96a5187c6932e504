//! ElectLeaders (key 43): makes the preferred replica (the first of a
//! partition's replicas) the leader again, or, for an unclean election, any
//! live replica of a partition whose in-sync replicas are all gone.
//!
//! The controller decides per partition: ELECTION_NOT_NEEDED when the
//! preferred replica already leads, PREFERRED_LEADER_NOT_AVAILABLE when it is
//! not alive and in sync, ELIGIBLE_LEADERS_NOT_AVAILABLE when an unclean
//! election finds no live replica, UNKNOWN_TOPIC_OR_PARTITION for a partition
//! that does not exist. A request for every partition (`TopicPartitions`
//! null) answers only for the partitions whose leader changed or could not,
//! as Kafka does. Version 0 has no election type (preferred only).

use std::collections::BTreeMap;

use eddy_metadata::{Command, CommandOutput};
use eddy_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use eddy_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use eddy_protocol::{ErrorCode, StrBytes};

use super::error_message;
use crate::state::{ApiError, Broker};

/// ElectLeaders' `ElectionType` values.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(
    broker: &Broker,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let unclean = match request.election_type {
        PREFERRED => false,
        UNCLEAN if version >= 1 => true,
        other => {
            return refused(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("unknown election type {other}"),
            ));
        }
    };
    let partitions: Option<Vec<(String, i32)>> = request.topic_partitions.as_ref().map(|topics| {
        let mut seen = std::collections::BTreeSet::new();
        topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|partition| (topic.topic.to_string(), *partition))
            })
            .filter(|key| seen.insert(key.clone()))
            .collect()
    });
    let every_partition = partitions.is_none();
    let requested = partitions.clone();
    let outcome = broker
        .propose(Command::ElectLeaders {
            partitions,
            unclean,
            automatic: false,
        })
        .await;
    let results: Vec<(String, i32, Option<ApiError>)> = match outcome {
        Ok(CommandOutput::PerPartition(results)) => results
            .into_iter()
            .map(|(topic, partition, error)| {
                let error = error.map(|error| ApiError::new(error.code, error.message));
                (topic, partition, error)
            })
            .filter(|(_, _, error)| {
                !(every_partition
                    && error
                        .as_ref()
                        .is_some_and(|error| error.code == ErrorCode::ElectionNotNeeded))
            })
            .collect(),
        Ok(_) => {
            return refused(ApiError::new(
                ErrorCode::UnknownServerError,
                "the controller did not answer per partition",
            ));
        }
        Err(error) => match requested {
            // Every partition named gets the reason, so that a client
            // reading per-partition results sees it too.
            Some(requested) => requested
                .into_iter()
                .map(|(topic, partition)| (topic, partition, Some(error.clone())))
                .collect(),
            None => return refused(error),
        },
    };
    let elected = results
        .iter()
        .filter(|(_, _, error)| error.is_none())
        .count();
    if elected > 0 {
        tracing::info!(elected, unclean, "elected leaders");
    }
    ElectLeadersResponse {
        replica_election_results: by_topic(results),
        ..Default::default()
    }
}

/// The whole request refused with `error`.
fn refused(error: ApiError) -> ElectLeadersResponse {
    tracing::debug!(code = ?error.code, message = error.message, "ElectLeaders refused");
    ElectLeadersResponse {
        error_code: error.code.code(),
        ..Default::default()
    }
}

fn by_topic(results: Vec<(String, i32, Option<ApiError>)>) -> Vec<ReplicaElectionResult> {
    let mut topics: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, partition, error) in results {
        let (code, message) = match error {
            None => (ErrorCode::None.code(), None),
            Some(error) => (error.code.code(), error_message(&error.message)),
        };
        topics.entry(topic).or_default().push(PartitionResult {
            partition_id: partition,
            error_code: code,
            error_message: message,
            ..Default::default()
        });
    }
    topics
        .into_iter()
        .map(|(topic, partition_result)| ReplicaElectionResult {
            topic: StrBytes::from(topic),
            partition_result,
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use eddy_protocol::messages::elect_leaders_request::TopicPartitions;

    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    fn request(election_type: i8, partitions: Option<&[(&str, i32)]>) -> ElectLeadersRequest {
        ElectLeadersRequest {
            election_type,
            topic_partitions: partitions.map(|partitions| {
                partitions
                    .iter()
                    .map(|(topic, partition)| TopicPartitions {
                        topic: StrBytes::from(topic.to_string()),
                        partitions: vec![*partition],
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    fn codes(response: &ElectLeadersResponse) -> Vec<(String, i32, i16)> {
        response
            .replica_election_results
            .iter()
            .flat_map(|topic| {
                topic.partition_result.iter().map(|partition| {
                    (
                        topic.topic.to_string(),
                        partition.partition_id,
                        partition.error_code,
                    )
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn each_named_partition_gets_the_controllers_answer() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = handle(
            &broker,
            request(PREFERRED, Some(&[("orders", 0), ("orders", 4)])),
            2,
        )
        .await;
        assert_eq!(response.error_code, 0);
        assert_eq!(
            codes(&response),
            [
                ("orders".to_string(), 0, ErrorCode::ElectionNotNeeded.code()),
                (
                    "orders".to_string(),
                    4,
                    ErrorCode::UnknownTopicOrPartition.code()
                ),
            ]
        );
        // Every partition: those that need no election are left out.
        let response = handle(&broker, request(PREFERRED, None), 2).await;
        assert_eq!(response.error_code, 0);
        assert_eq!(codes(&response), []);
    }

    #[tokio::test]
    async fn an_unknown_election_type_is_an_invalid_request() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        let response = handle(&broker, request(5, None), 2).await;
        assert_eq!(response.error_code, ErrorCode::InvalidRequest.code());
        // Version 0 knows only preferred elections.
        let response = handle(&broker, request(UNCLEAN, None), 0).await;
        assert_eq!(response.error_code, ErrorCode::InvalidRequest.code());
    }
}
