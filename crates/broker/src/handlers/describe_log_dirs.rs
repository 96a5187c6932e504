//! DescribeLogDirs (key 35): where this node keeps each partition and how
//! big it is.
//!
//! Eddy keeps every partition in one data directory, so the answer is one
//! log dir: its absolute path and, for each requested partition, its size on
//! disk. Null `topics` means every partition; partitions or topics this node
//! does not have are left out, as Kafka does. There are no future replicas
//! (moves between dirs), so `offset_lag` is 0 and `is_future_key` false.
//! The volume's total and usable bytes (v4) are -1, Kafka's "unknown": the
//! standard library does not expose free disk space.

use std::collections::BTreeMap;
use std::sync::Arc;

use eddy_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use eddy_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use eddy_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use eddy_protocol::{ErrorCode, StrBytes};

use super::describe_configs::absolute_path;
use crate::state::{Broker, Partition, Topic};

/// Kafka's value for volume sizes it cannot tell.
const UNKNOWN_VOLUME_BYTES: i64 = -1;

pub fn handle(broker: &Broker, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let topics = match &request.topics {
        None => every_partition(broker),
        Some(requested) => requested_partitions(broker, requested),
    };
    let result = DescribeLogDirsResult {
        error_code: ErrorCode::None.code(),
        log_dir: StrBytes::from(absolute_path(&broker.data_dir)),
        topics,
        total_bytes: UNKNOWN_VOLUME_BYTES,
        usable_bytes: UNKNOWN_VOLUME_BYTES,
        ..Default::default()
    };
    DescribeLogDirsResponse {
        error_code: ErrorCode::None.code(),
        results: vec![result],
        ..Default::default()
    }
}

fn every_partition(broker: &Broker) -> Vec<DescribeLogDirsTopic> {
    broker
        .topics()
        .iter()
        .filter_map(|topic| describe_topic(topic, topic.hosted().into_iter().map(Some)))
        .collect()
}

fn requested_partitions(
    broker: &Broker,
    requested: &[DescribableLogDirTopic],
) -> Vec<DescribeLogDirsTopic> {
    // A topic asked for twice is described once, with the partitions of both.
    let mut wanted: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for topic in requested {
        wanted
            .entry(&*topic.topic)
            .or_default()
            .extend(&topic.partitions);
    }
    wanted
        .into_iter()
        .filter_map(|(name, mut indexes)| {
            let topic = broker.topic(name)?;
            indexes.sort_unstable();
            indexes.dedup();
            describe_topic(
                &topic,
                indexes.into_iter().map(|index| topic.partition(index)),
            )
        })
        .collect()
}

/// A topic's entry, or `None` when none of the partitions exist here.
fn describe_topic(
    topic: &Topic,
    partitions: impl Iterator<Item = Option<Arc<Partition>>>,
) -> Option<DescribeLogDirsTopic> {
    let partitions: Vec<DescribeLogDirsPartition> = partitions
        .flatten()
        .map(|partition| describe(&partition))
        .collect();
    (!partitions.is_empty()).then(|| DescribeLogDirsTopic {
        name: StrBytes::from(topic.name.as_str()),
        partitions,
        ..Default::default()
    })
}

fn describe(partition: &Partition) -> DescribeLogDirsPartition {
    let size_bytes = partition
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .size_bytes();
    DescribeLogDirsPartition {
        partition_index: partition.index,
        partition_size: i64::try_from(size_bytes).unwrap_or(i64::MAX),
        offset_lag: 0,
        is_future_key: false,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    fn request(topics: Option<&[(&str, &[i32])]>) -> DescribeLogDirsRequest {
        DescribeLogDirsRequest {
            topics: topics.map(|topics| {
                topics
                    .iter()
                    .map(|(name, partitions)| DescribableLogDirTopic {
                        topic: StrBytes::from(*name),
                        partitions: partitions.to_vec(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }
    }

    fn listed(response: &DescribeLogDirsResponse) -> Vec<(String, Vec<i32>)> {
        response.results[0]
            .topics
            .iter()
            .map(|topic| {
                let indexes = topic
                    .partitions
                    .iter()
                    .map(|partition| partition.partition_index)
                    .collect();
                (topic.name.to_string(), indexes)
            })
            .collect()
    }

    #[tokio::test]
    async fn null_topics_lists_every_partition_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 2, &[]).await;
        create_topic(&broker, "audit", 1, &[]).await;
        let response = handle(&broker, request(None));
        assert_eq!(response.error_code, 0);
        assert_eq!(response.results.len(), 1);
        let result = &response.results[0];
        assert_eq!(result.error_code, 0);
        assert_eq!(&*result.log_dir, absolute_path(dir.path()));
        assert_eq!((result.total_bytes, result.usable_bytes), (-1, -1));
        assert_eq!(
            listed(&response),
            [
                ("audit".to_string(), vec![0]),
                ("orders".to_string(), vec![0, 1])
            ]
        );
        let partition = &result.topics[1].partitions[0];
        assert!(partition.partition_size >= 0);
        assert_eq!((partition.offset_lag, partition.is_future_key), (0, false));
    }

    #[tokio::test]
    async fn only_requested_partitions_that_exist_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 3, &[]).await;
        create_topic(&broker, "audit", 1, &[]).await;
        let response = handle(
            &broker,
            request(Some(&[
                ("orders", &[2, 0, 9]),
                ("missing", &[0]),
                ("audit", &[5]),
                ("orders", &[0]),
            ])),
        );
        assert_eq!(listed(&response), [("orders".to_string(), vec![0, 2])]);
    }
}
