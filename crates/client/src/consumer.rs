//! [`GroupConsumer`]: a member of a consumer group on Kafka's classic group
//! protocol, enough for demo workloads and tests.
//!
//! It finds the coordinator, joins (answering MEMBER_ID_REQUIRED), and when
//! chosen as leader assigns partitions with the "range" strategy over every
//! member's subscription, then syncs. A background task heartbeats; when the
//! group rebalances or forgets the member it tells the consumer, which
//! commits what it has handed out and joins again on the next `poll`.
//! Records are fetched from each partition's leader, from the committed
//! offset or, without one, from the earliest or latest offset.
//!
//! What it is not: fast (one request at a time, no prefetching), or
//! incremental (every rebalance revokes all partitions, as Kafka's eager
//! protocol does). Every call is bounded: requests by the client's node
//! timeout (JoinGroup and SyncGroup by the rebalance timeout), retries by a
//! count.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use eddy_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use eddy_protocol::messages::leave_group_request::MemberIdentity;
use eddy_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use eddy_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use eddy_protocol::{ApiKey, ErrorCode};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::browse::{ConsumedRecord, FetchWant};
use crate::client::{Client, retry_backoff};
use crate::error::{ClientError, check, failure, is_coordinator_code};
use crate::groups::{
    CONSUMER_PROTOCOL_TYPE, GroupOffsets, decode_assignment, decode_subscription,
    encode_assignment, encode_subscription,
};
use crate::offsets::OffsetSpec;

/// The only assignment strategy this consumer offers.
const RANGE_STRATEGY: &str = "range";
/// Rounds of JoinGroup and SyncGroup before joining gives up.
const JOIN_ATTEMPTS: u32 = 10;
/// The longest a single Fetch waits for records inside `poll`, so that a
/// rebalance is noticed soon even while polling with a long wait.
const FETCH_WAIT_SLICE: Duration = Duration::from_millis(100);

/// Where to start reading a partition the group has no offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
}

/// How a [`GroupConsumer`] takes part in its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupConsumerOptions {
    /// How long the coordinator waits for a heartbeat before it drops the member.
    pub session_timeout_ms: i32,
    /// How long the coordinator waits for every member to rejoin.
    pub rebalance_timeout_ms: i32,
    /// How often the background task heartbeats.
    pub heartbeat_interval_ms: u32,
    pub auto_offset_reset: AutoOffsetReset,
    /// The most bytes fetched per partition per request.
    pub max_partition_bytes: i32,
}

impl Default for GroupConsumerOptions {
    fn default() -> GroupConsumerOptions {
        GroupConsumerOptions {
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            heartbeat_interval_ms: 1_000,
            auto_offset_reset: AutoOffsetReset::Earliest,
            max_partition_bytes: 1024 * 1024,
        }
    }
}

/// Why the member must join again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejoin {
    /// The coordinator answered a heartbeat or commit with this error.
    Told(ErrorCode),
    /// The coordinator moved or has not answered for a session timeout.
    CoordinatorLost,
    /// The last attempt to join failed.
    NotJoined,
}

/// The background heartbeat of one generation.
struct Heartbeat {
    task: JoinHandle<()>,
    stopped: oneshot::Receiver<Rejoin>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One member of a consumer group. See the module documentation.
pub struct GroupConsumer {
    client: Client,
    group_id: String,
    topics: Vec<String>,
    options: GroupConsumerOptions,
    member_id: String,
    generation_id: i32,
    /// Partitions by topic, as the last SyncGroup assigned them.
    assignment: BTreeMap<String, Vec<i32>>,
    /// The next offset to read of each assigned partition whose start is known.
    positions: GroupOffsets,
    /// Partitions whose position must come from `auto_offset_reset`, the
    /// committed offset having fallen out of range.
    reset_pending: BTreeSet<(String, i32)>,
    heartbeat: Option<Heartbeat>,
    /// A reason to rejoin found outside the heartbeat (a refused commit).
    rejoin: Option<Rejoin>,
}

impl GroupConsumer {
    /// Joins `group_id` subscribed to `topics` and returns once the member
    /// has its first assignment.
    pub async fn join(
        client: Client,
        group_id: impl Into<String>,
        topics: &[String],
        options: GroupConsumerOptions,
    ) -> Result<GroupConsumer, ClientError> {
        let mut consumer = GroupConsumer {
            client,
            group_id: group_id.into(),
            topics: topics.to_vec(),
            options,
            member_id: String::new(),
            generation_id: -1,
            assignment: BTreeMap::new(),
            positions: GroupOffsets::new(),
            reset_pending: BTreeSet::new(),
            heartbeat: None,
            rejoin: None,
        };
        consumer.join_group().await?;
        Ok(consumer)
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The id the coordinator gave this member.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// This member's partitions by topic, sorted.
    pub fn assignment(&self) -> Vec<(String, Vec<i32>)> {
        self.assignment
            .iter()
            .map(|(topic, partitions)| (topic.clone(), partitions.clone()))
            .collect()
    }

    /// The next offset to read of each assigned partition (known so far).
    pub fn positions(&self) -> &GroupOffsets {
        &self.positions
    }

    /// Records from the assigned partitions, waiting up to `max_wait` for
    /// the first; an empty answer means none came in time. Joins the group
    /// again first if it rebalanced.
    pub async fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
        let deadline = Instant::now() + max_wait;
        loop {
            self.rejoin_if_needed().await?;
            self.find_positions().await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let records = self.fetch_round(remaining.min(FETCH_WAIT_SLICE)).await?;
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
        }
    }

    /// Commits the position of every assigned partition for this
    /// generation. When the group has moved on, the error is returned and
    /// the next `poll` joins again.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        if self.positions.is_empty() {
            return Ok(());
        }
        let result = self
            .client
            .commit_offsets(
                &self.group_id,
                self.generation_id,
                &self.member_id,
                &self.positions,
            )
            .await;
        if let Err(error) = &result
            && let Some(code) = error.error_code()
            && needs_rejoin(code)
        {
            self.rejoin = Some(Rejoin::Told(code));
        }
        result
    }

    /// Leaves the group, so that the others take over its partitions at
    /// once rather than after a session timeout. Commit first to keep the
    /// progress.
    pub async fn leave(mut self) -> Result<(), ClientError> {
        self.heartbeat = None;
        if self.member_id.is_empty() {
            return Ok(());
        }
        let request = LeaveGroupRequest {
            group_id: self.group_id.as_str().into(),
            // Versions up to 2 name one member; later ones a list.
            member_id: self.member_id.as_str().into(),
            members: vec![MemberIdentity {
                member_id: self.member_id.as_str().into(),
                group_instance_id: None,
                reason: Some("the consumer is leaving".into()),
                ..MemberIdentity::default()
            }],
            ..LeaveGroupRequest::default()
        };
        let result = self
            .client
            .call_coordinator(
                &self.group_id,
                request,
                None,
                |address, response: LeaveGroupResponse| {
                    check(address, ApiKey::LeaveGroup, response.error_code, None)?;
                    for member in &response.members {
                        check(address, ApiKey::LeaveGroup, member.error_code, None)?;
                    }
                    Ok(())
                },
            )
            .await;
        match result {
            // Already gone: what leaving wanted.
            Err(error) if error.error_code() == Some(ErrorCode::UnknownMemberId) => Ok(()),
            other => other,
        }
    }

    /// Joins again when the heartbeat or a commit said the group moved on;
    /// first commits what was handed out, which Kafka still accepts while
    /// the group waits for its members to rejoin.
    async fn rejoin_if_needed(&mut self) -> Result<(), ClientError> {
        let reason = self.rejoin.take().or_else(|| {
            let heartbeat = self.heartbeat.as_mut()?;
            match heartbeat.stopped.try_recv() {
                Ok(reason) => Some(reason),
                Err(oneshot::error::TryRecvError::Empty) => None,
                // The task is gone without a word: start over.
                Err(oneshot::error::TryRecvError::Closed) => Some(Rejoin::CoordinatorLost),
            }
        });
        let Some(reason) = reason else {
            return Ok(());
        };
        if matches!(
            reason,
            Rejoin::Told(ErrorCode::RebalanceInProgress) | Rejoin::CoordinatorLost
        ) {
            // Best effort: if the generation is over the commit is refused,
            // and the partitions are read again from the last commit.
            let _ = self.commit().await;
            self.rejoin = None;
        }
        if reason == Rejoin::Told(ErrorCode::UnknownMemberId) {
            self.member_id.clear();
        }
        if reason == Rejoin::CoordinatorLost {
            self.client.forget_coordinator(&self.group_id);
        }
        self.join_group().await
    }

    /// JoinGroup and SyncGroup until the member has an assignment, then
    /// starts heartbeating.
    async fn join_group(&mut self) -> Result<(), ClientError> {
        self.heartbeat = None;
        self.assignment.clear();
        self.positions.clear();
        self.reset_pending.clear();
        // Each round may wait for the whole group; all of them together
        // get twice that before the last error is returned.
        let deadline = Instant::now() + self.rebalance_wait().saturating_mul(2);
        let mut attempt = 0;
        loop {
            let result = self.join_and_sync().await;
            attempt += 1;
            let error = match result {
                Ok(()) => break,
                Err(error) => error,
            };
            let retry = match error.error_code() {
                Some(ErrorCode::UnknownMemberId) => {
                    self.member_id.clear();
                    true
                }
                Some(
                    ErrorCode::MemberIdRequired
                    | ErrorCode::RebalanceInProgress
                    | ErrorCode::IllegalGeneration,
                ) => true,
                _ => error.is_retriable(),
            };
            if !retry || attempt >= JOIN_ATTEMPTS || Instant::now() >= deadline {
                // The next poll tries again.
                self.rejoin = Some(Rejoin::NotJoined);
                return Err(error);
            }
            tokio::time::sleep(retry_backoff(attempt)).await;
        }
        self.heartbeat = Some(self.start_heartbeat());
        Ok(())
    }

    /// One JoinGroup (two when the coordinator first hands out a member
    /// id) and its SyncGroup.
    async fn join_and_sync(&mut self) -> Result<(), ClientError> {
        let metadata = encode_subscription(&self.topics).map_err(|source| ClientError::Encode {
            address: String::new(),
            api: ApiKey::JoinGroup.name(),
            source,
        })?;
        let mut joined = self.send_join_group(&metadata).await?;
        if failure(joined.error_code) == Some(ErrorCode::MemberIdRequired) {
            self.member_id = joined.member_id.to_string();
            joined = self.send_join_group(&metadata).await?;
        }
        let coordinator = self.client.coordinator(&self.group_id, false).await?;
        check(&coordinator, ApiKey::JoinGroup, joined.error_code, None)?;
        self.member_id = joined.member_id.to_string();
        self.generation_id = joined.generation_id;
        let protocol = joined
            .protocol_name
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| RANGE_STRATEGY.to_string());
        let assignments = if joined.leader.as_str() == self.member_id {
            self.assign(&joined).await?
        } else {
            Vec::new()
        };
        let synced = self.send_sync_group(&protocol, assignments).await?;
        check(&coordinator, ApiKey::SyncGroup, synced.error_code, None)?;
        let assignment =
            decode_assignment(&synced.assignment).map_err(|source| ClientError::Decode {
                address: coordinator.clone(),
                api: ApiKey::SyncGroup.name(),
                source,
            })?;
        self.assignment.clear();
        for (topic, partitions) in assignment {
            let entry = self.assignment.entry(topic).or_default();
            entry.extend(partitions);
            entry.sort_unstable();
            entry.dedup();
        }
        Ok(())
    }

    async fn send_join_group(
        &mut self,
        metadata: &bytes::Bytes,
    ) -> Result<JoinGroupResponse, ClientError> {
        let request = JoinGroupRequest {
            group_id: self.group_id.as_str().into(),
            session_timeout_ms: self.options.session_timeout_ms,
            rebalance_timeout_ms: self.options.rebalance_timeout_ms,
            member_id: self.member_id.as_str().into(),
            group_instance_id: None,
            protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: RANGE_STRATEGY.into(),
                metadata: metadata.clone(),
                ..JoinGroupRequestProtocol::default()
            }],
            reason: None,
            ..JoinGroupRequest::default()
        };
        let timeout = self.rebalance_wait();
        self.client
            .call_coordinator(
                &self.group_id,
                request,
                Some(timeout),
                |address, response: JoinGroupResponse| {
                    refuse_coordinator_errors(address, ApiKey::JoinGroup, response.error_code)?;
                    Ok(response)
                },
            )
            .await
    }

    async fn send_sync_group(
        &mut self,
        protocol: &str,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<SyncGroupResponse, ClientError> {
        let request = SyncGroupRequest {
            group_id: self.group_id.as_str().into(),
            generation_id: self.generation_id,
            member_id: self.member_id.as_str().into(),
            group_instance_id: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.into()),
            protocol_name: Some(protocol.into()),
            assignments,
            ..SyncGroupRequest::default()
        };
        let timeout = self.rebalance_wait();
        self.client
            .call_coordinator(
                &self.group_id,
                request,
                Some(timeout),
                |address, response: SyncGroupResponse| {
                    refuse_coordinator_errors(address, ApiKey::SyncGroup, response.error_code)?;
                    Ok(response)
                },
            )
            .await
    }

    /// The leader's work: a range assignment over every member's
    /// subscription, with partition counts from fresh metadata.
    async fn assign(
        &mut self,
        joined: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let mut subscriptions = BTreeMap::new();
        for member in &joined.members {
            // A member whose metadata does not parse subscribes to nothing.
            let topics = decode_subscription(&member.metadata).unwrap_or_default();
            subscriptions.insert(member.member_id.to_string(), topics);
        }
        let topics: BTreeSet<&String> = subscriptions.values().flatten().collect();
        let mut partition_counts = BTreeMap::new();
        for topic in topics {
            // A topic that does not exist (yet) gets no partitions.
            if let Ok(route) = self.client.topic_route(topic, true).await {
                let count = i32::try_from(route.partition_count()).unwrap_or(i32::MAX);
                partition_counts.insert(topic.clone(), count);
            }
        }
        let plan = range_assignment(&subscriptions, &partition_counts);
        let mut assignments = Vec::with_capacity(plan.len());
        for (member_id, assignment) in plan {
            let bytes = encode_assignment(&assignment).map_err(|source| ClientError::Encode {
                address: String::new(),
                api: ApiKey::SyncGroup.name(),
                source,
            })?;
            assignments.push(SyncGroupRequestAssignment {
                member_id: member_id.into(),
                assignment: bytes,
                ..SyncGroupRequestAssignment::default()
            });
        }
        Ok(assignments)
    }

    /// How long JoinGroup and SyncGroup may be held by the coordinator.
    fn rebalance_wait(&self) -> Duration {
        let rebalance = u64::try_from(self.options.rebalance_timeout_ms).unwrap_or(0);
        Duration::from_millis(rebalance).saturating_add(self.client.node_timeout())
    }

    fn start_heartbeat(&self) -> Heartbeat {
        let (stop, stopped) = oneshot::channel();
        let request = HeartbeatRequest {
            group_id: self.group_id.as_str().into(),
            generation_id: self.generation_id,
            member_id: self.member_id.as_str().into(),
            group_instance_id: None,
            ..HeartbeatRequest::default()
        };
        let beat = HeartbeatLoop {
            client: Client::new(self.client.bootstrap().to_vec())
                .with_node_timeout(self.client.node_timeout()),
            group_id: self.group_id.clone(),
            request,
            interval: Duration::from_millis(u64::from(self.options.heartbeat_interval_ms.max(1))),
            session: Duration::from_millis(
                u64::try_from(self.options.session_timeout_ms).unwrap_or(0),
            ),
        };
        Heartbeat {
            task: tokio::spawn(beat.run(stop)),
            stopped,
        }
    }

    /// Gives every assigned partition without a position one: the
    /// committed offset, or the reset policy's.
    async fn find_positions(&mut self) -> Result<(), ClientError> {
        let mut unknown: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partitions) in &self.assignment {
            for partition in partitions {
                let key = (topic.clone(), *partition);
                if !self.positions.contains_key(&key) && !self.reset_pending.contains(&key) {
                    unknown.entry(topic.clone()).or_default().push(*partition);
                }
            }
        }
        if !unknown.is_empty() {
            let committed = self
                .client
                .committed_offsets(&self.group_id, Some(&unknown))
                .await?;
            for (topic, partitions) in unknown {
                for partition in partitions {
                    let key = (topic.clone(), partition);
                    match committed.get(&key) {
                        Some(offset) => {
                            self.positions.insert(key, *offset);
                        }
                        None => {
                            self.reset_pending.insert(key);
                        }
                    }
                }
            }
        }
        self.reset_positions().await
    }

    /// Positions from the reset policy for partitions that need one.
    async fn reset_positions(&mut self) -> Result<(), ClientError> {
        let spec = match self.options.auto_offset_reset {
            AutoOffsetReset::Earliest => OffsetSpec::Earliest,
            AutoOffsetReset::Latest => OffsetSpec::Latest,
        };
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &self.reset_pending {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        for (topic, partitions) in by_topic {
            let listed = self.client.list_offsets(&topic, &partitions, spec).await?;
            for (partition, outcome) in listed {
                // A partition still failing is tried again on the next poll.
                if let Ok(listed) = outcome
                    && let Some(offset) = listed.offset
                {
                    let key = (topic.clone(), partition);
                    self.reset_pending.remove(&key);
                    self.positions.insert(key, offset);
                }
            }
        }
        Ok(())
    }

    /// One Fetch to each leader of the partitions with a position, each
    /// waiting up to `wait`; moves positions past what came back.
    async fn fetch_round(&mut self, wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
        if self.positions.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        }
        let mut by_leader: BTreeMap<String, Vec<FetchWant>> = BTreeMap::new();
        let mut by_topic: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for (topic, partition) in self.positions.keys() {
            by_topic
                .entry(topic.clone())
                .or_default()
                .insert(*partition);
        }
        for (topic, partitions) in by_topic {
            let grouped = match self
                .client
                .group_by_leader(&topic, &partitions, false)
                .await
            {
                Ok(grouped) => grouped,
                Err(error) if error.is_retriable() => continue,
                Err(error) => return Err(error),
            };
            if !grouped.failures.is_empty() {
                self.client.forget_route(&topic);
            }
            for (address, partitions) in grouped.leaders {
                for partition in partitions {
                    let offset = self
                        .positions
                        .get(&(topic.clone(), partition))
                        .copied()
                        .unwrap_or_default();
                    by_leader
                        .entry(address.clone())
                        .or_default()
                        .push(FetchWant {
                            topic: topic.clone(),
                            partition,
                            offset,
                            max_bytes: self.options.max_partition_bytes,
                        });
                }
            }
        }
        let mut records = Vec::new();
        for (address, wants) in by_leader {
            let fetched = match self.client.fetch_at(&address, &wants, wait).await {
                Ok(fetched) => fetched,
                Err(error) if error.is_retriable() => {
                    for want in &wants {
                        self.client.forget_route(&want.topic);
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            for part in fetched {
                let key = (part.topic.clone(), part.partition);
                match part.outcome {
                    Ok(result) => {
                        // A partition revoked meanwhile keeps no position.
                        if let Some(position) = self.positions.get_mut(&key) {
                            *position = result.next_offset;
                            records.extend(result.records);
                        }
                    }
                    Err(error) if error.error_code() == Some(ErrorCode::OffsetOutOfRange) => {
                        self.positions.remove(&key);
                        self.reset_pending.insert(key);
                    }
                    Err(error) if error.is_retriable() => self.client.forget_route(&part.topic),
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(records)
    }
}

/// Coordinator errors become `Err`, so that the caller finds the
/// coordinator again; other errors stay in the response for the caller.
fn refuse_coordinator_errors(address: &str, key: ApiKey, code: i16) -> Result<(), ClientError> {
    match failure(code) {
        Some(code) if is_coordinator_code(code) => check(address, key, code.code(), None),
        _ => Ok(()),
    }
}

/// Whether `code`, from a heartbeat or a commit, means the member must join
/// again.
fn needs_rejoin(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RebalanceInProgress
            | ErrorCode::IllegalGeneration
            | ErrorCode::UnknownMemberId
            | ErrorCode::FencedInstanceId
    )
}

/// The state of the heartbeat task: one member of one generation.
struct HeartbeatLoop {
    /// A client of its own (the consumer's is busy fetching), which finds
    /// the coordinator again when it moves.
    client: Client,
    group_id: String,
    request: HeartbeatRequest,
    interval: Duration,
    session: Duration,
}

impl HeartbeatLoop {
    /// Heartbeats until the coordinator says to rejoin, cannot be found, or
    /// has not answered for a session timeout; then reports why and ends.
    async fn run(mut self, stop: oneshot::Sender<Rejoin>) {
        let mut last_answer = Instant::now();
        let reason = loop {
            tokio::time::sleep(self.interval).await;
            let answer = self
                .client
                .call_coordinator(
                    &self.group_id,
                    self.request.clone(),
                    None,
                    |address, response: HeartbeatResponse| {
                        check(address, ApiKey::Heartbeat, response.error_code, None)
                    },
                )
                .await;
            match answer.as_ref().map_err(ClientError::error_code) {
                Ok(()) => last_answer = Instant::now(),
                Err(Some(code)) if is_coordinator_code(code) => break Rejoin::CoordinatorLost,
                Err(Some(code)) => break Rejoin::Told(code),
                // Unreachable for now; the session timeout bounds the wait.
                Err(None) => {}
            }
            if last_answer.elapsed() >= self.session {
                break Rejoin::CoordinatorLost;
            }
        };
        let _ = stop.send(reason);
    }
}

/// Kafka's RangeAssignor: for each topic, the members subscribed to it in
/// member id order take consecutive ranges of its partitions, the first
/// `partitions % members` of them one more. Every member gets an entry.
pub(crate) fn range_assignment(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, Vec<i32>)>> {
    let mut plan: BTreeMap<String, Vec<(String, Vec<i32>)>> = subscriptions
        .keys()
        .map(|member| (member.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(member, _)| member)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let member_count = i32::try_from(members.len()).unwrap_or(i32::MAX);
        let per_member = count / member_count;
        let extra = count % member_count;
        for (index, member) in members.into_iter().enumerate() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let start = per_member * index + index.min(extra);
            let length = per_member + i32::from(index < extra);
            if length > 0
                && let Some(assigned) = plan.get_mut(member)
            {
                assigned.push((topic.clone(), (start..start + length).collect()));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriptions(members: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        members
            .iter()
            .map(|(member, topics)| {
                (
                    member.to_string(),
                    topics.iter().map(|topic| topic.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let plan = range_assignment(
            &subscriptions(&[("b", &["t"]), ("a", &["t"])]),
            &BTreeMap::from([("t".to_string(), 5)]),
        );
        assert_eq!(plan["a"], vec![("t".to_string(), vec![0, 1, 2])]);
        assert_eq!(plan["b"], vec![("t".to_string(), vec![3, 4])]);
    }

    #[test]
    fn range_assigns_each_topic_among_its_own_subscribers() {
        let plan = range_assignment(
            &subscriptions(&[("a", &["t", "u"]), ("b", &["u"]), ("c", &["t"])]),
            &BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 1)]),
        );
        assert_eq!(
            plan["a"],
            vec![("t".to_string(), vec![0]), ("u".to_string(), vec![0])]
        );
        assert_eq!(plan["b"], Vec::new());
        assert_eq!(plan["c"], vec![("t".to_string(), vec![1])]);
    }

    #[test]
    fn more_members_than_partitions_leaves_some_without() {
        let plan = range_assignment(
            &subscriptions(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &BTreeMap::from([("t".to_string(), 2)]),
        );
        let assigned: Vec<usize> = plan.values().map(Vec::len).collect();
        assert_eq!(assigned, vec![1, 1, 0]);
    }
}
