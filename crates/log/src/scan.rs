//! Walking the batches of a segment file from a position, reading the file in
//! chunks rather than one small read per header.
//!
//! The walk checks framing only: enough bytes for a header, magic 2, a batch
//! length that is sane and fits in the file, a non-negative offset delta. It
//! does not check CRCs or offsets; recovery does that on top. A framing fault
//! ends the walk with [`Step::Invalid`] rather than an error, because on the
//! active segment it means "torn tail, truncate here", not "fail".

use std::fs::File;
use std::path::Path;

use bytes::Bytes;
use eddy_protocol::records::{BATCH_HEADER_SIZE, BatchHeader};

use crate::error::LogError;
use crate::fileio;

/// Bytes read at a time when walking a segment.
pub(crate) const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// A batch found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScannedBatch {
    /// File position of the batch's first byte.
    pub position: u64,
    /// Its header, as stored.
    pub header: BatchHeader,
}

impl ScannedBatch {
    /// Bytes of the whole batch.
    pub fn size(&self) -> u64 {
        self.header.total_size() as u64
    }

    /// File position just past the batch.
    pub fn end(&self) -> u64 {
        self.position + self.size()
    }
}

/// One step of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A batch whose framing is sound.
    Batch(ScannedBatch),
    /// The walk reached its end position exactly.
    End,
    /// The bytes at `position` are not a whole batch.
    Invalid {
        /// Where the bad bytes start.
        position: u64,
        /// What is wrong with them.
        reason: String,
    },
}

/// A walk over the batches of `file` between two positions.
pub(crate) struct BatchScanner<'a> {
    file: &'a File,
    path: &'a Path,
    position: u64,
    end: u64,
    buffer: Vec<u8>,
    buffer_start: u64,
    chunk_bytes: usize,
    /// Only headers are wanted: after a batch larger than the chunk, read just the next
    /// header instead of a chunk most of which would be skipped.
    headers_only: bool,
    last_batch_size: u64,
}

impl<'a> BatchScanner<'a> {
    /// Walks `file` (at `path`, for errors) from `start` to `end`, reading `chunk_bytes` at a time.
    pub fn new(file: &'a File, path: &'a Path, start: u64, end: u64, chunk_bytes: usize) -> Self {
        BatchScanner {
            file,
            path,
            position: start,
            end,
            buffer: Vec::new(),
            buffer_start: start,
            chunk_bytes: chunk_bytes.max(BATCH_HEADER_SIZE),
            headers_only: false,
            last_batch_size: 0,
        }
    }

    /// A walk that only looks at headers (open-time scans of older segments).
    pub fn headers_only(mut self) -> Self {
        self.headers_only = true;
        self
    }

    /// The next batch, the end, or where framing breaks. Fails only on I/O errors.
    pub fn next_batch(&mut self) -> Result<Step, LogError> {
        let position = self.position;
        if position >= self.end {
            return Ok(Step::End);
        }
        let remaining = self.end - position;
        let invalid = |reason: String| Ok(Step::Invalid { position, reason });
        if remaining < BATCH_HEADER_SIZE as u64 {
            return invalid(format!(
                "{remaining} bytes at the end, fewer than a {BATCH_HEADER_SIZE}-byte batch header"
            ));
        }
        let large_batches = self.last_batch_size > self.chunk_bytes as u64;
        let fill = if self.headers_only && large_batches {
            BATCH_HEADER_SIZE
        } else {
            self.chunk_bytes
        };
        let header_bytes = self.bytes_at(position, BATCH_HEADER_SIZE, fill)?;
        let header = match BatchHeader::parse(header_bytes) {
            Ok(header) => header,
            Err(error) => return invalid(error.to_string()),
        };
        let batch = ScannedBatch { position, header };
        if batch.size() > remaining {
            return invalid(format!(
                "batch length {} runs past the end: {} bytes remain",
                header.batch_length, remaining
            ));
        }
        if header.last_offset_delta < 0 {
            return invalid(format!(
                "negative last offset delta {}",
                header.last_offset_delta
            ));
        }
        self.position = batch.end();
        self.last_batch_size = batch.size();
        Ok(Step::Batch(batch))
    }

    /// The bytes of a batch this walk returned.
    pub fn batch_bytes(&mut self, batch: &ScannedBatch) -> Result<&[u8], LogError> {
        let size = usize::try_from(batch.size()).unwrap_or(usize::MAX);
        self.bytes_at(batch.position, size, self.chunk_bytes)
    }

    /// A copy of the file's bytes in `start..end`, served from the chunk already read when
    /// it holds them.
    pub fn read_range(&mut self, start: u64, end: u64) -> Result<Bytes, LogError> {
        let length = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
        if self.buffered(start, length) {
            let bytes = self.bytes_at(start, length, length)?;
            return Ok(Bytes::copy_from_slice(bytes));
        }
        let mut bytes = vec![0; length];
        fileio::read_exact_at(self.file, &mut bytes, start)
            .map_err(LogError::io("read segment", self.path))?;
        Ok(Bytes::from(bytes))
    }

    fn buffered(&self, start: u64, length: usize) -> bool {
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        start >= self.buffer_start && start.saturating_add(length as u64) <= buffer_end
    }

    /// `length` bytes at `start`, which the caller has checked lie before `self.end`;
    /// refills the buffer with at least `length` and up to `fill` bytes when needed.
    fn bytes_at(&mut self, start: u64, length: usize, fill: usize) -> Result<&[u8], LogError> {
        if !self.buffered(start, length) {
            let available = usize::try_from(self.end.saturating_sub(start)).unwrap_or(usize::MAX);
            let wanted = fill.max(length).min(available.max(length));
            self.buffer.clear();
            self.buffer.resize(wanted, 0);
            self.buffer_start = start;
            if let Err(error) = fileio::read_exact_at(self.file, &mut self.buffer, start) {
                self.buffer.clear();
                return Err(LogError::io("read segment", self.path)(error));
            }
        }
        let from = usize::try_from(start - self.buffer_start).unwrap_or(usize::MAX);
        self.buffer
            .get(from..from.saturating_add(length))
            .ok_or_else(|| LogError::corrupt(format!("{}: read past the end", self.path.display())))
    }
}
