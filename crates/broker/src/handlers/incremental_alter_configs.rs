//! IncrementalAlterConfigs (key 44): changes some of a topic's configs and
//! leaves the rest alone.
//!
//! Kafka's operations: SET (0) overrides a config, DELETE (1) drops the
//! override so the default applies again, APPEND (2) and SUBTRACT (3) add or
//! remove items of a list config (`cleanup.policy`), starting from its
//! effective value when the topic does not override it. Appending to or
//! subtracting from any other type is INVALID_CONFIG, as is an unknown name
//! or a resulting value that does not check. A resource changes all at once
//! or not at all; `validate_only` checks without changing. Repeated
//! resources or keys, null values outside DELETE, and unknown operations are
//! INVALID_REQUEST. On a BROKER resource (the cluster-wide default, or one
//! node) only dynamic broker configs can change (see `alter_configs`).

use std::collections::BTreeMap;

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use eddy_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use eddy_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{
    alter_broker_configs, broker_resource_key, broker_target, check_names_unique, check_no_nulls,
    error_fields, invalid_config, repeated, repeated_resource, target_topic,
};
use super::describe_configs::Resource;
use crate::config::{self, BrokerConfig, ConfigError, ConfigType, TopicConfig};
use crate::state::{ApiError, Broker};

/// Kafka's `AlterConfigOp.OpType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Set,
    Delete,
    Append,
    Subtract,
}

impl Operation {
    fn from_id(id: i8) -> Result<Operation, ApiError> {
        match id {
            0 => Ok(Operation::Set),
            1 => Ok(Operation::Delete),
            2 => Ok(Operation::Append),
            3 => Ok(Operation::Subtract),
            other => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("unknown config operation {other}"),
            )),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::Append => "append to",
            Operation::Subtract => "subtract from",
        }
    }
}

pub async fn handle(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
    IncrementalAlterConfigsResponse {
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
    check_names_unique(resource.configs.iter().map(|change| &*change.name))?;
    check_no_nulls(
        resource
            .configs
            .iter()
            .filter(|change| {
                change.value.is_none()
                    && Operation::from_id(change.config_operation).ok() != Some(Operation::Delete)
            })
            .map(|change| &*change.name),
    )?;
    if Resource::from_id(resource.resource_type)? == Resource::Broker {
        return alter_broker(broker, resource, validate_only).await;
    }
    let Some(topic) = target_topic(broker, resource.resource_type, &resource.resource_name)? else {
        return Ok(());
    };
    let broker_config = broker.broker_config();
    broker
        .update_topic_config(&topic.name, validate_only, |current| {
            let mut overrides = current.overrides.clone();
            for change in &resource.configs {
                apply(change, &mut overrides, &broker_config)?;
            }
            let pairs = overrides
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()));
            TopicConfig::from_pairs(pairs).map_err(invalid_config)
        })
        .await?;
    if !validate_only {
        tracing::info!(topic = topic.name, "altered topic configs");
    }
    Ok(())
}

/// Changes the dynamic configs of a BROKER resource.
async fn alter_broker(
    broker: &Broker,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), ApiError> {
    let target = broker_target(&resource.resource_name)?;
    let current = broker
        .image()
        .broker_configs
        .get(&broker_resource_key(target))
        .cloned()
        .unwrap_or_default();
    let effective = broker.broker_config();
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    for change in &resource.configs {
        let name = change.name.to_string();
        let value = change.value.as_deref().unwrap_or_default();
        match Operation::from_id(change.config_operation)? {
            Operation::Set => {
                set.insert(name, value.trim().to_string());
            }
            Operation::Delete => delete.push(name),
            operation @ (Operation::Append | Operation::Subtract) => {
                let row = config::broker_config(&name)
                    .ok_or_else(|| invalid_config(ConfigError::Unknown(name.clone())))?;
                if row.kind != ConfigType::List {
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!(
                            "cannot {} {name}: it is not a list config",
                            operation.verb()
                        ),
                    ));
                }
                let base = current
                    .get(&name)
                    .cloned()
                    .or_else(|| effective.value(&name).map(str::to_string))
                    .unwrap_or_default();
                let items = edit_list(&base, value, operation == Operation::Append);
                set.insert(name, items);
            }
        }
    }
    alter_broker_configs(broker, target, set, delete, validate_only).await
}

/// Applies one operation to a topic's overrides.
fn apply(
    change: &AlterableConfig,
    overrides: &mut BTreeMap<String, String>,
    broker_config: &BrokerConfig,
) -> Result<(), ApiError> {
    let name = &*change.name;
    let row = config::topic_config(name)
        .ok_or_else(|| invalid_config(ConfigError::Unknown(name.to_string())))?;
    let operation = Operation::from_id(change.config_operation)?;
    // Null values were refused for every operation but DELETE.
    let value = change.value.as_deref().unwrap_or_default();
    match operation {
        Operation::Set => {
            overrides.insert(name.to_string(), value.trim().to_string());
        }
        Operation::Delete => {
            overrides.remove(name);
        }
        Operation::Append | Operation::Subtract => {
            if row.kind != ConfigType::List {
                return Err(ApiError::new(
                    ErrorCode::InvalidConfig,
                    format!(
                        "cannot {} {name}: it is not a list config",
                        operation.verb()
                    ),
                ));
            }
            let current = overrides
                .get(name)
                .cloned()
                .unwrap_or_else(|| broker_config.topic_default(row));
            let items = edit_list(&current, value, operation == Operation::Append);
            overrides.insert(name.to_string(), items);
        }
    }
    Ok(())
}

/// Adds `change`'s items to a comma-separated list (those not already
/// there), or removes them from it.
fn edit_list(current: &str, change: &str, append: bool) -> String {
    let split = |list: &str| -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut items = split(current);
    for item in split(change) {
        if append && !items.contains(&item) {
            items.push(item);
        } else if !append {
            items.retain(|existing| *existing != item);
        }
    }
    items.join(",")
}

#[cfg(test)]
mod tests {
    use eddy_protocol::StrBytes;

    use super::*;
    use crate::handlers::describe_configs::Resource;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker, topic_config_entry};

    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;

    fn topic_resource(name: &str, changes: &[(&str, i8, Option<&str>)]) -> AlterConfigsResource {
        AlterConfigsResource {
            resource_type: Resource::TOPIC_ID,
            resource_name: StrBytes::from(name),
            configs: changes
                .iter()
                .map(|(name, operation, value)| AlterableConfig {
                    name: StrBytes::from(*name),
                    config_operation: *operation,
                    value: value.map(StrBytes::from),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    async fn alter_with(
        broker: &Broker,
        resources: Vec<AlterConfigsResource>,
        validate_only: bool,
    ) -> IncrementalAlterConfigsResponse {
        let request = IncrementalAlterConfigsRequest {
            resources,
            validate_only,
            ..Default::default()
        };
        handle(broker, request).await
    }

    async fn alter(broker: &Broker, topic: &str, changes: &[(&str, i8, Option<&str>)]) -> i16 {
        alter_with(broker, vec![topic_resource(topic, changes)], false)
            .await
            .responses[0]
            .error_code
    }

    fn effective(broker: &Broker, topic: &str, name: &str) -> (Option<String>, i8) {
        let entry = topic_config_entry(broker, topic, name);
        (
            entry.value.as_deref().map(str::to_string),
            entry.config_source,
        )
    }

    #[tokio::test]
    async fn set_shows_as_topic_config_and_delete_reverts_to_default() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        assert_eq!(
            alter(&broker, "orders", &[("retention.ms", SET, Some("60000"))]).await,
            0
        );
        assert_eq!(
            effective(&broker, "orders", "retention.ms"),
            (Some("60000".into()), 1)
        );
        assert_eq!(
            alter(&broker, "orders", &[("retention.ms", DELETE, None)]).await,
            0
        );
        assert_eq!(
            effective(&broker, "orders", "retention.ms"),
            (Some("604800000".into()), 5)
        );
    }

    #[tokio::test]
    async fn altered_configs_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let append = &[("cleanup.policy", APPEND, Some("compact"))];
        assert_eq!(alter(&broker, "orders", append).await, 0);
        drop(broker);
        let broker = open_broker(&dir, &[]).await;
        let policy = effective(&broker, "orders", "cleanup.policy");
        assert_eq!(policy, (Some("delete,compact".into()), 1));
    }

    #[tokio::test]
    async fn set_leaves_other_overrides_alone() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[("segment.bytes", "4096")]).await;
        assert_eq!(
            alter(&broker, "orders", &[("retention.ms", SET, Some("60000"))]).await,
            0
        );
        assert_eq!(
            effective(&broker, "orders", "segment.bytes"),
            (Some("4096".into()), 1)
        );
    }

    #[tokio::test]
    async fn append_and_subtract_edit_list_configs_from_their_effective_value() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        assert_eq!(
            alter(
                &broker,
                "orders",
                &[("cleanup.policy", APPEND, Some("compact"))]
            )
            .await,
            0
        );
        assert_eq!(
            effective(&broker, "orders", "cleanup.policy"),
            (Some("delete,compact".into()), 1)
        );
        assert_eq!(
            alter(
                &broker,
                "orders",
                &[("cleanup.policy", APPEND, Some("compact"))]
            )
            .await,
            0
        );
        assert_eq!(
            effective(&broker, "orders", "cleanup.policy").0.as_deref(),
            Some("delete,compact")
        );
        assert_eq!(
            alter(
                &broker,
                "orders",
                &[("cleanup.policy", SUBTRACT, Some("delete"))]
            )
            .await,
            0
        );
        assert_eq!(
            effective(&broker, "orders", "cleanup.policy").0.as_deref(),
            Some("compact")
        );
    }

    #[tokio::test]
    async fn append_to_a_non_list_config_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let code = alter(&broker, "orders", &[("retention.ms", APPEND, Some("5"))]).await;
        assert_eq!(code, ErrorCode::InvalidConfig.code());
    }

    #[tokio::test]
    async fn invalid_value_or_unknown_name_rejects_the_whole_resource() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = alter_with(
            &broker,
            vec![topic_resource(
                "orders",
                &[
                    ("segment.bytes", SET, Some("4096")),
                    ("cleanup.policy", SET, Some("shred")),
                ],
            )],
            false,
        )
        .await;
        assert_eq!(
            response.responses[0].error_code,
            ErrorCode::InvalidConfig.code()
        );
        let message = response.responses[0].error_message.as_deref().unwrap();
        assert!(message.contains("shred"), "{message}");
        let code = alter(&broker, "orders", &[("retention.msec", SET, Some("1"))]).await;
        assert_eq!(code, ErrorCode::InvalidConfig.code());
        assert_eq!(
            alter(&broker, "orders", &[("retention.msec", DELETE, None)]).await,
            ErrorCode::InvalidConfig.code()
        );
        assert!(
            broker
                .topic("orders")
                .unwrap()
                .config
                .read()
                .unwrap()
                .overrides
                .is_empty()
        );
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = alter_with(
            &broker,
            vec![topic_resource(
                "orders",
                &[("retention.ms", SET, Some("60000"))],
            )],
            true,
        )
        .await;
        assert_eq!(response.responses[0].error_code, 0);
        assert_eq!(
            effective(&broker, "orders", "retention.ms"),
            (Some("604800000".into()), 5)
        );
    }

    #[tokio::test]
    async fn malformed_requests_are_invalid_requests() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(
            alter(&broker, "orders", &[("retention.ms", SET, None)]).await,
            invalid
        );
        assert_eq!(
            alter(&broker, "orders", &[("retention.ms", 9, Some("1"))]).await,
            invalid
        );
        let twice = &[
            ("retention.ms", SET, Some("1")),
            ("retention.ms", DELETE, None),
        ];
        assert_eq!(alter(&broker, "orders", twice).await, invalid);
        let response = alter_with(
            &broker,
            vec![topic_resource("orders", &[]), topic_resource("orders", &[])],
            false,
        )
        .await;
        assert!(
            response
                .responses
                .iter()
                .all(|response| response.error_code == invalid)
        );
        assert_eq!(
            alter(&broker, "missing", &[("retention.ms", SET, Some("1"))]).await,
            ErrorCode::UnknownTopicOrPartition.code()
        );
    }

    #[tokio::test]
    async fn list_edits_skip_blanks_and_duplicates() {
        assert_eq!(
            edit_list("delete", "compact, delete", true),
            "delete,compact"
        );
        assert_eq!(edit_list("delete,compact", "delete", false), "compact");
        assert_eq!(edit_list("", "compact,,", true), "compact");
    }
}
