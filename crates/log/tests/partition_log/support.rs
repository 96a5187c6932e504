//! Batches and logs for the tests.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use eddy_log::{LogConfig, PartitionLog};
use eddy_protocol::records::{self, Compression, Record, RecordBatch};

/// An idempotent producer's identity and the sequence of a batch's first record.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
}

/// A batch of `count` records, timestamps `base_timestamp_ms + i`, values "value-<i>"
/// (its size does not depend on the timestamp).
pub fn batch(count: usize, base_timestamp_ms: i64) -> Bytes {
    build(count, base_timestamp_ms, None)
}

/// The same, written by an idempotent producer.
pub fn producer_batch(count: usize, producer: Producer) -> Bytes {
    build(count, 1_000, Some(producer))
}

fn build(count: usize, base_timestamp_ms: i64, producer: Option<Producer>) -> Bytes {
    let records = (0..count)
        .map(|i| Record {
            offset_delta: i as i32,
            timestamp_delta: i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            ..Record::default()
        })
        .collect();
    let mut batch = RecordBatch::new(0, base_timestamp_ms, records);
    if let Some(producer) = producer {
        batch.producer_id = producer.id;
        batch.producer_epoch = producer.epoch;
        batch.base_sequence = producer.sequence;
    }
    batch.encode(Compression::None).expect("encode batch")
}

/// A temporary directory holding one partition directory.
pub struct TestDir {
    _root: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn test_dir() -> TestDir {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("orders-0");
    TestDir { _root: root, path }
}

pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).expect("open log")
}

/// Appends `count`-record batches with leader epoch 0 and CreateTime `timestamp_ms`.
pub fn append(log: &mut PartitionLog, count: usize, timestamp_ms: i64) -> eddy_log::AppendOutcome {
    log.append(batch(count, timestamp_ms), 0, timestamp_ms)
        .expect("append")
}

/// Headers of the batches in a read result.
pub fn headers(bytes: &Bytes) -> Vec<records::BatchHeader> {
    records::batches(bytes)
        .map(|item| item.expect("whole batches").0)
        .collect()
}

/// Reads the whole log as a consumer would: from the start, one read after another.
pub fn read_all(log: &PartitionLog) -> Vec<Bytes> {
    let mut offset = log.log_start_offset();
    let mut batches = Vec::new();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX).expect("read");
        assert!(!bytes.is_empty(), "nothing read at {offset}");
        for item in records::batches(&bytes) {
            let (header, batch) = item.expect("whole batches");
            offset = header.next_offset();
            batches.push(batch);
        }
    }
    batches
}

/// Segment base offsets, from the `.log` file names.
pub fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|name| name.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Config with small segments: about `batches` 3-record batches per segment.
pub fn small_segments(batches: u64) -> LogConfig {
    let size = batch(3, 1_000).len() as u64;
    LogConfig {
        segment_bytes: size * batches,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}
