//! A whole v2 batch as values: decode (CRC, decompression, records) and encode.
//!
//! This is the slow path, for producing batches and for looking inside
//! them. Decoding never copies the keys and values of an uncompressed
//! batch; a compressed one is decompressed once, within a size bound, and
//! its records are slices of that buffer. It does not edit batches in
//! place nor walk buffers of several batches: the broker's append path
//! validates the header (`validate`) and rewrites offsets and timestamps in
//! place (`header`) without decoding anything here.

use bytes::Bytes;

use super::header::{
    self, ATTRIBUTES_OFFSET, BATCH_HEADER_SIZE, COMPRESSION_CODEC_MASK, CONTROL_FLAG_MASK,
    CRC_OFFSET, LOG_OVERHEAD, MAGIC_V2, TRANSACTIONAL_FLAG_MASK,
};
use super::record::{MIN_RECORD_BYTES, decode_records};
use super::{
    BatchHeader, Compression, DEFAULT_MAX_DECOMPRESSED_BYTES, Record, RecordsError, TimestampType,
};

/// A decoded magic v2 batch. Encoding derives the length, CRC, record count and codec bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Leader epoch when the batch was appended, -1 if not yet.
    pub partition_leader_epoch: i32,
    /// Attribute bits as stored: timestamp type (bit 3), transactional (4), control (5),
    /// delete horizon (6). Bits 0-2 hold the codec after `decode`; `encode` replaces them.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`. Kept as given rather than derived from
    /// `records`, since compaction may remove the last records but not this value.
    pub last_offset_delta: i32,
    /// Timestamp of the first record in milliseconds.
    pub base_timestamp: i64,
    /// Largest record timestamp in milliseconds, or the append time under `LogAppendTime`.
    pub max_timestamp: i64,
    /// Producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// The records.
    pub records: Vec<Record>,
}

impl RecordBatch {
    /// A plain `CreateTime` batch (no producer id, no transaction) of `records`, with
    /// `last_offset_delta` and `max_timestamp` derived from them.
    pub fn new(base_offset: i64, base_timestamp_ms: i64, records: Vec<Record>) -> RecordBatch {
        let last_offset_delta = records
            .iter()
            .map(|record| record.offset_delta)
            .max()
            .unwrap_or(0);
        let max_timestamp = records
            .iter()
            .map(|record| base_timestamp_ms.wrapping_add(record.timestamp_delta))
            .max()
            .unwrap_or(base_timestamp_ms);
        RecordBatch {
            base_offset,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta,
            base_timestamp: base_timestamp_ms,
            max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records,
        }
    }

    /// Codec named by the attribute bits (as decoded).
    pub fn compression(&self) -> Result<Compression, RecordsError> {
        Compression::from_id((self.attributes & COMPRESSION_CODEC_MASK) as u8)
    }

    /// Which clock the timestamps come from.
    pub fn timestamp_type(&self) -> TimestampType {
        header::timestamp_type_of(self.attributes)
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    /// Holds control records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }

    /// Writes the complete batch: header with length, record count, codec bits and CRC,
    /// then the records, compressed with `compression`.
    pub fn encode(&self, compression: Compression) -> Result<Bytes, RecordsError> {
        let mut records_bytes = 0usize;
        for record in &self.records {
            records_bytes = records_bytes.saturating_add(record.encoded_size()?);
        }
        let mut out = Vec::with_capacity(BATCH_HEADER_SIZE.saturating_add(records_bytes));
        out.resize(BATCH_HEADER_SIZE, 0);
        if compression == Compression::None {
            for record in &self.records {
                record.encode(&mut out)?;
            }
        } else {
            let mut raw = Vec::with_capacity(records_bytes);
            for record in &self.records {
                record.encode(&mut raw)?;
            }
            compression.compress_into(&raw, &mut out)?;
        }

        let too_large = |what, size| RecordsError::TooLarge { what, size };
        let batch_length = out.len() - LOG_OVERHEAD;
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length: i32::try_from(batch_length)
                .map_err(|_| too_large("record batch", out.len()))?,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: header::with_codec(self.attributes, compression),
            last_offset_delta: self.last_offset_delta,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: i32::try_from(self.records.len())
                .map_err(|_| too_large("record count", self.records.len()))?,
        };
        if let Some(mut header_bytes) = out.get_mut(..BATCH_HEADER_SIZE) {
            header.write(&mut header_bytes);
        }
        let crc = crc32c::crc32c(out.get(ATTRIBUTES_OFFSET..).unwrap_or_default());
        if let Some(crc_bytes) = out.get_mut(CRC_OFFSET..ATTRIBUTES_OFFSET) {
            crc_bytes.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(Bytes::from(out))
    }

    /// Decodes one whole batch (exactly the bytes of `batch`), with decompressed records
    /// bounded by [`DEFAULT_MAX_DECOMPRESSED_BYTES`].
    pub fn decode(batch: &Bytes) -> Result<RecordBatch, RecordsError> {
        RecordBatch::decode_with_limit(batch, DEFAULT_MAX_DECOMPRESSED_BYTES)
    }

    /// Decodes one whole batch: checks its length against `batch`, its CRC and codec,
    /// decompresses its records (at most `max_decompressed_bytes`) and decodes exactly
    /// `records_count` of them.
    pub fn decode_with_limit(
        batch: &Bytes,
        max_decompressed_bytes: usize,
    ) -> Result<RecordBatch, RecordsError> {
        let header = BatchHeader::parse(batch)?;
        let total = header.total_size();
        if total > batch.len() {
            return Err(RecordsError::BatchLengthExceedsInput {
                length: header.batch_length,
                available: batch.len().saturating_sub(LOG_OVERHEAD),
            });
        }
        if total < batch.len() {
            return Err(RecordsError::TrailingBytes {
                count: batch.len() - total,
            });
        }
        header::verify_crc(batch)?;
        let compression = header.compression()?;
        let body = batch.slice(BATCH_HEADER_SIZE..total);
        let records = match compression {
            // Kafka does not look at the records of an empty batch either.
            _ if header.records_count == 0 => Vec::new(),
            Compression::None => decode_records(&body, header.records_count)?,
            codec => {
                // Refuse an impossible count before spending time decompressing.
                let count = usize::try_from(header.records_count).map_err(|_| {
                    RecordsError::NegativeRecordCount {
                        count: header.records_count,
                    }
                })?;
                if count > max_decompressed_bytes / MIN_RECORD_BYTES {
                    return Err(RecordsError::LengthExceedsInput {
                        what: "record count",
                        claimed: i64::from(header.records_count),
                        available: max_decompressed_bytes,
                    });
                }
                let raw = Bytes::from(codec.decompress(&body, max_decompressed_bytes)?);
                decode_records(&raw, header.records_count)?
            }
        };
        Ok(RecordBatch {
            base_offset: header.base_offset,
            partition_leader_epoch: header.partition_leader_epoch,
            attributes: header.attributes,
            last_offset_delta: header.last_offset_delta,
            base_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            records,
        })
    }
}
