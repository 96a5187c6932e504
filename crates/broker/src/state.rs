//! What one node knows and owns: its topics, their partitions' logs, the
//! cluster id, and the producer ids it has handed out.
//!
//! Everything here survives a restart. Topic metadata lives in
//! `DATA/topics.json`, written whole to a temporary file and renamed (a crash
//! leaves the old file or the new one, never half of each); each partition's
//! log is a directory `DATA/<topic>-<partition>` owned by `eddy-log`. A lock on
//! `DATA/.lock` keeps a second process off the same data.
//!
//! This is the single-node picture: every partition is led here at leader
//! epoch 0 and its high watermark is its log end offset. Replication and the
//! replicated metadata log replace parts of it later.

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use eddy_log::PartitionLog;
use eddy_protocol::{ErrorCode, Uuid};
use tokio::sync::watch;

use crate::config::{BrokerConfig, ConfigError, TopicConfig};
use crate::coordinator::{GroupCoordinator, GroupSettings};

/// Producer ids are reserved on disk in blocks this big, so one write covers
/// many InitProducerId requests and none is reused after a crash.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Kafka's limits on topic names.
const MAX_TOPIC_NAME_LENGTH: usize = 249;
/// Partitions one topic may have at most.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {0} is in use by another eddy process")]
    Locked(PathBuf),
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("partition {partition}: {source}")]
    Log {
        partition: String,
        source: eddy_log::LogError,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A failure answered to a client: Kafka's error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// One partition's log. Its mutex is held only for an append or a read.
pub struct Partition {
    pub index: i32,
    pub log: Mutex<PartitionLog>,
}

/// A topic and its partitions.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub config: RwLock<TopicConfig>,
    pub partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let partitions = self
            .partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        usize::try_from(index)
            .ok()
            .and_then(|index| partitions.get(index).cloned())
    }

    /// Internal topics (`__consumer_offsets`) are the node's own.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len() as i32
    }
}

/// The node's state, shared by all connections.
pub struct Broker {
    pub config: RwLock<BrokerConfig>,
    pub node_id: i32,
    pub cluster_id: String,
    pub data_dir: PathBuf,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises changes to the topic set and their persistence.
    metadata_writer: Mutex<()>,
    /// Bumped after every append, so waiting fetches wake.
    appended: watch::Sender<u64>,
    producer_ids: Mutex<ProducerIds>,
    /// Consumer groups and committed offsets.
    pub groups: GroupCoordinator,
    _lock: File,
}

struct ProducerIds {
    next: i64,
    reserved_until: i64,
}

fn lock_poisoned<T>(poisoned: std::sync::PoisonError<T>) -> T {
    poisoned.into_inner()
}

impl Broker {
    /// Opens (or initialises) the data directory and every partition in it.
    pub fn open(config: BrokerConfig) -> Result<Broker, StartError> {
        let data_dir = config.data_dir.clone();
        let io = |source| StartError::Io {
            path: data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&data_dir).map_err(io)?;
        let lock = File::create(data_dir.join(".lock")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StartError::Locked(data_dir.clone()));
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
        }
        let cluster_id = load_or_create_meta(&data_dir, config.node_id)?;
        let (appended, _) = watch::channel(0);
        let broker = Broker {
            node_id: config.node_id,
            cluster_id,
            data_dir: data_dir.clone(),
            config: RwLock::new(config),
            topics: RwLock::new(BTreeMap::new()),
            metadata_writer: Mutex::new(()),
            appended,
            producer_ids: Mutex::new(ProducerIds {
                next: 0,
                reserved_until: 0,
            }),
            groups: GroupCoordinator::new(),
            _lock: lock,
        };
        broker.load_topics()?;
        broker.load_producer_ids()?;
        broker.groups.load(&broker);
        Ok(broker)
    }

    fn topics_path(&self) -> PathBuf {
        self.data_dir.join("topics.json")
    }

    fn load_topics(&self) -> Result<(), StartError> {
        let path = self.topics_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(StartError::Io { path, source }),
        };
        let damaged = |reason: &str| StartError::Damaged {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| damaged(&error.to_string()))?;
        let entries = value["topics"]
            .as_array()
            .ok_or_else(|| damaged("no topics list"))?;
        let broker_config = self.config.read().unwrap_or_else(lock_poisoned).clone();
        let mut topics = self.topics.write().unwrap_or_else(lock_poisoned);
        for entry in entries {
            let name = entry["name"]
                .as_str()
                .ok_or_else(|| damaged("topic without a name"))?;
            let id = entry["id"]
                .as_str()
                .and_then(|id| u128::from_str_radix(id, 16).ok())
                .map(Uuid::from_u128)
                .ok_or_else(|| damaged("topic without an id"))?;
            let count = entry["partitions"]
                .as_i64()
                .ok_or_else(|| damaged("topic without partitions"))?;
            let mut overrides = BTreeMap::new();
            if let Some(configs) = entry["configs"].as_object() {
                for (key, value) in configs {
                    overrides.insert(key.clone(), value.as_str().unwrap_or_default().to_string());
                }
            }
            let config = TopicConfig { overrides };
            let partitions = (0..count as i32)
                .map(|index| self.open_partition(name, index, &config, &broker_config))
                .collect::<Result<Vec<_>, _>>()?;
            tracing::info!(topic = name, partitions = count, "loaded topic");
            topics.insert(
                name.to_string(),
                Arc::new(Topic {
                    name: name.to_string(),
                    id,
                    config: RwLock::new(config),
                    partitions: RwLock::new(partitions),
                }),
            );
        }
        Ok(())
    }

    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        config: &TopicConfig,
        broker: &BrokerConfig,
    ) -> Result<Arc<Partition>, StartError> {
        let name = format!("{topic}-{index}");
        let log = PartitionLog::open(&self.data_dir.join(&name), config.log_config(broker))
            .map_err(|source| StartError::Log {
                partition: name,
                source,
            })?;
        Ok(Arc::new(Partition {
            index,
            log: Mutex::new(log),
        }))
    }

    /// Writes the topic list: to a temporary file, fsync, rename.
    fn persist_topics(&self) -> Result<(), ApiError> {
        let topics = self.topics.read().unwrap_or_else(lock_poisoned);
        let entries: Vec<serde_json::Value> = topics
            .values()
            .map(|topic| {
                let config = topic.config.read().unwrap_or_else(lock_poisoned);
                serde_json::json!({
                    "name": topic.name,
                    "id": format!("{:032x}", topic.id.as_u128()),
                    "partitions": topic.partition_count(),
                    "configs": config.overrides,
                })
            })
            .collect();
        drop(topics);
        let text = serde_json::json!({ "version": 1, "topics": entries }).to_string();
        write_atomically(&self.topics_path(), text.as_bytes()).map_err(|error| {
            ApiError::new(
                ErrorCode::KafkaStorageError,
                format!("writing topics.json: {error}"),
            )
        })
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(lock_poisoned)
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(lock_poisoned)
            .values()
            .find(|topic| topic.id == id)
            .cloned()
    }

    /// Every partition of every topic, with its topic.
    pub fn partitions(&self) -> Vec<(Arc<Topic>, Arc<Partition>)> {
        self.topics()
            .into_iter()
            .flat_map(|topic| {
                let partitions = topic
                    .partitions
                    .read()
                    .unwrap_or_else(lock_poisoned)
                    .clone();
                partitions
                    .into_iter()
                    .map(move |partition| (topic.clone(), partition))
            })
            .collect()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(lock_poisoned)
            .values()
            .cloned()
            .collect()
    }

    pub fn broker_config(&self) -> BrokerConfig {
        self.config.read().unwrap_or_else(lock_poisoned).clone()
    }

    /// The group coordinator's settings.
    pub fn group_settings(&self) -> GroupSettings {
        let config = self.config.read().unwrap_or_else(lock_poisoned);
        GroupSettings {
            min_session_timeout_ms: config.group_min_session_timeout_ms(),
            max_session_timeout_ms: config.group_max_session_timeout_ms(),
            initial_rebalance_delay: std::time::Duration::from_millis(
                config.group_initial_rebalance_delay_ms(),
            ),
        }
    }

    pub fn offsets_topic_partitions(&self) -> i32 {
        self.config
            .read()
            .unwrap_or_else(lock_poisoned)
            .offsets_topic_partitions()
    }

    /// Creates a topic with `partitions` partitions and config overrides.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<Option<Arc<Topic>>, ApiError> {
        validate_topic_name(name)?;
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, not {partitions}"
                ),
            ));
        }
        let _writer = self.metadata_writer.lock().unwrap_or_else(lock_poisoned);
        if self.topic(name).is_some() {
            return Err(ApiError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        if validate_only {
            return Ok(None);
        }
        let broker_config = self.broker_config();
        let partitions = (0..partitions)
            .map(|index| self.open_partition(name, index, &config, &broker_config))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ApiError::new(ErrorCode::KafkaStorageError, error.to_string()))?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: random_uuid(),
            config: RwLock::new(config),
            partitions: RwLock::new(partitions),
        });
        self.topics
            .write()
            .unwrap_or_else(lock_poisoned)
            .insert(name.to_string(), topic.clone());
        self.persist_topics()?;
        tracing::info!(
            topic = name,
            partitions = topic.partition_count(),
            "created topic"
        );
        Ok(Some(topic))
    }

    /// Returns the topic, creating it with the defaults when
    /// `auto.create.topics.enable` and the caller allow it.
    pub fn topic_or_create(
        &self,
        name: &str,
        allow_auto_create: bool,
    ) -> Result<Arc<Topic>, ApiError> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        let config = self.broker_config();
        if !(allow_auto_create && config.auto_create_topics()) {
            return Err(ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            ));
        }
        match self.create_topic(name, config.num_partitions(), TopicConfig::default(), false) {
            Ok(Some(topic)) => Ok(topic),
            Ok(None) => Err(ApiError::new(
                ErrorCode::UnknownServerError,
                "topic was not created",
            )),
            // Another request created it first.
            Err(error) if error.code == ErrorCode::TopicAlreadyExists => self
                .topic(name)
                .ok_or_else(|| ApiError::new(ErrorCode::UnknownTopicOrPartition, "topic vanished")),
            Err(error) => Err(error),
        }
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, ApiError> {
        let _writer = self.metadata_writer.lock().unwrap_or_else(lock_poisoned);
        let topic = self
            .topics
            .write()
            .unwrap_or_else(lock_poisoned)
            .remove(name)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                )
            })?;
        self.persist_topics()?;
        let partitions =
            std::mem::take(&mut *topic.partitions.write().unwrap_or_else(lock_poisoned));
        for partition in partitions {
            let path = self.data_dir.join(format!("{name}-{}", partition.index));
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove a deleted partition's data");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Grows a topic to `total` partitions.
    pub fn add_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _writer = self.metadata_writer.lock().unwrap_or_else(lock_poisoned);
        let topic = self.topic(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            )
        })?;
        let current = topic.partition_count();
        if total <= current {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic '{name}' has {current} partitions; the new count must be larger, not {total}"
                ),
            ));
        }
        if total > MAX_PARTITIONS_PER_TOPIC {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!("at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic"),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let broker_config = self.broker_config();
        let config = topic.config.read().unwrap_or_else(lock_poisoned).clone();
        let added = (current..total)
            .map(|index| self.open_partition(name, index, &config, &broker_config))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ApiError::new(ErrorCode::KafkaStorageError, error.to_string()))?;
        topic
            .partitions
            .write()
            .unwrap_or_else(lock_poisoned)
            .extend(added);
        self.persist_topics()
    }

    /// Replaces a topic's config overrides and applies them to its logs.
    pub fn set_topic_config(&self, name: &str, config: TopicConfig) -> Result<(), ApiError> {
        self.update_topic_config(name, false, |_| Ok(config))
    }

    /// Computes a topic's new config from its current one and applies it,
    /// all under the metadata lock, so concurrent alterations never lose
    /// each other's changes. With `validate_only`, only computes.
    pub fn update_topic_config(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&TopicConfig) -> Result<TopicConfig, ApiError>,
    ) -> Result<(), ApiError> {
        let _writer = self.metadata_writer.lock().unwrap_or_else(lock_poisoned);
        let topic = self.topic(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            )
        })?;
        let current = topic.config.read().unwrap_or_else(lock_poisoned).clone();
        let config = change(&current)?;
        if validate_only {
            return Ok(());
        }
        let log_config = config.log_config(&self.broker_config());
        *topic.config.write().unwrap_or_else(lock_poisoned) = config;
        for partition in topic.partitions.read().unwrap_or_else(lock_poisoned).iter() {
            partition
                .log
                .lock()
                .unwrap_or_else(lock_poisoned)
                .update_config(log_config.clone());
        }
        self.persist_topics()
    }

    /// A receiver that changes after every append (for long-polling fetches).
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    fn producer_ids_path(&self) -> PathBuf {
        self.data_dir.join("producer-ids")
    }

    fn load_producer_ids(&self) -> Result<(), StartError> {
        let path = self.producer_ids_path();
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| StartError::Damaged {
                    path: path.clone(),
                    reason: format!("not a number: {text:?}"),
                })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(StartError::Io { path, source }),
        };
        // Ids seen in the logs count too, should the file have been lost.
        let seen = self
            .partitions()
            .into_iter()
            .filter_map(|(_, partition)| {
                partition
                    .log
                    .lock()
                    .unwrap_or_else(lock_poisoned)
                    .max_producer_id()
            })
            .max()
            .map_or(0, |id| id + 1);
        let next = stored.max(seen);
        *self.producer_ids.lock().unwrap_or_else(lock_poisoned) = ProducerIds {
            next,
            reserved_until: next,
        };
        Ok(())
    }

    /// A producer id never handed out before, even across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(lock_poisoned);
        if ids.next >= ids.reserved_until {
            let reserved_until = ids.next + PRODUCER_ID_BLOCK;
            write_atomically(
                &self.producer_ids_path(),
                reserved_until.to_string().as_bytes(),
            )
            .map_err(|error| {
                ApiError::new(
                    ErrorCode::KafkaStorageError,
                    format!("reserving producer ids: {error}"),
                )
            })?;
            ids.reserved_until = reserved_until;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |reason: String| Err(ApiError::new(ErrorCode::InvalidTopicException, reason));
    if name.is_empty() {
        return invalid("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return invalid(format!("topic name cannot be '{name}'"));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return invalid(format!(
            "topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')))
    {
        return invalid(format!(
            "topic name '{name}' contains '{bad}'; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Reads `meta.properties`, or writes a new one with a fresh cluster id.
fn load_or_create_meta(data_dir: &Path, node_id: i32) -> Result<String, StartError> {
    let path = data_dir.join("meta.properties");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut cluster_id = None;
            for line in text.lines() {
                if let Some((key, value)) = line.split_once('=') {
                    match key.trim() {
                        "cluster.id" => cluster_id = Some(value.trim().to_string()),
                        "node.id" if value.trim() != node_id.to_string() => {
                            return Err(StartError::Damaged {
                                path,
                                reason: format!(
                                    "it belongs to node {}, not node {node_id}",
                                    value.trim()
                                ),
                            });
                        }
                        _ => {}
                    }
                }
            }
            cluster_id.ok_or(StartError::Damaged {
                path,
                reason: "no cluster.id".into(),
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = random_uuid().to_string();
            let text = format!("version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
            write_atomically(&path, text.as_bytes())
                .map_err(|source| StartError::Io { path, source })?;
            Ok(cluster_id)
        }
        Err(source) => Err(StartError::Io { path, source }),
    }
}

/// Replaces `path` with `contents` so that a crash leaves either version whole.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// A random id (topic ids, cluster ids), from the OS-seeded hasher.
pub fn random_uuid() -> Uuid {
    let mut halves = [0u64; 2];
    for (index, half) in halves.iter_mut().enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(index);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos()),
        );
        hasher.write_u32(std::process::id());
        *half = hasher.finish();
    }
    Uuid::from_u128((u128::from(halves[0]) << 64) | u128::from(halves[1]))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
