//! The five codecs a batch's records section may be compressed with.
//!
//! Writes what the Java client writes: gzip (deflate level 6), snappy in
//! snappy-java's ("xerial") framing with 32 KiB blocks, the standard LZ4
//! frame with independent 64 KiB blocks and no checksums (as Kafka's
//! `KafkaLZ4BlockOutputStream`), and zstd at level 3. Reads anything those
//! libraries read, plus raw (unframed) snappy blocks, which librdkafka and
//! sarama send.
//!
//! Every decompression takes a maximum output size and stops with
//! [`RecordsError::DecompressedTooLarge`] as soon as the output would pass
//! it, so a small hostile input cannot make us allocate gigabytes. It does
//! not know about batches: it handles just the bytes after the batch header.

use std::fmt;
use std::io::{Read, Write};

use super::RecordsError;

/// Default bound on the decompressed size of one batch's records (64 MiB).
///
/// Kafka's default `message.max.bytes` is 1 MiB compressed; 64 MiB leaves
/// room for highly compressible data while keeping a zip bomb harmless.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// snappy-java's stream header: magic, then format version 1 and minimum compatible version 1.
const XERIAL_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
/// The magic part of [`XERIAL_HEADER`], which is all a reader checks.
const XERIAL_MAGIC_BYTES: usize = 8;
/// snappy-java's default block size, which the Java producer uses.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// Kafka's default gzip level (`Deflater.DEFAULT_COMPRESSION`).
const GZIP_LEVEL: u32 = 6;
/// Kafka's default zstd level.
const ZSTD_LEVEL: i32 = 3;

/// Compression codec of a record batch, with its id in the attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// Snappy (id 2).
    Snappy,
    /// LZ4 frame (id 3).
    Lz4,
    /// Zstandard (id 4).
    Zstd,
}

impl Compression {
    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The id stored in the batch attributes.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with this attribute id; ids 5 to 7 are unknown.
    pub fn from_id(id: u8) -> Result<Compression, RecordsError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            _ => Err(RecordsError::UnknownCompression { id }),
        }
    }

    /// The name Kafka uses in `compression.type`.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Compresses `input` into a new buffer.
    pub fn compress(self, input: &[u8]) -> Result<Vec<u8>, RecordsError> {
        let mut out = Vec::new();
        self.compress_into(input, &mut out)?;
        Ok(out)
    }

    /// Compresses `input`, appending to `out` (so a batch header can already be there).
    pub fn compress_into(self, input: &[u8], out: &mut Vec<u8>) -> Result<(), RecordsError> {
        let failed = |error: std::io::Error| RecordsError::Compression {
            codec: self,
            reason: error.to_string(),
        };
        match self {
            Compression::None => {
                out.extend_from_slice(input);
                Ok(())
            }
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
                encoder.write_all(input).map_err(failed)?;
                encoder.finish().map_err(failed)?;
                Ok(())
            }
            Compression::Snappy => compress_xerial_snappy(input, out),
            Compression::Lz4 => {
                let frame = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(frame, out);
                encoder.write_all(input).map_err(failed)?;
                encoder
                    .finish()
                    .map_err(|error| RecordsError::Compression {
                        codec: self,
                        reason: error.to_string(),
                    })?;
                Ok(())
            }
            Compression::Zstd => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(failed)?;
                // The content size in the frame lets librdkafka size its output buffer at once.
                encoder
                    .set_pledged_src_size(u64::try_from(input.len()).ok())
                    .map_err(failed)?;
                encoder.include_contentsize(true).map_err(failed)?;
                encoder.write_all(input).map_err(failed)?;
                encoder.finish().map_err(failed)?;
                Ok(())
            }
        }
    }

    /// Decompresses `input`, failing rather than producing more than `max_decompressed_bytes`.
    pub fn decompress(
        self,
        input: &[u8],
        max_decompressed_bytes: usize,
    ) -> Result<Vec<u8>, RecordsError> {
        match self {
            Compression::None => {
                if input.len() > max_decompressed_bytes {
                    return Err(RecordsError::DecompressedTooLarge {
                        codec: self,
                        limit_bytes: max_decompressed_bytes,
                    });
                }
                Ok(input.to_vec())
            }
            // Multi-member, as Java's GZIPInputStream reads.
            Compression::Gzip => read_bounded(
                self,
                flate2::read::MultiGzDecoder::new(input),
                input.len(),
                max_decompressed_bytes,
            ),
            Compression::Snappy => decompress_snappy(input, max_decompressed_bytes),
            Compression::Lz4 => read_bounded(
                self,
                lz4_flex::frame::FrameDecoder::new(input),
                input.len(),
                max_decompressed_bytes,
            ),
            Compression::Zstd => {
                let corrupt = |error: std::io::Error| decompression_error(self, &error);
                let mut decoder =
                    zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
                // The decoder reserves the frame's window up front: cap it so that a tiny
                // frame cannot reserve more than zstd's default or our output bound.
                decoder
                    .window_log_max(window_log_for(max_decompressed_bytes))
                    .map_err(corrupt)?;
                read_bounded(self, decoder, input.len(), max_decompressed_bytes)
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn decompression_error(codec: Compression, error: &dyn fmt::Display) -> RecordsError {
    RecordsError::Decompression {
        codec,
        reason: error.to_string(),
    }
}

fn too_large(codec: Compression, limit_bytes: usize) -> RecordsError {
    RecordsError::DecompressedTooLarge { codec, limit_bytes }
}

/// Reads a decompressing reader to its end, but never past `max_bytes`.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    input_bytes: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, RecordsError> {
    // A guess from the input size; growth past it is bounded by the take() below.
    let mut out = Vec::with_capacity(input_bytes.saturating_mul(4).min(max_bytes));
    // One byte more than allowed tells "exactly at the limit" from "past it".
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|error| decompression_error(codec, &error))?;
    if out.len() > max_bytes {
        return Err(too_large(codec, max_bytes));
    }
    Ok(out)
}

/// zstd window log (base-2 size) to allow for an output bound of `max_bytes`.
///
/// At least zstd's own default limit (27, 128 MiB), which is what Kafka's Java consumer
/// accepts, so any frame a Java producer writes decodes; more only when the bound is larger.
fn window_log_for(max_bytes: usize) -> u32 {
    const ZSTD_DEFAULT_WINDOW_LOG_MAX: u32 = 27;
    // zstd's ceiling (ZSTD_WINDOWLOG_MAX) depends on the pointer width.
    const ZSTD_WINDOW_LOG_CEILING: u32 = if usize::BITS == 32 { 30 } else { 31 };
    let log = usize::BITS - max_bytes.saturating_sub(1).leading_zeros();
    log.clamp(ZSTD_DEFAULT_WINDOW_LOG_MAX, ZSTD_WINDOW_LOG_CEILING)
}

/// snappy-java framing: header, then blocks of a 4-byte big-endian length and a raw snappy block.
fn compress_xerial_snappy(input: &[u8], out: &mut Vec<u8>) -> Result<(), RecordsError> {
    let failed = |error: snap::Error| RecordsError::Compression {
        codec: Compression::Snappy,
        reason: error.to_string(),
    };
    out.extend_from_slice(&XERIAL_HEADER);
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0; snap::raw::max_compress_len(XERIAL_BLOCK_BYTES)];
    for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
        let written = encoder.compress(chunk, &mut block).map_err(failed)?;
        let compressed = block.get(..written).unwrap_or_default();
        let length = u32::try_from(compressed.len()).map_err(|_| RecordsError::TooLarge {
            what: "snappy block",
            size: compressed.len(),
        })?;
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(compressed);
    }
    Ok(())
}

/// Reads snappy-java framing when the stream starts with its magic, a raw snappy block otherwise
/// (the same test snappy-java's `SnappyInputStream` makes).
fn decompress_snappy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, RecordsError> {
    let codec = Compression::Snappy;
    let magic = XERIAL_HEADER.get(..XERIAL_MAGIC_BYTES).unwrap_or_default();
    if !input.starts_with(magic) {
        let mut out = Vec::new();
        decompress_snappy_block(input, &mut out, max_bytes)?;
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut rest = input
        .get(XERIAL_HEADER.len()..)
        .ok_or(RecordsError::Decompression {
            codec,
            reason: format!(
                "snappy-java stream header needs {} bytes, only {} present",
                XERIAL_HEADER.len(),
                input.len()
            ),
        })?;
    while !rest.is_empty() {
        // snappy-java reads concatenated streams: a second header where a block length would be.
        if rest.starts_with(magic) {
            rest = rest.get(XERIAL_HEADER.len()..).unwrap_or_default();
            continue;
        }
        let (length, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| decompression_error(codec, &"snappy-java block length cut short"))?;
        let length = u32::from_be_bytes(*length);
        let block_bytes = usize::try_from(length).unwrap_or(usize::MAX);
        let block = after.get(..block_bytes).ok_or_else(|| {
            decompression_error(
                codec,
                &format_args!(
                    "snappy-java block of {length} bytes, only {} present",
                    after.len()
                ),
            )
        })?;
        decompress_snappy_block(block, &mut out, max_bytes)?;
        rest = after.get(block_bytes..).unwrap_or_default();
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its declared size against the limit first.
fn decompress_snappy_block(
    block: &[u8],
    out: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<(), RecordsError> {
    let codec = Compression::Snappy;
    let corrupt = |error: snap::Error| decompression_error(codec, &error);
    let block_bytes = snap::raw::decompress_len(block).map_err(corrupt)?;
    let start = out.len();
    let end = start
        .checked_add(block_bytes)
        .filter(|end| *end <= max_bytes)
        .ok_or(too_large(codec, max_bytes))?;
    out.resize(end, 0);
    let target = out.get_mut(start..).unwrap_or_default();
    let written = snap::raw::Decoder::new()
        .decompress(block, target)
        .map_err(corrupt)?;
    if written != block_bytes {
        return Err(decompression_error(
            codec,
            &format_args!("snappy block declared {block_bytes} bytes but held {written}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_snappy_without_framing_is_read() {
        let data = b"raw snappy, as librdkafka and sarama send it, raw snappy".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_ne!(raw.get(..8), XERIAL_HEADER.get(..8));
        assert_eq!(Compression::Snappy.decompress(&raw, 1 << 20).unwrap(), data);
    }

    #[test]
    fn snappy_is_written_with_xerial_framing_in_32_kib_blocks() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let framed = Compression::Snappy.compress(&data).unwrap();
        assert_eq!(framed.get(..16), Some(&XERIAL_HEADER[..]));
        let first_block = u32::from_be_bytes(framed[16..20].try_into().unwrap()) as usize;
        let first = snap::raw::Decoder::new()
            .decompress_vec(&framed[20..20 + first_block])
            .unwrap();
        assert_eq!(first.len(), XERIAL_BLOCK_BYTES);
        assert_eq!(
            Compression::Snappy.decompress(&framed, 1 << 20).unwrap(),
            data
        );
    }

    #[test]
    fn concatenated_xerial_streams_are_read() {
        let mut framed = Compression::Snappy.compress(b"first ").unwrap();
        framed.extend(Compression::Snappy.compress(b"second").unwrap());
        assert_eq!(
            Compression::Snappy.decompress(&framed, 100).unwrap(),
            b"first second"
        );
    }

    #[test]
    fn raw_snappy_declaring_a_huge_size_is_refused_before_allocating() {
        // Varint 0xFFFF_FFFF as the uncompressed length, then nothing.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(
            Compression::Snappy.decompress(&bomb, 1 << 20),
            Err(RecordsError::DecompressedTooLarge { .. })
        ));
    }

    #[test]
    fn lz4_frame_header_matches_kafka() {
        let frame = Compression::Lz4.compress(b"kafka").unwrap();
        // Magic, FLG (version 1, independent blocks, no checksums, no size), BD (64 KiB).
        assert_eq!(
            frame.get(..6),
            Some(&[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40][..])
        );
    }

    #[test]
    fn zstd_window_log_follows_the_limit() {
        assert_eq!(window_log_for(DEFAULT_MAX_DECOMPRESSED_BYTES), 27);
        assert_eq!(window_log_for(1), 27);
        assert_eq!(window_log_for(1 << 30), 30);
        assert_eq!(
            window_log_for(usize::MAX),
            if usize::BITS == 32 { 30 } else { 31 }
        );
    }
}
