//! Reading records on [`Client`]: Fetch from a partition's leader, every
//! batch decoded whatever its codec, records below the asked offset (a batch
//! may start earlier) and control records left out.
//!
//! Fetch is sent at version 12 at most, the last that names topics (13 and
//! later name them by id), so a read needs no topic id.

use std::time::Duration;

use bytes::Bytes;
use eddy_protocol::messages::FetchRequest;
use eddy_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use eddy_protocol::messages::fetch_response::PartitionData;
use eddy_protocol::records::{self, RecordBatch, batches_allowing_partial_tail};
use eddy_protocol::{ApiKey, ErrorCode};
use serde::{Serialize, Serializer};

use crate::client::{Client, Retry, RetryKind};
use crate::error::{ClientError, check};
use crate::offsets::OffsetSpec;

/// The highest Fetch version used: the last one that names topics.
const FETCH_MAX_VERSION: i16 = 12;
/// Fetch's isolation level: every record, committed by a transaction or not.
const READ_UNCOMMITTED: i8 = 0;

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    #[serde(serialize_with = "optional_bytes")]
    pub key: Option<Bytes>,
    #[serde(serialize_with = "optional_bytes")]
    pub value: Option<Bytes>,
    /// Headers in order, duplicates kept; a `None` value is Kafka's null.
    #[serde(serialize_with = "headers")]
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Which clock a record's timestamp comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker on append (topic `message.timestamp.type`).
    LogAppendTime,
}

impl From<records::TimestampType> for TimestampType {
    fn from(kind: records::TimestampType) -> TimestampType {
        match kind {
            records::TimestampType::CreateTime => TimestampType::CreateTime,
            records::TimestampType::LogAppendTime => TimestampType::LogAppendTime,
        }
    }
}

/// What one Fetch of one partition returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchResult {
    pub records: Vec<ConsumedRecord>,
    /// The offset after the last record consumers may read.
    pub high_watermark: i64,
    /// The first offset the partition holds, when the node says.
    pub log_start_offset: Option<i64>,
    /// Where the next read should start: after the last batch returned
    /// (control batches included), or the asked offset if none came.
    pub next_offset: i64,
}

/// One partition to read in a Fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchWant {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) max_bytes: i32,
}

/// One partition's part of a Fetch response.
#[derive(Debug)]
pub(crate) struct PartitionFetch {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) outcome: Result<FetchResult, ClientError>,
}

impl Client {
    /// Reads `topic`-`partition` from `offset` at its leader: up to
    /// `max_bytes` (at least one batch, however large), waiting up to
    /// `max_wait` for a first record. An offset the partition no longer (or
    /// not yet) holds is [`ClientError::OffsetOutOfRange`], with the range
    /// it does hold.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait: Duration,
    ) -> Result<FetchResult, ClientError> {
        let want = FetchWant {
            topic: topic.to_string(),
            partition,
            offset,
            max_bytes,
        };
        let mut retry = Retry::new(RetryKind::Read);
        let result = loop {
            match self
                .fetch_from_leader(&want, max_wait, retry.refresh())
                .await
            {
                Err(error) if retry.again(&error).await => continue,
                result => break result,
            }
        };
        match result {
            Err(error) if error.error_code() == Some(ErrorCode::OffsetOutOfRange) => {
                Err(self.out_of_range(topic, partition, offset).await)
            }
            other => other,
        }
    }

    /// One Fetch of one partition at its leader (as cached, or as fresh
    /// metadata says when `refresh`).
    async fn fetch_from_leader(
        &mut self,
        want: &FetchWant,
        max_wait: Duration,
        refresh: bool,
    ) -> Result<FetchResult, ClientError> {
        let (topic, partition) = (&want.topic, want.partition);
        let address = self.leader_address(topic, partition, refresh).await?;
        let fetched = self
            .fetch_at(&address, std::slice::from_ref(want), max_wait)
            .await?;
        fetched
            .into_iter()
            .find(|part| &part.topic == topic && part.partition == partition)
            .map(|part| part.outcome)
            .unwrap_or_else(|| {
                Err(ClientError::Protocol {
                    address,
                    api: ApiKey::Fetch.name(),
                    reason: format!("the response does not mention {topic}-{partition}"),
                })
            })
    }

    /// The error for reading `offset` outside the partition, naming the
    /// range it holds if that can be looked up.
    pub(crate) async fn out_of_range(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> ClientError {
        let mut bound = async |spec| {
            let listed = self.list_offsets(topic, &[partition], spec).await.ok()?;
            listed.get(&partition)?.as_ref().ok()?.offset
        };
        let log_start_offset = bound(OffsetSpec::Earliest).await;
        let high_watermark = bound(OffsetSpec::Latest).await;
        ClientError::OffsetOutOfRange {
            topic: topic.to_string(),
            partition,
            offset,
            log_start_offset,
            high_watermark,
        }
    }

    /// One Fetch of `wants` at the node at `address`, which should lead
    /// them all; each partition's outcome comes back on its own.
    pub(crate) async fn fetch_at(
        &mut self,
        address: &str,
        wants: &[FetchWant],
        max_wait: Duration,
    ) -> Result<Vec<PartitionFetch>, ClientError> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for want in wants {
            let partition = FetchPartition {
                partition: want.partition,
                current_leader_epoch: -1,
                fetch_offset: want.offset,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: want.max_bytes,
                ..FetchPartition::default()
            };
            match topics
                .iter_mut()
                .find(|topic| topic.topic.as_str() == want.topic)
            {
                Some(topic) => topic.partitions.push(partition),
                None => topics.push(FetchTopic {
                    topic: want.topic.as_str().into(),
                    partitions: vec![partition],
                    ..FetchTopic::default()
                }),
            }
        }
        let max_wait_ms = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
        let total_bytes = wants
            .iter()
            .fold(0i32, |sum, want| sum.saturating_add(want.max_bytes.max(0)));
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms,
            min_bytes: 1,
            max_bytes: total_bytes,
            isolation_level: READ_UNCOMMITTED,
            session_id: 0,
            session_epoch: -1,
            topics,
            ..FetchRequest::default()
        };
        let timeout = self.node_timeout().saturating_add(max_wait);
        let response = self
            .send_to_with(address, request, Some(FETCH_MAX_VERSION), timeout)
            .await?;
        check(address, ApiKey::Fetch, response.error_code, None)?;
        let mut fetched = Vec::with_capacity(wants.len());
        for topic in &response.responses {
            for data in &topic.partitions {
                let Some(want) = wants.iter().find(|want| {
                    want.topic == topic.topic.as_str() && want.partition == data.partition_index
                }) else {
                    continue;
                };
                fetched.push(PartitionFetch {
                    topic: want.topic.clone(),
                    partition: want.partition,
                    outcome: decode_partition(address, want, data),
                });
            }
        }
        Ok(fetched)
    }
}

/// The records of one partition of a Fetch response, from `want.offset` on.
fn decode_partition(
    address: &str,
    want: &FetchWant,
    data: &PartitionData,
) -> Result<FetchResult, ClientError> {
    check(address, ApiKey::Fetch, data.error_code, None)?;
    let records_error = |source| ClientError::Records {
        address: address.to_string(),
        topic: want.topic.clone(),
        partition: want.partition,
        source,
    };
    let bytes = data.records.clone().unwrap_or_default();
    let mut next_offset = want.offset;
    let mut records = Vec::new();
    for item in batches_allowing_partial_tail(&bytes) {
        let (header, batch) = item.map_err(records_error)?;
        next_offset = next_offset.max(header.next_offset());
        if header.is_control() || header.next_offset() <= want.offset {
            continue;
        }
        let batch = RecordBatch::decode(&batch).map_err(records_error)?;
        let timestamp_type = batch.timestamp_type();
        for record in batch.records {
            let offset = batch
                .base_offset
                .wrapping_add(i64::from(record.offset_delta));
            if offset < want.offset {
                continue;
            }
            let timestamp_ms = match timestamp_type {
                records::TimestampType::LogAppendTime => batch.max_timestamp,
                records::TimestampType::CreateTime => {
                    batch.base_timestamp.wrapping_add(record.timestamp_delta)
                }
            };
            records.push(ConsumedRecord {
                topic: want.topic.clone(),
                partition: want.partition,
                offset,
                timestamp_ms,
                timestamp_type: timestamp_type.into(),
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|header| (header.key, header.value))
                    .collect(),
            });
        }
    }
    Ok(FetchResult {
        records,
        high_watermark: data.high_watermark,
        log_start_offset: (data.log_start_offset >= 0).then_some(data.log_start_offset),
        next_offset,
    })
}

fn optional_bytes<S: Serializer>(bytes: &Option<Bytes>, serializer: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serializer.serialize_bytes(bytes),
        None => serializer.serialize_none(),
    }
}

fn headers<S: Serializer>(
    headers: &[(String, Option<Bytes>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct Value<'a>(&'a Option<Bytes>);
    impl Serialize for Value<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            optional_bytes(self.0, serializer)
        }
    }
    let mut sequence = serializer.serialize_seq(Some(headers.len()))?;
    for (key, value) in headers {
        sequence.serialize_element(&(key, Value(value)))?;
    }
    sequence.end()
}
