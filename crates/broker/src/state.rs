//! What one node knows and owns: the metadata image it applied, the topics
//! and the partition replicas it hosts, and the producer ids it hands out.
//!
//! The cluster's metadata (nodes, topics, partitions with their leaders and
//! in-sync replicas, configs, producer-id blocks) is the replicated log of
//! `eddy-metadata`; this node applies each new image to its own state: it
//! opens the logs of partitions it hosts, takes up leadership or follows,
//! and removes the data of deleted topics. Changes a client asks for
//! (CreateTopics, config changes, ...) are proposed to the controller and
//! answered once applied here. Each partition's log is a directory
//! `DATA/<topic>-<partition>` owned by `eddy-log`; the metadata log lives in
//! `DATA/__cluster_metadata-0`. A lock on `DATA/.lock` keeps a second process
//! off the same data.

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use eddy_log::PartitionLog;
use eddy_metadata::{
    Command, CommandOutput, MetadataConfig, MetadataImage, MetadataNode, PartitionState,
};
use eddy_protocol::{ErrorCode, Uuid};
use tokio::sync::watch;

use crate::config::{BrokerConfig, ConfigError, TopicConfig};
use crate::coordinator::{GroupCoordinator, GroupSettings};
pub use crate::replica::{Assignment, Partition};

/// Producer ids are taken from the controller in blocks this big.
const PRODUCER_ID_BLOCK: i64 = 1000;
/// Kafka's limits on topic names.
const MAX_TOPIC_NAME_LENGTH: usize = 249;
/// Partitions one topic may have at most.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
/// How long a metadata change may take before the client is told so.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a one-node cluster may take to elect itself and register.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The metadata log's directory under the data dir (Kafka's name).
const METADATA_DIR: &str = "__cluster_metadata-0";

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
    #[error("metadata quorum: {0}")]
    Metadata(String),
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

/// A topic as this node knows it: its configs and the replicas it hosts.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub config: RwLock<TopicConfig>,
    /// Partitions of the topic in all, hosted here or not.
    partition_count: AtomicI32,
    /// The partitions this node hosts a replica of, by index.
    pub partitions: RwLock<BTreeMap<i32, Arc<Partition>>>,
}

impl Topic {
    /// This node's replica of partition `index`, if it hosts one.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&index)
            .cloned()
    }

    /// This node's replica of a partition, or why there is none: a
    /// partition of the topic hosted elsewhere is NOT_LEADER_OR_FOLLOWER (the
    /// client's metadata is stale), one beyond the topic's count is unknown.
    pub fn replica(&self, index: i32) -> Result<Arc<Partition>, ErrorCode> {
        match self.partition(index) {
            Some(partition) => Ok(partition),
            None if index >= 0 && index < self.partition_count() => {
                Err(ErrorCode::NotLeaderOrFollower)
            }
            None => Err(ErrorCode::UnknownTopicOrPartition),
        }
    }

    /// Internal topics (`__consumer_offsets`) are the cluster's own.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }

    pub fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Relaxed)
    }

    pub fn hosted(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// A partition whose role here changed: the replication layer starts or
/// stops fetching for it.
pub struct RoleChange {
    pub partition: Arc<Partition>,
    pub assignment: Assignment,
}

/// The node's state, shared by all connections.
pub struct Broker {
    /// The effective configuration: `static_config` with the dynamic
    /// broker configs of the applied metadata laid over it. Shared, so a
    /// reader on a hot path (every fetch round) takes a reference count,
    /// not a copy of every setting.
    config: RwLock<Arc<BrokerConfig>>,
    /// The configuration the node started with (properties file and
    /// command line).
    static_config: BrokerConfig,
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub metadata: MetadataNode,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises applying metadata images.
    applying: Mutex<()>,
    /// Bumped after every append and high-watermark move, so waiting
    /// fetches wake.
    appended: watch::Sender<u64>,
    /// Partitions whose role changed, for the replica fetchers.
    role_changes: watch::Sender<u64>,
    producer_ids: Mutex<ProducerIds>,
    /// Consumer groups and committed offsets.
    pub groups: GroupCoordinator,
    _lock: File,
}

#[derive(Default)]
struct ProducerIds {
    next: i64,
    end: i64,
}

fn lock_poisoned<T>(poisoned: std::sync::PoisonError<T>) -> T {
    poisoned.into_inner()
}

/// The metadata error as a client sees it.
pub fn metadata_error(error: eddy_metadata::MetadataError) -> ApiError {
    ApiError::new(ErrorCode::RequestTimedOut, error.to_string())
}

fn command_error(error: eddy_metadata::CommandError) -> ApiError {
    ApiError::new(error.code, error.message)
}

impl Broker {
    /// Opens (or initialises) the data directory, joins the metadata
    /// quorum, and applies the metadata this node has.
    pub async fn start(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
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
        check_meta(&data_dir, config.node_id)?;
        let (host, port) = config.advertised_endpoint();
        let controller_listen = config.controller_listen.unwrap_or_else(|| {
            // A one-node cluster needs no fixed controller port.
            let port = if config.voters.is_empty() || config.listen.port() == 0 {
                0
            } else {
                config.listen.port().saturating_add(100)
            };
            SocketAddr::new(config.listen.ip(), port)
        });
        let election = config.election_timeout_ms();
        let metadata = MetadataNode::start(MetadataConfig {
            node_id: config.node_id,
            data_dir: data_dir.join(METADATA_DIR),
            controller_listen,
            voters: config.voters.clone(),
            broker_host: host,
            broker_port: port,
            heartbeat_interval_ms: config.heartbeat_interval_ms(),
            session_timeout_ms: config.session_timeout_ms(),
            election_timeout_min_ms: election,
            election_timeout_max_ms: election * 2,
            fast_fence_ms: config.disconnect_fence_ms(),
            unclean_leader_election: config.unclean_leader_election(),
            auto_leader_rebalance: config.auto_leader_rebalance(),
            leader_imbalance_check_interval: Duration::from_millis(
                config.leader_imbalance_check_interval_ms(),
            ),
            leader_imbalance_per_broker_percentage: config.leader_imbalance_per_broker_percentage(),
        })
        .await
        .map_err(|error| StartError::Metadata(error.to_string()))?;
        let (appended, _) = watch::channel(0);
        let (role_changes, _) = watch::channel(0);
        let groups = GroupCoordinator::for_node(config.node_id, metadata.subscribe());
        let broker = Arc::new(Broker {
            node_id: config.node_id,
            data_dir: data_dir.clone(),
            static_config: config.clone(),
            config: RwLock::new(Arc::new(config)),
            metadata,
            topics: RwLock::new(BTreeMap::new()),
            applying: Mutex::new(()),
            appended,
            role_changes,
            producer_ids: Mutex::new(ProducerIds::default()),
            groups,
            _lock: lock,
        });
        let image = broker.metadata.image();
        broker.apply_image(&image)?;
        tokio::spawn(follow_metadata(
            Arc::downgrade(&broker),
            broker.metadata.subscribe(),
        ));
        // A one-node cluster is ready once it has registered itself. In a
        // larger one that needs a quorum of peers, which may be starting
        // too: the node serves at once and registers when it can.
        let alone = broker
            .config
            .read()
            .unwrap_or_else(lock_poisoned)
            .voters
            .len()
            <= 1;
        if alone && !broker.wait_registered(REGISTRATION_TIMEOUT).await {
            return Err(StartError::Metadata(format!(
                "node {} could not register with its own controller within {REGISTRATION_TIMEOUT:?}",
                broker.node_id
            )));
        }
        Ok(broker)
    }

    /// Waits until this process is registered and unfenced (not a previous
    /// run of the node, which the replayed metadata still shows), that is
    /// until clients see it in Metadata. Returns whether that happened in
    /// time.
    pub async fn wait_registered(&self, timeout: Duration) -> bool {
        let mut images = self.metadata.subscribe();
        let incarnation = self.metadata.incarnation();
        let registered = |image: &MetadataImage| {
            !image.cluster_id.is_empty()
                && image.broker(self.node_id).is_some_and(|registration| {
                    !registration.fenced && registration.incarnation == incarnation
                })
        };
        tokio::time::timeout(timeout, async {
            loop {
                if registered(&images.borrow_and_update()) {
                    return;
                }
                if images.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    /// The metadata this node has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    pub fn cluster_id(&self) -> String {
        self.image().cluster_id.clone()
    }

    /// Brings the node's topics and replicas in line with `image`: opens
    /// the logs of newly hosted partitions, applies leaders, epochs and
    /// ISRs, and deletes the data of topics that are gone.
    pub fn apply_image(&self, image: &MetadataImage) -> Result<(), StartError> {
        let _applying = self.applying.lock().unwrap_or_else(lock_poisoned);
        // Dynamic broker configs: the cluster-wide default, then this node's.
        let broker_config = Arc::new(self.static_config.with_dynamic(
            image.broker_configs.get(""),
            image.broker_configs.get(&self.node_id.to_string()),
        ));
        let defaults_changed = {
            let mut current = self.config.write().unwrap_or_else(lock_poisoned);
            let differs = current.dynamic_differs(&broker_config);
            if differs {
                *current = Arc::clone(&broker_config);
            }
            differs
        };
        if defaults_changed {
            tracing::info!("dynamic broker configs changed");
        }
        let mut changed = false;
        let mut offsets_roles = Vec::new();
        // Until this process is registered and unfenced, the image may be
        // the one a previous run left (replayed before the quorum caught
        // this node up): it must not lead on that word.
        let incarnation = self.metadata.incarnation();
        let registered = image.broker(self.node_id).is_some_and(|registration| {
            !registration.fenced && registration.incarnation == incarnation
        });
        for (name, topic_image) in &image.topics {
            let id = Uuid::from_u128(topic_image.id);
            let config = TopicConfig {
                overrides: topic_image.configs.clone(),
            };
            let topic = {
                let mut topics = self.topics.write().unwrap_or_else(lock_poisoned);
                let fresh = topics.get(name).is_none_or(|topic| topic.id != id);
                if fresh {
                    if let Some(old) = topics.remove(name) {
                        self.remove_topic_data(&old);
                    }
                    topics.insert(
                        name.clone(),
                        Arc::new(Topic {
                            name: name.clone(),
                            id,
                            config: RwLock::new(config.clone()),
                            partition_count: AtomicI32::new(0),
                            partitions: RwLock::new(BTreeMap::new()),
                        }),
                    );
                }
                topics.get(name).cloned().expect("inserted above")
            };
            // A topic's log settings follow the broker defaults it does
            // not override, so a changed default re-derives them too.
            let config_changed = {
                let mut current = topic.config.write().unwrap_or_else(lock_poisoned);
                let changed = *current != config;
                *current = config.clone();
                changed || defaults_changed
            };
            topic
                .partition_count
                .store(topic_image.partitions.len() as i32, Ordering::Relaxed);
            let log_config = config.log_config(&broker_config);
            for (index, state) in topic_image.partitions.iter().enumerate() {
                let index = index as i32;
                let mut assignment = assignment_of(state);
                if !registered && assignment.leader == self.node_id {
                    assignment.leader = -1;
                }
                let existing = topic.partition(index);
                if !state.replicas.contains(&self.node_id) {
                    if let Some(partition) = existing {
                        topic
                            .partitions
                            .write()
                            .unwrap_or_else(lock_poisoned)
                            .remove(&index);
                        let dir = partition
                            .log
                            .lock()
                            .unwrap_or_else(lock_poisoned)
                            .dir()
                            .to_path_buf();
                        let _ = std::fs::remove_dir_all(dir);
                        changed = true;
                    }
                    continue;
                }
                let partition = match existing {
                    Some(partition) => {
                        if config_changed {
                            partition
                                .log
                                .lock()
                                .unwrap_or_else(lock_poisoned)
                                .update_config(log_config.clone());
                        }
                        if partition.apply_assignment(self.node_id, assignment.clone()) {
                            changed = true;
                        } else {
                            continue;
                        }
                        partition
                    }
                    None => {
                        let dir = self.data_dir.join(format!("{name}-{index}"));
                        let log =
                            PartitionLog::open(&dir, log_config.clone()).map_err(|source| {
                                StartError::Log {
                                    partition: format!("{name}-{index}"),
                                    source,
                                }
                            })?;
                        let partition = Arc::new(Partition::new(name, index, log));
                        partition.apply_assignment(self.node_id, assignment.clone());
                        topic
                            .partitions
                            .write()
                            .unwrap_or_else(lock_poisoned)
                            .insert(index, partition.clone());
                        changed = true;
                        partition
                    }
                };
                if topic.name == crate::coordinator::OFFSETS_TOPIC {
                    offsets_roles.push((
                        partition,
                        assignment.leader == self.node_id,
                        topic_image.partitions.len() as i32,
                    ));
                }
            }
        }
        let gone: Vec<Arc<Topic>> = {
            let mut topics = self.topics.write().unwrap_or_else(lock_poisoned);
            let names: Vec<String> = topics
                .keys()
                .filter(|name| !image.topics.contains_key(*name))
                .cloned()
                .collect();
            names
                .iter()
                .filter_map(|name| topics.remove(name))
                .collect()
        };
        for topic in gone {
            tracing::info!(topic = topic.name, "deleting a deleted topic's data");
            self.remove_topic_data(&topic);
            changed = true;
        }
        for (partition, leads, count) in offsets_roles {
            if leads {
                self.groups.load_partition(&partition, count);
            } else {
                self.groups.unload_partition(partition.index);
            }
        }
        if changed {
            self.role_changes
                .send_modify(|count| *count = count.wrapping_add(1));
            self.notify_appended();
        }
        Ok(())
    }

    fn remove_topic_data(&self, topic: &Topic) {
        let partitions =
            std::mem::take(&mut *topic.partitions.write().unwrap_or_else(lock_poisoned));
        for partition in partitions.into_values() {
            if topic.name == crate::coordinator::OFFSETS_TOPIC {
                self.groups.unload_partition(partition.index);
            }
            let path = self.data_dir.join(partition.name());
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove a deleted partition's data");
            }
        }
    }

    /// Changes whenever a hosted partition's role changes.
    pub fn subscribe_role_changes(&self) -> watch::Receiver<u64> {
        self.role_changes.subscribe()
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

    /// Every partition replica hosted here, with its topic.
    pub fn partitions(&self) -> Vec<(Arc<Topic>, Arc<Partition>)> {
        self.topics()
            .into_iter()
            .flat_map(|topic| {
                let partitions = topic.hosted();
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

    pub fn broker_config(&self) -> Arc<BrokerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(lock_poisoned))
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
        match self.image().topic(crate::coordinator::OFFSETS_TOPIC) {
            Some(topic) => topic.partitions.len() as i32,
            None => self
                .config
                .read()
                .unwrap_or_else(lock_poisoned)
                .offsets_topic_partitions(),
        }
    }

    /// Proposes a metadata change and returns its output once applied here.
    pub async fn propose(&self, command: Command) -> Result<CommandOutput, ApiError> {
        let result = self
            .metadata
            .propose(command, METADATA_TIMEOUT)
            .await
            .map_err(metadata_error)?;
        let output = result.map_err(command_error)?;
        // The image watcher applies it too; applying now means the caller's
        // next request on this node sees it.
        let image = self.metadata.image();
        if let Err(error) = self.apply_image(&image) {
            tracing::warn!(%error, "applying metadata failed");
        }
        Ok(output)
    }

    /// Creates a topic with `partitions` partitions (replicas placed by the
    /// controller) and config overrides.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: Option<Vec<Vec<i32>>>,
        config: TopicConfig,
        validate_only: bool,
    ) -> Result<Vec<PartitionState>, ApiError> {
        validate_topic_name(name)?;
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, not {partitions}"
                ),
            ));
        }
        let image = self.image();
        if image.topic(name).is_some() {
            return Err(ApiError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        let live = image.live_brokers().count();
        if assignments.is_none() && (replication_factor < 1 || replication_factor as usize > live) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "replication factor {replication_factor} needs that many live nodes; {live} are alive"
                ),
            ));
        }
        if validate_only {
            return Ok(Vec::new());
        }
        match self
            .propose(Command::CreateTopic {
                name: name.to_string(),
                id: random_uuid().as_u128(),
                partitions,
                replication_factor,
                assignments,
                configs: config.overrides,
            })
            .await?
        {
            CommandOutput::TopicCreated { partitions, .. } => {
                tracing::info!(topic = name, partitions = partitions.len(), "created topic");
                Ok(partitions)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The replication factor new topics get when a request says -1.
    pub fn default_replication_factor(&self) -> i16 {
        let live = self.image().live_brokers().count().max(1);
        self.broker_config()
            .default_replication_factor()
            .min(live as i16)
            .max(1)
    }

    /// Returns the topic, creating it with the defaults when
    /// `auto.create.topics.enable` and the caller allow it.
    pub async fn topic_or_create(
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
        let replication_factor = self.default_replication_factor();
        match self
            .create_topic(
                name,
                config.num_partitions(),
                replication_factor,
                None,
                TopicConfig::default(),
                false,
            )
            .await
        {
            Ok(_) => {}
            // Another request created it first.
            Err(error) if error.code == ErrorCode::TopicAlreadyExists => {}
            Err(error) => return Err(error),
        }
        self.topic(name)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownTopicOrPartition, "topic vanished"))
    }

    /// Deletes a topic; every node removes its data as it applies that.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, ApiError> {
        match self
            .propose(Command::DeleteTopic {
                name: name.to_string(),
            })
            .await?
        {
            CommandOutput::TopicDeleted { id } => {
                tracing::info!(topic = name, "deleted topic");
                Ok(Uuid::from_u128(id))
            }
            _ => Ok(Uuid::from_u128(0)),
        }
    }

    /// Grows a topic to `total` partitions.
    pub async fn add_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let image = self.image();
        let topic = image.topic(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic '{name}' does not exist"),
            )
        })?;
        let current = topic.partitions.len() as i32;
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
        self.propose(Command::CreatePartitions {
            name: name.to_string(),
            count: total,
            assignments,
        })
        .await?;
        Ok(())
    }

    /// Replaces a topic's config overrides.
    pub async fn set_topic_config(&self, name: &str, config: TopicConfig) -> Result<(), ApiError> {
        self.update_topic_config(name, false, |_| Ok(config)).await
    }

    /// Computes a topic's new config from its current one and has the
    /// controller store it. With `validate_only`, only computes.
    pub async fn update_topic_config(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&TopicConfig) -> Result<TopicConfig, ApiError>,
    ) -> Result<(), ApiError> {
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
        self.propose(Command::AlterTopicConfigs {
            name: name.to_string(),
            set: config.overrides,
            delete: Vec::new(),
            replace_all: true,
        })
        .await?;
        Ok(())
    }

    /// A receiver that changes after every append (for long-polling fetches).
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A producer id never handed out before anywhere in the cluster: taken
    /// from blocks the controller allocates.
    pub async fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        {
            let mut ids = self.producer_ids.lock().unwrap_or_else(lock_poisoned);
            if ids.next < ids.end {
                ids.next += 1;
                return Ok(ids.next - 1);
            }
        }
        let output = self
            .propose(Command::AllocateProducerIds {
                broker_id: self.node_id,
                count: PRODUCER_ID_BLOCK,
            })
            .await?;
        let CommandOutput::ProducerIds { first, count } = output else {
            return Err(ApiError::new(
                ErrorCode::UnknownServerError,
                "the controller did not allocate producer ids",
            ));
        };
        let mut ids = self.producer_ids.lock().unwrap_or_else(lock_poisoned);
        ids.next = first + 1;
        ids.end = first + count;
        Ok(first)
    }
}

/// Applies every new metadata image until the broker is gone.
async fn follow_metadata(broker: Weak<Broker>, mut images: watch::Receiver<Arc<MetadataImage>>) {
    while images.changed().await.is_ok() {
        let image = images.borrow_and_update().clone();
        let Some(broker) = broker.upgrade() else {
            return;
        };
        if let Err(error) = broker.apply_image(&image) {
            tracing::error!(%error, "applying metadata failed");
        }
    }
}

fn assignment_of(state: &PartitionState) -> Assignment {
    Assignment {
        leader: state.leader,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        replicas: state.replicas.clone(),
        isr: state.isr.clone(),
        adding: state.adding_replicas.clone(),
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

/// Checks `meta.properties` names this node, or writes one that does.
fn check_meta(data_dir: &Path, node_id: i32) -> Result<(), StartError> {
    let path = data_dir.join("meta.properties");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            for line in text.lines() {
                if let Some((key, value)) = line.split_once('=')
                    && key.trim() == "node.id"
                    && value.trim() != node_id.to_string()
                {
                    return Err(StartError::Damaged {
                        path,
                        reason: format!("it belongs to node {}, not node {node_id}", value.trim()),
                    });
                }
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let text = format!("version=1\nnode.id={node_id}\n");
            write_atomically(&path, text.as_bytes())
                .map_err(|source| StartError::Io { path, source })
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
