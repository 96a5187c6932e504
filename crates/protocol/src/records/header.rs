//! The 61-byte header of a magic v2 record batch, and edits made in place.
//!
//! Layout (big-endian, as in Kafka's `DefaultRecordBatch`):
//!
//! ```text
//!  0 base_offset i64        8 batch_length i32      12 partition_leader_epoch i32
//! 16 magic i8              17 crc u32               21 attributes i16
//! 23 last_offset_delta i32 27 base_timestamp i64    35 max_timestamp i64
//! 43 producer_id i64       51 producer_epoch i16    53 base_sequence i32
//! 57 records_count i32     61 records...
//! ```
//!
//! `batch_length` counts the bytes after itself; the CRC-32C covers the
//! bytes from `attributes` to the end of the batch, so the base offset and
//! partition leader epoch can be rewritten by the broker without touching
//! it. This module reads and writes the header only: it does not look at
//! the records (see `batch` and `record`).

use bytes::{Buf, BufMut};

use super::{Compression, RecordsError};

/// Bytes in a v2 batch header, up to the first record.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Bytes before `batch_length` counts: the base offset and the length field itself.
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format this module reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Smallest valid `batch_length`: a header with no records.
pub(crate) const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32;

const BASE_OFFSET_OFFSET: usize = 0;
const LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;

pub(crate) const COMPRESSION_CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
pub(crate) const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
pub(crate) const CONTROL_FLAG_MASK: i16 = 0x20;
const DELETE_HORIZON_FLAG_MASK: i16 = 0x40;

/// Which clock a batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (topic `message.timestamp.type`).
    LogAppendTime,
}

/// The header fields of a magic v2 record batch, as stored.
///
/// Timestamps are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record; the broker assigns it.
    pub base_offset: i64,
    /// Bytes after this field up to the end of the batch.
    pub batch_length: i32,
    /// Leader epoch when the batch was appended; the broker assigns it.
    pub partition_leader_epoch: i32,
    /// Format version, always 2 here.
    pub magic: i8,
    /// CRC-32C of the bytes from `attributes` to the end of the batch.
    pub crc: u32,
    /// Codec (bits 0-2), timestamp type (3), transactional (4), control (5), delete horizon (6).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record in milliseconds (or the delete horizon, see bit 6).
    pub base_timestamp: i64,
    /// Largest record timestamp in milliseconds, or the append time under `LogAppendTime`.
    pub max_timestamp: i64,
    /// Idempotent or transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `input`, which may hold more (records, further batches).
    ///
    /// Checks the magic (2 only) and that `batch_length` is at least a header's worth;
    /// it does not check that the whole batch is present nor its CRC.
    pub fn parse(input: &[u8]) -> Result<BatchHeader, RecordsError> {
        check_magic(input)?;
        let mut fields = input
            .get(..BATCH_HEADER_SIZE)
            .ok_or(RecordsError::Truncated {
                what: "record batch header",
                needed: BATCH_HEADER_SIZE,
                available: input.len(),
            })?;
        // `fields` is exactly BATCH_HEADER_SIZE bytes, which the reads below add up to.
        let header = BatchHeader {
            base_offset: fields.get_i64(),
            batch_length: fields.get_i32(),
            partition_leader_epoch: fields.get_i32(),
            magic: fields.get_i8(),
            crc: fields.get_u32(),
            attributes: fields.get_i16(),
            last_offset_delta: fields.get_i32(),
            base_timestamp: fields.get_i64(),
            max_timestamp: fields.get_i64(),
            producer_id: fields.get_i64(),
            producer_epoch: fields.get_i16(),
            base_sequence: fields.get_i32(),
            records_count: fields.get_i32(),
        };
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(RecordsError::BatchLengthTooSmall {
                length: header.batch_length,
            });
        }
        Ok(header)
    }

    /// Writes the 61 header bytes as they are (no length or CRC computed).
    pub fn write(&self, out: &mut impl BufMut) {
        out.put_i64(self.base_offset);
        out.put_i32(self.batch_length);
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(self.magic);
        out.put_u32(self.crc);
        out.put_i16(self.attributes);
        out.put_i32(self.last_offset_delta);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.records_count);
    }

    /// The codec of the records section; ids 5-7 are [`RecordsError::UnknownCompression`].
    pub fn compression(&self) -> Result<Compression, RecordsError> {
        Compression::from_id((self.attributes & COMPRESSION_CODEC_MASK) as u8)
    }

    /// Which clock the timestamps come from.
    pub fn timestamp_type(&self) -> TimestampType {
        timestamp_type_of(self.attributes)
    }

    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    /// Holds control records (transaction markers), not user data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }

    /// `base_timestamp` holds the delete horizon set by the log cleaner (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG_MASK != 0
    }

    /// Written by an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Offset of the last record (wraps like Java's long arithmetic on absurd input).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Offset following this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Bytes of the whole batch: `batch_length` plus the 12 bytes before it counts.
    pub fn total_size(&self) -> usize {
        usize::try_from(self.batch_length)
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD)
    }
}

pub(crate) fn timestamp_type_of(attributes: i16) -> TimestampType {
    if attributes & TIMESTAMP_TYPE_MASK != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    }
}

/// Attribute bits with the codec replaced.
pub(crate) fn with_codec(attributes: i16, compression: Compression) -> i16 {
    (attributes & !COMPRESSION_CODEC_MASK) | i16::from(compression.id())
}

/// Fails unless `input` is long enough to show a magic byte, and it is 2.
fn check_magic(input: &[u8]) -> Result<(), RecordsError> {
    match input.get(MAGIC_OFFSET) {
        Some(&byte) if byte as i8 == MAGIC_V2 => Ok(()),
        Some(&byte) => Err(RecordsError::UnsupportedMagic { magic: byte as i8 }),
        None => Err(RecordsError::Truncated {
            what: "record batch header",
            needed: BATCH_HEADER_SIZE,
            available: input.len(),
        }),
    }
}

/// The bytes of the batch at the start of `batch` that the CRC covers, after checking the
/// header and that the whole batch is present.
fn crc_covered(batch: &[u8]) -> Result<(&[u8], u32), RecordsError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_size();
    let covered =
        batch
            .get(ATTRIBUTES_OFFSET..total)
            .ok_or(RecordsError::BatchLengthExceedsInput {
                length: header.batch_length,
                available: batch.len().saturating_sub(LOG_OVERHEAD),
            })?;
    Ok((covered, header.crc))
}

/// CRC-32C of the batch at the start of `batch`, over its bytes from `attributes` to its end
/// (as given by `batch_length`; bytes after it are ignored).
pub fn compute_crc(batch: &[u8]) -> Result<u32, RecordsError> {
    let (covered, _) = crc_covered(batch)?;
    Ok(crc32c::crc32c(covered))
}

/// Checks the stored CRC of the batch at the start of `batch` ([`RecordsError::CrcMismatch`]
/// maps to Kafka's `CORRUPT_MESSAGE`).
pub fn verify_crc(batch: &[u8]) -> Result<(), RecordsError> {
    let (covered, stored) = crc_covered(batch)?;
    let computed = crc32c::crc32c(covered);
    if computed == stored {
        Ok(())
    } else {
        Err(RecordsError::CrcMismatch { stored, computed })
    }
}

/// Overwrites `N` bytes at `at` in a header already checked to be present.
fn put_field<const N: usize>(batch: &mut [u8], at: usize, value: [u8; N]) {
    if let Some(field) = batch.get_mut(at..at + N) {
        field.copy_from_slice(&value);
    }
}

fn read_field<const N: usize>(batch: &[u8], at: usize) -> [u8; N] {
    batch
        .get(at..at + N)
        .and_then(|field| <[u8; N]>::try_from(field).ok())
        .unwrap_or([0; N])
}

/// Sets the base offset in place. It lies outside the CRC, which stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordsError> {
    BatchHeader::parse(batch)?;
    put_field(batch, BASE_OFFSET_OFFSET, base_offset.to_be_bytes());
    Ok(())
}

/// Sets the partition leader epoch in place. It lies outside the CRC, which stays valid.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), RecordsError> {
    BatchHeader::parse(batch)?;
    put_field(batch, PARTITION_LEADER_EPOCH_OFFSET, epoch.to_be_bytes());
    Ok(())
}

/// Marks the batch `LogAppendTime` with `timestamp_ms` as its max timestamp, and updates
/// the CRC, as Kafka's broker does for topics with `message.timestamp.type=LogAppendTime`.
///
/// The CRC is updated for the changed bytes only (CRC-32C is linear), without reading the
/// records: on a valid batch the result equals a full recomputation, and a batch that was
/// corrupt stays detectably corrupt instead of being given a fresh, valid CRC.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) -> Result<(), RecordsError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_size();
    if total > batch.len() {
        return Err(RecordsError::BatchLengthExceedsInput {
            length: header.batch_length,
            available: batch.len().saturating_sub(LOG_OVERHEAD),
        });
    }
    let attributes = header.attributes | TIMESTAMP_TYPE_MASK;
    if attributes == header.attributes && header.max_timestamp == timestamp_ms {
        return Ok(());
    }
    // The changed fields lie in the first CHANGED bytes of the CRC-covered range.
    const CHANGED: usize = MAX_TIMESTAMP_OFFSET + 8 - ATTRIBUTES_OFFSET;
    let before: [u8; CHANGED] = read_field(batch, ATTRIBUTES_OFFSET);
    put_field(batch, ATTRIBUTES_OFFSET, attributes.to_be_bytes());
    put_field(batch, MAX_TIMESTAMP_OFFSET, timestamp_ms.to_be_bytes());
    let after: [u8; CHANGED] = read_field(batch, ATTRIBUTES_OFFSET);
    // crc(P || R) = shift(crc(P), |R|) ^ crc(R), so changing P to P' changes the CRC by
    // shift(crc(P) ^ crc(P'), |R|).
    let unchanged_bytes = total - ATTRIBUTES_OFFSET - CHANGED;
    let delta = crc32c::crc32c(&before) ^ crc32c::crc32c(&after);
    let crc = header.crc ^ crc_shift(delta, unchanged_bytes);
    put_field(batch, CRC_OFFSET, crc.to_be_bytes());
    Ok(())
}

/// CRC-32C polynomial, bit-reflected.
const CRC32C_POLY: u32 = 0x82f6_3b78;

/// `a * b mod P` over GF(2), in the reflected representation (bit 31 is x^0).
const fn crc_multiply(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 1u32 << 31;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
        bit >>= 1;
    }
    product
}

/// `x^(2^k) mod P` for every k a byte count in `usize` can need (3 + 64 bits).
const X_POW_2K: [u32; 67] = {
    let mut table = [0u32; 67];
    let mut power = 1u32 << 30; // x^1
    let mut k = 0;
    while k < table.len() {
        table[k] = power;
        power = crc_multiply(power, power);
        k += 1;
    }
    table
};

/// The CRC register advanced over `bytes` zero bytes: multiplies by `x^(8 * bytes) mod P`
/// in O(log bytes) steps, which is what `crc32c_combine` does with 32x32 matrices.
fn crc_shift(crc: u32, bytes: usize) -> u32 {
    let mut factor = 1u32 << 31; // x^0
    let mut remaining = bytes;
    let mut k = 3; // one byte is x^(2^3)
    while remaining != 0 {
        if remaining & 1 != 0 {
            // k < 3 + usize::BITS, within the table.
            factor = crc_multiply(X_POW_2K.get(k).copied().unwrap_or(0), factor);
        }
        remaining >>= 1;
        k += 1;
    }
    crc_multiply(factor, crc)
}

/// The `batch_length` field of the batch starting at `input`, if `input` reaches it.
pub(crate) fn peek_batch_length(input: &[u8]) -> Option<i32> {
    input
        .get(LENGTH_OFFSET..LENGTH_OFFSET + 4)
        .and_then(|field| <[u8; 4]>::try_from(field).ok())
        .map(i32::from_be_bytes)
}

/// The magic byte, if `input` reaches it.
pub(crate) fn peek_magic(input: &[u8]) -> Option<i8> {
    input.get(MAGIC_OFFSET).map(|&byte| byte as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_shift_matches_crc32c_combine() {
        for crc in [0, 1, 0xdead_beef, u32::MAX] {
            for bytes in [0, 1, 7, 8, 61, 4096, 1_000_003, usize::MAX >> 3] {
                assert_eq!(
                    crc_shift(crc, bytes),
                    crc32c::crc32c_combine(crc, 0, bytes),
                    "{crc:#x} {bytes}"
                );
            }
        }
    }
}
