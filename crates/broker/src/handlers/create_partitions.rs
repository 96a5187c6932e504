//! CreatePartitions (key 37): grows topics to a new total partition count.
//!
//! Follows Kafka's `ReplicationControlManager.createPartitions`: `count` is
//! the new total and must exceed the current one (INVALID_PARTITIONS); given
//! assignments must list one replica set per new partition, each naming only
//! registered brokers, once, with the topic's replication factor
//! (INVALID_REPLICA_ASSIGNMENT). A topic named twice in one request is answered once with
//! INVALID_REQUEST and not grown; `validate_only` checks without growing.

use std::collections::HashSet;

use eddy_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use eddy_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use eddy_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use eddy_protocol::{ErrorCode, StrBytes};

use super::alter_configs::{error_fields, repeated};
use crate::state::{ApiError, Broker};

pub async fn handle(broker: &Broker, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let repeated = repeated(request.topics.iter().map(|topic| &topic.name));
    let mut answered = HashSet::new();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let outcome = if repeated.contains(&topic.name) {
            if !answered.insert(&topic.name) {
                continue;
            }
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "duplicate topic name",
            ))
        } else {
            grow(broker, topic, request.validate_only).await
        };
        results.push(result(&topic.name, outcome));
    }
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}

async fn grow(
    broker: &Broker,
    request: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), ApiError> {
    let name = &*request.name;
    let topic = broker.topic(name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let current = topic.partition_count();
    // A count that is no increase is refused by `add_partitions` itself.
    if let Some(assignments) = &request.assignments
        && request.count > current
    {
        let image = broker.image();
        let replication_factor = image
            .topic(name)
            .and_then(|topic| topic.partitions.first())
            .map_or(1, |partition| partition.replicas.len());
        check_assignments(
            &|id| image.broker(id).is_some(),
            replication_factor,
            current,
            request.count,
            assignments,
        )?;
    }
    let assignments = request.assignments.as_ref().map(|assignments| {
        assignments
            .iter()
            .map(|assignment| assignment.broker_ids.clone())
            .collect()
    });
    broker
        .add_partitions(name, request.count, assignments, validate_only)
        .await?;
    if !validate_only {
        tracing::info!(
            topic = name,
            from = current,
            to = request.count,
            "added partitions"
        );
    }
    Ok(())
}

/// Checks manual assignments for partitions `current..count`.
fn check_assignments(
    registered: &dyn Fn(i32) -> bool,
    replication_factor: usize,
    current: i32,
    count: i32,
    assignments: &[CreatePartitionsAssignment],
) -> Result<(), ApiError> {
    let invalid =
        |message: String| Err(ApiError::new(ErrorCode::InvalidReplicaAssignment, message));
    let additional = i64::from(count) - i64::from(current);
    if assignments.len() as i64 != additional {
        return invalid(format!(
            "attempted to add {additional} partition(s), but {} assignment(s) were specified",
            assignments.len()
        ));
    }
    for (offset, assignment) in assignments.iter().enumerate() {
        let partition = i64::from(current) + offset as i64;
        let replicas = &assignment.broker_ids;
        if replicas.is_empty() {
            return invalid(format!(
                "the assignment of partition {partition} has no replicas"
            ));
        }
        if let Some(other) = replicas.iter().find(|id| !registered(**id)) {
            return invalid(format!(
                "the assignment of partition {partition} includes node {other}, \
                 which is not in the cluster"
            ));
        }
        if replicas.iter().collect::<HashSet<_>>().len() != replicas.len() {
            return invalid(format!(
                "the assignment of partition {partition} names a node twice"
            ));
        }
        if replicas.len() != replication_factor {
            return invalid(format!(
                "the assignment of partition {partition} has {} replicas, \
                 but the topic's partitions have {replication_factor}",
                replicas.len()
            ));
        }
    }
    Ok(())
}

fn result(name: &StrBytes, outcome: Result<(), ApiError>) -> CreatePartitionsTopicResult {
    let (error_code, error_message) = error_fields(outcome);
    CreatePartitionsTopicResult {
        name: name.clone(),
        error_code,
        error_message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    fn topic(name: &str, count: i32, assignments: Option<&[&[i32]]>) -> CreatePartitionsTopic {
        CreatePartitionsTopic {
            name: StrBytes::from(name),
            count,
            assignments: assignments.map(|sets| {
                sets.iter()
                    .map(|ids| CreatePartitionsAssignment {
                        broker_ids: ids.to_vec(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    async fn create(
        broker: &Broker,
        topics: Vec<CreatePartitionsTopic>,
        validate_only: bool,
    ) -> CreatePartitionsResponse {
        let request = CreatePartitionsRequest {
            topics,
            validate_only,
            ..Default::default()
        };
        handle(broker, request).await
    }

    fn codes(response: &CreatePartitionsResponse) -> Vec<(String, i16)> {
        response
            .results
            .iter()
            .map(|result| (result.name.to_string(), result.error_code))
            .collect()
    }

    #[tokio::test]
    async fn count_is_the_new_total_and_new_partitions_have_logs() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = create(&broker, vec![topic("orders", 3, None)], false).await;
        assert_eq!(codes(&response), [("orders".to_string(), 0)]);
        let orders = broker.topic("orders").unwrap();
        assert_eq!(orders.partition_count(), 3);
        assert!(orders.partition(2).is_some());
        assert!(dir.path().join("orders-2").is_dir());
    }

    #[tokio::test]
    async fn assignments_naming_this_node_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = create(
            &broker,
            vec![topic("orders", 3, Some(&[&[1], &[1]]))],
            false,
        )
        .await;
        assert_eq!(response.results[0].error_code, 0);
        assert_eq!(broker.topic("orders").unwrap().partition_count(), 3);
    }

    #[tokio::test]
    async fn bad_assignments_are_refused_and_nothing_grows() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let bad: [&[&[i32]]; 4] = [&[&[2]], &[&[1, 1]], &[&[]], &[&[1], &[1]]];
        for assignments in bad {
            let response =
                create(&broker, vec![topic("orders", 2, Some(assignments))], false).await;
            assert_eq!(
                response.results[0].error_code,
                ErrorCode::InvalidReplicaAssignment.code(),
                "{assignments:?}"
            );
            assert!(response.results[0].error_message.is_some());
        }
        assert_eq!(broker.topic("orders").unwrap().partition_count(), 1);
    }

    #[tokio::test]
    async fn no_increase_and_unknown_topics_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 2, &[]).await;
        let response = create(
            &broker,
            vec![topic("orders", 2, None), topic("missing", 4, None)],
            false,
        )
        .await;
        assert_eq!(
            codes(&response),
            [
                ("orders".to_string(), ErrorCode::InvalidPartitions.code()),
                (
                    "missing".to_string(),
                    ErrorCode::UnknownTopicOrPartition.code()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn validate_only_grows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = create(&broker, vec![topic("orders", 4, None)], true).await;
        assert_eq!(response.results[0].error_code, 0);
        assert_eq!(broker.topic("orders").unwrap().partition_count(), 1);
        assert!(!dir.path().join("orders-1").exists());
    }

    #[tokio::test]
    async fn a_topic_named_twice_is_answered_once_and_not_grown() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        create_topic(&broker, "audit", 1, &[]).await;
        let response = create(
            &broker,
            vec![
                topic("orders", 2, None),
                topic("audit", 2, None),
                topic("orders", 3, None),
            ],
            false,
        )
        .await;
        assert_eq!(
            codes(&response),
            [
                ("orders".to_string(), ErrorCode::InvalidRequest.code()),
                ("audit".to_string(), 0),
            ]
        );
        assert_eq!(broker.topic("orders").unwrap().partition_count(), 1);
        assert_eq!(broker.topic("audit").unwrap().partition_count(), 2);
    }
}
