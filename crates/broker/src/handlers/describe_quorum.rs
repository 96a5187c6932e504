//! DescribeQuorum (key 55): the metadata quorum as this node sees it — the
//! active controller (Raft leader) and its term, the committed index, and
//! each voter's and observer's log end and last contact, for the
//! `__cluster_metadata` partition 0, as KRaft answers it. Any other
//! partition is UNKNOWN_TOPIC_OR_PARTITION.

use eddy_protocol::messages::{
    DescribeQuorumRequest, DescribeQuorumResponse,
    describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData},
};
use eddy_protocol::{ErrorCode, StrBytes};

use crate::state::Broker;

const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn handle(broker: &Broker, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let quorum = broker.metadata.quorum();
    let image = broker.image();
    // Only the leader knows how far the others are; elsewhere they are
    // unknown (-1), as Kafka reports what it has not seen.
    let leads = quorum.leader_id == Some(broker.node_id);
    let replica = |status: &eddy_metadata::ReplicaStatus| ReplicaState {
        replica_id: status.node_id,
        log_end_offset: if leads || status.node_id == broker.node_id {
            i64::try_from(status.log_end_offset).unwrap_or(i64::MAX)
        } else {
            -1
        },
        last_fetch_timestamp: status.last_fetch_ms,
        last_caught_up_timestamp: status.last_caught_up_ms,
        ..Default::default()
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let known = topic.topic_name.as_str() == METADATA_TOPIC;
            TopicData {
                partitions: topic
                    .partitions
                    .into_iter()
                    .map(|partition| {
                        if !known || partition.partition_index != 0 {
                            return PartitionData {
                                partition_index: partition.partition_index,
                                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                                leader_id: -1,
                                leader_epoch: -1,
                                high_watermark: -1,
                                ..Default::default()
                            };
                        }
                        PartitionData {
                            partition_index: 0,
                            leader_id: quorum.leader_id.unwrap_or(-1),
                            leader_epoch: i32::try_from(quorum.leader_epoch).unwrap_or(i32::MAX),
                            high_watermark: i64::try_from(quorum.high_watermark)
                                .unwrap_or(i64::MAX),
                            current_voters: quorum.voters.iter().map(replica).collect(),
                            observers: quorum.observers.iter().map(replica).collect(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                topic_name: topic.topic_name,
                ..Default::default()
            }
        })
        .collect();
    DescribeQuorumResponse {
        topics,
        // v2: where each voter's controller listener is.
        nodes: quorum
            .voters
            .iter()
            .filter_map(|voter| {
                let registration = image.broker(voter.node_id)?;
                let (host, port) = registration.controller_address.rsplit_once(':')?;
                Some(Node {
                    node_id: voter.node_id,
                    listeners: vec![Listener {
                        name: StrBytes::from("CONTROLLER"),
                        host: StrBytes::from(host),
                        port: port.parse().ok()?,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}
