//! OffsetForLeaderEpoch: the end offset of the requested leader epoch, from
//! each partition's leader-epoch checkpoint. Consumers (librdkafka uses v2+)
//! ask after a leader change to detect truncation; a wrong answer makes them
//! reset. Only the partition's leader answers.

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
};

use crate::state::Broker;

pub fn handle(
    broker: &Broker,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic_request| {
            let topic = broker.topic(&topic_request.topic);
            let partitions = topic_request
                .partitions
                .iter()
                .map(|wanted| {
                    let partition = match &topic {
                        None => Err(ErrorCode::UnknownTopicOrPartition),
                        Some(topic) => topic.replica(wanted.partition).and_then(|partition| {
                            partition
                                .check_leader(broker.node_id, wanted.current_leader_epoch)
                                .map(|_| partition)
                        }),
                    };
                    match partition {
                        Err(code) => EpochEndOffset {
                            error_code: code.code(),
                            partition: wanted.partition,
                            leader_epoch: -1,
                            end_offset: -1,
                            ..Default::default()
                        },
                        Ok(partition) => {
                            let log = partition
                                .log
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                            let (leader_epoch, end_offset) =
                                log.end_offset_for_epoch(wanted.leader_epoch);
                            EpochEndOffset {
                                partition: wanted.partition,
                                leader_epoch,
                                end_offset,
                                ..Default::default()
                            }
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult {
                topic: topic_request.topic,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    }
}
