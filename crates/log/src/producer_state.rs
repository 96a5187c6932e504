//! Idempotent-producer state of one partition, after Kafka's
//! `ProducerStateManager`, simplified: per producer id, its epoch and the
//! sequence ranges and offsets of its last five batches.
//!
//! On a leader append it tells a retry (answer with the first attempt's
//! offsets, write nothing) from a gap (OUT_OF_ORDER_SEQUENCE_NUMBER) and a
//! zombie (INVALID_PRODUCER_EPOCH). Follower appends and recovery replay
//! batches into it without checks. It is rebuilt from batch headers on open;
//! there are no snapshot files, no transaction state (transactional and
//! control batches are stored but no last stable offset is kept), and no
//! expiry of idle producers other than when their batches leave the log.

use std::collections::{HashMap, HashSet, VecDeque};

use eddy_protocol::records::BatchHeader;

use crate::error::LogError;

/// Batches remembered per producer, as Kafka (and as many as a producer may have in flight).
pub const RETAINED_BATCHES_PER_PRODUCER: usize = 5;

/// A batch an idempotent producer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first, at most [`RETAINED_BATCHES_PER_PRODUCER`].
    batches: VecDeque<BatchMetadata>,
    /// Last offset of the producer's latest batch (data or control) in this log.
    last_offset: i64,
}

/// What to do with a batch, according to its producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProducerCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: answer with its offsets, write nothing.
    Duplicate(BatchMetadata),
}

/// Producer states by producer id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    max_producer_id: Option<i64>,
}

/// Sequence of the last record of a batch, wrapping past `i32::MAX` to 0 as Kafka's
/// `DefaultRecordBatch.incrementSequence`.
pub(crate) fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    let wrapped = (i64::from(base_sequence) + i64::from(last_offset_delta))
        .rem_euclid(i64::from(i32::MAX) + 1);
    i32::try_from(wrapped).unwrap_or(0)
}

/// Whether `next` may follow `last`.
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

fn metadata(header: &BatchHeader) -> BatchMetadata {
    BatchMetadata {
        first_sequence: header.base_sequence,
        last_sequence: last_sequence(header.base_sequence, header.last_offset_delta),
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
        max_timestamp_ms: header.max_timestamp,
    }
}

impl ProducerStateManager {
    /// Largest producer id any batch in this log has carried, even one since deleted.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.max_producer_id
    }

    /// Notes a producer id seen in a batch that is not replayed (below the log start).
    pub fn observe_producer_id(&mut self, producer_id: i64) {
        if producer_id >= 0 {
            self.max_producer_id = self.max_producer_id.max(Some(producer_id));
        }
    }

    /// Checks a leader append. Batches without a producer id, and control batches, always
    /// pass; an unknown producer or a newer epoch may start at any sequence.
    pub fn check(&self, header: &BatchHeader) -> Result<ProducerCheck, LogError> {
        if header.producer_id < 0 || header.is_control() {
            return Ok(ProducerCheck::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(ProducerCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
                current_epoch: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            return Ok(ProducerCheck::Append);
        }
        let incoming = metadata(header);
        if let Some(original) = entry.batches.iter().find(|batch| {
            batch.first_sequence == incoming.first_sequence
                && batch.last_sequence == incoming.last_sequence
        }) {
            return Ok(ProducerCheck::Duplicate(*original));
        }
        match entry.batches.back() {
            Some(latest) if !in_sequence(latest.last_sequence, incoming.first_sequence) => {
                Err(LogError::OutOfOrderSequence {
                    producer_id: header.producer_id,
                    producer_epoch: header.producer_epoch,
                    sequence: incoming.first_sequence,
                    last_sequence: latest.last_sequence,
                })
            }
            _ => Ok(ProducerCheck::Append),
        }
    }

    /// Records a batch that is now in the log (with its offsets), from any path: leader
    /// append after [`ProducerStateManager::check`], follower append, recovery.
    pub fn update(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        self.observe_producer_id(header.producer_id);
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_offset: header.last_offset(),
            });
        if header.producer_epoch < entry.epoch {
            // Only a replica copying an odd leader gets here; keep the newer epoch's state.
            return;
        }
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.last_offset = header.last_offset();
        // Control batches (transaction markers) carry no sequence.
        if header.is_control() || header.base_sequence < 0 {
            return;
        }
        if entry.batches.len() == RETAINED_BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(metadata(header));
    }

    /// Forgets producers whose latest batch lies below `log_start_offset`: their batches
    /// have left the log, so they count as unknown (any sequence) again, as in Kafka.
    pub fn evict_below(&mut self, log_start_offset: i64) {
        self.producers
            .retain(|_, entry| entry.last_offset >= log_start_offset);
    }

    /// Last offsets of the batches remembered for duplicate checks, of every producer. The
    /// cleaner keeps these batches (empty if need be, as Kafka keeps a producer's last
    /// batch) so that state rebuilt from the log after a restart still knows them.
    pub fn remembered_batch_last_offsets(&self) -> HashSet<i64> {
        self.producers
            .values()
            .flat_map(|entry| entry.batches.iter().map(|batch| batch.last_offset))
            .collect()
    }

    /// Forgets every producer (keeps the largest id seen, which must never be reused).
    pub fn clear(&mut self) {
        self.producers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_protocol::records::{BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};

    fn header(
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        count: i32,
        base_offset: i64,
    ) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32,
            partition_leader_epoch: 0,
            magic: MAGIC_V2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(last_sequence(0, 4), 4);
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
    }

    #[test]
    fn retries_gaps_and_zombies() {
        let mut state = ProducerStateManager::default();
        let first = header(7, 0, 10, 5, 100);
        assert_eq!(
            state.check(&first).expect("unknown producer"),
            ProducerCheck::Append
        );
        state.update(&first);

        assert!(matches!(
            state.check(&header(7, 0, 10, 5, 0)),
            Ok(ProducerCheck::Duplicate(BatchMetadata {
                base_offset: 100,
                last_offset: 104,
                ..
            }))
        ));
        assert!(matches!(
            state.check(&header(7, 0, 16, 1, 0)),
            Err(LogError::OutOfOrderSequence {
                sequence: 16,
                last_sequence: 14,
                ..
            })
        ));
        assert_eq!(
            state.check(&header(7, 0, 15, 1, 0)).expect("next"),
            ProducerCheck::Append
        );
        assert_eq!(
            state.check(&header(7, 1, 99, 1, 0)).expect("new epoch"),
            ProducerCheck::Append
        );
        state.update(&header(7, 1, 0, 1, 105));
        assert!(matches!(
            state.check(&header(7, 0, 15, 1, 0)),
            Err(LogError::InvalidProducerEpoch {
                producer_epoch: 0,
                current_epoch: 1,
                ..
            })
        ));
        assert_eq!(state.max_producer_id(), Some(7));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut state = ProducerStateManager::default();
        for n in 0..6 {
            state.update(&header(1, 0, n, 1, i64::from(n)));
        }
        assert!(matches!(
            state.check(&header(1, 0, 0, 1, 0)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            state.check(&header(1, 0, 1, 1, 0)),
            Ok(ProducerCheck::Duplicate(_))
        ));
    }

    #[test]
    fn evicted_producers_may_start_anywhere_but_their_ids_stay_used() {
        let mut state = ProducerStateManager::default();
        state.update(&header(3, 0, 0, 1, 10));
        state.evict_below(11);
        assert_eq!(
            state.check(&header(3, 0, 50, 1, 0)).expect("unknown again"),
            ProducerCheck::Append
        );
        assert_eq!(state.max_producer_id(), Some(3));
    }
}
