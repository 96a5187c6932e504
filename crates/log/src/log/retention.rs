//! Deleting the start of a partition log: retention by time and size
//! (`retention.ms`, `retention.bytes`) and DeleteRecords (raising the log
//! start offset). Only whole segments are deleted, oldest first, as Kafka
//! does; a log start offset inside a segment hides the records below it
//! until the whole segment can go.

use crate::error::LogError;
use crate::segment::Segment;

use super::PartitionLog;

impl PartitionLog {
    /// DeleteRecords: raises the log start offset to `offset` (persisted in the
    /// `log-start-offset` checkpoint) and deletes the older segments wholly below it; the
    /// active segment stays. Returns the new log start offset (unchanged if already past
    /// `offset`). [`LogError::OffsetOutOfRange`] beyond the log end offset; the broker
    /// checks the high watermark.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let end = self.log_end_offset();
        if offset < 0 || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end,
            });
        }
        if offset > self.log_start_offset {
            self.set_log_start_offset(offset)?;
            let below = self.count_segments_below_start();
            self.delete_oldest(below)?;
        }
        Ok(self.log_start_offset)
    }

    /// Sealed segments, from the first, whose successor starts at or below the
    /// log start. The active segment has no successor and never counts.
    pub(super) fn count_segments_below_start(&self) -> usize {
        let successor_bases = self
            .sealed
            .iter()
            .skip(1)
            .chain(std::iter::once(&self.active))
            .map(Segment::base_offset);
        self.sealed
            .iter()
            .zip(successor_bases)
            .take_while(|(_, next_base)| *next_base <= self.log_start_offset)
            .count()
    }

    /// Deletes the `count` oldest (sealed) segments; returns the bytes freed. The log start
    /// offset follows the first remaining segment.
    fn delete_oldest(&mut self, count: usize) -> Result<u64, LogError> {
        let count = count.min(self.sealed.len());
        if count == 0 {
            return Ok(0);
        }
        let mut freed = 0;
        for segment in self.sealed.drain(..count) {
            freed += segment.size_bytes();
            segment.delete()?;
        }
        self.sync_dir()?;
        let first_base = self
            .sealed
            .first()
            .map_or(self.active.base_offset(), Segment::base_offset);
        if first_base > self.log_start_offset {
            self.set_log_start_offset(first_base)?;
        }
        Ok(freed)
    }

    /// Time and size retention, as Kafka's: with `cleanup.policy` `delete`, deletes the
    /// oldest segments whose newest timestamp is more than `retention.ms` before `now_ms`,
    /// and the oldest while the log exceeds `retention.bytes`, whole segments only; under
    /// any policy, segments below the log start.
    /// When everything is due, the active segment is rolled first so that it can go, and
    /// an empty active segment is always kept. Also rolls an active segment older than
    /// `segment.ms`, and fsyncs when `flush.ms` has passed. Returns the bytes freed.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        if !self.active.is_empty()
            && self.active.rolling_age_ms(now_ms, now_ms) > self.config.segment_ms
        {
            self.roll(self.log_end_offset(), now_ms)?;
        }
        let (by_time, by_size) = if self.config.cleanup_policy_delete {
            (self.count_expired_by_time(now_ms)?, self.count_over_size())
        } else {
            (0, 0)
        };
        let below_start = self.count_segments_below_start();
        let mut count = by_time.max(by_size).max(below_start);
        if count > self.sealed.len() {
            // The active segment is due too: roll it so it becomes deletable.
            if !self.active.is_empty() {
                self.roll(self.log_end_offset(), now_ms)?;
            }
            count = self.sealed.len();
        }
        let freed = self.delete_oldest(count)?;
        self.maybe_flush(now_ms)?;
        Ok(freed)
    }

    fn count_expired_by_time(&self, now_ms: i64) -> Result<usize, LogError> {
        if self.config.retention_ms < 0 {
            return Ok(0);
        }
        let mut count = 0;
        for segment in self.segments() {
            let age_ms = now_ms.saturating_sub(segment.retention_timestamp_ms()?);
            if age_ms <= self.config.retention_ms {
                break;
            }
            count += 1;
        }
        Ok(count)
    }

    fn count_over_size(&self) -> usize {
        if self.config.retention_bytes < 0 {
            return 0;
        }
        let total = i64::try_from(self.size_bytes()).unwrap_or(i64::MAX);
        let mut excess = total.saturating_sub(self.config.retention_bytes);
        let mut count = 0;
        for segment in self.segments() {
            let size = i64::try_from(segment.size_bytes()).unwrap_or(i64::MAX);
            if excess - size < 0 {
                break;
            }
            excess -= size;
            count += 1;
        }
        count
    }
}
