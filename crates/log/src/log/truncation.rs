//! Cutting the end of a partition log: a follower whose log diverged from its
//! new leader's truncates to the offset OffsetForLeaderEpoch gave it.
//!
//! Truncation deletes whole segments past the offset, cuts the segment that
//! holds it, and brings the leader-epoch cache and producer state back in
//! line with what remains. Retention and DeleteRecords, which cut the start,
//! are in `retention`.

use std::mem;

use crate::error::LogError;
use crate::producer_state::ProducerStateManager;
use crate::segment::Segment;

use super::{PartitionLog, wall_clock_ms};

impl PartitionLog {
    /// Removes the batch holding `offset` and everything after it (a follower cutting a
    /// divergent tail); the log end offset becomes that batch's base offset (`offset`
    /// itself when it is a batch boundary, as truncation points are). Segments past it are
    /// deleted, indexes rebuilt, epochs after it forgotten, producer state rebuilt. An
    /// offset below the first segment empties the log and restarts it at `offset`.
    /// For `offset >= log_end_offset` only epochs starting at or after `offset` go.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.log_end_offset(),
            });
        }
        if offset >= self.log_end_offset() {
            // Nothing to cut from the log, but an epoch this replica began
            // as leader without writing may start here, and the leader says
            // it does not exist: forget it, as Kafka does.
            if self.epochs.truncate_from_end(offset) {
                self.epochs.persist()?;
            }
            return Ok(());
        }
        let first_base = self
            .sealed
            .first()
            .map_or(self.active.base_offset(), Segment::base_offset);
        if offset < first_base {
            return self.truncate_fully_and_start_at(offset);
        }
        while self.active.base_offset() > offset {
            let Some(previous) = self.sealed.pop() else {
                break;
            };
            mem::replace(&mut self.active, previous).delete()?;
        }
        self.active
            .truncate_to(offset, self.config.index_interval_bytes)?;
        self.sync_dir()?;
        let end = self.log_end_offset();
        if self.log_start_offset > end {
            self.set_log_start_offset(end)?;
        }
        if self.epochs.truncate_from_end(end) {
            self.epochs.persist()?;
        }
        self.recovery_point = self.recovery_point.min(end);
        self.lower_cleaner_offset(end)?;
        self.rebuild_producer_state()
    }

    fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), LogError> {
        for segment in self.sealed.drain(..) {
            segment.delete()?;
        }
        let fresh = Segment::create(&self.dir, offset, wall_clock_ms())?;
        mem::replace(&mut self.active, fresh).delete()?;
        self.sync_dir()?;
        self.set_log_start_offset(offset)?;
        if self.epochs.truncate_from_end(offset) {
            self.epochs.persist()?;
        }
        self.recovery_point = offset;
        self.lower_cleaner_offset(offset)?;
        self.producers.clear();
        Ok(())
    }

    /// Replays every batch header into fresh producer state (after truncation). The
    /// largest producer id stays, even if its batches are gone: ids are never reused.
    fn rebuild_producer_state(&mut self) -> Result<(), LogError> {
        let mut producers = ProducerStateManager::default();
        if let Some(max) = self.producers.max_producer_id() {
            producers.observe_producer_id(max);
        }
        let start = self.log_start_offset;
        for segment in self.segments() {
            segment.for_each_header(|header| {
                if header.last_offset() >= start {
                    producers.update(header);
                } else {
                    producers.observe_producer_id(header.producer_id);
                }
            })?;
        }
        self.producers = producers;
        Ok(())
    }
}
