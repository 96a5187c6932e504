//! Variable-length integers as Kafka writes them.
//!
//! Flexible message versions use unsigned varints (protobuf style) for
//! lengths, tags and counts; records inside a v2 batch use zig-zag signed
//! varints and varlongs. Readers work on a byte slice and report how many
//! bytes they consumed, so both the message decoder and the record decoder
//! share them. A varint longer than its type allows is an error, never a
//! silent wrap-around.

use bytes::BufMut;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended before the last byte of the varint.
    #[error("input ended inside a varint")]
    Truncated,
    /// More continuation bytes than the integer type can hold.
    #[error("varint is longer than its type allows")]
    Overflow,
}

/// Reads an unsigned varint of at most 32 bits; returns the value and its length in bytes.
#[inline]
pub fn read_unsigned_varint(input: &[u8]) -> Result<(u32, usize), VarintError> {
    let (value, length) = read_unsigned(input, 5)?;
    if length == 5 && input[4] > 0x0f {
        return Err(VarintError::Overflow);
    }
    Ok((value as u32, length))
}

/// Reads an unsigned varint of at most 64 bits; returns the value and its length in bytes.
#[inline]
pub fn read_unsigned_varlong(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let (value, length) = read_unsigned(input, 10)?;
    if length == 10 && input[9] > 0x01 {
        return Err(VarintError::Overflow);
    }
    Ok((value, length))
}

/// Reads a zig-zag signed varint (32 bits), as used by record fields.
#[inline]
pub fn read_varint(input: &[u8]) -> Result<(i32, usize), VarintError> {
    let (raw, length) = read_unsigned_varint(input)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), length))
}

/// Reads a zig-zag signed varlong (64 bits), as used by record timestamp and offset deltas.
#[inline]
pub fn read_varlong(input: &[u8]) -> Result<(i64, usize), VarintError> {
    let (raw, length) = read_unsigned_varlong(input)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), length))
}

#[inline]
fn read_unsigned(input: &[u8], max_length: usize) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (index, byte) in input.iter().take(max_length).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if input.len() >= max_length {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Writes an unsigned varint (32 bits).
#[inline]
pub fn put_unsigned_varint(out: &mut impl BufMut, value: u32) {
    put_unsigned_varlong(out, u64::from(value));
}

/// Writes an unsigned varint (64 bits).
#[inline]
pub fn put_unsigned_varlong(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Writes a zig-zag signed varint (32 bits).
#[inline]
pub fn put_varint(out: &mut impl BufMut, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32);
}

/// Writes a zig-zag signed varlong (64 bits).
#[inline]
pub fn put_varlong(out: &mut impl BufMut, value: i64) {
    put_unsigned_varlong(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Bytes needed for an unsigned varint (32 bits).
#[inline]
pub fn unsigned_varint_size(value: u32) -> usize {
    unsigned_varlong_size(u64::from(value))
}

/// Bytes needed for an unsigned varint (64 bits).
#[inline]
pub fn unsigned_varlong_size(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes needed for a zig-zag signed varint (32 bits).
#[inline]
pub fn varint_size(value: i32) -> usize {
    unsigned_varint_size(((value << 1) ^ (value >> 31)) as u32)
}

/// Bytes needed for a zig-zag signed varlong (64 bits).
#[inline]
pub fn varlong_size(value: i64) -> usize {
    unsigned_varlong_size(((value << 1) ^ (value >> 63)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_values_round_trip_through_zig_zag() {
        for value in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN, 300, -300] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_size(value));
            assert_eq!(read_varint(&out), Ok((value, out.len())));
        }
        for value in [0, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(out.len(), varlong_size(value));
            assert_eq!(read_varlong(&out), Ok((value, out.len())));
        }
    }

    #[test]
    fn known_encodings_match_kafka() {
        let mut out = Vec::new();
        put_unsigned_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        put_varint(&mut out, -1);
        assert_eq!(out, [0x01]);
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        assert_eq!(
            read_unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            read_unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            read_unsigned_varint(&[0x80, 0x80]),
            Err(VarintError::Truncated)
        );
        assert_eq!(read_unsigned_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varlong(&[0xff; 11]), Err(VarintError::Overflow));
        assert_eq!(
            read_unsigned_varlong(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(VarintError::Overflow)
        );
    }
}
