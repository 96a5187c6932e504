//! Per-partition log settings: Kafka's topic configs of the same names, with
//! Kafka's defaults. Parsing them from strings is the broker's business.
//!
//! `cleanup.policy` is two flags, as Kafka's list allows `delete`, `compact` or
//! both: retention by time and size runs only with `delete`, compaction only
//! with `compact`.

/// Largest usable `segment.bytes`: Kafka's is an `int`, and file positions in
/// the offset index are 32-bit.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How a partition log rolls, retains, compacts and flushes its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this. Default 1 GiB;
    /// values above [`MAX_SEGMENT_BYTES`] act as that.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this. Default 7 days.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older than this; -1 keeps
    /// them forever. Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger than this;
    /// -1 is unlimited (the default).
    pub retention_bytes: i64,
    /// `flush.messages`: fsync the active segment once this many records are unflushed.
    /// Default `u64::MAX`: never, the OS writes back (as Kafka, which relies on replication).
    pub flush_messages: u64,
    /// `flush.ms`: fsync when the last fsync is this old (checked on append and on
    /// [`crate::PartitionLog::enforce_retention`]). Default `u64::MAX`: never.
    pub flush_ms: u64,
    /// `index.interval.bytes`: bytes of batches between two offset-index entries. Default 4096.
    pub index_interval_bytes: u32,
    /// `message.timestamp.type=LogAppendTime`: the broker's clock stamps every batch.
    /// Default false (`CreateTime`).
    pub message_timestamp_type_log_append_time: bool,
    /// `cleanup.policy` contains `delete`: `retention.ms` and `retention.bytes` delete old
    /// segments. Default true (`cleanup.policy=delete`).
    pub cleanup_policy_delete: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key
    /// (see [`crate::PartitionLog::plan_compaction`]). Default false.
    pub cleanup_policy_compact: bool,
    /// `delete.retention.ms`: how long a tombstone (a record with a key and no value) stays
    /// after the cleaner first kept it, so that consumers reading from the start see the
    /// delete. Default 1 day.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: compaction is due once the bytes written since the last
    /// pass are this share of the sealed segments ([`crate::PartitionLog::dirty_ratio`]).
    /// Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            flush_messages: u64::MAX,
            flush_ms: u64::MAX,
            index_interval_bytes: 4096,
            message_timestamp_type_log_append_time: false,
            cleanup_policy_delete: true,
            cleanup_policy_compact: false,
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

impl LogConfig {
    /// `segment.bytes` as it applies: at most [`MAX_SEGMENT_BYTES`].
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.min(MAX_SEGMENT_BYTES)
    }
}
