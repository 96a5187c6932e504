//! ListPartitionReassignments (key 46): the partitions whose replicas are
//! moving, from the metadata this node applied: every replica the
//! partition has while it moves, the ones being added and the ones about to
//! leave. Partitions that are not moving, and topics that do not exist, are
//! left out, as Kafka does.

use std::collections::BTreeMap;

use eddy_metadata::{MetadataImage, PartitionState};
use eddy_protocol::StrBytes;
use eddy_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use eddy_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use eddy_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::state::Broker;

pub fn handle(
    broker: &Broker,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = broker.image();
    ListPartitionReassignmentsResponse {
        topics: ongoing(&image, request.topics.as_deref()),
        ..Default::default()
    }
}

fn ongoing(
    image: &MetadataImage,
    wanted: Option<&[ListPartitionReassignmentsTopics]>,
) -> Vec<OngoingTopicReassignment> {
    let mut topics: BTreeMap<&str, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    match wanted {
        None => {
            for (name, topic) in &image.topics {
                for (index, state) in topic.partitions.iter().enumerate() {
                    if state.is_reassigning() {
                        topics
                            .entry(name.as_str())
                            .or_default()
                            .push(entry(index as i32, state));
                    }
                }
            }
        }
        Some(wanted) => {
            for request in wanted {
                let Some((name, topic)) = image.topics.get_key_value(request.name.as_str()) else {
                    continue;
                };
                let mut indexes = request.partition_indexes.clone();
                indexes.sort_unstable();
                indexes.dedup();
                for index in indexes {
                    let state = usize::try_from(index)
                        .ok()
                        .and_then(|position| topic.partitions.get(position));
                    if let Some(state) = state.filter(|state| state.is_reassigning()) {
                        topics
                            .entry(name.as_str())
                            .or_default()
                            .push(entry(index, state));
                    }
                }
            }
        }
    }
    topics
        .into_iter()
        .map(|(name, partitions)| OngoingTopicReassignment {
            name: StrBytes::from(name.to_string()),
            partitions,
            ..Default::default()
        })
        .collect()
}

fn entry(index: i32, state: &PartitionState) -> OngoingPartitionReassignment {
    OngoingPartitionReassignment {
        partition_index: index,
        replicas: state.replicas.clone(),
        adding_replicas: state.adding_replicas.clone(),
        removing_replicas: state.removing_replicas.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use eddy_metadata::TopicImage;

    use super::*;

    fn state(replicas: &[i32], adding: &[i32], removing: &[i32]) -> PartitionState {
        PartitionState {
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: adding.to_vec(),
            removing_replicas: removing.to_vec(),
        }
    }

    fn image() -> MetadataImage {
        let mut image = MetadataImage::default();
        image.topics.insert(
            "orders".to_string(),
            TopicImage {
                name: "orders".to_string(),
                id: 1,
                configs: Default::default(),
                partitions: vec![
                    state(&[1, 2], &[], &[]),
                    state(&[3, 4, 1, 2], &[3, 4], &[1, 2]),
                    state(&[1, 2, 3], &[3], &[]),
                ],
            },
        );
        image
    }

    #[test]
    fn only_partitions_in_flight_are_listed() {
        let topics = ongoing(&image(), None);
        assert_eq!(topics.len(), 1);
        type Listed = (i32, Vec<i32>, Vec<i32>, Vec<i32>);
        let listed: Vec<Listed> = topics[0]
            .partitions
            .iter()
            .map(|partition| {
                (
                    partition.partition_index,
                    partition.replicas.clone(),
                    partition.adding_replicas.clone(),
                    partition.removing_replicas.clone(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                (1, vec![3, 4, 1, 2], vec![3, 4], vec![1, 2]),
                (2, vec![1, 2, 3], vec![3], vec![]),
            ]
        );
    }

    #[test]
    fn named_partitions_are_listed_when_in_flight_and_unknown_ones_left_out() {
        let wanted = [
            ListPartitionReassignmentsTopics {
                name: StrBytes::from("orders"),
                partition_indexes: vec![0, 2, 2, 9],
                ..Default::default()
            },
            ListPartitionReassignmentsTopics {
                name: StrBytes::from("missing"),
                partition_indexes: vec![0],
                ..Default::default()
            },
        ];
        let topics = ongoing(&image(), Some(&wanted));
        assert_eq!(topics.len(), 1);
        let indexes: Vec<i32> = topics[0]
            .partitions
            .iter()
            .map(|partition| partition.partition_index)
            .collect();
        assert_eq!(indexes, [2]);
    }
}
