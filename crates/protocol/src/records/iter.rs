//! Walking the batches of a buffer that holds several, as a log segment or
//! the records of a Fetch response do.
//!
//! Each item is the parsed header and a zero-copy `Bytes` slice of the
//! whole batch. The walk checks framing only (length, magic): it does not
//! verify CRCs or look at records, so reading a segment stays cheap; call
//! [`super::verify_crc`] or [`super::RecordBatch::decode`] on the items
//! that need it. After an error it stops.

use std::iter::FusedIterator;

use bytes::Bytes;

use super::header::{self, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use super::{BatchHeader, RecordsError};

/// What to do with a batch cut off by the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrailingPartialBatch {
    /// It is an error: the buffer should hold whole batches (a log segment, a produce payload).
    Reject,
    /// End the walk quietly before it. A broker may cut the last batch of a Fetch response
    /// at the `max_bytes` limit, and Kafka's consumer skips such a tail.
    Ignore,
}

/// Iterator over the batches of a buffer; see [`batches`] and [`batches_allowing_partial_tail`].
#[derive(Debug, Clone)]
pub struct BatchIter {
    rest: Bytes,
    partial_tail: TrailingPartialBatch,
    done: bool,
}

impl BatchIter {
    /// Walks `records` from its start.
    pub fn new(records: Bytes, partial_tail: TrailingPartialBatch) -> BatchIter {
        BatchIter {
            rest: records,
            partial_tail,
            done: false,
        }
    }

    /// The bytes not yet walked; after the walk ended on a partial batch, that batch.
    pub fn remaining(&self) -> &Bytes {
        &self.rest
    }

    fn fail(&mut self, error: RecordsError) -> Option<Result<(BatchHeader, Bytes), RecordsError>> {
        self.done = true;
        Some(Err(error))
    }

    /// A batch runs past the end of the buffer.
    fn partial(
        &mut self,
        error: RecordsError,
    ) -> Option<Result<(BatchHeader, Bytes), RecordsError>> {
        match self.partial_tail {
            TrailingPartialBatch::Reject => self.fail(error),
            TrailingPartialBatch::Ignore => {
                self.done = true;
                None
            }
        }
    }
}

impl Iterator for BatchIter {
    type Item = Result<(BatchHeader, Bytes), RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let available = self.rest.len();
        let Some(length) = header::peek_batch_length(&self.rest) else {
            return self.partial(RecordsError::Truncated {
                what: "record batch length field",
                needed: LOG_OVERHEAD,
                available,
            });
        };
        // Like Kafka, judge the magic as soon as it is in reach, before the length.
        if let Some(magic) = header::peek_magic(&self.rest)
            && magic != header::MAGIC_V2
        {
            return self.fail(RecordsError::UnsupportedMagic { magic });
        }
        if length < MIN_BATCH_LENGTH {
            return self.fail(RecordsError::BatchLengthTooSmall { length });
        }
        let total = usize::try_from(length)
            .unwrap_or(usize::MAX)
            .saturating_add(LOG_OVERHEAD);
        if total > available {
            return self.partial(RecordsError::BatchLengthExceedsInput {
                length,
                available: available - LOG_OVERHEAD,
            });
        }
        let batch = self.rest.split_to(total);
        match BatchHeader::parse(&batch) {
            Ok(header) => Some(Ok((header, batch))),
            Err(error) => self.fail(error),
        }
    }
}

impl FusedIterator for BatchIter {}

/// The batches of `records`, which must hold whole batches only (a log segment).
pub fn batches(records: &Bytes) -> BatchIter {
    BatchIter::new(records.clone(), TrailingPartialBatch::Reject)
}

/// The batches of `records`, ending quietly before a batch cut off at the end
/// (the records of a Fetch response).
pub fn batches_allowing_partial_tail(records: &Bytes) -> BatchIter {
    BatchIter::new(records.clone(), TrailingPartialBatch::Ignore)
}
