//! The group coordinator: consumer groups under Kafka's classic protocol,
//! and committed offsets.
//!
//! A group's state lives in partition `abs(java_hash(group)) % N` of the
//! internal, compacted `__consumer_offsets` topic (N =
//! `offsets.topic.num.partitions`, fixed when the topic is created on first
//! use), so it survives restarts and coordinator failover: the node leading
//! a partition of that topic coordinates its groups. When it becomes leader
//! it reads the partition back, logging its progress; when it stops leading
//! it forgets those groups, and their members find the new coordinator
//! (NOT_COORDINATOR). A commit is acknowledged once every in-sync replica
//! of the partition has it.
//!
//! [`group`] holds the state machine; [`store`] the record layouts. Requests
//! that wait (JoinGroup, SyncGroup) park a channel in the group and await
//! it without holding the lock; [`GroupCoordinator::tick`] expires sessions
//! and completes rebalances whose time is up.

pub mod group;
pub mod store;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_protocol::ErrorCode;
use eddy_protocol::records::{Compression, Record, RecordBatch};
use tokio::sync::oneshot;

use crate::config::TopicConfig;
use crate::state::{ApiError, Broker, Partition, now_ms, random_uuid};
use group::{CommittedOffset, Group, GroupState, JoinResult, Member, SyncResult};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Groups one node coordinates at most, so a client inventing group ids
/// cannot grow memory without bound.
const MAX_GROUPS: usize = 100_000;
/// Protocols one JoinGroup may list.
const MAX_PROTOCOLS: usize = 64;
/// Members one group may have.
const MAX_MEMBERS: usize = 1000;
/// Protocol metadata one member may send, in all (a subscription is a few
/// hundred bytes; the group's record in `__consumer_offsets` must stay
/// storable).
const MAX_MEMBER_METADATA_BYTES: usize = 1 << 20;
/// Committed-offset metadata longer than this is refused (Kafka's
/// `offset.metadata.max.bytes`).
const MAX_OFFSET_METADATA_BYTES: usize = 4096;
/// Extra time a waiting JoinGroup or SyncGroup allows beyond its timeout.
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Kafka's `Utils.abs(String.hashCode())`: the partition of a group.
pub fn group_partition(group_id: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group_id.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// A topic name and partition index.
pub type TopicPartition = (String, i32);
/// Committed offsets by topic: partition and offset (None: nothing committed).
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;
/// One error code per partition.
pub type PartitionResults = Vec<(TopicPartition, ErrorCode)>;

/// Settings read from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay: Duration,
}

pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    /// The `__consumer_offsets` partitions this node leads and has loaded.
    owned: Mutex<BTreeSet<i32>>,
    /// Partitions of `__consumer_offsets` (0 until it exists).
    offsets_partitions: AtomicI32,
    /// This node and the metadata it applies: a partition the metadata says
    /// this node leads but that is not loaded yet is "loading", which
    /// clients retry, rather than "not the coordinator", which some do not.
    node_id: i32,
    images: Option<tokio::sync::watch::Receiver<std::sync::Arc<eddy_metadata::MetadataImage>>>,
}

/// How long a commit waits for the in-sync replicas to copy it.
const COMMIT_REPLICATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates `__consumer_offsets` if it does not exist yet, with
/// `offsets.topic.num.partitions` partitions and the configured replication
/// factor (capped at the live nodes).
pub async fn ensure_offsets_topic(broker: &Broker) -> Result<(), ApiError> {
    if broker.image().topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let config = broker.broker_config();
    let live = broker.image().live_brokers().count().max(1);
    let replication_factor = config
        .offsets_topic_replication_factor()
        .min(live as i16)
        .max(1);
    let topic_config = TopicConfig::from_pairs([("cleanup.policy", "compact")])
        .map_err(|error| ApiError::new(ErrorCode::InvalidConfig, error.to_string()))?;
    match broker
        .create_topic(
            OFFSETS_TOPIC,
            config.offsets_topic_partitions(),
            replication_factor,
            None,
            topic_config,
            false,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if error.code == ErrorCode::TopicAlreadyExists => Ok(()),
        Err(error) => Err(ApiError::new(
            ErrorCode::CoordinatorNotAvailable,
            error.message,
        )),
    }
}

/// A JoinGroup, as the coordinator needs it.
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets its id with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

fn join_error(code: ErrorCode, member_id: &str) -> JoinResult {
    JoinResult {
        error_code: code.code(),
        generation_id: -1,
        member_id: member_id.to_string(),
        ..JoinResult::default()
    }
}

fn sync_error(code: ErrorCode) -> SyncResult {
    SyncResult {
        error_code: code.code(),
        ..SyncResult::default()
    }
}

fn lock(
    groups: &Mutex<HashMap<String, Group>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
    groups
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for GroupCoordinator {
    fn default() -> Self {
        Self::new()
    }
}

impl GroupCoordinator {
    pub fn new() -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            owned: Mutex::new(BTreeSet::new()),
            offsets_partitions: AtomicI32::new(0),
            node_id: -1,
            images: None,
        }
    }

    /// A coordinator for node `node_id`, which applies `images`.
    pub fn for_node(
        node_id: i32,
        images: tokio::sync::watch::Receiver<std::sync::Arc<eddy_metadata::MetadataImage>>,
    ) -> Self {
        Self {
            node_id,
            images: Some(images),
            ..Self::new()
        }
    }

    /// NOT_COORDINATOR unless this node leads the group's partition of
    /// `__consumer_offsets` and has loaded it.
    pub fn check_coordinator(&self, group_id: &str) -> Result<(), ErrorCode> {
        let partitions = self.offsets_partitions.load(Ordering::Relaxed);
        if partitions > 0
            && lock_owned(&self.owned).contains(&group_partition(group_id, partitions))
        {
            return Ok(());
        }
        let leads_in_metadata = self.images.as_ref().is_some_and(|images| {
            let image = images.borrow();
            image.topic(OFFSETS_TOPIC).is_some_and(|topic| {
                let index = group_partition(group_id, topic.partitions.len() as i32);
                topic
                    .partitions
                    .get(index as usize)
                    .is_some_and(|state| state.leader == self.node_id)
            })
        });
        Err(if leads_in_metadata {
            ErrorCode::CoordinatorLoadInProgress
        } else {
            ErrorCode::NotCoordinator
        })
    }

    // ------------------------------------------------------------ membership

    pub async fn join(&self, broker: &Broker, request: JoinRequest) -> JoinResult {
        if let Err(code) = self.check_coordinator(&request.group_id) {
            return join_error(code, &request.member_id);
        }
        let settings = broker.group_settings();
        let receiver = {
            let mut groups = lock(&self.groups);
            match self.join_locked(&mut groups, &request, settings) {
                Ok(receiver) => receiver,
                Err(result) => return *result,
            }
        };
        let wait = Duration::from_millis(
            request
                .rebalance_timeout_ms
                .max(request.session_timeout_ms)
                .max(0) as u64,
        ) + settings.initial_rebalance_delay
            + WAIT_MARGIN;
        let result = match tokio::time::timeout(wait, receiver).await {
            Ok(Ok(result)) => result,
            _ => join_error(ErrorCode::RebalanceInProgress, &request.member_id),
        };
        if result.error_code == 0 {
            self.persist_group(broker, &request.group_id);
        }
        result
    }

    fn join_locked(
        &self,
        groups: &mut HashMap<String, Group>,
        request: &JoinRequest,
        settings: GroupSettings,
    ) -> Result<oneshot::Receiver<JoinResult>, Box<JoinResult>> {
        let now = Instant::now();
        if request.group_id.is_empty() {
            return Err(Box::new(join_error(
                ErrorCode::InvalidGroupId,
                &request.member_id,
            )));
        }
        if !(settings.min_session_timeout_ms..=settings.max_session_timeout_ms)
            .contains(&request.session_timeout_ms)
        {
            return Err(Box::new(join_error(
                ErrorCode::InvalidSessionTimeout,
                &request.member_id,
            )));
        }
        if request.protocols.is_empty()
            || request.protocols.len() > MAX_PROTOCOLS
            || request.protocol_type.is_empty()
        {
            return Err(Box::new(join_error(
                ErrorCode::InconsistentGroupProtocol,
                &request.member_id,
            )));
        }
        if !groups.contains_key(&request.group_id) && groups.len() >= MAX_GROUPS {
            return Err(Box::new(join_error(
                ErrorCode::CoordinatorNotAvailable,
                &request.member_id,
            )));
        }
        let group = groups
            .entry(request.group_id.clone())
            .or_insert_with(|| Group::new(&request.group_id));
        if !group.supports(&request.protocol_type, &request.protocols) {
            return Err(Box::new(join_error(
                ErrorCode::InconsistentGroupProtocol,
                &request.member_id,
            )));
        }

        // Work out which member this is.
        let mut member_id = request.member_id.clone();
        if let Some(instance) = &request.group_instance_id {
            match group.static_members.get(instance).cloned() {
                Some(existing) if member_id.is_empty() => {
                    // A static member restarted: new id, same place in the group.
                    let new_id = format!("{instance}-{}", random_uuid());
                    if let Some(mut member) = group.members.remove(&existing) {
                        member.member_id = new_id.clone();
                        member.protocols = request.protocols.clone();
                        member.last_heartbeat = now;
                        group.members.insert(new_id.clone(), member);
                    }
                    group
                        .static_members
                        .insert(instance.clone(), new_id.clone());
                    if group.leader.as_deref() == Some(existing.as_str()) {
                        group.leader = Some(new_id.clone());
                    }
                    if group.state == GroupState::Stable {
                        // No rebalance: hand back the current generation.
                        let (sender, receiver) = oneshot::channel();
                        let leader = group.leader.clone().unwrap_or_default();
                        let members = if leader == new_id {
                            group.members_metadata()
                        } else {
                            Vec::new()
                        };
                        let _ = sender.send(JoinResult {
                            error_code: 0,
                            generation_id: group.generation_id,
                            protocol_type: group.protocol_type.clone(),
                            protocol_name: group.protocol_name.clone(),
                            leader,
                            member_id: new_id,
                            members,
                        });
                        return Ok(receiver);
                    }
                    member_id = new_id;
                }
                Some(existing) if existing != member_id => {
                    return Err(Box::new(join_error(
                        ErrorCode::FencedInstanceId,
                        &member_id,
                    )));
                }
                _ => {}
            }
        }
        if member_id.is_empty() {
            member_id = format!(
                "{}-{}",
                if request.client_id.is_empty() {
                    "member"
                } else {
                    &request.client_id
                },
                random_uuid()
            );
            if request.require_known_member_id && request.group_instance_id.is_none() {
                group.pending_members.insert(member_id.clone());
                return Err(Box::new(join_error(
                    ErrorCode::MemberIdRequired,
                    &member_id,
                )));
            }
        } else if !group.members.contains_key(&member_id)
            && !group.pending_members.remove(&member_id)
        {
            return Err(Box::new(join_error(ErrorCode::UnknownMemberId, &member_id)));
        }
        if !group.members.contains_key(&member_id) && group.members.len() >= MAX_MEMBERS {
            return Err(Box::new(join_error(
                ErrorCode::GroupMaxSizeReached,
                &member_id,
            )));
        }

        let metadata_bytes: usize = request
            .protocols
            .iter()
            .map(|(_, metadata)| metadata.len())
            .sum();
        if metadata_bytes > MAX_MEMBER_METADATA_BYTES {
            return Err(Box::new(join_error(
                ErrorCode::InvalidRequest,
                &request.member_id,
            )));
        }
        let (sender, receiver) = oneshot::channel();
        let existing = group.members.get(&member_id);
        let unchanged = existing.is_some_and(|member| member.protocols == request.protocols);
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        if existing.is_some() && unchanged && !is_leader && group.state == GroupState::Stable {
            // A follower rejoining with nothing new gets the current generation.
            let _ = sender.send(JoinResult {
                error_code: 0,
                generation_id: group.generation_id,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                leader: group.leader.clone().unwrap_or_default(),
                member_id: member_id.clone(),
                members: Vec::new(),
            });
            return Ok(receiver);
        }
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                member_id: member_id.clone(),
                group_instance_id: request.group_instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            });
        member.protocols = request.protocols.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.last_heartbeat = now;
        if let Some(previous) = member.join_waiter.replace(sender) {
            let _ = previous.send(join_error(ErrorCode::UnknownMemberId, &member_id));
        }
        if let Some(instance) = &request.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.clone());
        }
        if group.protocol_type.is_none() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        group.prepare_rebalance(now, settings.initial_rebalance_delay);
        group.try_complete_join(now);
        Ok(receiver)
    }

    pub async fn sync(
        &self,
        broker: &Broker,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        if let Err(code) = self.check_coordinator(group_id) {
            return sync_error(code);
        }
        let (receiver, wait) = {
            let mut groups = lock(&self.groups);
            let Some(group) = groups.get_mut(group_id) else {
                return sync_error(ErrorCode::UnknownMemberId);
            };
            if let Err(code) = check_member(group, member_id, group_instance_id) {
                return sync_error(code);
            }
            if generation_id != group.generation_id {
                return sync_error(ErrorCode::IllegalGeneration);
            }
            match group.state {
                GroupState::PreparingRebalance => {
                    return sync_error(ErrorCode::RebalanceInProgress);
                }
                GroupState::Stable => {
                    let assignment = group
                        .members
                        .get(member_id)
                        .map(|member| member.assignment.clone())
                        .unwrap_or_default();
                    return SyncResult {
                        error_code: 0,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment,
                    };
                }
                GroupState::Empty | GroupState::Dead => {
                    return sync_error(ErrorCode::UnknownMemberId);
                }
                GroupState::CompletingRebalance => {}
            }
            let (sender, receiver) = oneshot::channel();
            let wait = match group.members.get_mut(member_id) {
                Some(member) => {
                    member.sync_waiter = Some(sender);
                    member.last_heartbeat = Instant::now();
                    Duration::from_millis(
                        member
                            .rebalance_timeout_ms
                            .max(member.session_timeout_ms)
                            .max(0) as u64,
                    )
                }
                None => return sync_error(ErrorCode::UnknownMemberId),
            };
            if group.leader.as_deref() == Some(member_id) {
                group.complete_sync(assignments.into_iter().collect());
            }
            (receiver, wait)
        };
        let result = match tokio::time::timeout(wait + WAIT_MARGIN, receiver).await {
            Ok(Ok(result)) => result,
            _ => sync_error(ErrorCode::RebalanceInProgress),
        };
        if result.error_code == 0 {
            self.persist_group(broker, group_id);
        }
        result
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> ErrorCode {
        if let Err(code) = self.check_coordinator(group_id) {
            return code;
        }
        let mut groups = lock(&self.groups);
        let Some(group) = groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if let Err(code) = check_member(group, member_id, group_instance_id) {
            return code;
        }
        if let Some(member) = group.members.get_mut(member_id) {
            member.last_heartbeat = Instant::now();
        }
        if generation_id != group.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        match group.state {
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
        }
    }

    /// Removes members (by member id, or by instance id for static members).
    /// Returns the group's error and one code per member.
    pub fn leave(
        &self,
        broker: &Broker,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (ErrorCode, Vec<ErrorCode>) {
        if let Err(code) = self.check_coordinator(group_id) {
            return (code, vec![code; members.len()]);
        }
        let settings = broker.group_settings();
        let now = Instant::now();
        let codes = {
            let mut groups = lock(&self.groups);
            let Some(group) = groups.get_mut(group_id) else {
                return (
                    ErrorCode::UnknownMemberId,
                    vec![ErrorCode::UnknownMemberId; members.len()],
                );
            };
            members
                .iter()
                .map(|(member_id, instance)| {
                    let resolved = match instance {
                        Some(instance) => match group.static_members.get(instance) {
                            Some(known) if member_id.is_empty() || known == member_id => {
                                known.clone()
                            }
                            Some(_) => return ErrorCode::FencedInstanceId,
                            None => return ErrorCode::UnknownMemberId,
                        },
                        None => member_id.clone(),
                    };
                    if !group.members.contains_key(&resolved) {
                        return ErrorCode::UnknownMemberId;
                    }
                    group.remove_member(&resolved, now, settings.initial_rebalance_delay);
                    ErrorCode::None
                })
                .collect::<Vec<_>>()
        };
        self.persist_group(broker, group_id);
        (ErrorCode::None, codes)
    }

    /// Expires sessions and completes rebalances whose time is up.
    pub fn tick(&self, broker: &Broker) {
        let settings = broker.group_settings();
        let now = Instant::now();
        let mut changed = Vec::new();
        {
            let mut groups = lock(&self.groups);
            for group in groups.values_mut() {
                let expired = group.expired_members(now);
                for member_id in &expired {
                    tracing::info!(
                        group = group.group_id,
                        member = member_id,
                        "session expired; removing member"
                    );
                    group.remove_member(member_id, now, settings.initial_rebalance_delay);
                }
                if group.state == GroupState::CompletingRebalance
                    && group.sync_deadline.is_some_and(|deadline| now >= deadline)
                {
                    tracing::info!(
                        group = group.group_id,
                        "leader did not sync in time; rebalancing again"
                    );
                    group.prepare_rebalance(now, Duration::ZERO);
                }
                let completed = group.try_complete_join(now);
                if completed || !expired.is_empty() {
                    changed.push(group.group_id.clone());
                }
            }
        }
        for group_id in changed {
            self.persist_group(broker, &group_id);
        }
    }

    // ------------------------------------------------------------ offsets

    /// Commits offsets. `generation_id` -1 with an empty member id is the
    /// admin (or standalone consumer) path, allowed while the group has no
    /// members.
    pub async fn commit(
        &self,
        broker: &Broker,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> PartitionResults {
        if let Err(code) = self.check_coordinator(group_id) {
            return offsets.into_iter().map(|(key, _)| (key, code)).collect();
        }
        let group_error = {
            let mut groups = lock(&self.groups);
            if generation_id >= 0 && !groups.contains_key(group_id) {
                // A generation of a group this node does not know: as Kafka,
                // the commit comes from an old generation (or a lost group).
                return offsets
                    .into_iter()
                    .map(|(key, _)| (key, ErrorCode::IllegalGeneration))
                    .collect();
            }
            let group = groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            if group_id.is_empty() {
                Some(ErrorCode::InvalidGroupId)
            } else if generation_id < 0 && member_id.is_empty() {
                (!group.is_empty_of_members()).then_some(ErrorCode::UnknownMemberId)
            } else if let Err(code) = check_member(group, member_id, group_instance_id) {
                Some(code)
            } else if generation_id != group.generation_id {
                Some(ErrorCode::IllegalGeneration)
            } else if group.state == GroupState::CompletingRebalance {
                Some(ErrorCode::RebalanceInProgress)
            } else {
                if let Some(member) = group.members.get_mut(member_id) {
                    member.last_heartbeat = Instant::now();
                }
                None
            }
        };
        if let Some(code) = group_error {
            return offsets.into_iter().map(|(key, _)| (key, code)).collect();
        }
        let mut results = Vec::with_capacity(offsets.len());
        let mut accepted = Vec::with_capacity(offsets.len());
        for ((topic, partition), offset) in offsets {
            let known = broker
                .topic(&topic)
                .is_some_and(|found| found.partition(partition).is_some());
            let code = if !known {
                ErrorCode::UnknownTopicOrPartition
            } else if offset.metadata.len() > MAX_OFFSET_METADATA_BYTES {
                ErrorCode::OffsetMetadataTooLarge
            } else {
                accepted.push(((topic.clone(), partition), offset));
                ErrorCode::None
            };
            results.push(((topic, partition), code));
        }
        if accepted.is_empty() {
            return results;
        }
        let records = accepted
            .iter()
            .map(|((topic, partition), offset)| {
                (
                    store::offset_key(group_id, topic, *partition),
                    Some(store::offset_value(offset)),
                )
            })
            .collect();
        let written = match self.write(broker, group_id, records) {
            Ok((partition, last_offset)) => partition
                .wait_replicated(broker.node_id, last_offset, COMMIT_REPLICATION_TIMEOUT)
                .await
                .map_err(|code| {
                    // The client retries; Kafka answers a lost leadership so too.
                    let code = if code == ErrorCode::RequestTimedOut {
                        code
                    } else {
                        ErrorCode::NotCoordinator
                    };
                    ApiError::new(code, "the commit was not replicated")
                }),
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::warn!(group = group_id, %error.message, "could not store committed offsets");
            return results
                .into_iter()
                .map(|(key, code)| {
                    (
                        key,
                        if code == ErrorCode::None {
                            error.code
                        } else {
                            code
                        },
                    )
                })
                .collect();
        }
        let mut groups = lock(&self.groups);
        if let Some(group) = groups.get_mut(group_id) {
            for (key, offset) in accepted {
                group.offsets.insert(key, offset);
            }
        }
        results
    }

    /// Committed offsets of a group: all of them, or those asked for
    /// (offset -1 where none is committed).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> FetchedOffsets {
        let groups = lock(&self.groups);
        let group = groups.get(group_id);
        match wanted {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let offsets = partitions
                        .into_iter()
                        .map(|partition| {
                            let committed = group.and_then(|group| {
                                group.offsets.get(&(topic.clone(), partition)).cloned()
                            });
                            (partition, committed)
                        })
                        .collect();
                    (topic, offsets)
                })
                .collect(),
            None => {
                let mut by_topic: std::collections::BTreeMap<
                    String,
                    Vec<(i32, Option<CommittedOffset>)>,
                > = Default::default();
                if let Some(group) = group {
                    for ((topic, partition), offset) in &group.offsets {
                        by_topic
                            .entry(topic.clone())
                            .or_default()
                            .push((*partition, Some(offset.clone())));
                    }
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// Deletes committed offsets of an empty group, or of topics the group
    /// does not consume.
    pub fn delete_offsets(
        &self,
        broker: &Broker,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<PartitionResults, ErrorCode> {
        self.check_coordinator(group_id)?;
        let removed = {
            let mut groups = lock(&self.groups);
            let Some(group) = groups.get_mut(group_id) else {
                return Err(ErrorCode::GroupIdNotFound);
            };
            if !group.is_empty_of_members() && group.protocol_type.as_deref() == Some("consumer") {
                // Kafka checks subscriptions; a member's subscription is
                // opaque here beyond the protocol, so refuse while active.
                return Ok(partitions
                    .into_iter()
                    .map(|key| (key, ErrorCode::GroupSubscribedToTopic))
                    .collect());
            }
            partitions
                .into_iter()
                .inspect(|key| {
                    group.offsets.remove(key);
                })
                .collect::<Vec<_>>()
        };
        let records = removed
            .iter()
            .map(|(topic, partition)| (store::offset_key(group_id, topic, *partition), None))
            .collect();
        if let Err(error) = self.write(broker, group_id, records) {
            return Err(error.code);
        }
        Ok(removed
            .into_iter()
            .map(|key| (key, ErrorCode::None))
            .collect())
    }

    // ------------------------------------------------------------ admin

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = lock(&self.groups);
        let mut listed: Vec<(String, String, GroupState)> = groups
            .values()
            .map(|group| {
                (
                    group.group_id.clone(),
                    group.protocol_type.clone().unwrap_or_default(),
                    group.state,
                )
            })
            .collect();
        listed.sort_by(|left, right| left.0.cmp(&right.0));
        listed
    }

    /// Runs `describe` on a group's state, if the group exists.
    pub fn with_group<T>(&self, group_id: &str, describe: impl FnOnce(&Group) -> T) -> Option<T> {
        lock(&self.groups).get(group_id).map(describe)
    }

    pub fn delete_group(&self, broker: &Broker, group_id: &str) -> ErrorCode {
        if let Err(code) = self.check_coordinator(group_id) {
            return code;
        }
        let offsets = {
            let mut groups = lock(&self.groups);
            let Some(group) = groups.get(group_id) else {
                return ErrorCode::GroupIdNotFound;
            };
            if !group.is_empty_of_members() {
                return ErrorCode::NonEmptyGroup;
            }
            let offsets: Vec<(String, i32)> = group.offsets.keys().cloned().collect();
            groups.remove(group_id);
            offsets
        };
        let mut records: Vec<(Bytes, Option<Bytes>)> = offsets
            .iter()
            .map(|(topic, partition)| (store::offset_key(group_id, topic, *partition), None))
            .collect();
        records.push((store::group_key(group_id), None));
        match self.write(broker, group_id, records) {
            Ok(_) => ErrorCode::None,
            Err(error) => error.code,
        }
    }

    // ------------------------------------------------------------ storage

    /// This node's replica of the `__consumer_offsets` partition that holds
    /// `group_id`, when it leads it.
    fn offsets_partition(
        &self,
        broker: &Broker,
        group_id: &str,
    ) -> Result<std::sync::Arc<Partition>, ApiError> {
        let not_coordinator = || {
            ApiError::new(
                ErrorCode::NotCoordinator,
                format!(
                    "node {} does not coordinate group '{group_id}'",
                    broker.node_id
                ),
            )
        };
        let topic = broker.topic(OFFSETS_TOPIC).ok_or_else(not_coordinator)?;
        let index = group_partition(group_id, topic.partition_count());
        topic.partition(index).ok_or_else(not_coordinator)
    }

    /// Appends records to the group's partition as its leader; returns the
    /// partition and the last offset written.
    fn write(
        &self,
        broker: &Broker,
        group_id: &str,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(std::sync::Arc<Partition>, i64), ApiError> {
        let partition = self.offsets_partition(broker, group_id)?;
        if records.is_empty() {
            return Ok((partition, -1));
        }
        let assignment = partition.check_leader(broker.node_id, -1).map_err(|code| {
            ApiError::new(code, "this node no longer leads the group's partition")
        })?;
        let now = now_ms();
        let records = records
            .into_iter()
            .enumerate()
            .map(|(index, (key, value))| Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: index as i32,
                key: Some(key),
                value,
                headers: Vec::new(),
            })
            .collect();
        let batch = RecordBatch::new(0, now, records)
            .encode(Compression::None)
            .map_err(|error| ApiError::new(ErrorCode::UnknownServerError, error.to_string()))?;
        let outcome = partition
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .append(batch, assignment.leader_epoch, now)
            .map_err(|error| {
                ApiError::new(
                    ErrorCode::from_code(error.kafka_error_code())
                        .unwrap_or(ErrorCode::KafkaStorageError),
                    error.to_string(),
                )
            })?;
        partition.advance_high_watermark();
        broker.notify_appended();
        Ok((partition, outcome.last_offset))
    }

    fn persist_group(&self, broker: &Broker, group_id: &str) {
        let value = {
            let groups = lock(&self.groups);
            match groups.get(group_id) {
                Some(group) if group.state != GroupState::PreparingRebalance => {
                    Some(store::group_value(group, now_ms()))
                }
                Some(_) => return,
                None => None,
            }
        };
        if let Err(error) = self.write(broker, group_id, vec![(store::group_key(group_id), value)])
        {
            tracing::warn!(group = group_id, %error.message, "could not store group metadata");
        }
    }

    /// Takes over the groups of a `__consumer_offsets` partition this node
    /// now leads: reads the partition back.
    pub fn load_partition(&self, partition: &Partition, partitions: i32) {
        self.offsets_partitions.store(partitions, Ordering::Relaxed);
        if lock_owned(&self.owned).contains(&partition.index) {
            return;
        }
        let started = Instant::now();
        let now = Instant::now();
        let mut records = 0usize;
        let mut loaded: HashMap<String, Group> = HashMap::new();
        partition.for_each_record(|record| {
            if let Some(key) = &record.key {
                records += 1;
                apply(&mut loaded, store::decode(key, record.value.as_ref()), now);
            }
        });
        loaded.retain(|_, group| !group.members.is_empty() || !group.offsets.is_empty());
        let count = loaded.len();
        {
            let mut groups = lock(&self.groups);
            for (group_id, group) in loaded {
                groups.insert(group_id, group);
            }
        }
        lock_owned(&self.owned).insert(partition.index);
        tracing::info!(
            partition = partition.index,
            of = partitions,
            records,
            groups = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "coordinating the groups of this __consumer_offsets partition"
        );
    }

    /// Lets go of the groups of a partition this node no longer leads.
    pub fn unload_partition(&self, index: i32) {
        if !lock_owned(&self.owned).remove(&index) {
            return;
        }
        let partitions = self.offsets_partitions.load(Ordering::Relaxed);
        lock(&self.groups).retain(|group_id, _| group_partition(group_id, partitions) != index);
        tracing::info!(
            partition = index,
            "no longer coordinating this __consumer_offsets partition's groups"
        );
    }
}

fn lock_owned(owned: &Mutex<BTreeSet<i32>>) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
    owned
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn apply(groups: &mut HashMap<String, Group>, record: Option<store::StoredRecord>, now: Instant) {
    match record {
        Some(store::StoredRecord::Offset {
            group,
            topic,
            partition,
            value,
        }) => {
            let entry = groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group));
            match value {
                Some(offset) => {
                    entry.offsets.insert((topic, partition), offset);
                }
                None => {
                    entry.offsets.remove(&(topic, partition));
                }
            }
        }
        Some(store::StoredRecord::Group { group, value }) => match value {
            Some(stored) => {
                let entry = groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group));
                store::restore(entry, stored, now);
            }
            None => {
                groups.remove(&group);
            }
        },
        None => {}
    }
}

/// Checks that `member_id` (and its instance id, for static members) is in the group.
fn check_member(
    group: &Group,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Result<(), ErrorCode> {
    if let Some(instance) = group_instance_id
        && let Some(known) = group.static_members.get(instance)
        && known != member_id
    {
        return Err(ErrorCode::FencedInstanceId);
    }
    if group.members.contains_key(member_id) {
        Ok(())
    } else {
        Err(ErrorCode::UnknownMemberId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    async fn broker(dir: &tempfile::TempDir) -> std::sync::Arc<Broker> {
        let mut config =
            BrokerConfig::new(1, "127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        config.set("group.initial.rebalance.delay.ms", "0").unwrap();
        config.set("offsets.topic.num.partitions", "3").unwrap();
        let broker = Broker::start(config).await.unwrap();
        ensure_offsets_topic(&broker).await.unwrap();
        broker
    }

    fn join_request(group: &str, member_id: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            group_id: group.into(),
            member_id: member_id.into(),
            group_instance_id: instance.map(str::to_string),
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 6000,
            rebalance_timeout_ms: 3000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        }
    }

    /// Joins a new dynamic member: the MEMBER_ID_REQUIRED round trip, then the join.
    async fn join_new(broker: &Broker, group: &str) -> JoinResult {
        let first = broker
            .groups
            .join(broker, join_request(group, "", None))
            .await;
        assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
        broker
            .groups
            .join(broker, join_request(group, &first.member_id, None))
            .await
    }

    #[tokio::test]
    async fn two_members_join_one_generation_and_the_leader_sees_both() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(&dir).await;
        let first = join_new(&broker, "g").await;
        assert_eq!((first.error_code, first.generation_id), (0, 1));
        let sync = broker
            .groups
            .sync(
                &broker,
                "g",
                1,
                &first.member_id,
                None,
                vec![(first.member_id.clone(), Bytes::from_static(b"a"))],
            )
            .await;
        assert_eq!(sync.assignment, Bytes::from_static(b"a"));

        // A second member joins: the first must rejoin, then both are in generation 2.
        let (second, rejoined) = tokio::join!(join_new(&broker, "g"), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(
                broker.groups.heartbeat("g", 1, &first.member_id, None),
                ErrorCode::RebalanceInProgress
            );
            broker
                .groups
                .join(&broker, join_request("g", &first.member_id, None))
                .await
        });
        assert_eq!((second.generation_id, rejoined.generation_id), (2, 2));
        let leader = if rejoined.members.is_empty() {
            &second
        } else {
            &rejoined
        };
        assert_eq!(
            leader.members.len(),
            2,
            "the leader gets every member's metadata"
        );
        assert_eq!(
            broker.groups.with_group("g", |group| group.state),
            Some(GroupState::CompletingRebalance)
        );
    }

    #[tokio::test]
    async fn stale_generations_and_strangers_get_kafka_errors() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(&dir).await;
        let member = join_new(&broker, "g").await;
        let stale = broker
            .groups
            .heartbeat("g", member.generation_id + 5, &member.member_id, None);
        assert_eq!(stale, ErrorCode::IllegalGeneration);
        assert_eq!(
            broker.groups.heartbeat("g", 1, "nobody", None),
            ErrorCode::UnknownMemberId
        );
        let unknown_generation = broker
            .groups
            .commit(&broker, "g", 42, &member.member_id, None, vec![])
            .await;
        assert!(unknown_generation.is_empty());
        broker
            .create_topic("t", 1, 1, None, crate::TopicConfig::default(), false)
            .await
            .unwrap();
        let offset = CommittedOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        };
        let results = broker
            .groups
            .commit(
                &broker,
                "g",
                42,
                &member.member_id,
                None,
                vec![(("t".into(), 0), offset)],
            )
            .await;
        assert_eq!(results[0].1, ErrorCode::IllegalGeneration);
    }

    #[tokio::test]
    async fn an_absurd_protocol_list_is_refused_and_other_groups_carry_on() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(&dir).await;
        let mut hostile = join_request("h", "", None);
        hostile.protocols = (0..10_000)
            .map(|index| (format!("p{index}"), Bytes::new()))
            .collect();
        let refused = broker.groups.join(&broker, hostile).await;
        assert_eq!(
            refused.error_code,
            ErrorCode::InconsistentGroupProtocol.code()
        );
        assert_eq!(join_new(&broker, "fine").await.error_code, 0);
    }

    #[tokio::test]
    async fn committed_offsets_and_static_members_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let member_id = {
            let broker = broker(&dir).await;
            broker
                .create_topic("t", 2, 1, None, crate::TopicConfig::default(), false)
                .await
                .unwrap();
            let joined = broker
                .groups
                .join(&broker, join_request("g", "", Some("static-1")))
                .await;
            assert_eq!(
                joined.error_code, 0,
                "static members skip MEMBER_ID_REQUIRED"
            );
            let sync = broker
                .groups
                .sync(
                    &broker,
                    "g",
                    joined.generation_id,
                    &joined.member_id,
                    Some("static-1"),
                    vec![(joined.member_id.clone(), Bytes::from_static(b"mine"))],
                )
                .await;
            assert_eq!(sync.error_code, 0);
            let offset = CommittedOffset {
                offset: 17,
                leader_epoch: 0,
                metadata: "m".into(),
                commit_timestamp_ms: 1,
            };
            let results = broker
                .groups
                .commit(
                    &broker,
                    "g",
                    joined.generation_id,
                    &joined.member_id,
                    None,
                    vec![(("t".into(), 1), offset)],
                )
                .await;
            assert_eq!(results[0].1, ErrorCode::None);
            joined.member_id
        };
        let broker = broker(&dir).await;
        let fetched = broker
            .groups
            .fetch_offsets("g", Some(vec![("t".into(), vec![0, 1])]));
        assert_eq!(fetched[0].1[0].1, None);
        assert_eq!(
            fetched[0].1[1].1.as_ref().map(|offset| offset.offset),
            Some(17)
        );
        // The static member comes back: same generation, its assignment, no rebalance.
        let generation = broker
            .groups
            .with_group("g", |group| group.generation_id)
            .unwrap();
        let rejoined = broker
            .groups
            .join(&broker, join_request("g", "", Some("static-1")))
            .await;
        assert_eq!(
            (rejoined.error_code, rejoined.generation_id),
            (0, generation)
        );
        assert_ne!(rejoined.member_id, member_id);
        assert_eq!(
            broker.groups.with_group("g", |group| group.state),
            Some(GroupState::Stable)
        );
        let sync = broker
            .groups
            .sync(
                &broker,
                "g",
                generation,
                &rejoined.member_id,
                Some("static-1"),
                vec![],
            )
            .await;
        assert_eq!(sync.assignment, Bytes::from_static(b"mine"));
    }

    #[tokio::test]
    async fn group_partitions_match_kafka() {
        // Java: "my-group".hashCode() == -1906497762 → abs % 50 == 12.
        assert_eq!(group_partition("my-group", 50), 12);
        assert_eq!(group_partition("", 50), 0);
        // "polygenelubricants".hashCode() is Integer.MIN_VALUE, which Kafka's
        // Utils.abs maps to 0.
        assert_eq!(group_partition("polygenelubricants", 50), 0);
    }

    #[tokio::test]
    async fn a_member_with_megabytes_of_metadata_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(&dir).await;
        let first = broker
            .groups
            .join(&broker, join_request("h", "", None))
            .await;
        assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
        let mut bloated = join_request("h", &first.member_id, None);
        bloated.protocols = vec![(
            "range".into(),
            Bytes::from(vec![0u8; MAX_MEMBER_METADATA_BYTES + 1]),
        )];
        let refused = broker.groups.join(&broker, bloated).await;
        assert_eq!(refused.error_code, ErrorCode::InvalidRequest.code());
        assert!(
            broker
                .groups
                .with_group("h", |group| group.members.is_empty())
                .unwrap_or(true)
        );
    }
}
