//! OffsetDelete: removes committed offsets of a group that is not
//! consuming (GROUP_SUBSCRIBED_TO_TOPIC while it has members).

use eddy_protocol::messages::{
    OffsetDeleteRequest, OffsetDeleteResponse,
    offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
};

use crate::state::Broker;

pub fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(move |partition| (topic.name.to_string(), partition.partition_index))
        })
        .collect();
    match broker
        .groups
        .delete_offsets(broker, &request.group_id, partitions)
    {
        Err(code) => OffsetDeleteResponse {
            error_code: code.code(),
            ..Default::default()
        },
        Ok(results) => {
            let mut results = results.into_iter();
            OffsetDeleteResponse {
                topics: request
                    .topics
                    .into_iter()
                    .map(|topic| OffsetDeleteResponseTopic {
                        partitions: topic
                            .partitions
                            .iter()
                            .map(|partition| OffsetDeleteResponsePartition {
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
    }
}
