//! CreateTopics: Kafka's validation of names, partition counts, replication
//! factors (at most the live nodes), manual assignments and configs;
//! `validate_only` checks without creating. The controller places replicas
//! and the topic exists once this node has applied it.

use eddy_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse,
    create_topics_request::CreatableTopic,
    create_topics_response::{CreatableTopicConfigs, CreatableTopicResult},
};
use eddy_protocol::{ErrorCode, StrBytes};

use super::error_message;
use crate::config::{TOPIC_CONFIGS, TopicConfig};
use crate::state::{ApiError, Broker};

/// Kafka's DescribeConfigs source ids used in CreateTopics v5+ answers.
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

pub async fn handle(
    broker: &Broker,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut seen = std::collections::HashSet::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.clone();
        if !seen.insert(name.to_string()) {
            topics.push(failure(
                name,
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "topic named twice in one request",
                ),
            ));
            continue;
        }
        topics.push(match create(broker, &topic, request.validate_only).await {
            Ok((partitions, replication_factor, config, id)) => success(
                broker,
                name,
                (partitions, replication_factor),
                &config,
                id,
                version,
            ),
            Err(error) => failure(name, error),
        });
    }
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

async fn create(
    broker: &Broker,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<(i32, i16, TopicConfig, eddy_protocol::Uuid), ApiError> {
    let defaults = broker.broker_config();
    let assigned = !topic.assignments.is_empty();
    if assigned && (topic.num_partitions != -1 || topic.replication_factor != -1) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "give either assignments or a partition count and replication factor, not both",
        ));
    }
    let image = broker.image();
    for assignment in &topic.assignments {
        if let Some(unknown) = assignment
            .broker_ids
            .iter()
            .find(|id| image.broker(**id).is_none())
        {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "partition {} is assigned to node {unknown}, which is not in the cluster",
                    assignment.partition_index
                ),
            ));
        }
        if assignment.broker_ids.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!("partition {} has no replicas", assignment.partition_index),
            ));
        }
    }
    let partitions = if assigned {
        topic.assignments.len() as i32
    } else if topic.num_partitions == -1 {
        defaults.num_partitions()
    } else {
        topic.num_partitions
    };
    let replication_factor = if assigned {
        topic.assignments[0].broker_ids.len() as i16
    } else if topic.replication_factor == -1 {
        broker.default_replication_factor()
    } else {
        topic.replication_factor
    };
    let pairs: Vec<(&str, &str)> = topic
        .configs
        .iter()
        .filter_map(|config| {
            config
                .value
                .as_ref()
                .map(|value| (config.name.as_str(), value.as_str()))
        })
        .collect();
    let config = TopicConfig::from_pairs(pairs)
        .map_err(|error| ApiError::new(ErrorCode::InvalidConfig, error.to_string()))?;
    let assignments = assigned.then(|| {
        let mut sorted: Vec<_> = topic.assignments.iter().collect();
        sorted.sort_by_key(|assignment| assignment.partition_index);
        sorted
            .into_iter()
            .map(|assignment| assignment.broker_ids.clone())
            .collect()
    });
    broker
        .create_topic(
            &topic.name,
            partitions,
            replication_factor,
            assignments,
            config.clone(),
            validate_only,
        )
        .await?;
    let id = broker
        .image()
        .topic(&topic.name)
        .map_or(eddy_protocol::Uuid::ZERO, |topic| {
            eddy_protocol::Uuid::from_u128(topic.id)
        });
    Ok((partitions, replication_factor, config, id))
}

fn success(
    broker: &Broker,
    name: StrBytes,
    (partitions, replication_factor): (i32, i16),
    config: &TopicConfig,
    topic_id: eddy_protocol::Uuid,
    version: i16,
) -> CreatableTopicResult {
    let defaults = broker.broker_config();
    let configs = (version >= 5).then(|| {
        TOPIC_CONFIGS
            .iter()
            .map(|row| CreatableTopicConfigs {
                name: StrBytes::from(row.name),
                value: config.value(&defaults, row.name).map(StrBytes::from),
                read_only: false,
                config_source: if config.overrides.contains_key(row.name) {
                    SOURCE_TOPIC_CONFIG
                } else {
                    SOURCE_DEFAULT_CONFIG
                },
                is_sensitive: false,
                ..Default::default()
            })
            .collect()
    });
    CreatableTopicResult {
        name,
        topic_id,
        num_partitions: partitions,
        replication_factor,
        configs,
        ..Default::default()
    }
}

fn failure(name: StrBytes, error: ApiError) -> CreatableTopicResult {
    CreatableTopicResult {
        name,
        error_code: error.code.code(),
        error_message: error_message(&error.message),
        num_partitions: -1,
        replication_factor: -1,
        configs: None,
        ..Default::default()
    }
}
