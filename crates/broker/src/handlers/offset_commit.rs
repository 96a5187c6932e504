//! OffsetCommit: a group member's progress, or (generation -1, no member)
//! offsets set for a group with no members — how consumers without a group
//! and admin tools such as `kafka-consumer-groups --reset-offsets` commit.

use eddy_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse,
    offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
};

use crate::coordinator::group::CommittedOffset;
use crate::state::{Broker, now_ms};

pub async fn handle(broker: &Broker, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let now = now_ms();
    let offsets = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(move |partition| {
                (
                    (topic.name.to_string(), partition.partition_index),
                    CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: partition.committed_leader_epoch,
                        metadata: partition
                            .committed_metadata
                            .as_ref()
                            .map(|text| text.to_string())
                            .unwrap_or_default(),
                        commit_timestamp_ms: if partition.commit_timestamp > 0 {
                            partition.commit_timestamp
                        } else {
                            now
                        },
                    },
                )
            })
        })
        .collect();
    let results = broker
        .groups
        .commit(
            broker,
            &request.group_id,
            request.generation_id_or_member_epoch,
            &request.member_id,
            request.group_instance_id.as_deref(),
            offsets,
        )
        .await;
    let mut results = results.into_iter();
    OffsetCommitResponse {
        topics: request
            .topics
            .into_iter()
            .map(|topic| OffsetCommitResponseTopic {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|partition| OffsetCommitResponsePartition {
                        partition_index: partition.partition_index,
                        error_code: results.next().map_or(0, |(_, code)| code.code()),
                        ..Default::default()
                    })
                    .collect(),
                name: topic.name,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
