//! DescribeConfigs (key 32): a topic's or this node's configs, each with its
//! effective value and where that value comes from.
//!
//! Follows Kafka's `ConfigHelper.describeConfigs`. A TOPIC resource lists
//! every topic config; a value's source is the first of its synonyms: the
//! topic's own override (TOPIC_CONFIG), the broker synonym set in the node's
//! properties (STATIC_BROKER_CONFIG), or Kafka's default (DEFAULT_CONFIG),
//! with the broker synonym's dynamic values first when set: for this node
//! (DYNAMIC_BROKER_CONFIG), then for every node (DYNAMIC_DEFAULT_BROKER_CONFIG).
//! A BROKER resource named by this node's id lists every broker config with
//! the same order of sources; the dynamic ones are writable, the others
//! read-only. The empty name (the cluster-wide dynamic defaults) lists the
//! defaults that are set, as Kafka does. `configuration_keys` null or empty
//! means all; names this node
//! does not know are left out rather than refused. Synonyms and documentation
//! are sent only when asked for.
//!
//! The resource-type and broker-name checks here are shared with AlterConfigs
//! and IncrementalAlterConfigs.

use std::path::Path;

use eddy_protocol::messages::describe_configs_request::DescribeConfigsResource;
use eddy_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use eddy_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use eddy_protocol::{ErrorCode, StrBytes};

use crate::config::{
    self, BROKER_CONFIGS, BrokerConfig, BrokerConfigSource, ConfigDef, ConfigType, TOPIC_CONFIGS,
    TopicConfig,
};
use crate::state::{ApiError, Broker, validate_topic_name};

/// The kinds of config resource this node has, with Kafka's
/// `ConfigResource.Type` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resource {
    Topic,
    Broker,
}

impl Resource {
    pub(super) const TOPIC_ID: i8 = 2;
    pub(super) const BROKER_ID: i8 = 4;

    pub(super) fn from_id(id: i8) -> Result<Resource, ApiError> {
        match id {
            Self::TOPIC_ID => Ok(Resource::Topic),
            Self::BROKER_ID => Ok(Resource::Broker),
            other => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "unsupported resource type {other}; this node has topic ({}) and broker ({}) configs",
                    Self::TOPIC_ID,
                    Self::BROKER_ID
                ),
            )),
        }
    }
}

/// Kafka's `DescribeConfigsResponse.ConfigSource` ids that Eddy reports.
mod source {
    pub const TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Checks a BROKER resource name: empty (cluster-wide defaults) or this
/// node's id. Returns whether it names this node.
pub(super) fn names_this_node(broker: &Broker, resource_name: &str) -> Result<bool, ApiError> {
    if resource_name.is_empty() {
        return Ok(false);
    }
    let id: i32 = resource_name.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("broker id must be an integer, but it is: {resource_name}"),
        )
    })?;
    if id != broker.node_id {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "unexpected broker id, expected {} or empty string, but received {id}",
                broker.node_id
            ),
        ));
    }
    Ok(true)
}

/// What the request asked to be included with each config.
#[derive(Debug, Clone, Copy)]
struct Detail {
    synonyms: bool,
    documentation: bool,
}

pub fn handle(
    broker: &Broker,
    request: DescribeConfigsRequest,
    _version: i16,
) -> DescribeConfigsResponse {
    // Fields a version lacks (documentation and type before v3) are left
    // out by the encoder, so every version is answered the same way.
    let detail = Detail {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let results = request
        .resources
        .iter()
        .map(|resource| describe_resource(broker, resource, detail))
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

fn describe_resource(
    broker: &Broker,
    resource: &DescribeConfigsResource,
    detail: Detail,
) -> DescribeConfigsResult {
    let described = Resource::from_id(resource.resource_type).and_then(|kind| match kind {
        Resource::Topic => describe_topic(broker, &resource.resource_name, detail),
        Resource::Broker => describe_broker(broker, &resource.resource_name, detail),
    });
    let (error_code, error_message, configs) = match described {
        Ok(configs) => {
            let wanted = |entry: &DescribeConfigsResourceResult| is_wanted(resource, &entry.name);
            (
                ErrorCode::None.code(),
                None,
                configs.into_iter().filter(wanted).collect(),
            )
        }
        Err(error) => (
            error.code.code(),
            super::error_message(&error.message),
            Vec::new(),
        ),
    };
    DescribeConfigsResult {
        error_code,
        error_message,
        resource_type: resource.resource_type,
        resource_name: resource.resource_name.clone(),
        configs,
        ..Default::default()
    }
}

/// Null or empty `configuration_keys` means every config.
fn is_wanted(resource: &DescribeConfigsResource, name: &str) -> bool {
    match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|key| &**key == name),
        _ => true,
    }
}

fn describe_topic(
    broker: &Broker,
    name: &str,
    detail: Detail,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    validate_topic_name(name)?;
    let topic = broker.topic(name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let topic_config = topic
        .config
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let broker_config = broker.broker_config();
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|row| topic_entry(row, &topic_config, &broker_config, detail))
        .collect())
}

fn describe_broker(
    broker: &Broker,
    resource_name: &str,
    detail: Detail,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
    let broker_config = broker.broker_config();
    if !names_this_node(broker, resource_name)? {
        // The cluster-wide dynamic defaults that are set, and only those.
        return Ok(BROKER_CONFIGS
            .iter()
            .filter_map(|row| {
                let value = broker_config.value_at(row.name, BrokerConfigSource::DynamicDefault)?;
                let synonyms = vec![synonym(
                    row.name,
                    Some(value.to_string()),
                    source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                )];
                Some(entry(row, Some(value.to_string()), synonyms, false, detail))
            })
            .collect());
    }
    Ok(BROKER_CONFIGS
        .iter()
        .map(|row| broker_entry(row, &broker_config, detail))
        .collect())
}

fn topic_entry(
    row: &ConfigDef,
    topic_config: &TopicConfig,
    broker_config: &BrokerConfig,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let mut synonyms = Vec::new();
    if let Some(value) = topic_config.overrides.get(row.name) {
        synonyms.push(synonym(row.name, Some(value.clone()), source::TOPIC_CONFIG));
    }
    if let Some(broker_name) = row.broker_synonym {
        synonyms.extend(broker_synonyms(broker_name, broker_config));
    }
    let value = topic_config.value(broker_config, row.name);
    entry(row, value, synonyms, false, detail)
}

fn broker_entry(
    row: &ConfigDef,
    broker_config: &BrokerConfig,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let synonyms = broker_synonyms(row.name, broker_config);
    let value = synonyms
        .first()
        .and_then(|first| first.value.as_deref().map(str::to_string));
    entry(row, value, synonyms, !config::is_dynamic(row.name), detail)
}

/// The broker-level values of `name`, most important first: set
/// dynamically for this node, for every node, in the node's properties, then
/// Kafka's default (when it has one).
fn broker_synonyms(name: &str, broker_config: &BrokerConfig) -> Vec<DescribeConfigsSynonym> {
    let mut synonyms = Vec::new();
    for (level, id) in [
        (
            BrokerConfigSource::DynamicNode,
            source::DYNAMIC_BROKER_CONFIG,
        ),
        (
            BrokerConfigSource::DynamicDefault,
            source::DYNAMIC_DEFAULT_BROKER_CONFIG,
        ),
    ] {
        if let Some(value) = broker_config.value_at(name, level) {
            synonyms.push(synonym(name, Some(value.to_string()), id));
        }
    }
    let set = fixed_value(broker_config, name).or_else(|| {
        broker_config
            .value_at(name, BrokerConfigSource::Static)
            .map(str::to_string)
    });
    if let Some(value) = set {
        synonyms.push(synonym(name, Some(value), source::STATIC_BROKER_CONFIG));
    }
    if let Some(row) = config::broker_config(name).filter(|row| !row.default.is_empty()) {
        synonyms.push(synonym(
            name,
            Some(row.default.to_string()),
            source::DEFAULT_CONFIG,
        ));
    }
    synonyms
}

/// Configs that come from the node's command line, which [`BrokerConfig`]
/// keeps in fields rather than among its overrides.
fn fixed_value(broker_config: &BrokerConfig, name: &str) -> Option<String> {
    match name {
        "node.id" => Some(broker_config.node_id.to_string()),
        "listeners" => Some(format!("PLAINTEXT://{}", broker_config.listen)),
        "advertised.listeners" => broker_config
            .advertised
            .as_ref()
            .map(|(host, port)| format!("PLAINTEXT://{host}:{port}")),
        "log.dirs" => Some(absolute_path(&broker_config.data_dir)),
        _ => None,
    }
}

/// The data directory as clients should see it: absolute when it can be.
pub(super) fn absolute_path(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn synonym(name: &str, value: Option<String>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym {
        name: StrBytes::from(name),
        value: value.map(StrBytes::from),
        source,
        ..Default::default()
    }
}

/// One config's answer. Its source is that of its first synonym, as in Kafka.
fn entry(
    row: &ConfigDef,
    value: Option<String>,
    synonyms: Vec<DescribeConfigsSynonym>,
    read_only: bool,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let config_source = synonyms
        .first()
        .map_or(source::DEFAULT_CONFIG, |first| first.source);
    DescribeConfigsResourceResult {
        name: StrBytes::from(row.name),
        value: value.map(StrBytes::from),
        read_only,
        is_default: config_source == source::DEFAULT_CONFIG,
        config_source,
        is_sensitive: false,
        synonyms: if detail.synonyms {
            synonyms
        } else {
            Vec::new()
        },
        config_type: wire_type(row.kind),
        documentation: detail.documentation.then(|| StrBytes::from(row.doc)),
        ..Default::default()
    }
}

/// Kafka's `DescribeConfigsResponse.ConfigType` id for a config's type.
fn wire_type(kind: ConfigType) -> i8 {
    match kind {
        ConfigType::Boolean => 1,
        ConfigType::String => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::List => 7,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    /// A node on a fresh data directory, with broker configs set first.
    pub(in crate::handlers) async fn open_broker(
        dir: &tempfile::TempDir,
        settings: &[(&str, &str)],
    ) -> std::sync::Arc<Broker> {
        let mut config =
            BrokerConfig::new(1, "127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        for (name, value) in settings {
            config.set(name, value).unwrap();
        }
        Broker::start(config).await.unwrap()
    }

    pub(in crate::handlers) async fn create_topic(
        broker: &Broker,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) {
        let config = TopicConfig::from_pairs(configs.iter().copied()).unwrap();
        broker
            .create_topic(name, partitions, 1, None, config, false)
            .await
            .unwrap();
    }

    fn resource(resource_type: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
        DescribeConfigsResource {
            resource_type,
            resource_name: StrBytes::from(name),
            configuration_keys: keys
                .map(|keys| keys.iter().map(|key| StrBytes::from(*key)).collect()),
            ..Default::default()
        }
    }

    fn describe(
        broker: &Broker,
        resources: Vec<DescribeConfigsResource>,
    ) -> DescribeConfigsResponse {
        let request = DescribeConfigsRequest {
            resources,
            include_synonyms: true,
            include_documentation: true,
            ..Default::default()
        };
        handle(broker, request, 4)
    }

    /// The one config named `name` of a topic, described with synonyms.
    pub(in crate::handlers) fn topic_config_entry(
        broker: &Broker,
        topic: &str,
        name: &str,
    ) -> DescribeConfigsResourceResult {
        let response = describe(
            broker,
            vec![resource(Resource::TOPIC_ID, topic, Some(&[name]))],
        );
        let result = &response.results[0];
        assert_eq!(result.error_code, 0, "{:?}", result.error_message);
        assert_eq!(result.configs.len(), 1, "{name}");
        result.configs[0].clone()
    }

    #[tokio::test]
    async fn topic_lists_every_topic_config_with_effective_values() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = describe(&broker, vec![resource(Resource::TOPIC_ID, "orders", None)]);
        let result = &response.results[0];
        assert_eq!(result.error_code, 0);
        let names: Vec<&str> = result.configs.iter().map(|entry| &*entry.name).collect();
        let expected: Vec<&str> = TOPIC_CONFIGS.iter().map(|row| row.name).collect();
        assert_eq!(names, expected);
        let retention = result
            .configs
            .iter()
            .find(|entry| &*entry.name == "retention.ms")
            .unwrap();
        assert_eq!(retention.value.as_deref(), Some("604800000"));
        assert_eq!(retention.config_source, source::DEFAULT_CONFIG);
        assert_eq!(retention.config_type, 5);
        assert!(!retention.read_only);
        assert_eq!(
            retention.documentation.as_deref(),
            Some("Age past which old segments go.")
        );
        let synonyms: Vec<(&str, i8)> = retention
            .synonyms
            .iter()
            .map(|s| (&*s.name, s.source))
            .collect();
        assert_eq!(synonyms, [("log.retention.ms", source::DEFAULT_CONFIG)]);
    }

    #[tokio::test]
    async fn topic_override_comes_before_broker_setting_and_default() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[("log.retention.ms", "1000")]).await;
        create_topic(&broker, "orders", 1, &[("retention.ms", "5000")]).await;
        create_topic(&broker, "plain", 1, &[]).await;

        let overridden = topic_config_entry(&broker, "orders", "retention.ms");
        assert_eq!(overridden.value.as_deref(), Some("5000"));
        assert_eq!(overridden.config_source, source::TOPIC_CONFIG);
        let synonyms: Vec<(&str, Option<&str>, i8)> = overridden
            .synonyms
            .iter()
            .map(|s| (&*s.name, s.value.as_deref(), s.source))
            .collect();
        assert_eq!(
            synonyms,
            [
                ("retention.ms", Some("5000"), source::TOPIC_CONFIG),
                (
                    "log.retention.ms",
                    Some("1000"),
                    source::STATIC_BROKER_CONFIG
                ),
                (
                    "log.retention.ms",
                    Some("604800000"),
                    source::DEFAULT_CONFIG
                ),
            ]
        );

        let inherited = topic_config_entry(&broker, "plain", "retention.ms");
        assert_eq!(inherited.value.as_deref(), Some("1000"));
        assert_eq!(inherited.config_source, source::STATIC_BROKER_CONFIG);
    }

    #[tokio::test]
    async fn only_named_keys_are_listed_and_unknown_names_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let keys: &[&str] = &["cleanup.policy", "no.such.config"];
        let response = describe(
            &broker,
            vec![resource(Resource::TOPIC_ID, "orders", Some(keys))],
        );
        let result = &response.results[0];
        assert_eq!(result.error_code, 0);
        assert_eq!(result.configs.len(), 1);
        assert_eq!(&*result.configs[0].name, "cleanup.policy");
        assert_eq!(result.configs[0].config_type, 7);
    }

    #[tokio::test]
    async fn synonyms_and_documentation_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let request = DescribeConfigsRequest {
            resources: vec![resource(Resource::TOPIC_ID, "orders", None)],
            ..Default::default()
        };
        let response = handle(&broker, request, 4);
        let configs = &response.results[0].configs;
        assert!(!configs.is_empty());
        assert!(
            configs
                .iter()
                .all(|entry| entry.synonyms.is_empty() && entry.documentation.is_none())
        );
    }

    #[tokio::test]
    async fn unknown_topic_and_bad_resources_are_errors_per_resource() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let response = describe(
            &broker,
            vec![
                resource(Resource::TOPIC_ID, "missing", None),
                resource(8, "1", None),
                resource(Resource::BROKER_ID, "7", None),
                resource(Resource::BROKER_ID, "one", None),
                resource(Resource::TOPIC_ID, "orders", Some(&["retention.ms"])),
            ],
        );
        let codes: Vec<i16> = response
            .results
            .iter()
            .map(|result| result.error_code)
            .collect();
        assert_eq!(
            codes,
            [
                ErrorCode::UnknownTopicOrPartition.code(),
                ErrorCode::InvalidRequest.code(),
                ErrorCode::InvalidRequest.code(),
                ErrorCode::InvalidRequest.code(),
                ErrorCode::None.code(),
            ]
        );
        assert!(
            response.results[0]
                .error_message
                .as_deref()
                .unwrap()
                .contains("missing")
        );
        assert!(
            response.results[..4]
                .iter()
                .all(|result| result.configs.is_empty())
        );
        assert_eq!(&*response.results[1].resource_name, "1");
        assert_eq!(response.results[1].resource_type, 8);
    }

    #[tokio::test]
    async fn this_node_lists_broker_configs_read_only_with_their_sources() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[("num.partitions", "3")]).await;
        let response = describe(&broker, vec![resource(Resource::BROKER_ID, "1", None)]);
        let result = &response.results[0];
        assert_eq!(result.error_code, 0);
        assert_eq!(result.configs.len(), BROKER_CONFIGS.len());
        assert!(
            result
                .configs
                .iter()
                .all(|entry| entry.read_only != config::is_dynamic(&entry.name))
        );
        let find = |name: &str| {
            result
                .configs
                .iter()
                .find(|entry| &*entry.name == name)
                .unwrap()
        };
        assert_eq!(find("num.partitions").value.as_deref(), Some("3"));
        assert_eq!(
            find("num.partitions").config_source,
            source::STATIC_BROKER_CONFIG
        );
        assert_eq!(find("num.partitions").synonyms.len(), 2);
        assert_eq!(find("delete.topic.enable").value.as_deref(), Some("true"));
        assert_eq!(
            find("delete.topic.enable").config_source,
            source::DEFAULT_CONFIG
        );
        assert_eq!(find("delete.topic.enable").config_type, 1);
        assert_eq!(find("node.id").value.as_deref(), Some("1"));
        assert_eq!(
            find("log.dirs").value.as_deref(),
            Some(absolute_path(dir.path()).as_str())
        );
        assert_eq!(find("advertised.listeners").value, None);
    }

    #[tokio::test]
    async fn dynamic_broker_configs_show_their_sources_node_first() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[("log.retention.ms", "1000")]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        broker
            .propose(eddy_metadata::Command::AlterBrokerConfigs {
                broker: None,
                set: [("log.retention.ms".to_string(), "2000".to_string())].into(),
                delete: Vec::new(),
            })
            .await
            .unwrap();
        let inherited = topic_config_entry(&broker, "orders", "retention.ms");
        assert_eq!(inherited.value.as_deref(), Some("2000"));
        assert_eq!(
            inherited.config_source,
            source::DYNAMIC_DEFAULT_BROKER_CONFIG
        );
        let partition = broker.topic("orders").unwrap().partition(0).unwrap();
        assert_eq!(partition.log.lock().unwrap().config().retention_ms, 2000);
        broker
            .propose(eddy_metadata::Command::AlterBrokerConfigs {
                broker: Some(1),
                set: [("log.retention.ms".to_string(), "3000".to_string())].into(),
                delete: Vec::new(),
            })
            .await
            .unwrap();
        let response = describe(
            &broker,
            vec![
                resource(Resource::BROKER_ID, "1", Some(&["log.retention.ms"])),
                resource(Resource::BROKER_ID, "", None),
            ],
        );
        let node = &response.results[0].configs[0];
        assert_eq!(node.value.as_deref(), Some("3000"));
        assert_eq!(node.config_source, source::DYNAMIC_BROKER_CONFIG);
        assert!(!node.read_only);
        let sources: Vec<i8> = node.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            [
                source::DYNAMIC_BROKER_CONFIG,
                source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                source::STATIC_BROKER_CONFIG,
                source::DEFAULT_CONFIG
            ]
        );
        let defaults = &response.results[1].configs;
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].value.as_deref(), Some("2000"));
        assert_eq!(
            defaults[0].config_source,
            source::DYNAMIC_DEFAULT_BROKER_CONFIG
        );
        assert_eq!(
            topic_config_entry(&broker, "orders", "retention.ms")
                .value
                .as_deref(),
            Some("3000")
        );
    }

    #[tokio::test]
    async fn cluster_default_broker_resource_lists_no_dynamic_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        let response = describe(&broker, vec![resource(Resource::BROKER_ID, "", None)]);
        assert_eq!(response.results[0].error_code, 0);
        assert!(response.results[0].configs.is_empty());
    }
}
