//! Topic administration on [`Client`]: create and delete topics, add
//! partitions, read and change topic configs. Requests that change the
//! cluster's metadata go to the active controller (any node of a KRaft
//! cluster forwards them, older ones insist); config reads go to any node.

use std::collections::BTreeMap;

use eddy_protocol::ApiKey;
use eddy_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use eddy_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use eddy_protocol::messages::delete_topics_request::DeleteTopicState;
use eddy_protocol::messages::describe_configs_request::DescribeConfigsResource;
use eddy_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use eddy_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use serde::Serialize;

use crate::client::{Client, RetryKind};
use crate::error::{ClientError, KafkaFailure, check};

/// DescribeConfigs' and IncrementalAlterConfigs' resource type for a topic.
const TOPIC_RESOURCE: i8 = 2;
/// IncrementalAlterConfigs operations.
const SET_CONFIG: i8 = 0;
const DELETE_CONFIG: i8 = 1;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTopic {
    pub name: String,
    /// -1 takes the cluster's `num.partitions`.
    pub partitions: i32,
    /// -1 takes the cluster's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs by Kafka name (`retention.ms`, `cleanup.policy`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions, the cluster's default
    /// replication factor and no configs.
    pub fn new(name: impl Into<String>, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: BTreeMap::new(),
        }
    }
}

/// One topic config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for a sensitive value or one without a value.
    pub value: Option<String>,
    /// Where the value comes from: `topic` (set on the topic), `broker`,
    /// `broker_default`, `static_broker`, `default` (Kafka's built-in), or
    /// `unknown`.
    pub source: String,
    pub read_only: bool,
    pub sensitive: bool,
}

impl Client {
    /// Creates `topics`; the answer says, per topic name, whether it was
    /// created or which Kafka error refused it.
    pub async fn create_topics(
        &mut self,
        topics: &[NewTopic],
    ) -> Result<BTreeMap<String, Result<(), KafkaFailure>>, ClientError> {
        let request = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|topic| CreatableTopic {
                    name: topic.name.as_str().into(),
                    num_partitions: topic.partitions,
                    replication_factor: topic.replication_factor,
                    configs: topic
                        .configs
                        .iter()
                        .map(|(name, value)| CreatableTopicConfig {
                            name: name.as_str().into(),
                            value: Some(value.as_str().into()),
                            ..CreatableTopicConfig::default()
                        })
                        .collect(),
                    ..CreatableTopic::default()
                })
                .collect(),
            timeout_ms: self.node_timeout_ms(),
            ..CreateTopicsRequest::default()
        };
        let response = self
            .call_controller(request, |address, response: CreateTopicsResponse| {
                let codes = response.topics.iter().map(|topic| topic.error_code);
                refuse_if_not_controller(address, ApiKey::CreateTopics, codes)?;
                Ok(response)
            })
            .await?;
        Ok(response
            .topics
            .iter()
            .map(|topic| {
                let outcome = KafkaFailure::check(topic.error_code, topic.error_message.as_deref());
                (topic.name.to_string(), outcome)
            })
            .collect())
    }

    /// Deletes topics by name; the answer says, per topic, whether it went.
    pub async fn delete_topics(
        &mut self,
        names: &[String],
    ) -> Result<BTreeMap<String, Result<(), KafkaFailure>>, ClientError> {
        let request = DeleteTopicsRequest {
            // Version 6 and later name topics in `topics`; earlier ones in
            // `topic_names`. Each version encodes only its own field.
            topics: names
                .iter()
                .map(|name| DeleteTopicState {
                    name: Some(name.as_str().into()),
                    ..DeleteTopicState::default()
                })
                .collect(),
            topic_names: names.iter().map(|name| name.as_str().into()).collect(),
            timeout_ms: self.node_timeout_ms(),
            ..DeleteTopicsRequest::default()
        };
        let response = self
            .call_controller(request, |address, response: DeleteTopicsResponse| {
                let codes = response.responses.iter().map(|topic| topic.error_code);
                refuse_if_not_controller(address, ApiKey::DeleteTopics, codes)?;
                Ok(response)
            })
            .await?;
        for name in names {
            self.forget_route(name);
        }
        Ok(response
            .responses
            .iter()
            .map(|topic| {
                let name = topic.name.as_ref().map(ToString::to_string);
                let outcome = KafkaFailure::check(topic.error_code, topic.error_message.as_deref());
                (name.unwrap_or_default(), outcome)
            })
            .collect())
    }

    /// Grows `topic` to `total_partitions` partitions.
    pub async fn create_partitions(
        &mut self,
        topic: &str,
        total_partitions: i32,
    ) -> Result<(), ClientError> {
        let request = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.into(),
                count: total_partitions,
                assignments: None,
                ..CreatePartitionsTopic::default()
            }],
            timeout_ms: self.node_timeout_ms(),
            validate_only: false,
            ..CreatePartitionsRequest::default()
        };
        self.call_controller(request, |address, response: CreatePartitionsResponse| {
            for result in &response.results {
                check(
                    address,
                    ApiKey::CreatePartitions,
                    result.error_code,
                    result.error_message.as_deref(),
                )?;
            }
            Ok(())
        })
        .await?;
        self.forget_route(topic);
        Ok(())
    }

    /// Every config of `topic` with its value and where the value comes from.
    pub async fn describe_topic_configs(
        &mut self,
        topic: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let request = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: TOPIC_RESOURCE,
                resource_name: topic.into(),
                configuration_keys: None,
                ..DescribeConfigsResource::default()
            }],
            include_synonyms: false,
            include_documentation: false,
            ..DescribeConfigsRequest::default()
        };
        let answer = |address: &str, response: DescribeConfigsResponse| {
            let result = response
                .results
                .iter()
                .find(|result| result.resource_name.as_str() == topic)
                .ok_or_else(|| ClientError::Protocol {
                    address: address.to_string(),
                    api: ApiKey::DescribeConfigs.name(),
                    reason: format!("the response does not mention topic {topic}"),
                })?;
            check(
                address,
                ApiKey::DescribeConfigs,
                result.error_code,
                result.error_message.as_deref(),
            )?;
            Ok(result
                .configs
                .iter()
                .map(|config| ConfigEntry {
                    name: config.name.to_string(),
                    value: config.value.as_ref().map(ToString::to_string),
                    source: config_source(config.config_source, config.is_default).to_string(),
                    read_only: config.read_only,
                    sensitive: config.is_sensitive,
                })
                .collect())
        };
        self.call_any(RetryKind::Read, request, answer).await
    }

    /// Sets the configs in `set` on `topic` and removes those in `delete`
    /// (back to the cluster's default), leaving the others as they are.
    pub async fn alter_topic_configs(
        &mut self,
        topic: &str,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    ) -> Result<(), ClientError> {
        let settings = set.into_iter().map(|(name, value)| AlterableConfig {
            name: name.into(),
            config_operation: SET_CONFIG,
            value: Some(value.into()),
            ..AlterableConfig::default()
        });
        let removals = delete.into_iter().map(|name| AlterableConfig {
            name: name.into(),
            config_operation: DELETE_CONFIG,
            value: None,
            ..AlterableConfig::default()
        });
        let request = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: TOPIC_RESOURCE,
                resource_name: topic.into(),
                configs: settings.chain(removals).collect(),
                ..AlterConfigsResource::default()
            }],
            validate_only: false,
            ..IncrementalAlterConfigsRequest::default()
        };
        let answer = |address: &str, response: IncrementalAlterConfigsResponse| {
            for result in &response.responses {
                check(
                    address,
                    ApiKey::IncrementalAlterConfigs,
                    result.error_code,
                    result.error_message.as_deref(),
                )?;
            }
            Ok(())
        };
        self.call_any(RetryKind::Write, request, answer).await
    }

    /// The request timeout sent to nodes for work they do on our behalf.
    pub(crate) fn node_timeout_ms(&self) -> i32 {
        i32::try_from(self.node_timeout().as_millis()).unwrap_or(i32::MAX)
    }
}

/// NOT_CONTROLLER for any item means the request went to the wrong node:
/// an error, so that the caller asks again where the controller now is.
fn refuse_if_not_controller(
    address: &str,
    key: ApiKey,
    mut codes: impl Iterator<Item = i16>,
) -> Result<(), ClientError> {
    let not_controller = eddy_protocol::ErrorCode::NotController.code();
    match codes.find(|code| *code == not_controller) {
        Some(code) => check(address, key, code, None),
        None => Ok(()),
    }
}

/// Kafka's `ConfigSource` as a word; version 0 has only `IsDefault`.
fn config_source(source: i8, is_default: bool) -> &'static str {
    match source {
        1 => "topic",
        2 => "broker",
        3 => "broker_default",
        4 => "static_broker",
        5 => "default",
        6 => "broker_logger",
        7 => "client_metrics",
        8 => "group",
        -1 if is_default => "default",
        -1 => "topic",
        _ => "unknown",
    }
}
