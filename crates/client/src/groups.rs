//! Consumer groups on [`Client`], as an admin sees them: list groups on
//! every node, describe members and their assignments, read and (while the
//! group is empty) commit offsets, delete groups. Each group's requests go
//! to its coordinator, found again when it moves.
//!
//! Also the consumer protocol's member metadata and assignment layouts
//! (`ConsumerProtocolSubscription`, `ConsumerProtocolAssignment`), which
//! both describing groups and [`crate::GroupConsumer`] read and write.

use std::collections::BTreeMap;

use bytes::Bytes;
use eddy_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use eddy_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use eddy_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use eddy_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DeleteGroupsRequest,
    DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, ListGroupsRequest,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use eddy_protocol::{ApiKey, DecodeError, DecodeErrorKind, Decoder, Encodable, Encoder};
use serde::Serialize;

use crate::client::Client;
use crate::error::{ClientError, KafkaFailure, check};

/// The protocol type of groups formed by Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The newest consumer protocol layout this client reads.
const CONSUMER_PROTOCOL_MAX_VERSION: i16 = 3;

/// Offsets by (topic, partition).
pub type GroupOffsets = BTreeMap<(String, i32), i64>;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOverview {
    pub group_id: String,
    /// `consumer` for Kafka consumers, `connect` for Connect workers, ...
    pub protocol_type: String,
    /// `Stable`, `Empty`, ...; `None` from nodes older than ListGroups v4.
    pub state: Option<String>,
    /// `classic` or `consumer`; `None` from nodes older than ListGroups v5.
    pub group_type: Option<String>,
    /// The node that coordinates it (the one that listed it).
    pub coordinator_id: i32,
}

/// Every group the cluster's nodes list, and the nodes that did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupListing {
    pub groups: Vec<GroupOverview>,
    pub failures: Vec<NodeFailure>,
}

/// A node that could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFailure {
    pub node_id: i32,
    pub address: String,
    pub error: String,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    pub group_id: String,
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, `Dead`.
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignment strategy (`range`, ...), empty between generations.
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The topics it subscribed to (consumer groups only).
    pub subscription: Vec<String>,
    /// Its partitions by topic (consumer groups only).
    pub assignment: Vec<(String, Vec<i32>)>,
}

impl Client {
    /// Every group on every live node (ListGroups goes to each node, since
    /// each lists only the groups it coordinates).
    pub async fn list_groups(&mut self) -> Result<GroupListing, ClientError> {
        let (brokers, _) = self.live_brokers().await?;
        let mut listing = GroupListing {
            groups: Vec::new(),
            failures: Vec::new(),
        };
        for (node_id, address) in brokers {
            let answer = self.send_to(&address, ListGroupsRequest::default()).await;
            let answer = answer.and_then(|response| {
                check(&address, ApiKey::ListGroups, response.error_code, None)?;
                Ok(response)
            });
            match answer {
                Ok(response) => {
                    listing
                        .groups
                        .extend(response.groups.iter().map(|group| GroupOverview {
                            group_id: group.group_id.to_string(),
                            protocol_type: group.protocol_type.to_string(),
                            state: non_empty(group.group_state.as_str()),
                            group_type: non_empty(group.group_type.as_str()),
                            coordinator_id: node_id,
                        }))
                }
                Err(error) => listing.failures.push(NodeFailure {
                    node_id,
                    address,
                    error: error.to_string(),
                }),
            }
        }
        listing
            .groups
            .sort_by(|left, right| left.group_id.cmp(&right.group_id));
        // A group that moved mid-listing may show up twice.
        listing
            .groups
            .dedup_by(|later, earlier| later.group_id == earlier.group_id);
        Ok(listing)
    }

    /// Describes each of `group_ids` at its coordinator.
    pub async fn describe_groups(
        &mut self,
        group_ids: &[String],
    ) -> Result<Vec<GroupDescription>, ClientError> {
        let mut descriptions = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            descriptions.push(self.describe_group(group_id).await?);
        }
        Ok(descriptions)
    }

    async fn describe_group(&mut self, group_id: &str) -> Result<GroupDescription, ClientError> {
        let request = DescribeGroupsRequest {
            groups: vec![group_id.into()],
            ..DescribeGroupsRequest::default()
        };
        self.call_coordinator(
            group_id,
            request,
            None,
            |address: &str, response: DescribeGroupsResponse| {
                let group = response
                    .groups
                    .iter()
                    .find(|group| group.group_id.as_str() == group_id)
                    .ok_or_else(|| ClientError::Protocol {
                        address: address.to_string(),
                        api: ApiKey::DescribeGroups.name(),
                        reason: format!("the response does not mention group {group_id}"),
                    })?;
                check(address, ApiKey::DescribeGroups, group.error_code, None)?;
                let is_consumer = group.protocol_type.as_str() == CONSUMER_PROTOCOL_TYPE;
                let members = group
                    .members
                    .iter()
                    .map(|member| GroupMember {
                        member_id: member.member_id.to_string(),
                        group_instance_id: member
                            .group_instance_id
                            .as_ref()
                            .map(ToString::to_string),
                        client_id: member.client_id.to_string(),
                        client_host: member.client_host.to_string(),
                        // Another client's bytes that do not parse leave these
                        // empty rather than hide the whole group.
                        subscription: if is_consumer {
                            decode_subscription(&member.member_metadata).unwrap_or_default()
                        } else {
                            Vec::new()
                        },
                        assignment: if is_consumer {
                            decode_assignment(&member.member_assignment).unwrap_or_default()
                        } else {
                            Vec::new()
                        },
                    })
                    .collect();
                Ok(GroupDescription {
                    group_id: group.group_id.to_string(),
                    state: group.group_state.to_string(),
                    protocol_type: group.protocol_type.to_string(),
                    protocol: group.protocol_data.to_string(),
                    members,
                })
            },
        )
        .await
    }

    /// Every offset `group_id` has committed.
    pub async fn group_offsets(&mut self, group_id: &str) -> Result<GroupOffsets, ClientError> {
        self.committed_offsets(group_id, None).await
    }

    /// Offsets `group_id` committed, for `partitions` (by topic) or for all
    /// partitions. Partitions without a committed offset are left out.
    pub(crate) async fn committed_offsets(
        &mut self,
        group_id: &str,
        partitions: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<GroupOffsets, ClientError> {
        let old_topics = partitions.map(|partitions| {
            partitions
                .iter()
                .map(|(topic, indexes)| OffsetFetchRequestTopic {
                    name: topic.as_str().into(),
                    partition_indexes: indexes.clone(),
                    ..OffsetFetchRequestTopic::default()
                })
                .collect()
        });
        let new_topics = partitions.map(|partitions| {
            partitions
                .iter()
                .map(|(topic, indexes)| OffsetFetchRequestTopics {
                    name: topic.as_str().into(),
                    partition_indexes: indexes.clone(),
                    ..OffsetFetchRequestTopics::default()
                })
                .collect()
        });
        // Versions up to 7 ask for one group in top-level fields, later
        // ones in `groups`; each version encodes only its own fields.
        let request = OffsetFetchRequest {
            group_id: group_id.into(),
            topics: old_topics,
            groups: vec![OffsetFetchRequestGroup {
                group_id: group_id.into(),
                member_id: None,
                member_epoch: -1,
                topics: new_topics,
                ..OffsetFetchRequestGroup::default()
            }],
            require_stable: false,
            ..OffsetFetchRequest::default()
        };
        self.call_coordinator(
            group_id,
            request,
            None,
            |address: &str, response: OffsetFetchResponse| {
                let mut offsets = GroupOffsets::new();
                let mut answer = |topic: &str, partition: i32, offset: i64, code: i16| {
                    check(address, ApiKey::OffsetFetch, code, None)?;
                    if offset >= 0 {
                        offsets.insert((topic.to_string(), partition), offset);
                    }
                    Ok::<(), ClientError>(())
                };
                if let Some(group) = response
                    .groups
                    .iter()
                    .find(|group| group.group_id.as_str() == group_id)
                {
                    check(address, ApiKey::OffsetFetch, group.error_code, None)?;
                    for topic in &group.topics {
                        for partition in &topic.partitions {
                            answer(
                                topic.name.as_str(),
                                partition.partition_index,
                                partition.committed_offset,
                                partition.error_code,
                            )?;
                        }
                    }
                } else {
                    check(address, ApiKey::OffsetFetch, response.error_code, None)?;
                    for topic in &response.topics {
                        for partition in &topic.partitions {
                            answer(
                                topic.name.as_str(),
                                partition.partition_index,
                                partition.committed_offset,
                                partition.error_code,
                            )?;
                        }
                    }
                }
                Ok(offsets)
            },
        )
        .await
    }

    /// Commits `offsets` for `group_id` as an admin (generation -1, no
    /// member id), which Kafka allows only while the group has no members;
    /// otherwise the answer is its error (UNKNOWN_MEMBER_ID).
    pub async fn commit_group_offsets(
        &mut self,
        group_id: &str,
        offsets: &GroupOffsets,
    ) -> Result<(), ClientError> {
        self.commit_offsets(group_id, -1, "", offsets).await
    }

    /// OffsetCommit for a member of `generation_id` (or -1 and an empty
    /// member id for the admin path). The first partition's error fails it.
    pub(crate) async fn commit_offsets(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        offsets: &GroupOffsets,
    ) -> Result<(), ClientError> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for ((topic, partition), offset) in offsets {
            let entry = OffsetCommitRequestPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                committed_metadata: Some("".into()),
                ..OffsetCommitRequestPartition::default()
            };
            match topics.iter_mut().find(|known| known.name.as_str() == topic) {
                Some(known) => known.partitions.push(entry),
                None => topics.push(OffsetCommitRequestTopic {
                    name: topic.as_str().into(),
                    partitions: vec![entry],
                    ..OffsetCommitRequestTopic::default()
                }),
            }
        }
        let request = OffsetCommitRequest {
            group_id: group_id.into(),
            generation_id_or_member_epoch: generation_id,
            member_id: member_id.into(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics,
            ..OffsetCommitRequest::default()
        };
        self.call_coordinator(
            group_id,
            request,
            None,
            |address: &str, response: OffsetCommitResponse| {
                for topic in &response.topics {
                    for partition in &topic.partitions {
                        check(address, ApiKey::OffsetCommit, partition.error_code, None)?;
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// Deletes each of `group_ids` (only empty groups can go); the answer
    /// says, per group, whether it went.
    pub async fn delete_groups(
        &mut self,
        group_ids: &[String],
    ) -> Result<BTreeMap<String, Result<(), KafkaFailure>>, ClientError> {
        let mut outcomes = BTreeMap::new();
        for group_id in group_ids {
            let request = DeleteGroupsRequest {
                groups_names: vec![group_id.as_str().into()],
                ..DeleteGroupsRequest::default()
            };
            let outcome = self
                .call_coordinator(
                    group_id,
                    request,
                    None,
                    |address: &str, response: DeleteGroupsResponse| {
                        let code = response
                            .results
                            .iter()
                            .find(|result| result.group_id.as_str() == group_id)
                            .map(|result| result.error_code)
                            .ok_or_else(|| ClientError::Protocol {
                                address: address.to_string(),
                                api: ApiKey::DeleteGroups.name(),
                                reason: format!("the response does not mention group {group_id}"),
                            })?;
                        check(address, ApiKey::DeleteGroups, code, None)
                    },
                )
                .await;
            let outcome = match outcome {
                Ok(()) => Ok(()),
                Err(error @ (ClientError::Kafka { .. } | ClientError::Protocol { .. })) => {
                    Err(KafkaFailure::from(&error))
                }
                Err(error) => return Err(error),
            };
            outcomes.insert(group_id.clone(), outcome);
        }
        Ok(outcomes)
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// A consumer's JoinGroup metadata: its subscription, layout version 0.
pub(crate) fn encode_subscription(topics: &[String]) -> Result<Bytes, eddy_protocol::EncodeError> {
    let subscription = ConsumerProtocolSubscription {
        topics: topics.iter().map(|topic| topic.as_str().into()).collect(),
        user_data: None,
        ..ConsumerProtocolSubscription::default()
    };
    let mut encoder = Encoder::new();
    encoder.i16(0);
    subscription.encode(&mut encoder, 0)?;
    Ok(encoder.into_bytes())
}

/// A member's assignment for SyncGroup, layout version 0.
pub(crate) fn encode_assignment(
    assignment: &[(String, Vec<i32>)],
) -> Result<Bytes, eddy_protocol::EncodeError> {
    let assignment = ConsumerProtocolAssignment {
        assigned_partitions: assignment
            .iter()
            .map(|(topic, partitions)| AssignedTopic {
                topic: topic.as_str().into(),
                partitions: partitions.clone(),
                ..AssignedTopic::default()
            })
            .collect(),
        user_data: None,
        ..ConsumerProtocolAssignment::default()
    };
    let mut encoder = Encoder::new();
    encoder.i16(0);
    assignment.encode(&mut encoder, 0)?;
    Ok(encoder.into_bytes())
}

/// The topics of a consumer's subscription; empty bytes are no topics.
pub(crate) fn decode_subscription(bytes: &Bytes) -> Result<Vec<String>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = Decoder::new(bytes);
    let version = layout_version(&mut decoder, "ConsumerProtocolSubscription.Version")?;
    let subscription = ConsumerProtocolSubscription::decode(&mut decoder, version)?;
    Ok(subscription
        .topics
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// A consumer's partitions by topic; empty bytes are no partitions.
pub(crate) fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, Vec<i32>)>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = Decoder::new(bytes);
    let version = layout_version(&mut decoder, "ConsumerProtocolAssignment.Version")?;
    let assignment = ConsumerProtocolAssignment::decode(&mut decoder, version)?;
    Ok(assignment
        .assigned_partitions
        .iter()
        .map(|topic| (topic.topic.to_string(), topic.partitions.clone()))
        .collect())
}

/// The layout version that prefixes consumer protocol bytes. Later
/// layouts only add fields at the end, so they are read as the newest
/// this client knows, as Kafka's consumer does.
fn layout_version(decoder: &mut Decoder<'_>, field: &'static str) -> Result<i16, DecodeError> {
    let version = decoder.i16(field)?;
    if version < 0 {
        return Err(DecodeError::new(
            field,
            DecodeErrorKind::UnsupportedVersion(version),
        ));
    }
    Ok(version.min(CONSUMER_PROTOCOL_MAX_VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_and_subscriptions_round_trip() {
        let assignment = vec![("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])];
        let bytes = encode_assignment(&assignment).expect("encoding");
        assert_eq!(decode_assignment(&bytes).expect("decoding"), assignment);
        let topics = vec!["a".to_string(), "b".to_string()];
        let bytes = encode_subscription(&topics).expect("encoding");
        assert_eq!(decode_subscription(&bytes).expect("decoding"), topics);
    }

    #[test]
    fn a_newer_assignment_layout_is_read_as_the_newest_known() {
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![AssignedTopic {
                topic: "t".into(),
                partitions: vec![3],
                ..AssignedTopic::default()
            }],
            ..ConsumerProtocolAssignment::default()
        };
        let mut encoder = Encoder::new();
        encoder.i16(7);
        assignment.encode(&mut encoder, 3).expect("encoding");
        encoder.i32(42); // A field of a layout from the future.
        let bytes = encoder.into_bytes();
        assert_eq!(
            decode_assignment(&bytes).expect("decoding"),
            vec![("t".to_string(), vec![3])]
        );
    }

    #[test]
    fn truncated_assignment_bytes_are_an_error_not_a_panic() {
        let bytes = encode_assignment(&[("topic".to_string(), vec![1, 2, 3])]).expect("encoding");
        for length in 1..bytes.len() {
            assert!(decode_assignment(&bytes.slice(..length)).is_err());
        }
    }
}
