//! Group state as records of the internal `__consumer_offsets` topic, in
//! Kafka's layouts: a committed offset is key v1 (group, topic, partition)
//! with value v3 (offset, leader epoch, metadata, commit timestamp); a
//! group's membership is key v2 (group) with a group-metadata value v3. A
//! null value is a tombstone. The topic is compacted, so the latest record
//! per key is what a restarted node reads back.

use bytes::Bytes;
use eddy_protocol::{Decoder, Encoder};

use super::group::{CommittedOffset, Group, GroupState};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// A decoded record of `__consumer_offsets`.
pub enum StoredRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    Group {
        group: String,
        value: Option<StoredGroup>,
    },
}

/// A group's membership as stored.
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<StoredMember>,
}

pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

fn finish(encoder: Encoder) -> Bytes {
    encoder.into_bytes()
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut encoder = Encoder::with_capacity(64);
    encoder.i16(OFFSET_KEY_VERSION);
    let _ = encoder.string(group, false, "group");
    let _ = encoder.string(topic, false, "topic");
    encoder.i32(partition);
    finish(encoder)
}

pub fn offset_value(offset: &CommittedOffset) -> Bytes {
    let mut encoder = Encoder::with_capacity(64);
    encoder.i16(OFFSET_VALUE_VERSION);
    encoder.i64(offset.offset);
    encoder.i32(offset.leader_epoch);
    let _ = encoder.string(&offset.metadata, false, "metadata");
    encoder.i64(offset.commit_timestamp_ms);
    finish(encoder)
}

pub fn group_key(group: &str) -> Bytes {
    let mut encoder = Encoder::with_capacity(64);
    encoder.i16(GROUP_KEY_VERSION);
    let _ = encoder.string(group, false, "group");
    finish(encoder)
}

pub fn group_value(group: &Group, now_ms: i64) -> Bytes {
    let mut encoder = Encoder::with_capacity(256);
    encoder.i16(GROUP_VALUE_VERSION);
    let _ = encoder.string(
        group.protocol_type.as_deref().unwrap_or(""),
        false,
        "protocol_type",
    );
    encoder.i32(group.generation_id);
    optional_string(&mut encoder, group.protocol_name.as_deref());
    optional_string(&mut encoder, group.leader.as_deref());
    encoder.i64(now_ms);
    encoder.i32(group.members.len() as i32);
    let protocol = group.protocol_name.clone().unwrap_or_default();
    for member in group.members.values() {
        let _ = encoder.string(&member.member_id, false, "member_id");
        optional_string(&mut encoder, member.group_instance_id.as_deref());
        let _ = encoder.string(&member.client_id, false, "client_id");
        let _ = encoder.string(&member.client_host, false, "client_host");
        encoder.i32(member.rebalance_timeout_ms);
        encoder.i32(member.session_timeout_ms);
        let subscription = member.metadata_for(&protocol);
        let _ = encoder.bytes(&subscription, false, "subscription");
        let _ = encoder.bytes(&member.assignment, false, "assignment");
    }
    finish(encoder)
}

fn optional_string(encoder: &mut Encoder, value: Option<&str>) {
    match value {
        Some(value) => {
            let _ = encoder.string(value, false, "string");
        }
        None => encoder.null_string(false),
    }
}

/// Reads one record; `None` for a record this version does not understand
/// (skipped, as Kafka skips unknown key versions).
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Option<StoredRecord> {
    let mut decoder = Decoder::new(key);
    match decoder.i16("key version").ok()? {
        0 | OFFSET_KEY_VERSION => {
            let group = decoder.string(false, "group").ok()?.to_string();
            let topic = decoder.string(false, "topic").ok()?.to_string();
            let partition = decoder.i32("partition").ok()?;
            let value = match value {
                None => None,
                Some(value) => Some(decode_offset(value)?),
            };
            Some(StoredRecord::Offset {
                group,
                topic,
                partition,
                value,
            })
        }
        GROUP_KEY_VERSION => {
            let group = decoder.string(false, "group").ok()?.to_string();
            let value = match value {
                None => None,
                Some(value) => Some(decode_group(value)?),
            };
            Some(StoredRecord::Group { group, value })
        }
        _ => None,
    }
}

fn decode_offset(value: &Bytes) -> Option<CommittedOffset> {
    let mut decoder = Decoder::new(value);
    let version = decoder.i16("value version").ok()?;
    let offset = decoder.i64("offset").ok()?;
    let leader_epoch = if version >= 3 {
        decoder.i32("leader_epoch").ok()?
    } else {
        -1
    };
    let metadata = decoder.string(false, "metadata").ok()?.to_string();
    let commit_timestamp_ms = decoder.i64("commit_timestamp").ok()?;
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group(value: &Bytes) -> Option<StoredGroup> {
    let mut decoder = Decoder::new(value);
    let version = decoder.i16("value version").ok()?;
    if version != GROUP_VALUE_VERSION {
        return None;
    }
    let protocol_type = decoder.string(false, "protocol_type").ok()?.to_string();
    let generation_id = decoder.i32("generation").ok()?;
    let protocol_name = decoder
        .nullable_string(false, "protocol")
        .ok()?
        .map(|name| name.to_string());
    let leader = decoder
        .nullable_string(false, "leader")
        .ok()?
        .map(|name| name.to_string());
    let _state_timestamp = decoder.i64("state_timestamp").ok()?;
    let count = decoder.array_length(false, "members").ok()?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(StoredMember {
            member_id: decoder.string(false, "member_id").ok()?.to_string(),
            group_instance_id: decoder
                .nullable_string(false, "instance")
                .ok()?
                .map(|id| id.to_string()),
            client_id: decoder.string(false, "client_id").ok()?.to_string(),
            client_host: decoder.string(false, "client_host").ok()?.to_string(),
            rebalance_timeout_ms: decoder.i32("rebalance_timeout").ok()?,
            session_timeout_ms: decoder.i32("session_timeout").ok()?,
            subscription: decoder.bytes(false, "subscription").ok()?,
            assignment: decoder.bytes(false, "assignment").ok()?,
        });
    }
    Some(StoredGroup {
        protocol_type,
        generation_id,
        protocol_name,
        leader,
        members,
    })
}

/// Rebuilds a group's membership from its stored record.
pub fn restore(group: &mut Group, stored: StoredGroup, now: std::time::Instant) {
    group.protocol_type = (!stored.protocol_type.is_empty()).then_some(stored.protocol_type);
    group.generation_id = stored.generation_id;
    group.protocol_name = stored.protocol_name.clone();
    group.leader = stored.leader;
    group.members.clear();
    group.static_members.clear();
    let protocol = stored.protocol_name.unwrap_or_default();
    for member in stored.members {
        if let Some(instance) = &member.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        group.members.insert(
            member.member_id.clone(),
            super::group::Member {
                member_id: member.member_id,
                group_instance_id: member.group_instance_id,
                client_id: member.client_id,
                client_host: member.client_host,
                session_timeout_ms: member.session_timeout_ms,
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                protocols: vec![(protocol.clone(), member.subscription)],
                assignment: member.assignment,
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            },
        );
    }
    group.state = if group.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
}
