//! One consumer group under the classic protocol, as Kafka runs it: members
//! join (with the MEMBER_ID_REQUIRED round trip), the coordinator waits for
//! every known member to rejoin or for the rebalance timeout, picks a
//! protocol all members support, names a leader, bumps the generation, and
//! hands the leader everyone's metadata; the leader's SyncGroup carries the
//! assignments to all. Sessions expire without heartbeats; static members
//! (`group.instance.id`) keep their assignment across restarts.
//!
//! This is plain state: no locks, no I/O. Responses to requests that wait
//! (JoinGroup, SyncGroup) are delivered through the channels stored here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

/// Kafka's group states, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a member learns when its JoinGroup completes.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// For the leader only: every member's id, instance id and metadata.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a member learns when its SyncGroup completes.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Protocols in the member's order of preference, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// The metadata this member sent for `protocol` (empty if none).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn session_expired(&self, now: Instant) -> bool {
        self.join_waiter.is_none()
            && self.sync_waiter.is_none()
            && now.duration_since(self.last_heartbeat)
                > Duration::from_millis(self.session_timeout_ms.max(0) as u64)
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pub pending_members: HashSet<String>,
    pub static_members: HashMap<String, String>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// While preparing a rebalance: when to complete it with whoever rejoined.
    pub join_deadline: Option<Instant>,
    /// A new group waits this long for more members before its first generation.
    pub join_not_before: Option<Instant>,
    /// While completing a rebalance: when to give up on the leader's SyncGroup.
    pub sync_deadline: Option<Instant>,
}

impl Group {
    pub fn new(group_id: &str) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: HashSet::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            join_deadline: None,
            join_not_before: None,
            sync_deadline: None,
        }
    }

    pub fn is_empty_of_members(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether every member supports one of `protocols` and the type matches.
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members.values().all(|member| {
                member
                    .protocols
                    .iter()
                    .any(|(supported, _)| supported == name)
            })
        })
    }

    /// Starts (or continues) a rebalance: every member must rejoin.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        let rebalance_timeout = self
            .members
            .values()
            .map(|member| member.rebalance_timeout_ms.max(0) as u64)
            .max()
            .unwrap_or(0);
        if self.state != GroupState::PreparingRebalance {
            if self.state == GroupState::Empty {
                self.join_not_before = Some(now + initial_delay);
            }
            self.join_deadline = Some(now + Duration::from_millis(rebalance_timeout));
        }
        // A rebalance that interrupts a sync answers the waiting followers.
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult {
                    error_code: eddy_protocol::ErrorCode::RebalanceInProgress.code(),
                    ..SyncResult::default()
                });
            }
        }
        self.sync_deadline = None;
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase when everyone rejoined (and any initial
    /// delay passed) or when the deadline passed. Returns true when the
    /// generation changed.
    pub fn try_complete_join(&mut self, now: Instant) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let everyone_rejoined = self
            .members
            .values()
            .all(|member| member.join_waiter.is_some())
            && self.pending_members.is_empty();
        let delayed = self
            .join_not_before
            .is_some_and(|not_before| now < not_before);
        let deadline_passed = self.join_deadline.is_some_and(|deadline| now >= deadline);
        if !(deadline_passed || (everyone_rejoined && !delayed)) {
            return false;
        }
        // Members that did not rejoin in time are gone.
        self.members
            .retain(|_, member| member.join_waiter.is_some());
        let remaining: HashSet<&String> = self.members.keys().collect();
        self.static_members
            .retain(|_, member_id| remaining.contains(member_id));
        self.pending_members.clear();
        self.join_deadline = None;
        self.join_not_before = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            self.protocol_name = None;
            return true;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|leader| self.members.contains_key(leader))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let everyone = self.members_metadata();
        let max_rebalance_ms = self
            .members
            .values()
            .map(|member| member.rebalance_timeout_ms.max(0) as u64)
            .max()
            .unwrap_or(0);
        self.sync_deadline = Some(now + Duration::from_millis(max_rebalance_ms));
        for member in self.members.values_mut() {
            member.last_heartbeat = now;
            member.assignment = Bytes::new();
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult {
                    error_code: 0,
                    generation_id: self.generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: member.member_id.clone(),
                    members: if member.member_id == leader {
                        everyone.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        true
    }

    /// Every member's id, instance id and metadata for the chosen protocol:
    /// what the leader gets in its JoinGroup answer.
    pub fn members_metadata(&self) -> Vec<(String, Option<String>, Bytes)> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|member| {
                (
                    member.member_id.clone(),
                    member.group_instance_id.clone(),
                    member.metadata_for(protocol),
                )
            })
            .collect()
    }

    /// Each member votes for its most preferred protocol that all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members.values().all(|member| {
                    member
                        .protocols
                        .iter()
                        .any(|(supported, _)| supported == *name)
                })
            })
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|name| votes.get(*name).copied().unwrap_or(0))
            .map(|name| (*name).clone())
    }

    /// The leader's assignments arrive: the group is stable and every waiting
    /// member gets its share.
    pub fn complete_sync(&mut self, assignments: HashMap<String, Bytes>) {
        for member in self.members.values_mut() {
            member.assignment = assignments
                .get(&member.member_id)
                .cloned()
                .unwrap_or_default();
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult {
                    error_code: 0,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                });
            }
        }
        self.sync_deadline = None;
        self.state = GroupState::Stable;
    }

    /// Removes a member; the rest rebalance (or the group empties).
    pub fn remove_member(&mut self, member_id: &str, now: Instant, initial_delay: Duration) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.group_instance_id {
            self.static_members.remove(instance);
        }
        if let Some(waiter) = member.join_waiter {
            let _ = waiter.send(JoinResult {
                error_code: eddy_protocol::ErrorCode::UnknownMemberId.code(),
                member_id: member_id.to_string(),
                generation_id: -1,
                ..JoinResult::default()
            });
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, initial_delay)
            }
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {}
        }
        if self.members.is_empty() && self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now);
        }
    }

    /// Members whose session ran out, for the periodic check.
    pub fn expired_members(&self, now: Instant) -> Vec<String> {
        self.members
            .values()
            .filter(|member| member.session_expired(now))
            .map(|member| member.member_id.clone())
            .collect()
    }
}
