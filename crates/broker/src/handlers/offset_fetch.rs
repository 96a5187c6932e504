//! OffsetFetch: committed offsets of one group (v0-7) or several (v8+), for
//! the partitions asked or all of them; -1 where nothing is committed.

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{
    OffsetFetchRequest, OffsetFetchResponse,
    offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
};

use crate::coordinator::group::CommittedOffset;
use crate::state::Broker;

type Fetched = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

pub fn handle(broker: &Broker, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|group| {
                let wanted = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|topic| (topic.name.to_string(), topic.partition_indexes))
                        .collect()
                });
                if let Err(code) = broker.groups.check_coordinator(&group.group_id) {
                    return OffsetFetchResponseGroup {
                        group_id: group.group_id,
                        error_code: code.code(),
                        ..Default::default()
                    };
                }
                let fetched = broker.groups.fetch_offsets(&group.group_id, wanted);
                OffsetFetchResponseGroup {
                    group_id: group.group_id,
                    topics: batched(fetched),
                    ..Default::default()
                }
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|topic| (topic.name.to_string(), topic.partition_indexes))
            .collect()
    });
    if let Err(code) = broker.groups.check_coordinator(&request.group_id) {
        return OffsetFetchResponse {
            error_code: code.code(),
            ..Default::default()
        };
    }
    let fetched = broker.groups.fetch_offsets(&request.group_id, wanted);
    OffsetFetchResponse {
        topics: fetched
            .into_iter()
            .map(|(topic, partitions)| OffsetFetchResponseTopic {
                name: StrBytes::from(topic),
                partitions: partitions
                    .into_iter()
                    .map(|(partition_index, committed)| {
                        let (committed_offset, committed_leader_epoch, metadata) =
                            fields(committed);
                        OffsetFetchResponsePartition {
                            partition_index,
                            committed_offset,
                            committed_leader_epoch,
                            metadata,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn batched(fetched: Fetched) -> Vec<OffsetFetchResponseTopics> {
    fetched
        .into_iter()
        .map(|(topic, partitions)| OffsetFetchResponseTopics {
            name: StrBytes::from(topic),
            partitions: partitions
                .into_iter()
                .map(|(partition_index, committed)| {
                    let (committed_offset, committed_leader_epoch, metadata) = fields(committed);
                    OffsetFetchResponsePartitions {
                        partition_index,
                        committed_offset,
                        committed_leader_epoch,
                        metadata,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// Offset, leader epoch and metadata on the wire: -1, -1, "" when none.
fn fields(committed: Option<CommittedOffset>) -> (i64, i32, Option<StrBytes>) {
    match committed {
        Some(committed) => (
            committed.offset,
            committed.leader_epoch,
            Some(StrBytes::from(committed.metadata)),
        ),
        None => (-1, -1, Some(StrBytes::from(""))),
    }
}
