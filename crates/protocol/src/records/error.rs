//! Why a record batch was refused, and which Kafka error code says so.
//!
//! Each variant names the field at fault and the numbers involved, so a
//! log line alone tells what a client sent. The mapping to Kafka codes
//! follows the exception Kafka's broker throws for the same fault
//! (`CorruptRecordException` for framing and CRC, `InvalidRecordException`
//! for record structure). It does not carry the topic or partition: the
//! caller adds those.

use super::Compression;
use crate::varint::VarintError;

/// Kafka's `CORRUPT_MESSAGE`: framing or CRC of a batch is broken.
const CORRUPT_MESSAGE: i16 = 2;
/// Kafka's `MESSAGE_TOO_LARGE`.
const MESSAGE_TOO_LARGE: i16 = 10;
/// Kafka's `UNSUPPORTED_COMPRESSION_TYPE`.
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
/// Kafka's `INVALID_RECORD`: the batch is intact but its content is not acceptable.
const INVALID_RECORD: i16 = 87;
/// Kafka's `UNKNOWN_SERVER_ERROR`, for failures that are ours rather than the input's.
const UNKNOWN_SERVER_ERROR: i16 = -1;

/// A record batch or record that cannot be read, written or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// The input ends inside a fixed-size part of a batch.
    #[error("{what} needs {needed} bytes but only {available} are available")]
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The batch length field is smaller than a v2 batch header.
    #[error("batch length {length} is below the 49 bytes a magic v2 batch header takes")]
    BatchLengthTooSmall {
        /// The length field as read.
        length: i32,
    },
    /// The batch length field claims more bytes than the input holds.
    #[error("batch length {length} exceeds the {available} bytes available")]
    BatchLengthExceedsInput {
        /// The length field as read.
        length: i32,
        /// Bytes after the length field.
        available: usize,
    },
    /// Bytes follow the batch that are not a batch.
    #[error("{count} bytes follow the record batch and are not a complete batch")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The stored CRC-32C does not match the batch content.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes from the attributes field to the end of the batch.
        computed: u32,
    },
    /// Not a magic v2 batch (v0/v1 message sets are not supported).
    #[error("record batch magic {magic} is not supported: only magic 2 is")]
    UnsupportedMagic {
        /// The magic byte as read.
        magic: i8,
    },
    /// A produce payload without any batch.
    #[error("produce payload is empty: it must hold exactly one record batch")]
    NoBatch,
    /// A produce payload with several batches (Produce v3+ allows one).
    #[error("produce payload holds more than one record batch: Produce v3+ allows exactly one")]
    MultipleBatches,
    /// Compression bits name no known codec.
    #[error("unknown compression codec id {id} in batch attributes")]
    UnknownCompression {
        /// The 3-bit codec id.
        id: u8,
    },
    /// A codec the request version may not use (zstd before Produce v7).
    #[error("{codec} compression needs Produce v7 or later, request is v{api_version}")]
    CompressionNotAllowed {
        /// The codec of the batch.
        codec: Compression,
        /// The Produce request version.
        api_version: i16,
    },
    /// Compressed data that its codec cannot decode.
    #[error("{codec} data is corrupt: {reason}")]
    Decompression {
        /// The codec.
        codec: Compression,
        /// The codec's own message.
        reason: String,
    },
    /// Compressed data that expands past the allowed size (a zip bomb, or a limit set too low).
    #[error("{codec} data decompresses to more than the {limit_bytes}-byte limit")]
    DecompressedTooLarge {
        /// The codec.
        codec: Compression,
        /// The limit in force.
        limit_bytes: usize,
    },
    /// Compressing failed (our side, not the input's).
    #[error("{codec} compression failed: {reason}")]
    Compression {
        /// The codec.
        codec: Compression,
        /// The codec's own message.
        reason: String,
    },
    /// A varint inside a record is cut short or longer than its type allows.
    #[error("invalid varint in {what}: {error}")]
    Varint {
        /// The field being read.
        what: &'static str,
        /// What is wrong with it.
        error: VarintError,
    },
    /// A record field runs past the end of its record.
    #[error("{what} runs past the end of its record ({available} bytes left)")]
    RecordTruncated {
        /// The field being read.
        what: &'static str,
        /// Bytes left in the record.
        available: usize,
    },
    /// A length that is negative where only -1 (null), or nothing negative, is allowed.
    #[error("invalid {what} {length}")]
    InvalidLength {
        /// The field.
        what: &'static str,
        /// The value as read.
        length: i32,
    },
    /// A length or count claiming more than the remaining bytes can hold.
    #[error("{what} {claimed} exceeds what the {available} remaining bytes can hold")]
    LengthExceedsInput {
        /// The field.
        what: &'static str,
        /// The value as read.
        claimed: i64,
        /// Bytes left where it must fit.
        available: usize,
    },
    /// A record whose fields do not add up to its length prefix.
    #[error("record length {declared} does not match the {consumed} bytes its fields take")]
    RecordSizeMismatch {
        /// The length prefix.
        declared: usize,
        /// Bytes the fields took.
        consumed: usize,
    },
    /// The batch header's record count is negative.
    #[error("record count {count} is negative")]
    NegativeRecordCount {
        /// The count as read.
        count: i32,
    },
    /// Fewer records than the header declares.
    #[error("batch declares {declared} records but holds only {decoded}")]
    RecordCountMismatch {
        /// Count in the header.
        declared: i32,
        /// Records found.
        decoded: usize,
    },
    /// Bytes left after the declared number of records.
    #[error("{remaining} bytes remain after the {count} records the batch declares")]
    TrailingRecordBytes {
        /// Count in the header.
        count: i32,
        /// Bytes left over.
        remaining: usize,
    },
    /// A fault inside one record, with its position in the batch.
    #[error("record {index}: {error}")]
    InRecord {
        /// Zero-based position of the record.
        index: usize,
        /// What is wrong with it.
        error: Box<RecordsError>,
    },
    /// A produced batch with no records (Kafka refuses these from clients).
    #[error("record count {count} is invalid: a produced batch must hold at least one record")]
    EmptyProduceBatch {
        /// The count as read.
        count: i32,
    },
    /// `last_offset_delta + 1` disagrees with the record count.
    #[error(
        "last offset delta {last_offset_delta} is inconsistent with the record count {count} (expected {})",
        i64::from(*count) - 1
    )]
    OffsetRangeMismatch {
        /// From the header.
        last_offset_delta: i32,
        /// From the header.
        count: i32,
    },
    /// Clients may not write control batches (only transaction markers from the broker are).
    #[error("clients are not allowed to write control batches")]
    ControlBatchFromClient,
    /// An idempotent batch with a negative base sequence.
    #[error("invalid base sequence {base_sequence} in a batch with producer id {producer_id}")]
    InvalidSequence {
        /// From the header.
        base_sequence: i32,
        /// From the header.
        producer_id: i64,
    },
    /// A value too large for its length field when encoding.
    #[error("{what} of {size} bytes is too large to encode")]
    TooLarge {
        /// The part being encoded.
        what: &'static str,
        /// Its size.
        size: usize,
    },
}

impl RecordsError {
    /// The Kafka error code to answer with (2 `CORRUPT_MESSAGE`, 10 `MESSAGE_TOO_LARGE`,
    /// 76 `UNSUPPORTED_COMPRESSION_TYPE`, 87 `INVALID_RECORD`, -1 for our own failures).
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RecordsError::Truncated { .. }
            | RecordsError::BatchLengthTooSmall { .. }
            | RecordsError::BatchLengthExceedsInput { .. }
            | RecordsError::TrailingBytes { .. }
            | RecordsError::CrcMismatch { .. }
            | RecordsError::Decompression { .. } => CORRUPT_MESSAGE,
            RecordsError::DecompressedTooLarge { .. } | RecordsError::TooLarge { .. } => {
                MESSAGE_TOO_LARGE
            }
            RecordsError::UnknownCompression { .. }
            | RecordsError::CompressionNotAllowed { .. } => UNSUPPORTED_COMPRESSION_TYPE,
            RecordsError::UnsupportedMagic { .. }
            | RecordsError::NoBatch
            | RecordsError::MultipleBatches
            | RecordsError::Varint { .. }
            | RecordsError::RecordTruncated { .. }
            | RecordsError::InvalidLength { .. }
            | RecordsError::LengthExceedsInput { .. }
            | RecordsError::RecordSizeMismatch { .. }
            | RecordsError::NegativeRecordCount { .. }
            | RecordsError::RecordCountMismatch { .. }
            | RecordsError::TrailingRecordBytes { .. }
            | RecordsError::EmptyProduceBatch { .. }
            | RecordsError::OffsetRangeMismatch { .. }
            | RecordsError::ControlBatchFromClient
            | RecordsError::InvalidSequence { .. } => INVALID_RECORD,
            RecordsError::InRecord { error, .. } => error.kafka_error_code(),
            RecordsError::Compression { .. } => UNKNOWN_SERVER_ERROR,
        }
    }
}
