//! The primitives every generated message is made of: a bounds-checked
//! [`Decoder`] over a receive buffer and an [`Encoder`] that can hand large
//! record payloads to the socket without copying them.
//!
//! The decoder's one rule: nothing is allocated, and no loop runs, on the
//! strength of a length or count until the remaining input can hold it (an
//! array element takes at least one byte, as Kafka's own generated code
//! assumes). So a 16-byte frame that claims two billion elements is a
//! [`DecodeError`] naming the field, never an abort.

use std::fmt;
use std::ops::Deref;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::varint;

/// Record payloads at least this long are passed to the socket as their own
/// chunk instead of being copied into the response buffer.
pub const ZERO_COPY_THRESHOLD_BYTES: usize = 4096;

/// Room an encoder's buffer starts with: most responses fit, so they are
/// written without growing it.
const INITIAL_CAPACITY_BYTES: usize = 1024;

/// Why a frame could not be decoded, and in which field. Boxed, so that the
/// `Result` of every primitive read stays two registers wide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .0.field, .0.kind)]
pub struct DecodeError(Box<DecodeErrorDetail>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct DecodeErrorDetail {
    field: &'static str,
    kind: DecodeErrorKind,
}

/// The kinds of malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ended before a fixed-size value.
    #[error("needed {needed} bytes but only {remaining} remain")]
    Truncated { needed: usize, remaining: usize },
    /// A length or element count larger than the bytes that remain.
    #[error("claimed length {claimed} exceeds the {remaining} bytes that remain")]
    LengthTooLarge { claimed: u64, remaining: usize },
    /// A negative length other than the null marker.
    #[error("negative length {0}")]
    NegativeLength(i64),
    /// Null where this version does not allow it.
    #[error("null in a non-nullable field")]
    UnexpectedNull,
    /// A string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// An unsigned varint longer than 5 bytes, or cut short.
    #[error("malformed varint")]
    MalformedVarint,
    /// The message has no such version.
    #[error("unsupported version {0}")]
    UnsupportedVersion(i16),
    /// No API has this key.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
}

impl DecodeError {
    #[cold]
    pub fn new(field: &'static str, kind: DecodeErrorKind) -> Self {
        Self(Box::new(DecodeErrorDetail { field, kind }))
    }

    /// The schema path of the field being read, e.g. `ProduceRequest.TopicData`.
    pub fn field(&self) -> &'static str {
        self.0.field
    }

    /// What was wrong with it.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0.kind
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message has no such version.
    #[error("{message} has no version {version}")]
    UnsupportedVersion { message: &'static str, version: i16 },
    /// A field holds null in a version where it is not nullable.
    #[error("{0} is null but not nullable in this version")]
    NullNotAllowed(&'static str),
    /// A string, bytes or array too long for its length prefix.
    #[error("{field} is {length} long, more than its length prefix can say")]
    TooLong { field: &'static str, length: usize },
}

/// A UTF-8 string that shares the receive buffer instead of owning a copy.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StrBytes(Bytes);

impl StrBytes {
    /// A string from a static literal, without allocating.
    pub const fn from_static(value: &'static str) -> Self {
        Self(Bytes::from_static(value.as_bytes()))
    }

    /// Checks that `bytes` is UTF-8 and wraps it without copying.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        // The constructors only admit UTF-8, so this cannot fail; fall back to
        // an empty string rather than panic if that invariant were ever broken.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for StrBytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for StrBytes {
    fn from(value: String) -> Self {
        Self(Bytes::from(value.into_bytes()))
    }
}

impl From<&str> for StrBytes {
    fn from(value: &str) -> Self {
        Self(Bytes::copy_from_slice(value.as_bytes()))
    }
}

impl PartialEq<str> for StrBytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StrBytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for StrBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for StrBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 128-bit id (topic ids, directory ids). Kafka prints them in URL-safe
/// base64 without padding, and so does `Display`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero id, which Kafka uses for "no id".
    pub const ZERO: Uuid = Uuid([0; 16]);

    pub const fn from_u128(value: u128) -> Self {
        Self(value.to_be_bytes())
    }

    pub const fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let value = self.as_u128();
        // 128 bits = 21 full sextets + 2 bits, written most significant first.
        let mut text = String::with_capacity(22);
        for index in 0..22u32 {
            let shift = 128i32 - 6 * (index as i32 + 1);
            let sextet = if shift >= 0 {
                (value >> shift) & 0x3f
            } else {
                (value << -shift) & 0x3f
            };
            text.push(char::from(ALPHABET[sextet as usize]));
        }
        f.write_str(&text)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// A tagged field this version of the codec does not know, kept so that a
/// message passed through unchanged loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTaggedField {
    pub tag: u32,
    pub data: Bytes,
}

/// The tagged fields of one struct that the codec did not know, in ascending
/// tag order (the order they must be written in), whatever order they
/// arrived in. Nearly always empty, so it takes one word and costs
/// nothing to create or drop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// A boxed Vec on purpose: one word instead of three in every struct.
#[allow(clippy::box_collection)]
pub struct UnknownTaggedFields(Option<Box<Vec<RawTaggedField>>>);

impl UnknownTaggedFields {
    pub const fn new() -> Self {
        Self(None)
    }

    /// Adds a field after any with the same or a lower tag.
    pub fn push(&mut self, field: RawTaggedField) {
        let fields = self.0.get_or_insert_with(Box::default);
        let position = fields.partition_point(|existing| existing.tag <= field.tag);
        fields.insert(position, field);
    }

    pub fn as_slice(&self) -> &[RawTaggedField] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
}

impl From<Vec<RawTaggedField>> for UnknownTaggedFields {
    fn from(mut fields: Vec<RawTaggedField>) -> Self {
        if fields.is_empty() {
            Self(None)
        } else {
            fields.sort_by_key(|field| field.tag);
            Self(Some(Box::new(fields)))
        }
    }
}

/// A bounds-checked reader over a receive buffer. Byte fields come out as
/// zero-copy slices of that buffer.
pub struct Decoder<'a> {
    /// The whole buffer, for zero-copy slices.
    buffer: &'a Bytes,
    /// What is left to read: always a suffix of a range of `buffer`.
    input: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(buffer: &'a Bytes) -> Self {
        Self {
            buffer,
            input: buffer,
        }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// Bytes read so far from the start of the buffer.
    pub fn position(&self) -> usize {
        self.offset_of(self.input)
    }

    /// Where `part` (a slice of `buffer`) starts within `buffer`.
    #[inline]
    fn offset_of(&self, part: &[u8]) -> usize {
        part.as_ptr() as usize - self.buffer.as_ptr() as usize
    }

    #[cold]
    #[inline(never)]
    fn truncated(&self, needed: usize, field: &'static str) -> DecodeError {
        DecodeError::new(
            field,
            DecodeErrorKind::Truncated {
                needed,
                remaining: self.remaining(),
            },
        )
    }

    #[inline]
    fn take(&mut self, length: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.input.split_at_checked(length) {
            Some((head, tail)) => {
                self.input = tail;
                Ok(head)
            }
            None => Err(self.truncated(length, field)),
        }
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        match self.input.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.input = tail;
                Ok(*head)
            }
            None => Err(self.truncated(N, field)),
        }
    }

    #[inline]
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        Ok(self.array::<1>(field)?[0] != 0)
    }

    #[inline]
    pub fn i8(&mut self, field: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn f64(&mut self, field: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub fn uuid(&mut self, field: &'static str) -> Result<Uuid, DecodeError> {
        Ok(Uuid(self.array(field)?))
    }

    #[inline]
    pub fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        // Lengths and tag counts are nearly always one byte.
        if let Some((&byte, tail)) = self.input.split_first()
            && byte < 0x80
        {
            self.input = tail;
            return Ok(u32::from(byte));
        }
        let (value, length) = varint::read_unsigned_varint(self.input)
            .map_err(|_| DecodeError::new(field, DecodeErrorKind::MalformedVarint))?;
        self.input = &self.input[length..];
        Ok(value)
    }

    /// Reads a length prefix: `None` for null, otherwise a length that is at
    /// most the remaining bytes. Compact lengths are stored plus one.
    #[inline]
    fn length(
        &mut self,
        flexible: bool,
        short: bool,
        field: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        let claimed: i64 = if flexible {
            i64::from(self.unsigned_varint(field)?) - 1
        } else if short {
            i64::from(self.i16(field)?)
        } else {
            i64::from(self.i32(field)?)
        };
        if claimed == -1 {
            return Ok(None);
        }
        if claimed < 0 {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::NegativeLength(claimed),
            ));
        }
        let remaining = self.remaining();
        if claimed as u64 > remaining as u64 {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::LengthTooLarge {
                    claimed: claimed as u64,
                    remaining,
                },
            ));
        }
        Ok(Some(claimed as usize))
    }

    /// A zero-copy slice of the next `length` bytes.
    #[inline]
    pub fn slice(&mut self, length: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let part = self.take(length, field)?;
        if length == 0 {
            return Ok(Bytes::new());
        }
        let start = self.offset_of(part);
        Ok(self.buffer.slice(start..start + length))
    }

    #[inline]
    pub fn nullable_string(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Option<StrBytes>, DecodeError> {
        match self.length(flexible, true, field)? {
            None => Ok(None),
            Some(length) => {
                let bytes = self.slice(length, field)?;
                StrBytes::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| DecodeError::new(field, DecodeErrorKind::InvalidUtf8))
            }
        }
    }

    #[inline]
    pub fn string(&mut self, flexible: bool, field: &'static str) -> Result<StrBytes, DecodeError> {
        self.nullable_string(flexible, field)?
            .ok_or_else(|| DecodeError::new(field, DecodeErrorKind::UnexpectedNull))
    }

    #[inline]
    pub fn nullable_bytes(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Option<Bytes>, DecodeError> {
        match self.length(flexible, false, field)? {
            None => Ok(None),
            Some(length) => self.slice(length, field).map(Some),
        }
    }

    #[inline]
    pub fn bytes(&mut self, flexible: bool, field: &'static str) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(flexible, field)?
            .ok_or_else(|| DecodeError::new(field, DecodeErrorKind::UnexpectedNull))
    }

    /// An array's element count, `None` for null. The count is at most the
    /// remaining bytes, so a caller may size a `Vec` by it.
    #[inline]
    pub fn nullable_array_length(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        self.length(flexible, false, field)
    }

    #[inline]
    pub fn array_length(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<usize, DecodeError> {
        self.nullable_array_length(flexible, field)?
            .ok_or_else(|| DecodeError::new(field, DecodeErrorKind::UnexpectedNull))
    }

    /// The number of tagged fields that follow, bounded by the input (each
    /// takes at least two bytes).
    #[inline]
    pub fn tagged_field_count(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let count = self.unsigned_varint(field)?;
        let remaining = self.remaining();
        if u64::from(count) * 2 > remaining as u64 {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::LengthTooLarge {
                    claimed: u64::from(count),
                    remaining,
                },
            ));
        }
        Ok(count)
    }

    /// Reads one tagged field's tag and size, and returns the tag with a
    /// decoder limited to its payload; this decoder moves past the payload.
    #[inline]
    pub fn tagged_field(&mut self, field: &'static str) -> Result<(u32, Decoder<'a>), DecodeError> {
        let tag = self.unsigned_varint(field)?;
        let size = self.unsigned_varint(field)? as usize;
        let payload = self.take(size, field)?;
        let sub = Decoder {
            buffer: self.buffer,
            input: payload,
        };
        Ok((tag, sub))
    }

    /// Everything this decoder has not read, as a zero-copy slice.
    pub fn rest(&mut self) -> Bytes {
        let length = self.remaining();
        self.slice(length, "rest").unwrap_or_default()
    }
}

/// Writes messages into one growing buffer, except that large record
/// payloads become separate chunks that are never copied. The result is an
/// [`EncodedBytes`], which a socket can take with one vectored write.
#[derive(Default)]
pub struct Encoder {
    current: BytesMut,
    /// The first segment when a frame length must still be patched into it.
    head: Option<BytesMut>,
    chunks: Vec<Bytes>,
    framed: bool,
}

impl Encoder {
    /// An encoder producing bare message bytes.
    pub fn new() -> Self {
        Self::with_capacity(INITIAL_CAPACITY_BYTES)
    }

    /// An encoder whose buffer starts with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            current: BytesMut::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// An encoder whose output starts with Kafka's 4-byte frame length.
    pub fn framed() -> Self {
        let mut current = BytesMut::with_capacity(INITIAL_CAPACITY_BYTES);
        current.put_i32(0);
        Self {
            current,
            framed: true,
            ..Self::default()
        }
    }

    /// Bytes written so far, including any frame length prefix.
    pub fn len(&self) -> usize {
        self.current.len()
            + self.head.as_ref().map_or(0, BytesMut::len)
            + self.chunks.iter().map(Bytes::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn bool(&mut self, value: bool) {
        self.current.put_u8(u8::from(value));
    }

    #[inline]
    pub fn i8(&mut self, value: i8) {
        self.current.put_i8(value);
    }

    #[inline]
    pub fn i16(&mut self, value: i16) {
        self.current.put_i16(value);
    }

    #[inline]
    pub fn u16(&mut self, value: u16) {
        self.current.put_u16(value);
    }

    #[inline]
    pub fn i32(&mut self, value: i32) {
        self.current.put_i32(value);
    }

    #[inline]
    pub fn u32(&mut self, value: u32) {
        self.current.put_u32(value);
    }

    #[inline]
    pub fn i64(&mut self, value: i64) {
        self.current.put_i64(value);
    }

    #[inline]
    pub fn f64(&mut self, value: f64) {
        self.current.put_f64(value);
    }

    #[inline]
    pub fn uuid(&mut self, value: &Uuid) {
        self.current.put_slice(&value.0);
    }

    #[inline]
    pub fn unsigned_varint(&mut self, value: u32) {
        varint::put_unsigned_varint(&mut self.current, value);
    }

    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.current.put_slice(bytes);
    }

    #[inline]
    fn length(
        &mut self,
        length: usize,
        flexible: bool,
        short: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let limit = if short {
            i16::MAX as usize
        } else {
            i32::MAX as usize - 1
        };
        if length > limit {
            return Err(EncodeError::TooLong { field, length });
        }
        if flexible {
            self.unsigned_varint(length as u32 + 1);
        } else if short {
            self.i16(length as i16);
        } else {
            self.i32(length as i32);
        }
        Ok(())
    }

    #[inline]
    fn null(&mut self, flexible: bool, short: bool) {
        if flexible {
            self.unsigned_varint(0);
        } else if short {
            self.i16(-1);
        } else {
            self.i32(-1);
        }
    }

    #[inline]
    pub fn string(
        &mut self,
        value: &str,
        flexible: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        self.length(value.len(), flexible, true, field)?;
        self.raw(value.as_bytes());
        Ok(())
    }

    #[inline]
    pub fn null_string(&mut self, flexible: bool) {
        self.null(flexible, true);
    }

    #[inline]
    pub fn bytes(
        &mut self,
        value: &[u8],
        flexible: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        self.length(value.len(), flexible, false, field)?;
        self.raw(value);
        Ok(())
    }

    #[inline]
    pub fn null_bytes(&mut self, flexible: bool) {
        self.null(flexible, false);
    }

    /// Record batches: large ones are chained, not copied.
    #[inline]
    pub fn records(
        &mut self,
        value: &Bytes,
        flexible: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        self.length(value.len(), flexible, false, field)?;
        if value.len() < ZERO_COPY_THRESHOLD_BYTES {
            self.raw(value);
            return Ok(());
        }
        let segment = self.current.split();
        if self.framed && self.head.is_none() && self.chunks.is_empty() {
            self.head = Some(segment);
        } else if !segment.is_empty() {
            self.chunks.push(segment.freeze());
        }
        self.chunks.push(value.clone());
        Ok(())
    }

    #[inline]
    pub fn array_length(
        &mut self,
        length: usize,
        flexible: bool,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        self.length(length, flexible, false, field)
    }

    #[inline]
    pub fn null_array(&mut self, flexible: bool) {
        self.null(flexible, false);
    }

    /// Writes a tagged-field section: the known fields (already encoded, in
    /// ascending tag order) merged with the unknown ones kept from decoding.
    #[inline]
    pub fn tagged_fields(&mut self, known: &[(u32, Bytes)], unknown: &[RawTaggedField]) {
        if known.is_empty() && unknown.is_empty() {
            self.current.put_u8(0);
        } else {
            self.some_tagged_fields(known, unknown);
        }
    }

    #[inline(never)]
    fn some_tagged_fields(&mut self, known: &[(u32, Bytes)], unknown: &[RawTaggedField]) {
        let mut all: Vec<(u32, &[u8])> = known
            .iter()
            .map(|(tag, data)| (*tag, data.as_ref()))
            .chain(unknown.iter().map(|field| (field.tag, field.data.as_ref())))
            .collect();
        all.sort_by_key(|(tag, _)| *tag);
        self.unsigned_varint(all.len() as u32);
        for (tag, data) in all {
            self.unsigned_varint(tag);
            self.unsigned_varint(data.len() as u32);
            self.raw(data);
        }
    }

    /// The encoded bytes as chunks, with the frame length filled in.
    pub fn finish(mut self) -> EncodedBytes {
        if self.framed {
            let frame_length = (self.len() - 4) as i32;
            let first = self.head.as_mut().unwrap_or(&mut self.current);
            first[..4].copy_from_slice(&frame_length.to_be_bytes());
        }
        if self.head.is_none() && self.chunks.is_empty() {
            return EncodedBytes::single(self.current.freeze());
        }
        let mut chunks = Vec::with_capacity(self.chunks.len() + 2);
        if let Some(head) = self.head {
            chunks.push(head.freeze());
        }
        chunks.extend(self.chunks);
        chunks.push(self.current.freeze());
        EncodedBytes::from_chunks(chunks)
    }

    /// The encoded bytes in one contiguous buffer (copies chained records).
    pub fn into_bytes(self) -> Bytes {
        self.finish().into_contiguous()
    }
}

/// Encoded output: a few contiguous chunks, readable as one [`Buf`] so that
/// `write_all_buf` sends them with vectored writes. The common case, one
/// chunk, needs no allocation beyond the chunk itself.
#[derive(Debug, Clone, Default)]
pub struct EncodedBytes {
    /// The chunk being consumed now (empty when everything is consumed).
    first: Bytes,
    /// The chunks after it, in order.
    rest: std::collections::VecDeque<Bytes>,
    remaining: usize,
}

impl EncodedBytes {
    fn from_chunks(chunks: Vec<Bytes>) -> Self {
        let remaining = chunks.iter().map(Bytes::len).sum();
        let mut rest: std::collections::VecDeque<Bytes> = chunks
            .into_iter()
            .filter(|chunk| !chunk.is_empty())
            .collect();
        let first = rest.pop_front().unwrap_or_default();
        Self {
            first,
            rest,
            remaining,
        }
    }

    fn single(chunk: Bytes) -> Self {
        Self {
            remaining: chunk.len(),
            first: chunk,
            rest: std::collections::VecDeque::new(),
        }
    }

    /// The chunks not yet consumed.
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.first)
            .filter(|chunk| !chunk.is_empty())
            .chain(self.rest.iter())
    }

    /// Joins the chunks into one buffer; free when there is a single chunk.
    pub fn into_contiguous(self) -> Bytes {
        if self.rest.is_empty() {
            return self.first;
        }
        let mut joined = BytesMut::with_capacity(self.remaining);
        joined.put_slice(&self.first);
        for chunk in &self.rest {
            joined.put_slice(chunk);
        }
        joined.freeze()
    }
}

impl Buf for EncodedBytes {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        &self.first
    }

    fn advance(&mut self, mut count: usize) {
        assert!(
            count <= self.remaining,
            "advance past the end of EncodedBytes"
        );
        self.remaining -= count;
        while count > 0 {
            let step = count.min(self.first.len());
            self.first.advance(step);
            count -= step;
            if self.first.is_empty() {
                match self.rest.pop_front() {
                    Some(next) => self.first = next,
                    None => break,
                }
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, destination: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut written = 0;
        for (slot, chunk) in destination.iter_mut().zip(self.chunks()) {
            *slot = std::io::IoSlice::new(chunk);
            written += 1;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_displays_like_kafka() {
        // Kafka prints Uuid(0, 1) as "AAAAAAAAAAAAAAAAAAAAAQ".
        assert_eq!(Uuid::from_u128(1).to_string(), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn large_records_are_chained_not_copied() {
        let payload = Bytes::from(vec![7u8; ZERO_COPY_THRESHOLD_BYTES * 2]);
        let mut encoder = Encoder::framed();
        encoder.i32(42);
        encoder.records(&payload, false, "records").unwrap();
        encoder.i16(1);
        let encoded = encoder.finish();
        let chunks: Vec<&Bytes> = encoded.chunks().collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), payload.as_ptr(), "payload was copied");
        let bytes = encoded.into_contiguous();
        let frame_length = i32::from_be_bytes(bytes[..4].try_into().unwrap());
        assert_eq!(frame_length as usize, bytes.len() - 4);
    }

    #[test]
    fn huge_claimed_lengths_are_refused_before_allocating() {
        let input = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let mut decoder = Decoder::new(&input);
        let error = decoder.array_length(false, "Test.Array").unwrap_err();
        assert_eq!(error.field(), "Test.Array");
        assert!(matches!(
            error.kind(),
            DecodeErrorKind::LengthTooLarge { .. }
        ));
    }
}
