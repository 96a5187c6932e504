//! Why a log operation failed, and which Kafka error code the broker answers with.

use std::io;
use std::path::{Path, PathBuf};

use eddy_protocol::ErrorCode;

/// A failed log operation. Disk failures carry the file; the others carry the numbers
/// that explain the refusal. The caller adds topic and partition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// Reading, writing, syncing, creating or removing a file failed.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "write segment".
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The offset lies outside `[start, end]` (log start offset, log end offset).
    #[error("offset {offset} is outside the log's range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// Log start offset.
        start: i64,
        /// Log end offset.
        end: i64,
    },
    /// An idempotent producer's batch does not follow its previous one: a batch was lost.
    #[error(
        "producer {producer_id} epoch {producer_epoch}: sequence {sequence} does not follow {last_sequence}"
    )]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        producer_epoch: i16,
        /// The batch's first sequence.
        sequence: i32,
        /// The last sequence of the producer's latest batch in this partition.
        last_sequence: i32,
    },
    /// The batch comes from a producer epoch older than one already seen: a zombie producer.
    #[error(
        "producer {producer_id}: epoch {producer_epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        producer_epoch: i16,
        /// The epoch this partition already has for the producer.
        current_epoch: i16,
    },
    /// A batch handed to the log, or found in a segment, is malformed.
    #[error("corrupt record batch: {reason}")]
    CorruptBatch {
        /// What is wrong and where.
        reason: String,
    },
    /// A follower's batch starts before the log end offset (overlaps what the log holds).
    #[error("batch with base offset {found} does not follow the log end offset {expected}")]
    NonContiguousOffsets {
        /// The next offset the log expected (at least).
        expected: i64,
        /// The batch's base offset.
        found: i64,
    },
    /// A batch larger than a whole segment (`segment.bytes`).
    #[error("record batch of {size_bytes} bytes exceeds segment.bytes {segment_bytes}")]
    BatchTooLarge {
        /// The batch size.
        size_bytes: usize,
        /// The segment size limit.
        segment_bytes: u64,
    },
}

impl LogError {
    /// The Kafka error code for a response about this failure.
    pub fn kafka_error_code(&self) -> i16 {
        let code = match self {
            LogError::Io { .. } => ErrorCode::KafkaStorageError,
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            LogError::CorruptBatch { .. } => ErrorCode::CorruptMessage,
            LogError::NonContiguousOffsets { .. } => ErrorCode::UnknownServerError,
            LogError::BatchTooLarge { .. } => ErrorCode::RecordListTooLarge,
        };
        code.code()
    }

    /// A closure for `map_err` that wraps an I/O error with what was done to which file.
    pub(crate) fn io(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
        let path = path.to_path_buf();
        move |source| LogError::Io {
            operation,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> LogError {
        LogError::CorruptBatch {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_maps_to_kafkas_code() {
        let io = LogError::io("write segment", Path::new("/x"))(io::Error::other("disk"));
        assert_eq!(io.kafka_error_code(), 56);
        assert!(io.to_string().contains("write segment /x"));
        let cases = [
            (
                LogError::OffsetOutOfRange {
                    offset: 9,
                    start: 0,
                    end: 5,
                },
                1,
            ),
            (
                LogError::OutOfOrderSequence {
                    producer_id: 1,
                    producer_epoch: 0,
                    sequence: 9,
                    last_sequence: 4,
                },
                45,
            ),
            (
                LogError::InvalidProducerEpoch {
                    producer_id: 1,
                    producer_epoch: 0,
                    current_epoch: 1,
                },
                47,
            ),
            (LogError::corrupt("bad"), 2),
            (
                LogError::BatchTooLarge {
                    size_bytes: 10,
                    segment_bytes: 5,
                },
                18,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.kafka_error_code(), code, "{error}");
        }
    }
}
