//! DeleteTopics (key 20): deletes topics and their data, named by topic
//! name (`topic_names` before v6, `topics` from v6) or by topic id (v6+).
//!
//! Follows Kafka's `ControllerApis.deleteTopics`: with
//! `delete.topic.enable=false` every topic is answered TOPIC_DELETION_DISABLED
//! (INVALID_REQUEST before v3, which predates that code); a v6 entry must give
//! a name or an id, not both (INVALID_REQUEST); a name or id given twice is
//! answered once with INVALID_REQUEST and not deleted; an unknown name is
//! UNKNOWN_TOPIC_OR_PARTITION and an unknown id UNKNOWN_TOPIC_ID. Results keep
//! the request's order (Kafka shuffles them; clients match by name or id).

use std::collections::HashSet;

use eddy_protocol::messages::delete_topics_response::DeletableTopicResult;
use eddy_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use eddy_protocol::{ErrorCode, StrBytes, Uuid};

use super::alter_configs::repeated;
use crate::state::{ApiError, Broker};

/// One topic the request asks to delete.
enum Target {
    Name(StrBytes),
    Id(Uuid),
    /// A v6 entry with both a name and an id, or neither.
    Malformed {
        name: Option<StrBytes>,
        id: Uuid,
        reason: &'static str,
    },
}

impl Target {
    fn name(&self) -> Option<&StrBytes> {
        match self {
            Target::Name(name) => Some(name),
            Target::Malformed { name, .. } => name.as_ref(),
            Target::Id(_) => None,
        }
    }

    fn id(&self) -> Uuid {
        match self {
            Target::Id(id) | Target::Malformed { id, .. } => *id,
            Target::Name(_) => Uuid::ZERO,
        }
    }

    /// This target's answer, naming it as the request did.
    fn refused(&self, error: &ApiError) -> DeletableTopicResult {
        result(self.name().cloned(), self.id(), Some(error))
    }
}

pub async fn handle(
    broker: &Broker,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let targets = targets(request);
    let responses = if broker.broker_config().delete_topic_enable() {
        delete_all(broker, &targets).await
    } else {
        let error = deletion_disabled(version);
        targets
            .iter()
            .map(|target| target.refused(&error))
            .collect()
    };
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

/// The request's topics in order; only one of its two lists is filled,
/// depending on the version.
fn targets(request: DeleteTopicsRequest) -> Vec<Target> {
    let by_name = request.topic_names.into_iter().map(Target::Name);
    let v6 = request
        .topics
        .into_iter()
        .map(|topic| match (topic.name, topic.topic_id.is_zero()) {
            (Some(name), true) => Target::Name(name),
            (None, false) => Target::Id(topic.topic_id),
            (name, true) => Target::Malformed {
                name,
                id: topic.topic_id,
                reason: "neither topic name nor id were specified",
            },
            (name, false) => Target::Malformed {
                name,
                id: topic.topic_id,
                reason: "you may not specify both topic name and topic id",
            },
        });
    by_name.chain(v6).collect()
}

fn deletion_disabled(version: i16) -> ApiError {
    let code = if version < 3 {
        ErrorCode::InvalidRequest
    } else {
        ErrorCode::TopicDeletionDisabled
    };
    ApiError::new(
        code,
        "topic deletion is disabled (delete.topic.enable=false)",
    )
}

async fn delete_all(broker: &Broker, targets: &[Target]) -> Vec<DeletableTopicResult> {
    let repeated_names = repeated(targets.iter().filter_map(|target| match target {
        Target::Name(name) => Some(name),
        _ => None,
    }));
    let repeated_ids = repeated(targets.iter().filter_map(|target| match target {
        Target::Id(id) => Some(*id),
        _ => None,
    }));
    let mut answered_names = HashSet::new();
    let mut answered_ids = HashSet::new();
    let mut results = Vec::with_capacity(targets.len());
    for target in targets {
        match target {
            Target::Name(name) if repeated_names.contains(name) => {
                if answered_names.insert(name) {
                    results.push(target.refused(&duplicate("topic name")));
                }
            }
            Target::Id(id) if repeated_ids.contains(id) => {
                if answered_ids.insert(*id) {
                    results.push(target.refused(&duplicate("topic id")));
                }
            }
            _ => results.push(delete_one(broker, target).await),
        }
    }
    results
}

fn duplicate(what: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, format!("duplicate {what}"))
}

async fn delete_one(broker: &Broker, target: &Target) -> DeletableTopicResult {
    match target {
        Target::Name(name) => match broker.delete_topic(name).await {
            Ok(id) => result(Some(name.clone()), id, None),
            Err(error) => target.refused(&error),
        },
        Target::Id(id) => {
            let Some(topic) = broker.topic_by_id(*id) else {
                return target.refused(&ApiError::new(
                    ErrorCode::UnknownTopicId,
                    format!("no topic has id {id}"),
                ));
            };
            let name = Some(StrBytes::from(topic.name.as_str()));
            match broker.delete_topic(&topic.name).await {
                Ok(_) => result(name, *id, None),
                Err(error) => result(name, *id, Some(&error)),
            }
        }
        Target::Malformed { reason, .. } => {
            target.refused(&ApiError::new(ErrorCode::InvalidRequest, *reason))
        }
    }
}

fn result(
    name: Option<StrBytes>,
    topic_id: Uuid,
    error: Option<&ApiError>,
) -> DeletableTopicResult {
    DeletableTopicResult {
        name,
        topic_id,
        error_code: error.map_or(ErrorCode::None.code(), |error| error.code.code()),
        error_message: error.and_then(|error| super::error_message(&error.message)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use eddy_protocol::messages::delete_topics_request::DeleteTopicState;

    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    fn by_names(names: &[&str]) -> DeleteTopicsRequest {
        DeleteTopicsRequest {
            topic_names: names.iter().map(|name| StrBytes::from(*name)).collect(),
            ..Default::default()
        }
    }

    fn by_states(states: &[(Option<&str>, Uuid)]) -> DeleteTopicsRequest {
        DeleteTopicsRequest {
            topics: states
                .iter()
                .map(|(name, id)| DeleteTopicState {
                    name: name.map(StrBytes::from),
                    topic_id: *id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn codes(response: &DeleteTopicsResponse) -> Vec<i16> {
        response
            .responses
            .iter()
            .map(|result| result.error_code)
            .collect()
    }

    #[tokio::test]
    async fn delete_by_name_removes_topic_and_its_data_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 2, &[]).await;
        create_topic(&broker, "audit", 1, &[]).await;
        let id = broker.topic("orders").unwrap().id;
        assert!(dir.path().join("orders-1").is_dir());

        let response = handle(&broker, by_names(&["orders"]), 5).await;
        assert_eq!(codes(&response), [0]);
        assert_eq!(response.responses[0].name.as_deref(), Some("orders"));
        assert_eq!(response.responses[0].topic_id, id);
        assert!(broker.topic("orders").is_none());
        assert!(!dir.path().join("orders-0").exists() && !dir.path().join("orders-1").exists());

        drop(broker);
        let broker = open_broker(&dir, &[]).await;
        assert!(broker.topic("orders").is_none());
        assert!(broker.topic("audit").is_some());
    }

    #[tokio::test]
    async fn delete_by_id_answers_with_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let id = broker.topic("orders").unwrap().id;
        let response = handle(&broker, by_states(&[(None, id)]), 6).await;
        assert_eq!(codes(&response), [0]);
        assert_eq!(response.responses[0].name.as_deref(), Some("orders"));
        assert_eq!(response.responses[0].topic_id, id);
        assert!(broker.topic("orders").is_none());
    }

    #[tokio::test]
    async fn unknown_names_and_ids_are_reported_with_messages() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        let response = handle(
            &broker,
            by_states(&[(Some("missing"), Uuid::ZERO), (None, Uuid::from_u128(7))]),
            6,
        )
        .await;
        assert_eq!(
            codes(&response),
            [
                ErrorCode::UnknownTopicOrPartition.code(),
                ErrorCode::UnknownTopicId.code()
            ]
        );
        assert!(
            response
                .responses
                .iter()
                .all(|result| result.error_message.is_some())
        );
        assert_eq!(response.responses[1].name, None);
        assert_eq!(response.responses[1].topic_id, Uuid::from_u128(7));
    }

    #[tokio::test]
    async fn disabled_deletion_refuses_every_topic() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[("delete.topic.enable", "false")]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = handle(&broker, by_names(&["orders", "missing"]), 5).await;
        let disabled = ErrorCode::TopicDeletionDisabled.code();
        assert_eq!(codes(&response), [disabled, disabled]);
        assert_eq!(
            codes(&handle(&broker, by_names(&["orders"]), 2).await),
            [ErrorCode::InvalidRequest.code()]
        );
        assert!(broker.topic("orders").is_some());
    }

    #[tokio::test]
    async fn repeated_or_ambiguous_entries_are_invalid_and_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        create_topic(&broker, "audit", 1, &[]).await;
        let audit = broker.topic("audit").unwrap().id;
        let response = handle(
            &broker,
            by_states(&[
                (Some("orders"), Uuid::ZERO),
                (Some("orders"), Uuid::ZERO),
                (Some("audit"), audit),
                (None, Uuid::ZERO),
            ]),
            6,
        )
        .await;
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(codes(&response), [invalid, invalid, invalid]);
        assert!(broker.topic("orders").is_some() && broker.topic("audit").is_some());
    }
}
