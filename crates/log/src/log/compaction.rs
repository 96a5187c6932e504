//! Compaction (`cleanup.policy=compact`) on the partition log: when a pass is
//! due, what it covers, and swapping its cleaned segments in. The work on
//! files, and what survives, is in `cleaner`.
//!
//! A pass has three steps, so that the broker holds the partition lock only
//! briefly and appends and reads never wait for the cleaning:
//! 1. [`PartitionLog::plan_compaction`] (`&self`, cheap): the sealed segments
//!    to clean, with handles on their files. The active segment is never
//!    cleaned, nor a segment reaching past `max_offset` (the high watermark).
//! 2. [`CompactionPlan::run`] (no log): reads those files, which a sealed
//!    segment never changes, and writes `.cleaned` files beside them.
//! 3. [`PartitionLog::install_compaction`] (`&mut self`, brief): if every
//!    planned segment is still in the log unchanged, swaps the cleaned files
//!    in; otherwise (retention, DeleteRecords or truncation got there first)
//!    discards them.
//!
//! The swap is Kafka's, crash-safe at every step: the `.cleaned` file is
//! fsynced, renamed to `<base>.log.swap` (the commit), the replaced segments'
//! files are removed, and the swap file is renamed to `<base>.log`. Open
//! removes `.cleaned` leftovers and finishes a `.swap` (see `recovery`).
//! Groups are swapped one after another in offset order, so a crash between
//! two leaves every record whose drop relied on a later record beside that
//! later record.
//!
//! The dirty section starts at the cleaner checkpoint
//! (`cleaner-offset-checkpoint`): everything below it was compacted by an
//! earlier pass. Truncation lowers it; a missing checkpoint makes the whole
//! log dirty.

use std::mem;

use crate::checkpoint;
use crate::cleaner::{
    CleanedGroup, CleanedSegments, CompactionLimits, CompactionPlan, CompactionReport, InFlight,
    PlannedSegment,
};
use crate::error::LogError;
use crate::index::{OffsetIndex, TimeIndex};
use crate::segment::{self, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, Segment, TIME_INDEX_SUFFIX};

use super::{PartitionLog, wall_clock_ms};

impl PartitionLog {
    /// Where the dirty section starts: offsets below it were compacted by an earlier pass.
    pub fn first_dirty_offset(&self) -> i64 {
        self.cleaner_offset
            .unwrap_or(self.log_start_offset)
            .max(self.log_start_offset)
            .min(self.log_end_offset())
    }

    /// Bytes of sealed segments at or after the log start: (compacted, dirty). The active
    /// segment counts for neither, as in Kafka: it cannot be cleaned.
    fn clean_and_dirty_bytes(&self) -> (u64, u64) {
        let first_dirty = self.first_dirty_offset();
        let mut clean = 0;
        let mut dirty = 0;
        for segment in self.sealed.iter().skip(self.count_segments_below_start()) {
            if segment.next_offset() > first_dirty {
                dirty += segment.size_bytes();
            } else {
                clean += segment.size_bytes();
            }
        }
        (clean, dirty)
    }

    /// Kafka's cleanable ratio: dirty bytes over all bytes of the sealed segments (0 with
    /// none). Compare it with `min.cleanable.dirty.ratio`, or use
    /// [`PartitionLog::compaction_due`].
    pub fn dirty_ratio(&self) -> f64 {
        let (clean, dirty) = self.clean_and_dirty_bytes();
        let total = clean + dirty;
        if total == 0 {
            return 0.0;
        }
        dirty as f64 / total as f64
    }

    /// Whether a compaction pass is worth running: the topic compacts, and either the dirty
    /// ratio reached `min.cleanable.dirty.ratio` or a tombstone the last pass kept has
    /// reached its delete horizon (that horizon is known only in memory: after a restart
    /// such tombstones wait for the next pass the ratio starts).
    pub fn compaction_due(&self, now_ms: i64) -> bool {
        if !self.config.cleanup_policy_compact {
            return false;
        }
        let (_, dirty) = self.clean_and_dirty_bytes();
        let by_ratio = dirty > 0 && self.dirty_ratio() >= self.config.min_cleanable_dirty_ratio;
        let tombstones_due = self
            .next_delete_horizon_ms
            .is_some_and(|horizon| now_ms >= horizon);
        by_ratio || tombstones_due
    }

    /// Plans a pass over the sealed segments whose offsets all lie below `max_offset` (the
    /// high watermark: Kafka never cleans past it; `i64::MAX` without replication), with
    /// `now_ms` as the clock for tombstone horizons. Cheap: it opens a second handle on
    /// each segment file and copies a few numbers. `None` when the topic does not compact,
    /// nothing is sealed, or this log already has a pass in flight.
    pub fn plan_compaction(
        &self,
        now_ms: i64,
        max_offset: i64,
    ) -> Result<Option<CompactionPlan>, LogError> {
        if !self.config.cleanup_policy_compact {
            return Ok(None);
        }
        let Some(guard) = InFlight::acquire(&self.compaction_in_flight) else {
            return Ok(None);
        };
        let first_dirty = self.first_dirty_offset();
        // Segments wholly below the log start wait for retention to delete them.
        let below_start = self.count_segments_below_start();
        let mut segments = Vec::new();
        let mut after_last = 0;
        for (index, segment) in self.sealed.iter().enumerate() {
            if segment.next_offset() > max_offset {
                break;
            }
            after_last = index + 1;
            if index < below_start {
                continue;
            }
            segments.push(PlannedSegment {
                id: segment.id(),
                base_offset: segment.base_offset(),
                next_offset: segment.next_offset(),
                size_bytes: segment.size_bytes(),
                dirty: segment.next_offset() > first_dirty,
                path: segment.log_path().to_path_buf(),
                file: segment.clone_log_file()?,
            });
        }
        if segments.is_empty() {
            return Ok(None);
        }
        let end_offset = self
            .sealed
            .get(after_last)
            .map_or(self.active.base_offset(), Segment::base_offset);
        Ok(Some(CompactionPlan {
            dir: self.dir.clone(),
            segments,
            end_offset,
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            max_group_bytes: self.config.effective_segment_bytes(),
            index_interval_bytes: self.config.index_interval_bytes,
            producer_batches: self.producers.remembered_batch_last_offsets(),
            guard,
        }))
    }

    /// Swaps in what [`CompactionPlan::run`] wrote, if every segment it planned is still in
    /// the log unchanged; otherwise discards it (`discarded` in the report) and the log
    /// stays as it is. Then moves the cleaner checkpoint to the end of what was cleaned.
    /// Reads that already returned keep their bytes; reads after it see the cleaned data.
    ///
    /// An I/O error after a group's commit leaves its files as a crash would (open
    /// finishes the swap) but this log's segment list behind them: reopen the log then,
    /// as Kafka takes a failed log directory offline.
    pub fn install_compaction(
        &mut self,
        mut cleaned: CleanedSegments,
    ) -> Result<CompactionReport, LogError> {
        if !cleaned.guard.is_for(&self.compaction_in_flight) || !self.unchanged(&cleaned.inputs) {
            tracing::info!(dir = %self.dir.display(), "the log changed during compaction: discarding the cleaned segments");
            return Ok(CompactionReport {
                discarded: true,
                first_dirty_offset: self.first_dirty_offset(),
                ..CompactionReport::default()
            });
        }
        let now_ms = wall_clock_ms();
        let mut groups = mem::take(&mut cleaned.groups).into_iter();
        while let Some(group) = groups.next() {
            if let Err(error) = self.swap_in(group, now_ms) {
                // Dropping `cleaned` removes the files of the groups not swapped in.
                cleaned.groups.extend(groups);
                return Err(error);
            }
        }
        let report = cleaned.report.clone();
        self.cleaner_offset = Some(report.first_dirty_offset);
        checkpoint::write_cleaner_offset(&self.dir, report.first_dirty_offset)?;
        self.next_delete_horizon_ms = cleaned.next_delete_horizon_ms;
        tracing::debug!(dir = %self.dir.display(), ?report, "compaction installed");
        Ok(report)
    }

    /// One whole pass while holding the log: plan (up to the log end), run with default
    /// limits, install. Simple, but appends and reads wait for it: the broker should use the
    /// three steps instead. A report with nothing cleaned when there was nothing to plan.
    pub fn compact(&mut self, now_ms: i64) -> Result<CompactionReport, LogError> {
        let Some(plan) = self.plan_compaction(now_ms, i64::MAX)? else {
            return Ok(CompactionReport {
                first_dirty_offset: self.first_dirty_offset(),
                ..CompactionReport::default()
            });
        };
        let cleaned = plan.run(&CompactionLimits::default())?;
        self.install_compaction(cleaned)
    }

    /// Whether every planned segment (base offset, id) is still sealed in this log.
    fn unchanged(&self, inputs: &[(i64, u64)]) -> bool {
        inputs.iter().all(|&(base_offset, id)| {
            self.sealed
                .binary_search_by_key(&base_offset, Segment::base_offset)
                .ok()
                .and_then(|index| self.sealed.get(index))
                .is_some_and(|segment| segment.id() == id)
        })
    }

    /// Replaces a group's old segments with its cleaned one, on disk then in memory.
    fn swap_in(&mut self, group: CleanedGroup, now_ms: i64) -> Result<(), LogError> {
        let base_offset = group.base_offset();
        let start = self
            .sealed
            .partition_point(|segment| segment.base_offset() < base_offset);
        let end = start + group.members.len();
        let in_place = self.sealed.get(start..end).is_some_and(|segments| {
            segments
                .iter()
                .map(Segment::base_offset)
                .eq(group.members.iter().copied())
        });
        if !in_place {
            // `unchanged` checked every member: the log cannot have moved them since.
            return Err(LogError::corrupt(format!(
                "cleaned segment {base_offset}: the segments it replaces are not in the log"
            )));
        }
        let swap_path = segment::file_path(&self.dir, base_offset, SWAP_SUFFIX);
        std::fs::rename(&group.path, &swap_path)
            .map_err(LogError::io("rename cleaned segment to", &swap_path))?;
        self.sync_dir()?;
        // Committed: from here on, open finishes the swap if we crash.
        for &member in group.members.iter().skip(1) {
            segment::remove_files(&self.dir, member, false)?;
        }
        segment::remove_files(&self.dir, base_offset, true)?;
        let log_path = segment::file_path(&self.dir, base_offset, LOG_SUFFIX);
        std::fs::rename(&swap_path, &log_path)
            .map_err(LogError::io("rename swap segment to", &log_path))?;
        self.sync_dir()?;
        if let Some(modified) = group.modified
            && let Err(error) = group.file.set_modified(modified)
        {
            tracing::warn!(segment = %log_path.display(), %error, "could not keep the modification time of a cleaned segment");
        }
        let offset_index = OffsetIndex::create(
            &segment::file_path(&self.dir, base_offset, INDEX_SUFFIX),
            group.offset_entries,
        )?;
        let time_index = TimeIndex::create(
            &segment::file_path(&self.dir, base_offset, TIME_INDEX_SUFFIX),
            group.time_entries,
        )?;
        let cleaned = Segment::from_recovered(
            base_offset,
            log_path,
            group.file,
            group.size_bytes,
            (offset_index, time_index),
            group.stats,
            now_ms,
        );
        cleaned.sync()?;
        // The old segments' handles close here; their files are gone or replaced.
        self.sealed.splice(start..end, [cleaned]);
        Ok(())
    }

    /// After truncation to `end`: offsets from `end` on are new, so dirty.
    pub(super) fn lower_cleaner_offset(&mut self, end: i64) -> Result<(), LogError> {
        if self.cleaner_offset.is_some_and(|offset| offset > end) {
            self.cleaner_offset = Some(end);
            checkpoint::write_cleaner_offset(&self.dir, end)?;
        }
        Ok(())
    }
}
