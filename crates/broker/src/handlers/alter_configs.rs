//! AlterConfigs (key 33): replaces a topic's config overrides, or the
//! dynamic configs of a broker resource, wholesale.
//!
//! Kafka's legacy semantics: the configs listed become the resource's
//! settings and every one not listed reverts to its default. Each resource
//! is checked whole before anything changes (a resource named twice, a
//! config named twice or given a null value: INVALID_REQUEST; an unknown
//! name or a bad value: INVALID_CONFIG), so a refused resource is left as it
//! was; `validate_only` checks without changing.
//!
//! A BROKER resource is the cluster-wide default (empty name) or one node
//! (its id). Only dynamic broker configs ([`config::DYNAMIC_BROKER_CONFIGS`])
//! can be set there; naming a read-only one (the node's identity, listeners,
//! data directory, quorum timings, ...) refuses the resource with
//! INVALID_REQUEST, as Kafka refuses configs it cannot update dynamically.
//! The controller stores them in the cluster metadata and every node applies
//! them as it applies that.
//!
//! The checks shared with IncrementalAlterConfigs live here.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use eddy_protocol::messages::alter_configs_request::AlterConfigsResource;
use eddy_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use eddy_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use eddy_protocol::{ErrorCode, StrBytes};

use super::describe_configs::Resource;
use eddy_metadata::Command;

use crate::config::{self, ConfigError, TopicConfig};
use crate::state::{ApiError, Broker, Topic};

pub async fn handle(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let repeated = repeated(request.resources.iter().map(resource_key));
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let outcome = if repeated.contains(&resource_key(resource)) {
            Err(repeated_resource())
        } else {
            alter_resource(broker, resource, request.validate_only).await
        };
        let (error_code, error_message) = error_fields(outcome);
        responses.push(AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: resource.resource_type,
            resource_name: resource.resource_name.clone(),
            ..Default::default()
        });
    }
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

fn resource_key(resource: &AlterConfigsResource) -> (i8, &str) {
    (resource.resource_type, &resource.resource_name)
}

async fn alter_resource(
    broker: &Broker,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), ApiError> {
    check_names_unique(resource.configs.iter().map(|config| &*config.name))?;
    check_no_nulls(
        resource
            .configs
            .iter()
            .filter(|config| config.value.is_none())
            .map(|config| &*config.name),
    )?;
    if Resource::from_id(resource.resource_type)? == Resource::Broker {
        let target = broker_target(&resource.resource_name)?;
        let set: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|config| {
                let value = config.value.as_deref()?;
                Some((config.name.to_string(), value.trim().to_string()))
            })
            .collect();
        // Everything set at this level and not listed goes back.
        let delete = broker
            .image()
            .broker_configs
            .get(&broker_resource_key(target))
            .map(|current| {
                current
                    .keys()
                    .filter(|name| !set.contains_key(*name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        return alter_broker_configs(broker, target, set, delete, validate_only).await;
    }
    let Some(topic) = target_topic(broker, resource.resource_type, &resource.resource_name)? else {
        return Ok(());
    };
    let pairs = resource
        .configs
        .iter()
        .filter_map(|config| config.value.as_deref().map(|value| (&*config.name, value)));
    let config = TopicConfig::from_pairs(pairs).map_err(invalid_config)?;
    commit(broker, &topic, config, validate_only).await
}

/// The items that occur more than once.
pub(super) fn repeated<T: Eq + Hash>(items: impl IntoIterator<Item = T>) -> HashSet<T> {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for item in items {
        if seen.contains(&item) {
            twice.insert(item);
        } else {
            seen.insert(item);
        }
    }
    twice
}

/// Kafka answers every occurrence of a resource named twice with this.
pub(super) fn repeated_resource() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        "each resource must appear at most once",
    )
}

pub(super) fn check_names_unique<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ApiError> {
    let mut twice: Vec<&str> = repeated(names).into_iter().collect();
    if twice.is_empty() {
        return Ok(());
    }
    twice.sort_unstable();
    Err(ApiError::new(
        ErrorCode::InvalidRequest,
        format!("duplicate config keys: {}", twice.join(", ")),
    ))
}

/// Refuses configs given a null value where one is needed.
pub(super) fn check_no_nulls<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
    let nulls: Vec<&str> = names.into_iter().collect();
    if nulls.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::InvalidRequest,
        format!("null value not supported for: {}", nulls.join(", ")),
    ))
}

/// The topic a TOPIC resource names. BROKER resources are handled before
/// this is asked (see [`alter_broker_configs`]); for one, `None`.
pub(super) fn target_topic(
    broker: &Broker,
    resource_type: i8,
    resource_name: &str,
) -> Result<Option<Arc<Topic>>, ApiError> {
    match Resource::from_id(resource_type)? {
        Resource::Topic => broker.topic(resource_name).map(Some).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic '{resource_name}' does not exist"),
            )
        }),
        Resource::Broker => Ok(None),
    }
}

/// The node a BROKER resource names: `None` for the cluster-wide default
/// (empty name), else the node id. Any node may change any node's dynamic
/// configs: the controller stores them.
pub(super) fn broker_target(resource_name: &str) -> Result<Option<i32>, ApiError> {
    if resource_name.is_empty() {
        return Ok(None);
    }
    match resource_name.parse::<i32>() {
        Ok(id) if id >= 0 => Ok(Some(id)),
        _ => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "broker id must be a non-negative integer or empty, but it is: {resource_name}"
            ),
        )),
    }
}

/// The key of a broker resource's configs in the cluster metadata.
pub(super) fn broker_resource_key(target: Option<i32>) -> String {
    target.map(|id| id.to_string()).unwrap_or_default()
}

/// Sets and deletes dynamic broker configs of `target` (a node, or every
/// node when `None`), all or nothing: a read-only name is INVALID_REQUEST,
/// an unknown name or a bad value INVALID_CONFIG, and then nothing changes.
pub(super) async fn alter_broker_configs(
    broker: &Broker,
    target: Option<i32>,
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    validate_only: bool,
) -> Result<(), ApiError> {
    let names = set.keys().chain(delete.iter());
    if let Some(unknown) = names
        .clone()
        .find(|name| config::broker_config(name).is_none())
    {
        return Err(invalid_config(ConfigError::Unknown(unknown.clone())));
    }
    let mut read_only: Vec<&str> = names
        .filter(|name| !config::is_dynamic(name))
        .map(String::as_str)
        .collect();
    if !read_only.is_empty() {
        read_only.sort_unstable();
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "cannot update these configs dynamically: {}; they are read when the node starts \
                 (set them in its properties file and restart it)",
                read_only.join(", ")
            ),
        ));
    }
    for (name, value) in &set {
        config::validate_dynamic(name, value).map_err(invalid_config)?;
    }
    if validate_only || (set.is_empty() && delete.is_empty()) {
        return Ok(());
    }
    let changed: Vec<String> = set.keys().chain(delete.iter()).cloned().collect();
    broker
        .propose(Command::AlterBrokerConfigs {
            broker: target,
            set,
            delete,
        })
        .await?;
    match target {
        Some(node) => tracing::info!(node, ?changed, "altered a node's dynamic configs"),
        None => tracing::info!(?changed, "altered the cluster-wide dynamic broker configs"),
    }
    Ok(())
}

pub(super) fn invalid_config(error: ConfigError) -> ApiError {
    ApiError::new(ErrorCode::InvalidConfig, error.to_string())
}

/// Replaces the topic's overrides, unless only validating.
pub(super) async fn commit(
    broker: &Broker,
    topic: &Topic,
    config: TopicConfig,
    validate_only: bool,
) -> Result<(), ApiError> {
    if validate_only {
        return Ok(());
    }
    broker.set_topic_config(&topic.name, config).await?;
    tracing::info!(topic = topic.name, "altered topic configs");
    Ok(())
}

/// A resource's outcome as the response's error code and message.
pub(super) fn error_fields(outcome: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (ErrorCode::None.code(), None),
        Err(error) => (error.code.code(), super::error_message(&error.message)),
    }
}

#[cfg(test)]
mod tests {
    use eddy_protocol::messages::alter_configs_request::AlterableConfig;

    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker, topic_config_entry};

    fn topic_resource(name: &str, configs: &[(&str, Option<&str>)]) -> AlterConfigsResource {
        AlterConfigsResource {
            resource_type: Resource::TOPIC_ID,
            resource_name: StrBytes::from(name),
            configs: configs
                .iter()
                .map(|(name, value)| AlterableConfig {
                    name: StrBytes::from(*name),
                    value: value.map(StrBytes::from),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    async fn alter(
        broker: &Broker,
        resources: Vec<AlterConfigsResource>,
        validate_only: bool,
    ) -> Vec<i16> {
        let request = AlterConfigsRequest {
            resources,
            validate_only,
            ..Default::default()
        };
        handle(broker, request)
            .await
            .responses
            .iter()
            .map(|response| response.error_code)
            .collect()
    }

    fn overrides(broker: &Broker, topic: &str) -> Vec<(String, String)> {
        let topic = broker.topic(topic).unwrap();
        let config = topic.config.read().unwrap();
        config.overrides.clone().into_iter().collect()
    }

    #[tokio::test]
    async fn listed_configs_replace_all_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(
            &broker,
            "orders",
            1,
            &[("retention.ms", "1000"), ("cleanup.policy", "compact")],
        )
        .await;
        let codes = alter(
            &broker,
            vec![topic_resource("orders", &[("segment.bytes", Some("4096"))])],
            false,
        )
        .await;
        assert_eq!(codes, [0]);
        assert_eq!(
            overrides(&broker, "orders"),
            [("segment.bytes".to_string(), "4096".to_string())]
        );
        let retention = topic_config_entry(&broker, "orders", "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("604800000"));
        assert_eq!(retention.config_source, 5);
        assert_eq!(
            topic_config_entry(&broker, "orders", "segment.bytes").config_source,
            1
        );
    }

    #[tokio::test]
    async fn bad_value_or_unknown_name_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[("retention.ms", "1000")]).await;
        let before = overrides(&broker, "orders");
        let request = AlterConfigsRequest {
            resources: vec![
                topic_resource(
                    "orders",
                    &[
                        ("segment.bytes", Some("4096")),
                        ("retention.ms", Some("soon")),
                    ],
                ),
                topic_resource("orders-2", &[]),
            ],
            ..Default::default()
        };
        let response = handle(&broker, request).await;
        assert_eq!(
            response.responses[0].error_code,
            ErrorCode::InvalidConfig.code()
        );
        let message = response.responses[0].error_message.as_deref().unwrap();
        assert!(
            message.contains("retention.ms") && message.contains("soon"),
            "{message}"
        );
        assert_eq!(
            response.responses[1].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );

        let codes = alter(
            &broker,
            vec![topic_resource("orders", &[("retention.msec", Some("1"))])],
            false,
        )
        .await;
        assert_eq!(codes, [ErrorCode::InvalidConfig.code()]);
        assert_eq!(overrides(&broker, "orders"), before);
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[("retention.ms", "1000")]).await;
        let codes = alter(
            &broker,
            vec![topic_resource("orders", &[("segment.bytes", Some("4096"))])],
            true,
        )
        .await;
        assert_eq!(codes, [0]);
        assert_eq!(
            overrides(&broker, "orders"),
            [("retention.ms".to_string(), "1000".to_string())]
        );
    }

    #[tokio::test]
    async fn repeated_resources_keys_and_null_values_are_invalid_requests() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        create_topic(&broker, "audit", 1, &[]).await;
        let codes = alter(
            &broker,
            vec![
                topic_resource("orders", &[("retention.ms", Some("1"))]),
                topic_resource("orders", &[]),
                topic_resource(
                    "audit",
                    &[("retention.ms", Some("1")), ("retention.ms", Some("2"))],
                ),
            ],
            false,
        )
        .await;
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(codes, [invalid, invalid, invalid]);
        let codes = alter(
            &broker,
            vec![topic_resource("audit", &[("retention.ms", None)])],
            false,
        )
        .await;
        assert_eq!(codes, [invalid]);
        assert!(overrides(&broker, "orders").is_empty() && overrides(&broker, "audit").is_empty());
    }

    #[tokio::test]
    async fn read_only_broker_configs_are_refused_and_other_resource_types_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        let mut read_only = topic_resource(
            "1",
            &[("num.partitions", Some("3")), ("node.id", Some("4"))],
        );
        read_only.resource_type = Resource::BROKER_ID;
        let mut logger = topic_resource("1", &[]);
        logger.resource_type = 8;
        let response = handle(
            &broker,
            AlterConfigsRequest {
                resources: vec![read_only, logger],
                ..Default::default()
            },
        )
        .await;
        let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
        assert_eq!(
            codes,
            [
                ErrorCode::InvalidRequest.code(),
                ErrorCode::InvalidRequest.code()
            ]
        );
        let message = response.responses[0].error_message.as_deref().unwrap();
        assert!(message.contains("node.id"), "{message}");
        assert_eq!(broker.broker_config().num_partitions(), 1);
    }

    #[tokio::test]
    async fn dynamic_broker_configs_replace_those_set_at_the_same_level() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        let mut default = topic_resource(
            "",
            &[
                ("num.partitions", Some("3")),
                ("log.retention.ms", Some("1000")),
            ],
        );
        default.resource_type = Resource::BROKER_ID;
        assert_eq!(alter(&broker, vec![default], false).await, [0]);
        assert_eq!(broker.broker_config().num_partitions(), 3);
        let mut node = topic_resource("1", &[("num.partitions", Some("5"))]);
        node.resource_type = Resource::BROKER_ID;
        assert_eq!(alter(&broker, vec![node], true).await, [0]);
        assert_eq!(broker.broker_config().num_partitions(), 3);
        let mut node = topic_resource("1", &[("num.partitions", Some("5"))]);
        node.resource_type = Resource::BROKER_ID;
        assert_eq!(alter(&broker, vec![node], false).await, [0]);
        assert_eq!(broker.broker_config().num_partitions(), 5);
        // Listing only num.partitions at the default level drops retention.
        let mut default = topic_resource("", &[("num.partitions", Some("2"))]);
        default.resource_type = Resource::BROKER_ID;
        assert_eq!(alter(&broker, vec![default], false).await, [0]);
        assert_eq!(
            broker.broker_config().value("log.retention.ms"),
            Some("604800000")
        );
        assert_eq!(broker.broker_config().num_partitions(), 5);
        let mut bad = topic_resource("", &[("num.partitions", Some("0"))]);
        bad.resource_type = Resource::BROKER_ID;
        assert_eq!(
            alter(&broker, vec![bad], false).await,
            [ErrorCode::InvalidConfig.code()]
        );
    }
}
