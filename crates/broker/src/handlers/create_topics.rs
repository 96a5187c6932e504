//! CreateTopics: Kafka's validation of names, partition counts, replication
//! factors (at most the number of brokers: one), manual assignments and
//! configs; `validate_only` checks without creating.

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

pub fn handle(broker: &Broker, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut seen = std::collections::HashSet::new();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.clone();
            if !seen.insert(name.to_string()) {
                return failure(
                    name,
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        "topic named twice in one request",
                    ),
                );
            }
            match create(broker, &topic, request.validate_only) {
                Ok((partitions, config, id)) => {
                    success(broker, name, partitions, &config, id, version)
                }
                Err(error) => failure(name, error),
            }
        })
        .collect();
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

fn create(
    broker: &Broker,
    topic: &CreatableTopic,
    validate_only: bool,
) -> Result<(i32, TopicConfig, eddy_protocol::Uuid), ApiError> {
    let defaults = broker.broker_config();
    let assigned = !topic.assignments.is_empty();
    if assigned && (topic.num_partitions != -1 || topic.replication_factor != -1) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "give either assignments or a partition count and replication factor, not both",
        ));
    }
    for assignment in &topic.assignments {
        if assignment.broker_ids.iter().any(|id| *id != broker.node_id)
            || assignment.broker_ids.is_empty()
        {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "partition {} is assigned to brokers {:?}; only broker {} exists",
                    assignment.partition_index, assignment.broker_ids, broker.node_id
                ),
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
    let replication_factor = if topic.replication_factor == -1 {
        defaults.default_replication_factor()
    } else {
        topic.replication_factor
    };
    if !assigned && replication_factor != 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication factor {replication_factor} is impossible with 1 available broker"
            ),
        ));
    }
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
    let created = broker.create_topic(&topic.name, partitions, config.clone(), validate_only)?;
    let id = created.map_or(eddy_protocol::Uuid::ZERO, |topic| topic.id);
    Ok((partitions, config, id))
}

fn success(
    broker: &Broker,
    name: StrBytes,
    partitions: i32,
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
        replication_factor: 1,
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
