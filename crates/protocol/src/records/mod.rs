//! Kafka record batches, magic v2 (the only format since Kafka 0.11), as
//! in Kafka's `DefaultRecordBatch` and `DefaultRecord`.
//!
//! - [`BatchHeader`] reads and writes the 61-byte header; [`set_base_offset`],
//!   [`set_partition_leader_epoch`] and [`set_log_append_time`] edit a batch in
//!   place, as the broker must on append, without re-encoding it.
//! - [`batches`] and [`batches_allowing_partial_tail`] walk a buffer holding
//!   several batches (a log segment, Fetch records) as zero-copy slices.
//! - [`validate_produce_batch`] makes a broker's checks on Produce records.
//! - [`RecordBatch`] decodes and encodes a whole batch with its [`Record`]s,
//!   in any [`Compression`].
//!
//! All of it takes hostile input: no panics, lengths and counts checked
//! against the bytes that remain before anything is allocated, decompressed
//! sizes bounded. Every error maps to a Kafka error code
//! ([`RecordsError::kafka_error_code`]). Legacy message sets (magic 0 and 1)
//! are refused, not read; the request and response framing around the
//! records is the message codec's business, not this module's.

mod batch;
mod compression;
mod error;
mod header;
mod iter;
mod record;
mod validate;

use bytes::Bytes;

pub use batch::RecordBatch;
pub use compression::{Compression, DEFAULT_MAX_DECOMPRESSED_BYTES};
pub use error::RecordsError;
pub use header::{
    BATCH_HEADER_SIZE, BatchHeader, LOG_OVERHEAD, MAGIC_V2, TimestampType, compute_crc,
    set_base_offset, set_log_append_time, set_partition_leader_epoch, verify_crc,
};
pub use iter::{BatchIter, TrailingPartialBatch, batches, batches_allowing_partial_tail};
pub use record::{Record, RecordHeader, decode_records};
pub use validate::{validate_produce_batch, validate_produce_batch_for_version};

/// Runs every decoder of this module on arbitrary bytes and ignores the results;
/// a fuzz target calls it, and it must never panic.
///
/// Batches are also decoded with their CRC fixed up, and the records decoder and
/// decompressors are fed the raw bytes, so a fuzzer reaches them without having
/// to forge a CRC.
pub fn fuzz_decode_batches(data: &[u8]) {
    // Small, so that a fuzzer spends its time on parsing rather than on inflating bombs.
    const FUZZ_MAX_DECOMPRESSED_BYTES: usize = 1 << 20;
    let bytes = Bytes::copy_from_slice(data);

    if let Ok(header) = BatchHeader::parse(data) {
        let _ = (
            header.compression(),
            header.timestamp_type(),
            header.next_offset(),
        );
        let _ = header.total_size();
    }
    let _ = verify_crc(data);
    let _ = validate_produce_batch(&bytes);
    let _ = validate_produce_batch_for_version(&bytes, 3);
    for walk in [batches(&bytes), batches_allowing_partial_tail(&bytes)] {
        for (_, batch) in walk.flatten() {
            let _ = RecordBatch::decode_with_limit(&batch, FUZZ_MAX_DECOMPRESSED_BYTES);
        }
    }
    let _ = RecordBatch::decode_with_limit(&bytes, FUZZ_MAX_DECOMPRESSED_BYTES);

    let mut edited = data.to_vec();
    let _ = set_base_offset(&mut edited, i64::MAX);
    let _ = set_partition_leader_epoch(&mut edited, -1);
    let _ = set_log_append_time(&mut edited, i64::MIN);
    if let Ok(crc) = compute_crc(&edited)
        && let Some(field) = edited.get_mut(17..21)
    {
        field.copy_from_slice(&crc.to_be_bytes());
        let fixed = Bytes::from(edited);
        let _ = validate_produce_batch(&fixed);
        let _ = RecordBatch::decode_with_limit(&fixed, FUZZ_MAX_DECOMPRESSED_BYTES);
    }

    let _ = Record::decode(&bytes);
    let count = data.first().map_or(0, |&byte| i32::from(byte));
    let _ = decode_records(&bytes.slice(data.len().min(1)..), count);
    for codec in Compression::ALL {
        let _ = codec.decompress(data, FUZZ_MAX_DECOMPRESSED_BYTES);
    }
}
