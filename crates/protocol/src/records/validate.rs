//! The checks a broker makes on the records of one partition in a Produce
//! request (v3 and later), before assigning offsets.
//!
//! Follows Kafka's `ProduceRequest.validateRecords` (exactly one batch,
//! magic 2, zstd only from v7) and the client-batch checks of
//! `LogValidator.validateBatch` (offset range, count, no control batches,
//! sequence set when a producer id is), plus framing and CRC. These look at
//! the header and one CRC pass only: they do not decompress or decode the
//! records; [`super::RecordBatch::decode`] does that where the broker needs
//! it (e.g. for compressed batches).

use bytes::Bytes;

use super::header::{self, BATCH_HEADER_SIZE};
use super::iter::{BatchIter, TrailingPartialBatch, batches};
use super::record::MIN_RECORD_BYTES;
use super::{BatchHeader, Compression, RecordsError};

/// First Produce version allowed to carry zstd batches.
const ZSTD_MIN_PRODUCE_VERSION: i16 = 7;

/// Validates the records of one partition of a Produce request and returns the header.
///
/// Framing and CRC faults map to `CORRUPT_MESSAGE`, format and content faults to
/// `INVALID_RECORD`, an unknown codec to `UNSUPPORTED_COMPRESSION_TYPE`
/// (see [`RecordsError::kafka_error_code`]).
pub fn validate_produce_batch(records: &Bytes) -> Result<BatchHeader, RecordsError> {
    if records.is_empty() {
        return Err(RecordsError::NoBatch);
    }
    let mut walk = batches(records);
    let (header, batch) = walk.next().unwrap_or(Err(RecordsError::NoBatch))?;
    let rest = walk.remaining();
    if !rest.is_empty() {
        let mut after = BatchIter::new(rest.clone(), TrailingPartialBatch::Reject);
        return Err(match after.next() {
            Some(Ok(_)) => RecordsError::MultipleBatches,
            _ => RecordsError::TrailingBytes { count: rest.len() },
        });
    }
    header::verify_crc(&batch)?;
    let compression = header.compression()?;

    // Kafka's order: offset range, count, consistency, control, sequence.
    let count = header.records_count;
    let range_mismatch = RecordsError::OffsetRangeMismatch {
        last_offset_delta: header.last_offset_delta,
        count,
    };
    if header.last_offset_delta < 0 {
        return Err(range_mismatch);
    }
    if count < 0 {
        return Err(RecordsError::NegativeRecordCount { count });
    }
    if count == 0 {
        return Err(RecordsError::EmptyProduceBatch { count });
    }
    if i64::from(header.last_offset_delta) + 1 != i64::from(count) {
        return Err(range_mismatch);
    }
    if header.is_control() {
        return Err(RecordsError::ControlBatchFromClient);
    }
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(RecordsError::InvalidSequence {
            base_sequence: header.base_sequence,
            producer_id: header.producer_id,
        });
    }
    if compression == Compression::None {
        // Cheap here, and spares the caller a doomed decode.
        let records_bytes = batch.len().saturating_sub(BATCH_HEADER_SIZE);
        if usize::try_from(count).unwrap_or(usize::MAX) > records_bytes / MIN_RECORD_BYTES {
            return Err(RecordsError::LengthExceedsInput {
                what: "record count",
                claimed: i64::from(count),
                available: records_bytes,
            });
        }
    }
    Ok(header)
}

/// [`validate_produce_batch`], plus the codec rule that depends on the request version:
/// zstd needs Produce v7 or later.
pub fn validate_produce_batch_for_version(
    records: &Bytes,
    api_version: i16,
) -> Result<BatchHeader, RecordsError> {
    let header = validate_produce_batch(records)?;
    let codec = header.compression()?;
    if codec == Compression::Zstd && api_version < ZSTD_MIN_PRODUCE_VERSION {
        return Err(RecordsError::CompressionNotAllowed { codec, api_version });
    }
    Ok(header)
}
