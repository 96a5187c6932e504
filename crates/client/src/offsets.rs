//! Offsets and sizes on [`Client`]: ListOffsets (earliest, latest, by
//! timestamp) at each partition's leader, and DescribeLogDirs at one node.

use std::collections::{BTreeMap, BTreeSet};

use eddy_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use eddy_protocol::messages::{DescribeLogDirsRequest, ListOffsetsRequest};
use eddy_protocol::{ApiKey, ErrorCode};
use serde::Serialize;

use crate::client::{Client, RETRY_ATTEMPTS, retry_backoff};
use crate::error::{
    ClientError, KafkaFailure, check, failure, is_retriable_code, optional_code_name,
};

/// ListOffsets' replica id for a consumer, and Kafka's for a debugging tool
/// (any replica answers, "latest" being its log end offset).
const CONSUMER_REPLICA_ID: i32 = -1;
const DEBUGGING_REPLICA_ID: i32 = -2;

/// Which offset ListOffsets looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OffsetSpec {
    /// The first offset the partition still holds (the log start offset).
    Earliest,
    /// The offset the next record will get (the high watermark).
    Latest,
    /// The first offset whose record's timestamp is at or after this many
    /// milliseconds since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    /// The timestamp field of ListOffsets, where -2 and -1 are Kafka's
    /// markers for earliest and latest.
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(timestamp_ms) => timestamp_ms,
        }
    }
}

/// One partition's answer to ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListedOffset {
    /// `None` when no record has a timestamp at or after the one asked.
    pub offset: Option<i64>,
    /// The timestamp of the record found by timestamp; `None` for
    /// earliest and latest, and when no record was found.
    pub timestamp_ms: Option<i64>,
}

/// What one node stores in its log directories (DescribeLogDirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogDir {
    pub path: String,
    #[serde(serialize_with = "optional_code_name")]
    pub error: Option<ErrorCode>,
    /// The volume's size and free space, when the node says (version 4+).
    pub total_bytes: Option<i64>,
    pub usable_bytes: Option<i64>,
    pub replicas: Vec<ReplicaSize>,
}

/// One replica in a log directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaSize {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: i64,
    /// How far this replica's log end is behind the leader's high watermark
    /// (or behind the current replica, for a future one); Kafka reports 0
    /// for a leader.
    pub offset_lag: i64,
    /// A replica being moved into this directory.
    pub is_future: bool,
}

impl Client {
    /// Looks up `spec` in each of `partitions` of `topic`, asking each
    /// partition's leader. Partitions whose leadership is moving are asked
    /// again after a metadata refresh, a bounded number of times; what still
    /// fails is reported per partition.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, Result<ListedOffset, KafkaFailure>>, ClientError> {
        let mut pending: BTreeSet<i32> = partitions.iter().copied().collect();
        let mut answers = BTreeMap::new();
        let mut last_failures: BTreeMap<i32, KafkaFailure> = BTreeMap::new();
        for attempt in 0..RETRY_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(retry_backoff(attempt)).await;
            }
            let by_leader = match self.group_by_leader(topic, &pending, attempt > 0).await {
                Ok(grouped) => grouped,
                Err(error) if error.is_retriable() && attempt + 1 < RETRY_ATTEMPTS => continue,
                Err(error) => return Err(error),
            };
            for (partition, failure) in by_leader.failures {
                last_failures.insert(partition, failure);
            }
            for (address, leader_partitions) in by_leader.leaders {
                let outcome = self
                    .list_offsets_at(&address, topic, &leader_partitions, spec)
                    .await;
                match outcome {
                    Ok(listed) => {
                        for (partition, result) in listed {
                            match result {
                                Err(failure) if is_retriable_code(failure.code) => {
                                    last_failures.insert(partition, failure);
                                }
                                result => {
                                    pending.remove(&partition);
                                    answers.insert(partition, result);
                                }
                            }
                        }
                    }
                    Err(error) if error.is_retriable() => {
                        for partition in leader_partitions {
                            last_failures.insert(partition, KafkaFailure::from(&error));
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        for partition in pending {
            let failure = last_failures
                .remove(&partition)
                .unwrap_or_else(|| KafkaFailure::new(ErrorCode::UnknownServerError, "no answer"));
            answers.insert(partition, Err(failure));
        }
        Ok(answers)
    }

    /// Each of `partitions`' log end offset in the replica the node at
    /// `address` holds, leader or follower: how far it has copied (ListOffsets
    /// with Kafka's debugging replica id). A partition the node holds no
    /// replica of answers with an error.
    pub async fn replica_end_offsets_from(
        &mut self,
        address: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Result<i64, KafkaFailure>>, ClientError> {
        let listed = self
            .list_offsets_as(
                address,
                topic,
                partitions,
                OffsetSpec::Latest,
                DEBUGGING_REPLICA_ID,
            )
            .await?;
        Ok(listed
            .into_iter()
            .map(|(partition, result)| {
                let offset = result.map(|listed| listed.offset.unwrap_or(-1));
                (partition, offset)
            })
            .collect())
    }

    /// ListOffsets for some partitions of `topic` at the node at `address`.
    async fn list_offsets_at(
        &mut self,
        address: &str,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<Vec<(i32, Result<ListedOffset, KafkaFailure>)>, ClientError> {
        self.list_offsets_as(address, topic, partitions, spec, CONSUMER_REPLICA_ID)
            .await
    }

    async fn list_offsets_as(
        &mut self,
        address: &str,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        replica_id: i32,
    ) -> Result<Vec<(i32, Result<ListedOffset, KafkaFailure>)>, ClientError> {
        let request = ListOffsetsRequest {
            replica_id,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: partitions
                    .iter()
                    .map(|partition| ListOffsetsPartition {
                        partition_index: *partition,
                        current_leader_epoch: -1,
                        timestamp: spec.wire_timestamp(),
                        ..ListOffsetsPartition::default()
                    })
                    .collect(),
                ..ListOffsetsTopic::default()
            }],
            timeout_ms: self.node_timeout_ms(),
            ..ListOffsetsRequest::default()
        };
        let response = self.send_to(address, request).await?;
        let answered = response
            .topics
            .iter()
            .filter(|answer| answer.name.as_str() == topic)
            .flat_map(|answer| &answer.partitions);
        let mut listed = Vec::with_capacity(partitions.len());
        for partition in answered {
            let result = KafkaFailure::check(partition.error_code, None).map(|()| {
                let offset = (partition.offset >= 0).then_some(partition.offset);
                let timestamp_ms = match spec {
                    OffsetSpec::Timestamp(_) if partition.timestamp >= 0 => {
                        Some(partition.timestamp)
                    }
                    _ => None,
                };
                ListedOffset {
                    offset,
                    timestamp_ms,
                }
            });
            listed.push((partition.partition_index, result));
        }
        Ok(listed)
    }

    /// The log directories of the node at `address` and the size of each
    /// replica it holds.
    pub async fn describe_log_dirs_from(
        &mut self,
        address: &str,
    ) -> Result<Vec<LogDir>, ClientError> {
        let request = DescribeLogDirsRequest {
            topics: None,
            ..DescribeLogDirsRequest::default()
        };
        let response = self.send_to(address, request).await?;
        check(address, ApiKey::DescribeLogDirs, response.error_code, None)?;
        Ok(response
            .results
            .iter()
            .map(|dir| LogDir {
                path: dir.log_dir.to_string(),
                error: failure(dir.error_code),
                total_bytes: (dir.total_bytes >= 0).then_some(dir.total_bytes),
                usable_bytes: (dir.usable_bytes >= 0).then_some(dir.usable_bytes),
                replicas: dir
                    .topics
                    .iter()
                    .flat_map(|topic| {
                        topic.partitions.iter().map(|partition| ReplicaSize {
                            topic: topic.name.to_string(),
                            partition: partition.partition_index,
                            size_bytes: partition.partition_size,
                            offset_lag: partition.offset_lag,
                            is_future: partition.is_future_key,
                        })
                    })
                    .collect(),
            })
            .collect())
    }

    /// `partitions` of `topic` by the address of their leader; partitions
    /// without a (known) leader or unknown to the topic are failures.
    pub(crate) async fn group_by_leader(
        &mut self,
        topic: &str,
        partitions: &BTreeSet<i32>,
        refresh: bool,
    ) -> Result<ByLeader, ClientError> {
        let mut route = self.topic_route(topic, refresh).await?;
        if !refresh
            && partitions
                .iter()
                .any(|partition| !route.leaders.contains_key(partition))
        {
            route = self.topic_route(topic, true).await?;
        }
        let mut grouped = ByLeader::default();
        for &partition in partitions {
            let leader = match route.leaders.get(&partition) {
                None => {
                    let failure = KafkaFailure::new(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic {topic} has no partition {partition}"),
                    );
                    grouped.failures.push((partition, failure));
                    continue;
                }
                Some(leader) => leader.and_then(|id| self.broker_address(id)),
            };
            match leader {
                Some(address) => grouped.leaders.entry(address).or_default().push(partition),
                None => grouped.failures.push((
                    partition,
                    KafkaFailure::new(
                        ErrorCode::LeaderNotAvailable,
                        format!("{topic}-{partition} has no leader"),
                    ),
                )),
            }
        }
        Ok(grouped)
    }
}

/// Partitions grouped by their leader's address, and those that have none.
#[derive(Debug, Default)]
pub(crate) struct ByLeader {
    pub(crate) leaders: BTreeMap<String, Vec<i32>>,
    pub(crate) failures: Vec<(i32, KafkaFailure)>,
}
