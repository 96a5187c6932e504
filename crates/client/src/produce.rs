//! Writing records on [`Client`]: one uncompressed v2 batch per call, sent
//! to the partition's leader. Without a partition, one is chosen as Kafka's
//! default partitioner does for keyed records (murmur2 of the key) and in
//! turn for records without a key.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use eddy_protocol::messages::ProduceRequest;
use eddy_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use eddy_protocol::records::{Compression, Record, RecordBatch, RecordHeader};
use eddy_protocol::{ApiKey, ErrorCode};
use serde::Serialize;

use crate::client::{Client, Retry, RetryKind};
use crate::error::{ClientError, KafkaFailure};

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The record's timestamp; `None` takes the current time.
    pub timestamp_ms: Option<i64>,
}

impl NewRecord {
    /// A record with this key and value, no headers, stamped now.
    pub fn new(key: Option<impl Into<Bytes>>, value: impl Into<Bytes>) -> NewRecord {
        NewRecord {
            key: key.map(Into::into),
            value: Some(value.into()),
            ..NewRecord::default()
        }
    }
}

/// Where a produced batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProduceResult {
    pub partition: i32,
    /// The offset of the first record; `None` with acks=0, which gets no
    /// answer.
    pub base_offset: Option<i64>,
}

impl Client {
    /// Produces `records` as one batch to `topic`: to `partition`, or when
    /// `None`, to the partition Kafka's default partitioner picks for the
    /// first record's key (the next one in turn when it has no key).
    /// `acks` is 0 (no answer), 1 (the leader) or -1 (all in-sync replicas).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        records: Vec<NewRecord>,
        acks: i16,
    ) -> Result<ProduceResult, ClientError> {
        if records.is_empty() {
            return Err(ClientError::InvalidArgument {
                reason: "nothing to produce".into(),
            });
        }
        if !matches!(acks, -1..=1) {
            return Err(ClientError::InvalidArgument {
                reason: format!("acks must be -1, 0 or 1, not {acks}"),
            });
        }
        let partition = match partition {
            Some(partition) => partition,
            None => {
                self.choose_partition(topic, records[0].key.as_deref())
                    .await?
            }
        };
        let batch = encode_batch(records)?;
        let request = ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms: self.node_timeout_ms(),
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch),
                    ..PartitionProduceData::default()
                }],
                ..TopicProduceData::default()
            }],
            ..ProduceRequest::default()
        };
        let mut retry = Retry::new(RetryKind::Write);
        let base_offset = loop {
            let attempt = self
                .produce_at_leader(topic, partition, &request, retry.refresh())
                .await;
            match attempt {
                Err(error) if retry.again(&error).await => continue,
                result => break result?,
            }
        };
        Ok(ProduceResult {
            partition,
            base_offset,
        })
    }

    /// One Produce at the leader of `topic`-`partition`; the base offset,
    /// or `None` with acks=0.
    async fn produce_at_leader(
        &mut self,
        topic: &str,
        partition: i32,
        request: &ProduceRequest,
        refresh: bool,
    ) -> Result<Option<i64>, ClientError> {
        let address = self.leader_address(topic, partition, refresh).await?;
        if request.acks == 0 {
            self.send_unanswered_to(&address, request.clone()).await?;
            return Ok(None);
        }
        let response = self.send_to(&address, request.clone()).await?;
        let answer = response
            .responses
            .iter()
            .filter(|answer| answer.name.as_str() == topic)
            .flat_map(|answer| &answer.partition_responses)
            .find(|answer| answer.index == partition)
            .ok_or_else(|| ClientError::Protocol {
                address: address.clone(),
                api: ApiKey::Produce.name(),
                reason: format!("the response does not mention {topic}-{partition}"),
            })?;
        // Kafka explains a refused batch in the partition's message or in
        // the first record error.
        let message = answer.error_message.as_deref().or_else(|| {
            answer
                .record_errors
                .first()
                .and_then(|error| error.batch_index_error_message.as_deref())
        });
        KafkaFailure::check(answer.error_code, message)
            .map_err(|failure| failure.into_error(&address, ApiKey::Produce))?;
        Ok(Some(answer.base_offset))
    }

    /// The partition for a record with `key` (murmur2, as Kafka), or the
    /// next partition in turn for a record without one.
    async fn choose_partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
    ) -> Result<i32, ClientError> {
        let mut retry = Retry::new(RetryKind::Read);
        let route = loop {
            let attempt = match self.topic_route(topic, retry.refresh()).await {
                Ok(route) if route.partition_count() == 0 => Err(ClientError::Kafka {
                    address: self.bootstrap().join(","),
                    api: ApiKey::Metadata.name(),
                    code: ErrorCode::LeaderNotAvailable,
                    message: Some(format!("topic {topic} has no partitions yet")),
                }),
                other => other,
            };
            match attempt {
                Err(error) if retry.again(&error).await => continue,
                result => break result?,
            }
        };
        let count = i32::try_from(route.partition_count()).unwrap_or(i32::MAX);
        Ok(match key {
            Some(key) => partition_for_key(key, count),
            None => {
                let turn = self.round_robin.entry(topic.to_string()).or_insert(0);
                let partition = (*turn % count.unsigned_abs()) as i32;
                *turn = turn.wrapping_add(1);
                partition
            }
        })
    }
}

/// The partition Kafka's default partitioner gives a record with `key`
/// among `partition_count` partitions: `toPositive(murmur2(key)) % count`
/// (a count below 1 counts as 1).
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partition_count.max(1)
}

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed 0x9747b28c, as
/// its default partitioner hashes keys.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka takes the length as an int; keys are far below 2 GiB.
    let mut hash = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        hash = hash.wrapping_mul(M);
        hash ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        hash ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        hash ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        hash ^= u32::from(tail[0]);
        hash = hash.wrapping_mul(M);
    }
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(M);
    hash ^= hash >> 15;
    hash as i32
}

/// One uncompressed v2 batch of `records`, offsets from 0, timestamps
/// relative to the first record's.
fn encode_batch(records: Vec<NewRecord>) -> Result<Bytes, ClientError> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let base_timestamp_ms = records
        .first()
        .and_then(|record| record.timestamp_ms)
        .unwrap_or(now_ms);
    let mut encoded = Vec::with_capacity(records.len());
    for (index, record) in records.into_iter().enumerate() {
        let offset_delta = i32::try_from(index).map_err(|_| ClientError::InvalidArgument {
            reason: "too many records for one batch".into(),
        })?;
        let timestamp_ms = record.timestamp_ms.unwrap_or(now_ms);
        encoded.push(Record {
            attributes: 0,
            timestamp_delta: timestamp_ms.wrapping_sub(base_timestamp_ms),
            offset_delta,
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|(key, value)| RecordHeader { key, value })
                .collect(),
        });
    }
    RecordBatch::new(0, base_timestamp_ms, encoded)
        .encode(Compression::None)
        .map_err(|source| ClientError::InvalidArgument {
            reason: format!("the records cannot form a batch: {source}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keys_map_to_positive_partitions_below_the_count() {
        // toPositive(-973932308) = 1173551340.
        assert_eq!(partition_for_key(b"21", 4), 1173551340 % 4);
        assert_eq!(partition_for_key(b"21", 7), 1173551340 % 7);
        for count in 1..20 {
            let partition = partition_for_key(b"foobar", count);
            assert!((0..count).contains(&partition));
        }
    }

    #[test]
    fn a_batch_keeps_keys_values_headers_and_timestamps() {
        let records = vec![
            NewRecord {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v")),
                headers: vec![("h".into(), None)],
                timestamp_ms: Some(1_000),
            },
            NewRecord {
                key: None,
                value: None,
                headers: Vec::new(),
                timestamp_ms: Some(1_500),
            },
        ];
        let bytes = encode_batch(records).expect("encoding");
        let batch = RecordBatch::decode(&bytes).expect("decoding");
        assert_eq!(batch.base_timestamp, 1_000);
        assert_eq!(batch.max_timestamp, 1_500);
        assert_eq!(batch.last_offset_delta, 1);
        assert_eq!(batch.records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(batch.records[0].headers[0].key, "h");
        assert_eq!(batch.records[1].timestamp_delta, 500);
        assert_eq!(batch.records[1].value, None);
    }
}
