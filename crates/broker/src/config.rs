//! Broker and topic configuration with Kafka's names, meanings and defaults.
//!
//! Each config a node understands is a row of [`BROKER_CONFIGS`] or
//! [`TOPIC_CONFIGS`]; DescribeConfigs lists those rows, AlterConfigs checks
//! against them, and the typed accessors read them. A broker config file is a
//! Java properties file (`key=value` lines, `#` comments), as Kafka's
//! `server.properties`. Topic configs default to their broker-level
//! counterpart (`retention.ms` ← `log.retention.ms`), as in Kafka.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use eddy_log::LogConfig;

/// How a config's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Int,
    Long,
    Double,
    String,
    List,
}

/// One known config.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// For topic configs: the broker config whose value is the default.
    pub broker_synonym: Option<&'static str>,
    /// Allowed values, when the set is closed.
    pub choices: &'static [&'static str],
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        default,
        broker_synonym: None,
        choices: &[],
        doc,
    }
}

const fn topic(
    name: &'static str,
    kind: ConfigType,
    broker_synonym: &'static str,
    choices: &'static [&'static str],
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        default: "",
        broker_synonym: Some(broker_synonym),
        choices,
        doc,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Broker configs a node understands, with Kafka's defaults except where a
/// laptop wants smaller numbers (noted in the doc).
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    def("node.id", Int, "1", "This node's id."),
    def(
        "listeners",
        Str,
        "PLAINTEXT://127.0.0.1:19092",
        "Where clients connect.",
    ),
    def(
        "advertised.listeners",
        Str,
        "",
        "Address given to clients in Metadata; defaults to listeners.",
    ),
    def("log.dirs", Str, "", "The data directory."),
    def(
        "auto.create.topics.enable",
        Boolean,
        "true",
        "Create a topic on first Metadata or Produce request.",
    ),
    def(
        "num.partitions",
        Int,
        "1",
        "Partitions of an auto-created topic, or of CreateTopics with -1.",
    ),
    def(
        "default.replication.factor",
        Int,
        "1",
        "Replication factor of auto-created topics.",
    ),
    def(
        "message.max.bytes",
        Int,
        "1048588",
        "Largest record batch a topic accepts (topic: max.message.bytes).",
    ),
    def(
        "socket.request.max.bytes",
        Int,
        "104857600",
        "Largest request frame; a bigger one closes the connection.",
    ),
    def(
        "max.connections",
        Int,
        "1000",
        "Open client connections at most (Kafka: unlimited; a laptop wants a bound).",
    ),
    def(
        "delete.topic.enable",
        Boolean,
        "true",
        "Whether DeleteTopics may delete.",
    ),
    def(
        "log.segment.bytes",
        Int,
        "1073741824",
        "Roll a segment at this size.",
    ),
    def(
        "log.roll.ms",
        Long,
        "604800000",
        "Roll a segment at this age.",
    ),
    def(
        "log.retention.ms",
        Long,
        "604800000",
        "Delete segments older than this (-1: keep).",
    ),
    def(
        "log.retention.bytes",
        Long,
        "-1",
        "Delete old segments past this partition size (-1: no limit).",
    ),
    def(
        "log.retention.check.interval.ms",
        Long,
        "300000",
        "How often retention runs.",
    ),
    def(
        "log.flush.interval.messages",
        Long,
        "9223372036854775807",
        "fsync after this many records.",
    ),
    def(
        "log.flush.interval.ms",
        Long,
        "9223372036854775807",
        "fsync after this long.",
    ),
    def(
        "log.index.interval.bytes",
        Int,
        "4096",
        "Bytes between offset index entries.",
    ),
    def(
        "log.message.timestamp.type",
        Str,
        "CreateTime",
        "CreateTime or LogAppendTime.",
    ),
    def(
        "log.cleanup.policy",
        List,
        "delete",
        "delete, compact, or both.",
    ),
    def(
        "log.cleaner.delete.retention.ms",
        Long,
        "86400000",
        "How long tombstones stay in compacted topics.",
    ),
    def(
        "log.cleaner.min.cleanable.ratio",
        Double,
        "0.5",
        "Share of dirty bytes that makes a compacted log due for cleaning.",
    ),
    def(
        "min.insync.replicas",
        Int,
        "2",
        "Replicas that must have a record before acks=all succeeds; unset, min(2, the topic's replication factor) (Kafka: 1).",
    ),
    def(
        "broker.heartbeat.interval.ms",
        Int,
        "300",
        "How often a node heartbeats to the controller (Kafka: 2000).",
    ),
    def(
        "broker.session.timeout.ms",
        Int,
        "2000",
        "A node silent this long is fenced and its partitions get new leaders (Kafka: 9000).",
    ),
    def(
        "broker.disconnect.fence.ms",
        Int,
        "200",
        "A node whose controller connection closed is fenced if it has not reconnected after this long (its process is gone).",
    ),
    def(
        "controller.quorum.election.timeout.ms",
        Int,
        "400",
        "Metadata quorum election timeout: a follower that stops hearing from the controller stands after between this and twice this, once the old controller's lease (twice this) has run out (Kafka: 1000).",
    ),
    def(
        "replica.lag.time.max.ms",
        Long,
        "5000",
        "A follower that has not caught up for this long leaves the ISR (Kafka: 30000).",
    ),
    def(
        "replica.fetch.wait.max.ms",
        Int,
        "500",
        "Longest a follower's fetch waits at the leader for new records.",
    ),
    def(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        "Elect an out-of-sync replica when no in-sync one is alive.",
    ),
    def(
        "compression.type",
        Str,
        "producer",
        "Keep the producer's codec, or recompress.",
    ),
    def(
        "offsets.topic.num.partitions",
        Int,
        "50",
        "Partitions of __consumer_offsets (fixed once created).",
    ),
    def(
        "log.cleaner.backoff.ms",
        Long,
        "5000",
        "How often the cleaner looks for compacted partitions due for a pass (Kafka: 15000).",
    ),
    def(
        "group.min.session.timeout.ms",
        Int,
        "1000",
        "Shortest session a group member may ask for (Kafka: 6000; a laptop demo wants quick failover).",
    ),
    def(
        "group.max.session.timeout.ms",
        Int,
        "1800000",
        "Longest session a group member may ask for.",
    ),
    def(
        "group.initial.rebalance.delay.ms",
        Int,
        "300",
        "How long a new group waits for more members before its first generation (Kafka: 3000).",
    ),
    def(
        "offsets.topic.replication.factor",
        Int,
        "3",
        "Replication factor of __consumer_offsets (fewer when fewer nodes are alive when it is created).",
    ),
    def(
        "auto.leader.rebalance.enable",
        Boolean,
        "true",
        "Give partitions back to their preferred leader (the first replica) when it is in sync again.",
    ),
    def(
        "leader.imbalance.check.interval.seconds",
        Long,
        "5",
        "How often the controller checks for partitions not led by their preferred leader (Kafka: 300).",
    ),
    def(
        "leader.imbalance.per.broker.percentage",
        Int,
        "10",
        "Share of a node's preferred partitions led elsewhere that triggers a rebalance.",
    ),
    def(
        "leader.replication.throttled.rate",
        Long,
        "9223372036854775807",
        "Bytes per second a leader sends to followers of throttled replicas (leader.replication.throttled.replicas).",
    ),
    def(
        "follower.replication.throttled.rate",
        Long,
        "9223372036854775807",
        "Bytes per second a follower fetches for throttled replicas (follower.replication.throttled.replicas).",
    ),
];

/// Topic configs, each defaulting to a broker config.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    topic(
        "cleanup.policy",
        List,
        "log.cleanup.policy",
        &["delete", "compact"],
        "delete, compact, or both.",
    ),
    topic(
        "compression.type",
        Str,
        "compression.type",
        &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"],
        "Codec kept on disk.",
    ),
    topic(
        "delete.retention.ms",
        Long,
        "log.cleaner.delete.retention.ms",
        &[],
        "How long tombstones stay.",
    ),
    topic(
        "flush.messages",
        Long,
        "log.flush.interval.messages",
        &[],
        "fsync after this many records.",
    ),
    topic(
        "flush.ms",
        Long,
        "log.flush.interval.ms",
        &[],
        "fsync after this long.",
    ),
    topic(
        "index.interval.bytes",
        Int,
        "log.index.interval.bytes",
        &[],
        "Bytes between offset index entries.",
    ),
    topic(
        "max.message.bytes",
        Int,
        "message.max.bytes",
        &[],
        "Largest record batch accepted.",
    ),
    topic(
        "message.timestamp.type",
        Str,
        "log.message.timestamp.type",
        &["CreateTime", "LogAppendTime"],
        "Which timestamp records keep.",
    ),
    topic(
        "min.cleanable.dirty.ratio",
        Double,
        "log.cleaner.min.cleanable.ratio",
        &[],
        "Dirty share that triggers compaction.",
    ),
    topic(
        "min.insync.replicas",
        Int,
        "min.insync.replicas",
        &[],
        "Replicas needed for acks=all.",
    ),
    topic(
        "retention.bytes",
        Long,
        "log.retention.bytes",
        &[],
        "Partition size past which old segments go.",
    ),
    topic(
        "retention.ms",
        Long,
        "log.retention.ms",
        &[],
        "Age past which old segments go.",
    ),
    topic(
        "segment.bytes",
        Int,
        "log.segment.bytes",
        &[],
        "Roll a segment at this size.",
    ),
    topic(
        "segment.ms",
        Long,
        "log.roll.ms",
        &[],
        "Roll a segment at this age.",
    ),
    topic(
        "unclean.leader.election.enable",
        Boolean,
        "unclean.leader.election.enable",
        &[],
        "Elect out-of-sync replicas.",
    ),
    ConfigDef {
        name: "leader.replication.throttled.replicas",
        kind: List,
        default: "",
        broker_synonym: None,
        choices: &[],
        doc: "Replicas (PARTITION:NODE list, or *) whose leader side is throttled by the leader's leader.replication.throttled.rate.",
    },
    ConfigDef {
        name: "follower.replication.throttled.replicas",
        kind: List,
        default: "",
        broker_synonym: None,
        choices: &[],
        doc: "Replicas (PARTITION:NODE list, or *) whose follower fetches are throttled by that node's follower.replication.throttled.rate.",
    },
];

/// Broker configs that can change while the cluster runs (IncrementalAlterConfigs
/// or AlterConfigs on a BROKER resource: the cluster-wide default or one node).
/// Every node reads these when it uses them. The others (the node's identity,
/// listeners and data directory, the metadata quorum's timings, the sizes of
/// internal topics, ...) are read once at start and come only from the
/// node's properties file.
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[
    "auto.create.topics.enable",
    "num.partitions",
    "default.replication.factor",
    "message.max.bytes",
    "log.segment.bytes",
    "log.roll.ms",
    "log.retention.ms",
    "log.retention.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "log.message.timestamp.type",
    "log.cleanup.policy",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.cleanable.ratio",
    "min.insync.replicas",
    "replica.lag.time.max.ms",
    "replica.fetch.wait.max.ms",
    "unclean.leader.election.enable",
    "compression.type",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// Whether broker config `name` can change while the cluster runs.
pub fn is_dynamic(name: &str) -> bool {
    DYNAMIC_BROKER_CONFIGS.contains(&name)
}

/// Checks a dynamic broker config value: its type and choices, and the
/// range that makes sense for it (a topic needs at least one partition, ...).
pub fn validate_dynamic(name: &str, value: &str) -> Result<(), ConfigError> {
    let row = broker_config(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    validate(row, value)?;
    let choices: &[&str] = match name {
        "log.cleanup.policy" => &["delete", "compact"],
        "log.message.timestamp.type" => &["CreateTime", "LogAppendTime"],
        "compression.type" => &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"],
        _ => &[],
    };
    let trimmed = value.trim();
    let invalid = |reason: String| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    if !choices.is_empty()
        && let Some(bad) = trimmed
            .split(',')
            .map(str::trim)
            .find(|item| !choices.contains(item))
    {
        return Err(invalid(format!(
            "{bad} is not one of {}",
            choices.join(", ")
        )));
    }
    let (min, max): (i64, i64) = match name {
        "num.partitions" => (1, 10_000),
        "default.replication.factor" => (1, i64::from(i16::MAX)),
        "min.insync.replicas" => (1, i64::from(i32::MAX)),
        "message.max.bytes" | "replica.fetch.wait.max.ms" => (0, i64::from(i32::MAX)),
        "log.segment.bytes" | "log.index.interval.bytes" => (14, i64::from(i32::MAX)),
        "log.roll.ms" | "replica.lag.time.max.ms" | "leader.imbalance.check.interval.seconds" => {
            (1, i64::MAX)
        }
        "log.retention.ms" | "log.retention.bytes" => (-1, i64::MAX),
        "log.flush.interval.messages" | "log.flush.interval.ms" => (1, i64::MAX),
        "log.cleaner.delete.retention.ms"
        | "leader.replication.throttled.rate"
        | "follower.replication.throttled.rate" => (0, i64::MAX),
        "leader.imbalance.per.broker.percentage" => (0, 100),
        _ => return Ok(()),
    };
    match trimmed.parse::<i64>() {
        Ok(number) if (min..=max).contains(&number) => Ok(()),
        Ok(_) if max == i64::MAX => Err(invalid(format!("must be at least {min}"))),
        Ok(_) => Err(invalid(format!("must be between {min} and {max}"))),
        Err(_) => Err(invalid("expected an integer".to_string())),
    }
}

/// Where a broker config's effective value comes from, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerConfigSource {
    /// Set dynamically for this node.
    DynamicNode,
    /// Set dynamically as the cluster-wide default.
    DynamicDefault,
    /// Set in the node's properties file or command line.
    Static,
    /// Kafka's default.
    Default,
}

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config {0}")]
    Unknown(String),
    #[error("invalid value {value:?} for {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("{path}: line {line}: {reason}")]
    File {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Finds a broker config row.
pub fn broker_config(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|row| row.name == name)
}

/// Finds a topic config row.
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|row| row.name == name)
}

/// Checks `value` against a row's type and choices.
pub fn validate(row: &ConfigDef, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: row.name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = value.trim();
    match row.kind {
        Boolean if !matches!(trimmed.to_ascii_lowercase().as_str(), "true" | "false") => {
            return Err(invalid("expected true or false"));
        }
        Int if trimmed.parse::<i32>().is_err() => return Err(invalid("expected a 32-bit integer")),
        Long if trimmed.parse::<i64>().is_err() => {
            return Err(invalid("expected a 64-bit integer"));
        }
        Double if trimmed.parse::<f64>().is_err() => return Err(invalid("expected a number")),
        _ => {}
    }
    if row.name.ends_with(".replication.throttled.replicas")
        && let Some(bad) = trimmed.split(',').map(str::trim).find(|entry| {
            !entry.is_empty()
                && *entry != "*"
                && !entry.split_once(':').is_some_and(|(partition, node)| {
                    partition.trim().parse::<i32>().is_ok() && node.trim().parse::<i32>().is_ok()
                })
        })
    {
        return Err(invalid(&format!(
            "{bad} is not PARTITION:NODE (e.g. 0:3) or *"
        )));
    }
    if !row.choices.is_empty() {
        let items: Vec<&str> = if row.kind == List {
            trimmed.split(',').map(str::trim).collect()
        } else {
            vec![trimmed]
        };
        if let Some(bad) = items.iter().find(|item| !row.choices.contains(item)) {
            return Err(invalid(&format!(
                "{bad} is not one of {}",
                row.choices.join(", ")
            )));
        }
    }
    Ok(())
}

/// A node's configuration: Kafka's broker configs by name, plus where it
/// listens and keeps its data.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listen: SocketAddr,
    /// Host and port given to clients; `None` means the listening address.
    pub advertised: Option<(String, u16)>,
    pub data_dir: PathBuf,
    /// Where the controller listener binds; `None`: the client port + 100.
    pub controller_listen: Option<SocketAddr>,
    /// The metadata quorum's voters (node id to controller address); empty
    /// means a one-node cluster of this node alone.
    pub voters: BTreeMap<i32, String>,
    /// Values set by the user (file or command line); others take defaults.
    overrides: BTreeMap<String, String>,
    /// Dynamic configs set for every node (the cluster-wide default), from
    /// the cluster metadata; they win over `overrides`.
    dynamic_default: BTreeMap<String, String>,
    /// Dynamic configs set for this node; they win over everything.
    dynamic_node: BTreeMap<String, String>,
}

impl BrokerConfig {
    pub fn new(node_id: i32, listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            node_id,
            listen,
            advertised: None,
            data_dir,
            controller_listen: None,
            voters: BTreeMap::new(),
            overrides: BTreeMap::new(),
            dynamic_default: BTreeMap::new(),
            dynamic_node: BTreeMap::new(),
        }
    }

    /// This configuration with the dynamic configs of the cluster metadata
    /// laid over it: `default` for every node, then `node` for this one.
    /// Names that are not dynamic and values that do not check are ignored
    /// (the node that accepted them checked them already).
    pub fn with_dynamic(
        &self,
        default: Option<&BTreeMap<String, String>>,
        node: Option<&BTreeMap<String, String>>,
    ) -> BrokerConfig {
        let usable = |configs: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
            configs
                .into_iter()
                .flatten()
                .filter(|(name, value)| validate_dynamic(name, value).is_ok() && is_dynamic(name))
                .map(|(name, value)| (name.clone(), value.trim().to_string()))
                .collect()
        };
        BrokerConfig {
            dynamic_default: usable(default),
            dynamic_node: usable(node),
            ..self.clone()
        }
    }

    /// Whether the dynamic layers differ from `other`'s.
    pub fn dynamic_differs(&self, other: &BrokerConfig) -> bool {
        self.dynamic_default != other.dynamic_default || self.dynamic_node != other.dynamic_node
    }

    /// Where `name`'s effective value comes from.
    pub fn source(&self, name: &str) -> BrokerConfigSource {
        if self.dynamic_node.contains_key(name) {
            BrokerConfigSource::DynamicNode
        } else if self.dynamic_default.contains_key(name) {
            BrokerConfigSource::DynamicDefault
        } else if self.overrides.contains_key(name) {
            BrokerConfigSource::Static
        } else {
            BrokerConfigSource::Default
        }
    }

    /// The value of `name` set at `source`, if it is set there.
    pub fn value_at(&self, name: &str, source: BrokerConfigSource) -> Option<&str> {
        match source {
            BrokerConfigSource::DynamicNode => self.dynamic_node.get(name).map(String::as_str),
            BrokerConfigSource::DynamicDefault => {
                self.dynamic_default.get(name).map(String::as_str)
            }
            BrokerConfigSource::Static => self.overrides.get(name).map(String::as_str),
            BrokerConfigSource::Default => broker_config(name).map(|row| row.default),
        }
    }

    /// Sets a broker config by its Kafka name after checking it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let row = broker_config(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        validate(row, value)?;
        self.overrides
            .insert(name.to_string(), value.trim().to_string());
        Ok(())
    }

    /// Reads a Java properties file of broker configs. Keys this node does
    /// not know are refused, so a typo never silently does nothing.
    pub fn load_properties(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::File {
            path: path.display().to_string(),
            line: 0,
            reason: error.to_string(),
        })?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                return Err(ConfigError::File {
                    path: path.display().to_string(),
                    line: index + 1,
                    reason: format!("expected key=value, found {line:?}"),
                });
            };
            self.set(key.trim(), value)
                .map_err(|error| ConfigError::File {
                    path: path.display().to_string(),
                    line: index + 1,
                    reason: error.to_string(),
                })?;
        }
        Ok(())
    }

    /// The value of a broker config: set dynamically for this node, as the
    /// cluster-wide default, in the properties file, or Kafka's default.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.dynamic_node
            .get(name)
            .or_else(|| self.dynamic_default.get(name))
            .or_else(|| self.overrides.get(name))
            .map(String::as_str)
            .or_else(|| broker_config(name).map(|row| row.default))
    }

    /// Whether the user set this config, statically or dynamically.
    pub fn is_overridden(&self, name: &str) -> bool {
        self.source(name) != BrokerConfigSource::Default
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str, fallback: T) -> T {
        self.value(name)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(fallback)
    }

    pub fn auto_create_topics(&self) -> bool {
        self.parsed("auto.create.topics.enable", true)
    }

    pub fn num_partitions(&self) -> i32 {
        self.parsed("num.partitions", 1)
    }

    pub fn default_replication_factor(&self) -> i16 {
        self.parsed("default.replication.factor", 1)
    }

    pub fn socket_request_max_bytes(&self) -> usize {
        self.parsed("socket.request.max.bytes", 104_857_600)
    }

    pub fn max_connections(&self) -> usize {
        self.parsed("max.connections", 1000)
    }

    pub fn delete_topic_enable(&self) -> bool {
        self.parsed("delete.topic.enable", true)
    }

    pub fn cleaner_backoff_ms(&self) -> u64 {
        self.parsed("log.cleaner.backoff.ms", 5000)
    }

    pub fn offsets_topic_partitions(&self) -> i32 {
        self.parsed("offsets.topic.num.partitions", 50)
    }

    pub fn group_min_session_timeout_ms(&self) -> i32 {
        self.parsed("group.min.session.timeout.ms", 1000)
    }

    pub fn group_max_session_timeout_ms(&self) -> i32 {
        self.parsed("group.max.session.timeout.ms", 1_800_000)
    }

    pub fn group_initial_rebalance_delay_ms(&self) -> u64 {
        self.parsed("group.initial.rebalance.delay.ms", 300)
    }

    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.parsed("broker.heartbeat.interval.ms", 300)
    }

    pub fn session_timeout_ms(&self) -> u64 {
        self.parsed("broker.session.timeout.ms", 2000)
    }

    pub fn disconnect_fence_ms(&self) -> u64 {
        self.parsed("broker.disconnect.fence.ms", 200)
    }

    pub fn election_timeout_ms(&self) -> u64 {
        self.parsed("controller.quorum.election.timeout.ms", 400)
    }

    pub fn replica_lag_time_max_ms(&self) -> i64 {
        self.parsed("replica.lag.time.max.ms", 5000)
    }

    pub fn replica_fetch_wait_max_ms(&self) -> i32 {
        self.parsed("replica.fetch.wait.max.ms", 500)
    }

    pub fn unclean_leader_election(&self) -> bool {
        self.parsed("unclean.leader.election.enable", false)
    }

    pub fn auto_leader_rebalance(&self) -> bool {
        self.parsed("auto.leader.rebalance.enable", true)
    }

    pub fn leader_imbalance_check_interval_ms(&self) -> u64 {
        self.parsed::<u64>("leader.imbalance.check.interval.seconds", 5)
            .saturating_mul(1000)
    }

    pub fn leader_imbalance_per_broker_percentage(&self) -> u32 {
        self.parsed("leader.imbalance.per.broker.percentage", 10)
    }

    /// Bytes per second this node, as a leader, sends for throttled replicas;
    /// `None` when unlimited.
    pub fn leader_replication_throttled_rate(&self) -> Option<u64> {
        throttle_rate(self.parsed("leader.replication.throttled.rate", i64::MAX))
    }

    /// Bytes per second this node, as a follower, fetches for throttled
    /// replicas; `None` when unlimited.
    pub fn follower_replication_throttled_rate(&self) -> Option<u64> {
        throttle_rate(self.parsed("follower.replication.throttled.rate", i64::MAX))
    }

    pub fn offsets_topic_replication_factor(&self) -> i16 {
        self.parsed("offsets.topic.replication.factor", 3)
    }

    pub fn retention_check_interval_ms(&self) -> u64 {
        self.parsed("log.retention.check.interval.ms", 300_000)
    }

    /// The host and port clients are told to use.
    pub fn advertised_endpoint(&self) -> (String, u16) {
        self.advertised
            .clone()
            .unwrap_or_else(|| (self.listen.ip().to_string(), self.listen.port()))
    }

    /// The value a topic config takes when the topic does not set it.
    pub fn topic_default(&self, row: &ConfigDef) -> String {
        row.broker_synonym
            .and_then(|synonym| self.value(synonym))
            .unwrap_or(row.default)
            .to_string()
    }
}

/// A throttle rate as configured: `Long.MAX_VALUE` (Kafka's default) means
/// none; a negative value is treated as none too.
fn throttle_rate(value: i64) -> Option<u64> {
    (0..i64::MAX).contains(&value).then_some(value as u64)
}

/// Whether a `*.replication.throttled.replicas` value lists `partition` on
/// `node` (`PARTITION:NODE` entries, or `*` for every replica).
pub fn throttled_replica(list: &str, partition: i32, node: i32) -> bool {
    list.split(',').map(str::trim).any(|entry| {
        entry == "*"
            || entry.split_once(':').is_some_and(|(p, n)| {
                p.trim().parse() == Ok(partition) && n.trim().parse() == Ok(node)
            })
    })
}

/// A topic's effective configuration: its overrides over the broker's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    pub overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Checks and collects topic config overrides.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut overrides = BTreeMap::new();
        for (name, value) in pairs {
            let row = topic_config(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
            validate(row, value)?;
            overrides.insert(name.to_string(), value.trim().to_string());
        }
        Ok(Self { overrides })
    }

    /// The effective value of a topic config.
    pub fn value(&self, broker: &BrokerConfig, name: &str) -> Option<String> {
        if let Some(value) = self.overrides.get(name) {
            return Some(value.clone());
        }
        topic_config(name).map(|row| broker.topic_default(row))
    }

    fn parsed<T: std::str::FromStr>(&self, broker: &BrokerConfig, name: &str, fallback: T) -> T {
        self.value(broker, name)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(fallback)
    }

    pub fn max_message_bytes(&self, broker: &BrokerConfig) -> usize {
        self.parsed(broker, "max.message.bytes", 1_048_588)
    }

    /// In-sync replicas acks=all needs: the topic's or the broker's
    /// setting, or when neither is set, min(2, the replication factor).
    pub fn min_insync_replicas(&self, broker: &BrokerConfig, replication_factor: usize) -> usize {
        let explicit = self
            .overrides
            .get("min.insync.replicas")
            .map(String::as_str)
            .or_else(|| {
                broker
                    .is_overridden("min.insync.replicas")
                    .then(|| broker.value("min.insync.replicas"))
                    .flatten()
            })
            .and_then(|value| value.trim().parse::<usize>().ok());
        explicit.unwrap_or_else(|| replication_factor.min(2))
    }

    pub fn unclean_leader_election(&self, broker: &BrokerConfig) -> bool {
        self.parsed(broker, "unclean.leader.election.enable", false)
    }

    /// Whether replica `node` of `partition` is throttled on the leader side.
    pub fn leader_throttled(&self, partition: i32, node: i32) -> bool {
        self.overrides
            .get("leader.replication.throttled.replicas")
            .is_some_and(|list| throttled_replica(list, partition, node))
    }

    /// Whether replica `node` of `partition` is throttled on the follower side.
    pub fn follower_throttled(&self, partition: i32, node: i32) -> bool {
        self.overrides
            .get("follower.replication.throttled.replicas")
            .is_some_and(|list| throttled_replica(list, partition, node))
    }

    pub fn log_append_time(&self, broker: &BrokerConfig) -> bool {
        self.value(broker, "message.timestamp.type").as_deref() == Some("LogAppendTime")
    }

    /// The storage settings of this topic's partitions.
    pub fn log_config(&self, broker: &BrokerConfig) -> LogConfig {
        let never = u64::MAX;
        let flush = |name: &str| -> u64 {
            match self.parsed::<i64>(broker, name, i64::MAX) {
                value if value < 0 || value == i64::MAX => never,
                value => value as u64,
            }
        };
        let policy = self
            .value(broker, "cleanup.policy")
            .unwrap_or_else(|| "delete".to_string());
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        LogConfig {
            segment_bytes: self.parsed(broker, "segment.bytes", 1_073_741_824u64),
            segment_ms: self.parsed(broker, "segment.ms", 604_800_000),
            retention_ms: self.parsed(broker, "retention.ms", 604_800_000),
            retention_bytes: self.parsed(broker, "retention.bytes", -1),
            flush_messages: flush("flush.messages"),
            flush_ms: flush("flush.ms"),
            index_interval_bytes: self.parsed(broker, "index.interval.bytes", 4096),
            message_timestamp_type_log_append_time: self.log_append_time(broker),
            cleanup_policy_delete: policies.contains(&"delete"),
            cleanup_policy_compact: policies.contains(&"compact"),
            delete_retention_ms: self.parsed(broker, "delete.retention.ms", 86_400_000),
            min_cleanable_dirty_ratio: self.parsed(broker, "min.cleanable.dirty.ratio", 0.5),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn throttled_replicas_are_partition_node_pairs_or_a_wildcard() {
        assert!(throttled_replica("0:3, 1:2", 0, 3));
        assert!(throttled_replica("0:3,1:2", 1, 2));
        assert!(!throttled_replica("0:3,1:2", 1, 3));
        assert!(throttled_replica("*", 7, 1));
        assert!(!throttled_replica("", 0, 1));
        let row = topic_config("follower.replication.throttled.replicas").expect("known");
        assert!(validate(row, "0:1,2:3").is_ok());
        assert!(validate(row, "*").is_ok());
        assert!(validate(row, "").is_ok());
        assert!(validate(row, "0-1").is_err());
        assert!(validate(row, "a:1").is_err());
    }

    use super::*;

    fn broker() -> BrokerConfig {
        BrokerConfig::new(
            1,
            "127.0.0.1:19092".parse().unwrap(),
            PathBuf::from("/tmp/eddy"),
        )
    }

    #[test]
    fn cleanup_policy_and_compaction_configs_reach_the_log_config() {
        let broker = broker();
        let defaults = TopicConfig::default().log_config(&broker);
        assert!(defaults.cleanup_policy_delete && !defaults.cleanup_policy_compact);
        assert_eq!(defaults.delete_retention_ms, 86_400_000);
        assert_eq!(defaults.min_cleanable_dirty_ratio, 0.5);
        let topic = TopicConfig::from_pairs([
            ("cleanup.policy", "compact, delete"),
            ("delete.retention.ms", "1000"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ])
        .unwrap();
        let config = topic.log_config(&broker);
        assert!(config.cleanup_policy_delete && config.cleanup_policy_compact);
        assert_eq!(config.delete_retention_ms, 1000);
        assert_eq!(config.min_cleanable_dirty_ratio, 0.1);
    }

    #[test]
    fn topic_configs_default_to_their_broker_synonyms() {
        let mut broker = broker();
        broker.set("log.retention.ms", "1000").unwrap();
        let topic = TopicConfig::default();
        assert_eq!(
            topic.value(&broker, "retention.ms").as_deref(),
            Some("1000")
        );
        assert_eq!(
            topic.value(&broker, "cleanup.policy").as_deref(),
            Some("delete")
        );
        assert_eq!(topic.max_message_bytes(&broker), 1_048_588);
    }

    #[test]
    fn bad_values_and_unknown_names_are_refused() {
        assert!(matches!(
            TopicConfig::from_pairs([("retention.ms", "soon")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            TopicConfig::from_pairs([("cleanup.policy", "compact,shred")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(
            TopicConfig::from_pairs([("retention.msec", "1")]),
            Err(ConfigError::Unknown("retention.msec".into()))
        );
        assert!(TopicConfig::from_pairs([("cleanup.policy", "compact, delete")]).is_ok());
        assert!(broker().set("num.partitions", "many").is_err());
    }

    #[test]
    fn dynamic_configs_win_over_static_ones_node_first() {
        let mut config = broker();
        config.set("num.partitions", "2").unwrap();
        config.set("log.retention.ms", "1000").unwrap();
        let default = BTreeMap::from([
            ("num.partitions".to_string(), "3".to_string()),
            ("min.insync.replicas".to_string(), "1".to_string()),
            // Not dynamic, or not valid: ignored.
            ("node.id".to_string(), "9".to_string()),
            ("log.retention.bytes".to_string(), "lots".to_string()),
        ]);
        let node = BTreeMap::from([("num.partitions".to_string(), "4".to_string())]);
        let dynamic = config.with_dynamic(Some(&default), Some(&node));
        assert_eq!(dynamic.num_partitions(), 4);
        assert_eq!(
            dynamic.source("num.partitions"),
            BrokerConfigSource::DynamicNode
        );
        assert_eq!(
            dynamic.value_at("num.partitions", BrokerConfigSource::DynamicDefault),
            Some("3")
        );
        assert_eq!(
            dynamic.source("min.insync.replicas"),
            BrokerConfigSource::DynamicDefault
        );
        assert!(dynamic.is_overridden("min.insync.replicas"));
        assert_eq!(
            dynamic.source("log.retention.ms"),
            BrokerConfigSource::Static
        );
        assert_eq!(dynamic.source("node.id"), BrokerConfigSource::Default);
        assert_eq!(dynamic.value("log.retention.bytes"), Some("-1"));
        assert!(dynamic.dynamic_differs(&config));
        let without = dynamic.with_dynamic(None, None);
        assert_eq!(without.num_partitions(), 2);
        assert!(!without.dynamic_differs(&config));
    }

    #[test]
    fn dynamic_values_are_checked_for_range_and_choices() {
        assert!(validate_dynamic("num.partitions", "3").is_ok());
        assert!(validate_dynamic("num.partitions", "0").is_err());
        assert!(validate_dynamic("num.partitions", "many").is_err());
        assert!(validate_dynamic("leader.imbalance.per.broker.percentage", "101").is_err());
        assert!(validate_dynamic("log.retention.ms", "-1").is_ok());
        assert!(validate_dynamic("log.cleanup.policy", "compact,delete").is_ok());
        assert!(validate_dynamic("log.cleanup.policy", "shred").is_err());
        assert!(validate_dynamic("no.such.config", "1").is_err());
        assert!(is_dynamic("follower.replication.throttled.rate"));
        assert!(!is_dynamic("node.id") && !is_dynamic("controller.quorum.election.timeout.ms"));
        for name in DYNAMIC_BROKER_CONFIGS {
            assert!(broker_config(name).is_some(), "{name}");
        }
    }

    #[test]
    fn properties_files_are_read_and_typos_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "# comment\nnum.partitions=3\nauto.create.topics.enable = false\n",
        )
        .unwrap();
        let mut config = broker();
        config.load_properties(&path).unwrap();
        assert_eq!(config.num_partitions(), 3);
        assert!(!config.auto_create_topics());
        std::fs::write(&path, "num.partitons=3\n").unwrap();
        let error = config.load_properties(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 1") && error.contains("num.partitons"),
            "{error}"
        );
    }
}
