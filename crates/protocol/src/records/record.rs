//! Records inside a v2 batch: encoding and decoding, as Kafka's `DefaultRecord`.
//!
//! ```text
//! length varint          bytes of the record after this field
//! attributes i8          unused, 0
//! timestamp_delta varlong   milliseconds after the batch's base timestamp
//! offset_delta varint
//! key_length varint, key     -1 for a null key
//! value_length varint, value -1 for a null value
//! header_count varint
//!   header_key_length varint, header_key (UTF-8, never null)
//!   header_value_length varint, header_value (-1 for null)
//! ```
//!
//! Varints are zig-zag encoded (`crate::varint`). Decoding slices keys and
//! values out of the input `Bytes` without copying. Every length and count
//! is checked against the bytes left in the record before anything is
//! allocated or sliced. This module knows nothing of batch headers,
//! compression or CRCs (see `batch`).

use bytes::{BufMut, Bytes};

use super::RecordsError;
use crate::varint::{self, VarintError};

/// Fewest bytes a record can take: a 1-byte length and six 1-byte fields.
pub(crate) const MIN_RECORD_BYTES: usize = 7;
/// Fewest bytes a header can take: empty key and null value, one byte each.
const MIN_HEADER_BYTES: usize = 2;

/// A record header. Keys may repeat; order is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RecordHeader {
    /// Header name. Decoding replaces invalid UTF-8 with U+FFFD, as the Java client does.
    pub key: String,
    /// Header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

/// One record of a v2 batch. Offsets and timestamps are relative to the batch header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Record {
    /// Record attributes; Kafka defines no bits and writes 0.
    pub attributes: i8,
    /// Milliseconds after the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// Offset after the batch's `base_offset`.
    pub offset_delta: i32,
    /// Key; `None` is Kafka's null.
    pub key: Option<Bytes>,
    /// Value; `None` is Kafka's null (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order, duplicates kept.
    pub headers: Vec<RecordHeader>,
}

impl Record {
    /// Bytes this record takes when encoded, length prefix included.
    pub fn encoded_size(&self) -> Result<usize, RecordsError> {
        let body = self.body_size()?;
        Ok(varint::varint_size(length_i32(body, "record")?) + body)
    }

    /// Writes the record, length prefix included.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), RecordsError> {
        let body = length_i32(self.body_size()?, "record")?;
        varint::put_varint(out, body);
        out.put_i8(self.attributes);
        varint::put_varlong(out, self.timestamp_delta);
        varint::put_varint(out, self.offset_delta);
        put_nullable(out, self.key.as_deref(), "record key")?;
        put_nullable(out, self.value.as_deref(), "record value")?;
        varint::put_varint(out, length_i32(self.headers.len(), "header count")?);
        for header in &self.headers {
            put_nullable(out, Some(header.key.as_bytes()), "header key")?;
            put_nullable(out, header.value.as_deref(), "header value")?;
        }
        Ok(())
    }

    /// Decodes the record at the start of `input`; returns it and the bytes it took.
    /// Key and value are slices of `input`.
    pub fn decode(input: &Bytes) -> Result<(Record, usize), RecordsError> {
        let mut reader = Reader::new(input);
        let record = read_record(&mut reader)?;
        Ok((record, reader.pos))
    }

    fn body_size(&self) -> Result<usize, RecordsError> {
        let mut size = 1
            + varint::varlong_size(self.timestamp_delta)
            + varint::varint_size(self.offset_delta)
            + nullable_size(self.key.as_deref(), "record key")?
            + nullable_size(self.value.as_deref(), "record value")?
            + varint::varint_size(length_i32(self.headers.len(), "header count")?);
        for header in &self.headers {
            size = size
                .saturating_add(nullable_size(Some(header.key.as_bytes()), "header key")?)
                .saturating_add(nullable_size(header.value.as_deref(), "header value")?);
        }
        Ok(size)
    }
}

/// Decodes exactly `count` records filling all of `input` (a batch's records section).
///
/// A count that `input` cannot hold is refused before allocating; fewer records than
/// declared, or bytes left after them, are errors.
pub fn decode_records(input: &Bytes, count: i32) -> Result<Vec<Record>, RecordsError> {
    let Ok(expected) = usize::try_from(count) else {
        return Err(RecordsError::NegativeRecordCount { count });
    };
    if expected > input.len() / MIN_RECORD_BYTES {
        return Err(RecordsError::LengthExceedsInput {
            what: "record count",
            claimed: i64::from(count),
            available: input.len(),
        });
    }
    let mut records = Vec::with_capacity(expected);
    let mut reader = Reader::new(input);
    for index in 0..expected {
        if reader.remaining() == 0 {
            return Err(RecordsError::RecordCountMismatch {
                declared: count,
                decoded: index,
            });
        }
        let record = read_record(&mut reader).map_err(|error| RecordsError::InRecord {
            index,
            error: Box::new(error),
        })?;
        records.push(record);
    }
    if reader.remaining() != 0 {
        return Err(RecordsError::TrailingRecordBytes {
            count,
            remaining: reader.remaining(),
        });
    }
    Ok(records)
}

fn length_i32(length: usize, what: &'static str) -> Result<i32, RecordsError> {
    i32::try_from(length).map_err(|_| RecordsError::TooLarge { what, size: length })
}

fn nullable_size(value: Option<&[u8]>, what: &'static str) -> Result<usize, RecordsError> {
    match value {
        None => Ok(varint::varint_size(-1)),
        Some(bytes) => Ok(varint::varint_size(length_i32(bytes.len(), what)?) + bytes.len()),
    }
}

fn put_nullable(
    out: &mut impl BufMut,
    value: Option<&[u8]>,
    what: &'static str,
) -> Result<(), RecordsError> {
    match value {
        None => varint::put_varint(out, -1),
        Some(bytes) => {
            varint::put_varint(out, length_i32(bytes.len(), what)?);
            out.put_slice(bytes);
        }
    }
    Ok(())
}

/// A bounded cursor over a `Bytes`, so slices of it share its buffer.
struct Reader<'a> {
    input: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a Bytes) -> Self {
        Reader {
            input,
            pos: 0,
            end: input.len(),
        }
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..self.end).unwrap_or_default()
    }

    fn varint(&mut self, what: &'static str) -> Result<i32, RecordsError> {
        let (value, length) = varint::read_varint(self.rest())
            .map_err(|error| varint_error(what, error, self.remaining()))?;
        self.pos += length;
        Ok(value)
    }

    fn varlong(&mut self, what: &'static str) -> Result<i64, RecordsError> {
        let (value, length) = varint::read_varlong(self.rest())
            .map_err(|error| varint_error(what, error, self.remaining()))?;
        self.pos += length;
        Ok(value)
    }

    fn i8(&mut self, what: &'static str) -> Result<i8, RecordsError> {
        let byte = *self
            .rest()
            .first()
            .ok_or(RecordsError::RecordTruncated { what, available: 0 })?;
        self.pos += 1;
        Ok(byte as i8)
    }

    /// A length field: non-negative, or -1 for null when `nullable`.
    fn length(
        &mut self,
        what: &'static str,
        nullable: bool,
    ) -> Result<Option<usize>, RecordsError> {
        let length = self.varint(what)?;
        if nullable && length == -1 {
            return Ok(None);
        }
        let Ok(length_bytes) = usize::try_from(length) else {
            return Err(RecordsError::InvalidLength { what, length });
        };
        if length_bytes > self.remaining() {
            return Err(RecordsError::LengthExceedsInput {
                what,
                claimed: i64::from(length),
                available: self.remaining(),
            });
        }
        Ok(Some(length_bytes))
    }

    /// Only called with a length that `length()` checked against `remaining()`.
    fn take_bytes(&mut self, length: usize) -> Bytes {
        let end = self.pos + length;
        if end > self.end {
            return Bytes::new();
        }
        let bytes = self.input.slice(self.pos..end);
        self.pos = end;
        bytes
    }

    fn take_slice(&mut self, length: usize) -> &'a [u8] {
        let end = self.pos + length;
        let slice = self.input.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        slice
    }

    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, RecordsError> {
        Ok(self
            .length(what, true)?
            .map(|length| self.take_bytes(length)))
    }
}

fn varint_error(what: &'static str, error: VarintError, available: usize) -> RecordsError {
    match error {
        // A varint cut off by the end of its record is a truncated record.
        VarintError::Truncated => RecordsError::RecordTruncated { what, available },
        VarintError::Overflow => RecordsError::Varint { what, error },
    }
}

fn read_record(reader: &mut Reader<'_>) -> Result<Record, RecordsError> {
    let length = reader.length("record length", false)?.unwrap_or(0);
    let mut body = Reader {
        input: reader.input,
        pos: reader.pos,
        end: reader.pos + length,
    };
    reader.pos = body.end;

    let attributes = body.i8("record attributes")?;
    let timestamp_delta = body.varlong("timestamp delta")?;
    let offset_delta = body.varint("offset delta")?;
    let key = body.nullable_bytes("key length")?;
    let value = body.nullable_bytes("value length")?;
    let header_count = body.varint("header count")?;
    let Ok(header_count_usize) = usize::try_from(header_count) else {
        return Err(RecordsError::InvalidLength {
            what: "header count",
            length: header_count,
        });
    };
    if header_count_usize > body.remaining() / MIN_HEADER_BYTES {
        return Err(RecordsError::LengthExceedsInput {
            what: "header count",
            claimed: i64::from(header_count),
            available: body.remaining(),
        });
    }
    let mut headers = Vec::with_capacity(header_count_usize);
    for _ in 0..header_count_usize {
        let key_bytes = body.length("header key length", false)?.unwrap_or(0);
        let key = String::from_utf8_lossy(body.take_slice(key_bytes)).into_owned();
        let value = body.nullable_bytes("header value length")?;
        headers.push(RecordHeader { key, value });
    }
    if body.remaining() != 0 {
        return Err(RecordsError::RecordSizeMismatch {
            declared: length,
            consumed: length - body.remaining(),
        });
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}
