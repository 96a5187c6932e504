//! [`PartitionLog`]: one partition's segments, leader-epoch cache, producer
//! state and log start offset, and every operation the broker needs on them.
//!
//! It decides when to roll (size, age, offset range), what retention deletes,
//! how truncation and DeleteRecords move the log's bounds, and when to fsync.
//! Segment files, indexes, recovery and producer checks live in their own
//! modules, cutting the log's end in `truncation` and its start in
//! `retention`; this one ties them together and keeps the invariants:
//! `log_start_offset <= log_end_offset`, the active segment is last and is the
//! only one written, and every older segment was fsynced when it rolled.

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use eddy_protocol::records::{
    self, BATCH_HEADER_SIZE, BatchHeader, RecordBatch, TimestampType, set_base_offset,
    set_log_append_time, set_partition_leader_epoch, verify_crc,
};

use crate::checkpoint;
use crate::config::{LogConfig, MAX_SEGMENT_BYTES};
use crate::epoch::LeaderEpochCache;
use crate::error::LogError;
use crate::fileio;
use crate::producer_state::{ProducerCheck, ProducerStateManager};
use crate::recovery;
use crate::segment::Segment;

mod compaction;
mod retention;
mod truncation;

/// The offsets a leader append was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// The broker time stamped on a `LogAppendTime` topic's batch; -1 otherwise.
    pub log_append_time_ms: i64,
    /// The batch was a producer's retry of one already in the log: the offsets are the
    /// original's and nothing was written.
    pub duplicate: bool,
}

/// A record's offset and timestamp (ListOffsets answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// What [`PartitionLog::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments after recovery.
    pub segments: usize,
    /// Bytes cut off the active segment's tail (torn or corrupt batches).
    pub truncated_bytes: u64,
    /// Bytes at the end of older segments that could not be read (left on disk, skipped).
    pub unreadable_bytes: u64,
    /// Older segments whose index files were missing or did not match and were rebuilt.
    pub rebuilt_indexes: usize,
    /// Compactions a crash interrupted after their commit, finished on open.
    pub finished_compaction_swaps: usize,
    /// The leader-epoch checkpoint was missing or unreadable and was rebuilt from batches.
    pub epoch_checkpoint_rebuilt: bool,
}

/// One partition's log. Not thread-safe by itself: the broker holds it behind a mutex.
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Older segments, in offset order; read-only.
    sealed: Vec<Segment>,
    /// The segment appends go to; the last one.
    active: Segment,
    log_start_offset: i64,
    producers: ProducerStateManager,
    epochs: LeaderEpochCache,
    /// Offsets below this were fsynced (or recovered from disk).
    recovery_point: i64,
    last_flush_ms: i64,
    report: RecoveryReport,
    /// The cleaner checkpoint: offsets below it were compacted. `None`: never compacted.
    cleaner_offset: Option<i64>,
    /// Earliest delete horizon of the tombstones the last compaction pass kept.
    next_delete_horizon_ms: Option<i64>,
    /// Set while a compaction plan or its result exists: one pass at a time.
    compaction_in_flight: Arc<AtomicBool>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset)
            .field("log_end_offset", &self.log_end_offset())
            .field("segments", &self.segment_count())
            .field("size_bytes", &self.size_bytes())
            .finish_non_exhaustive()
    }
}

fn wall_clock_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// The header of a buffer that must hold exactly one batch.
fn parse_single_batch(batch: &[u8]) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(batch).map_err(|error| LogError::corrupt(error.to_string()))?;
    if header.total_size() != batch.len() {
        return Err(LogError::corrupt(format!(
            "batch length {} does not match the {} bytes given",
            header.batch_length,
            batch.len()
        )));
    }
    if header.last_offset_delta < 0 {
        return Err(LogError::corrupt(format!(
            "negative last offset delta {}",
            header.last_offset_delta
        )));
    }
    Ok(header)
}

/// The record of `batch` at or after `min_offset` with a timestamp of at least
/// `timestamp_ms` (`None`: any), or the batch itself if it has no such record.
fn find_record(
    batch: &Bytes,
    timestamp_ms: Option<i64>,
    min_offset: i64,
) -> Result<TimestampOffset, LogError> {
    let decoded =
        RecordBatch::decode(batch).map_err(|error| LogError::corrupt(error.to_string()))?;
    let batch_level = TimestampOffset {
        offset: decoded.base_offset.max(min_offset),
        timestamp_ms: decoded.max_timestamp,
    };
    if decoded.timestamp_type() == TimestampType::LogAppendTime {
        // Every record carries the append time.
        return Ok(batch_level);
    }
    let found = decoded.records.iter().find_map(|record| {
        let offset = decoded
            .base_offset
            .wrapping_add(i64::from(record.offset_delta));
        let timestamp = decoded.base_timestamp.wrapping_add(record.timestamp_delta);
        let wanted = timestamp_ms.is_none_or(|target| timestamp >= target);
        (offset >= min_offset && wanted).then_some(TimestampOffset {
            offset,
            timestamp_ms: timestamp,
        })
    });
    Ok(found.unwrap_or(batch_level))
}

impl PartitionLog {
    /// Opens the partition directory `dir`, creating it if absent, and recovers it: the
    /// active segment is checked batch by batch and a torn or corrupt tail cut off, its
    /// indexes rebuilt, older segments' indexes checked (rebuilt if wrong), and producer
    /// state and leader epochs rebuilt from batch headers. See the crate docs.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        let now_ms = wall_clock_ms();
        let recovered = recovery::recover(dir, &config, now_ms)?;
        let mut sealed = recovered.segments;
        let active = match sealed.pop() {
            Some(active) => active,
            None => Segment::create(dir, recovered.log_start_offset, now_ms)?,
        };
        let recovery_point = active.next_offset();
        let cleaner_offset = checkpoint::read_cleaner_offset(dir)?;
        Ok(PartitionLog {
            dir: dir.to_path_buf(),
            config,
            sealed,
            active,
            log_start_offset: recovered.log_start_offset,
            producers: recovered.producers,
            epochs: recovered.epochs,
            recovery_point,
            last_flush_ms: now_ms,
            report: recovered.report,
            cleaner_offset,
            next_delete_horizon_ms: None,
            compaction_in_flight: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Appends one batch as a leader: exactly the bytes a producer sent (the broker has
    /// validated them: magic 2, CRC, counts). Stamps the next offsets and `leader_epoch`
    /// in place; on a `LogAppendTime` topic also `now_ms` as the max timestamp (with the
    /// CRC updated). A batch with a producer id goes through the idempotence checks: a
    /// retry of one of the producer's last five batches returns the original offsets with
    /// `duplicate` set and writes nothing.
    pub fn append(
        &mut self,
        batch: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        let header = parse_single_batch(&batch)?;
        self.check_batch_size(batch.len(), self.config.effective_segment_bytes())?;
        let log_append_time = self.config.message_timestamp_type_log_append_time;
        if let ProducerCheck::Duplicate(original) = self.producers.check(&header)? {
            return Ok(AppendOutcome {
                base_offset: original.base_offset,
                last_offset: original.last_offset,
                log_append_time_ms: if log_append_time {
                    original.max_timestamp_ms
                } else {
                    -1
                },
                duplicate: true,
            });
        }

        let base_offset = self.log_end_offset();
        let header = if log_append_time {
            // The new max timestamp changes the CRC, which covers the whole batch:
            // edit a private copy (in place when the caller handed over the only reference).
            let mut bytes = batch
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            let stamp = |bytes: &mut BytesMut| {
                set_base_offset(bytes, base_offset)?;
                set_partition_leader_epoch(bytes, leader_epoch)?;
                set_log_append_time(bytes, now_ms)?;
                BatchHeader::parse(bytes)
            };
            let header = stamp(&mut bytes).map_err(|error| LogError::corrupt(error.to_string()))?;
            self.append_batch(&[&bytes], &header, now_ms)?;
            header
        } else {
            // Base offset and leader epoch lie outside the CRC: stamp a copy of the
            // 61-byte header and write the records as received, never copying them.
            let mut head = [0u8; BATCH_HEADER_SIZE];
            let (received_head, records) =
                batch.split_at_checked(BATCH_HEADER_SIZE).ok_or_else(|| {
                    LogError::corrupt(format!(
                        "batch of {} bytes has no whole header",
                        batch.len()
                    ))
                })?;
            head.copy_from_slice(received_head);
            let stamp = |head: &mut [u8]| {
                set_base_offset(head, base_offset)?;
                set_partition_leader_epoch(head, leader_epoch)?;
                BatchHeader::parse(head)
            };
            let header = stamp(&mut head).map_err(|error| LogError::corrupt(error.to_string()))?;
            self.append_batch(&[&head, records], &header, now_ms)?;
            header
        };
        Ok(AppendOutcome {
            base_offset,
            last_offset: header.last_offset(),
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            duplicate: false,
        })
    }

    /// Appends batches copied from the leader, offsets and epochs as they are. Every batch
    /// is checked (framing, CRC) and must start at or after the log end offset and after
    /// the previous one; gaps are allowed, as compaction leaves them. Producer state and
    /// leader epochs are updated from the batches without idempotence checks. Nothing is
    /// written unless every batch passes.
    pub fn append_as_follower(&mut self, batches: Bytes) -> Result<(), LogError> {
        let mut expected = self.log_end_offset();
        let mut checked = Vec::new();
        for item in records::batches(&batches) {
            let (header, batch) = item.map_err(|error| LogError::corrupt(error.to_string()))?;
            verify_crc(&batch).map_err(|error| LogError::corrupt(error.to_string()))?;
            parse_single_batch(&batch)?;
            self.check_batch_size(batch.len(), MAX_SEGMENT_BYTES)?;
            if header.base_offset < expected {
                return Err(LogError::NonContiguousOffsets {
                    expected,
                    found: header.base_offset,
                });
            }
            expected = header.next_offset();
            checked.push((header, batch));
        }
        let now_ms = wall_clock_ms();
        for (header, batch) in checked {
            self.append_batch(&[&batch], &header, now_ms)?;
        }
        Ok(())
    }

    fn check_batch_size(&self, size_bytes: usize, limit: u64) -> Result<(), LogError> {
        if size_bytes as u64 > limit {
            return Err(LogError::BatchTooLarge {
                size_bytes,
                segment_bytes: limit,
            });
        }
        Ok(())
    }

    /// Writes a batch whose offsets are final: rolls if needed, records a new epoch, then
    /// updates producer state and applies the flush policy.
    /// Appends one batch given as consecutive parts (a stamped header and the
    /// records as received, or the whole batch).
    fn append_batch(
        &mut self,
        batch: &[&[u8]],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let size_bytes: usize = batch.iter().map(|part| part.len()).sum();
        self.maybe_roll(header, size_bytes as u64, now_ms)?;
        // Before the write, as Kafka: a crash in between leaves an epoch entry at the log
        // end, which recovery truncates away.
        if self
            .epochs
            .assign(header.partition_leader_epoch, header.base_offset)
        {
            self.epochs.persist()?;
        }
        self.active
            .append(batch, header, self.config.index_interval_bytes)?;
        self.producers.update(header);
        self.maybe_flush(now_ms)
    }

    fn maybe_roll(
        &mut self,
        header: &BatchHeader,
        size_bytes: u64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let active = &self.active;
        let full = !active.is_empty()
            && active.size_bytes() + size_bytes > self.config.effective_segment_bytes();
        let old = !active.is_empty()
            && active.rolling_age_ms(header.max_timestamp, now_ms) > self.config.segment_ms;
        let out_of_range = !active.can_hold(header.last_offset());
        if full || old || out_of_range {
            self.roll(header.base_offset, now_ms)?;
        }
        Ok(())
    }

    /// Starts a new active segment at `base_offset`. The old one is fsynced first (Kafka
    /// flushes on roll too), so recovery needs to check only the last segment. An empty
    /// active segment is replaced rather than kept.
    fn roll(&mut self, base_offset: i64, now_ms: i64) -> Result<(), LogError> {
        if base_offset == self.active.base_offset() {
            return Ok(());
        }
        if !self.active.is_empty() {
            self.active.sync()?;
            self.recovery_point = self.recovery_point.max(self.active.next_offset());
        }
        let fresh = Segment::create(&self.dir, base_offset, now_ms)?;
        let previous = mem::replace(&mut self.active, fresh);
        if previous.is_empty() {
            previous.delete()?;
        } else {
            self.sealed.push(previous);
        }
        self.sync_dir()
    }

    fn maybe_flush(&mut self, now_ms: i64) -> Result<(), LogError> {
        let unflushed = self.log_end_offset().saturating_sub(self.recovery_point);
        if unflushed <= 0 {
            return Ok(());
        }
        let by_count = unflushed as u64 >= self.config.flush_messages;
        let since_flush_ms = u64::try_from(now_ms.saturating_sub(self.last_flush_ms)).unwrap_or(0);
        let by_time = self.config.flush_ms != u64::MAX && since_flush_ms >= self.config.flush_ms;
        if by_count || by_time {
            self.active.sync_log()?;
            self.recovery_point = self.log_end_offset();
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), LogError> {
        fileio::sync_dir(&self.dir).map_err(LogError::io("sync directory", &self.dir))
    }

    /// Every segment, oldest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.iter().chain(std::iter::once(&self.active))
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` but always at least
    /// one whole batch when there is one (KIP-74), and only batches whose last offset is
    /// below `max_offset` (the high watermark, or `i64::MAX`). Reads within one segment,
    /// as Kafka; the next read continues in the next. Empty at the log end.
    /// [`LogError::OffsetOutOfRange`] outside `[log_start_offset, log_end_offset]`.
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: i64) -> Result<Bytes, LogError> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end,
            });
        }
        if offset == end || offset >= max_offset {
            return Ok(Bytes::new());
        }
        // The segment holding `offset` is the last one based at or below it.
        let skip = if self.active.base_offset() <= offset {
            self.sealed.len()
        } else {
            self.sealed
                .partition_point(|segment| segment.base_offset() <= offset)
                .saturating_sub(1)
        };
        for segment in self.segments().skip(skip) {
            if let Some(bytes) = segment.read(offset, max_bytes, max_offset)? {
                return Ok(bytes);
            }
        }
        Ok(Bytes::new())
    }

    /// First offset at or after the log start whose record timestamp is at least
    /// `timestamp_ms`, and that timestamp (ListOffsets by time). Finds the batch through
    /// the segments' max timestamps and time indexes, then decodes it for the exact record.
    /// `None` if no record is that recent.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        for segment in self.segments() {
            if segment.stats().max_timestamp_ms < timestamp_ms
                || segment.next_offset() <= self.log_start_offset
            {
                continue;
            }
            if let Some(batch) = segment.find_by_timestamp(timestamp_ms, self.log_start_offset)? {
                return find_record(&batch, Some(timestamp_ms), self.log_start_offset).map(Some);
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (the first such, if several), for ListOffsets
    /// `MAX_TIMESTAMP`; `None` when the log has no batch.
    pub fn max_timestamp(&self) -> Result<Option<TimestampOffset>, LogError> {
        let mut best: Option<&Segment> = None;
        for segment in self.segments() {
            let newer = best.is_none_or(|best| {
                segment.stats().max_timestamp_ms > best.stats().max_timestamp_ms
            });
            if segment.stats().max_timestamp_ms >= 0 && newer {
                best = Some(segment);
            }
        }
        let Some(segment) = best else {
            return Ok(None);
        };
        let stats = segment.stats();
        let Some(batch) = segment.batch_containing(stats.offset_of_max_timestamp)? else {
            return Ok(None);
        };
        let found = find_record(&batch, Some(stats.max_timestamp_ms), i64::MIN)?;
        Ok(Some(found))
    }

    /// Offset of the first record still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// OffsetForLeaderEpoch, Kafka's semantics: for the latest epoch, the log end offset;
    /// for an older one, the largest known epoch at or below it and the start offset of the
    /// next known epoch; `(-1, -1)` when unknown (undefined, or above all known epochs).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// A new leader's epoch starts at the log end offset, before its first
    /// append, so that a follower of an older epoch finds where it diverges.
    pub fn assign_leader_epoch(&mut self, epoch: i32) -> Result<(), LogError> {
        if self
            .epochs
            .latest_epoch()
            .is_none_or(|latest| latest < epoch)
            && self.epochs.assign(epoch, self.log_end_offset())
        {
            self.epochs.persist()?;
        }
        Ok(())
    }

    /// The epoch of the latest leader that appended, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Moves the log start offset (persisted), and forgets epochs and producers below it.
    fn set_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        self.log_start_offset = offset;
        checkpoint::write_log_start_offset(&self.dir, offset)?;
        if self.epochs.truncate_from_start(offset) {
            self.epochs.persist()?;
        }
        self.producers.evict_below(offset);
        Ok(())
    }

    /// Fsyncs the active segment and its indexes (older segments were fsynced on roll).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.active.sync()?;
        self.recovery_point = self.log_end_offset();
        self.last_flush_ms = wall_clock_ms();
        Ok(())
    }

    /// Bytes of all segment `.log` files.
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size_bytes).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// Replaces the configuration; it applies from the next append or retention pass.
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What [`PartitionLog::open`] found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Largest producer id seen in this partition (deleted batches included), so that
    /// InitProducerId never hands out an id again after a restart.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.producers.max_producer_id()
    }

    /// Closes the log and removes its directory.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(LogError::io("remove partition directory", &dir))
    }
}

#[cfg(test)]
mod tests {
    use eddy_protocol::records::{Compression, Record};

    use super::*;

    fn batch(count: usize) -> Bytes {
        let records = (0..count)
            .map(|i| Record {
                offset_delta: i as i32,
                value: Some(Bytes::from_static(b"value")),
                ..Record::default()
            })
            .collect();
        RecordBatch::new(0, 1_000, records)
            .encode(Compression::None)
            .expect("encode")
    }

    #[test]
    fn flush_messages_fsyncs_once_enough_records_are_unflushed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            flush_messages: 5,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).expect("open");
        log.append(batch(3), 0, 1_000).expect("append");
        assert_eq!(log.recovery_point, 0);
        log.append(batch(3), 0, 1_000).expect("append");
        assert_eq!(log.recovery_point, 6);
    }

    #[test]
    fn flush_ms_fsyncs_when_the_last_flush_is_old_enough() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            flush_ms: 100,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).expect("open");
        let start_ms = log.last_flush_ms;
        log.append(batch(1), 0, start_ms + 50).expect("append");
        assert_eq!(log.recovery_point, 0);
        log.append(batch(1), 0, start_ms + 100).expect("append");
        assert_eq!(log.recovery_point, 2);
        log.append(batch(1), 0, start_ms + 150).expect("append");
        assert_eq!(log.recovery_point, 2);
        log.enforce_retention(start_ms + 200)
            .expect("retention pass");
        assert_eq!(log.recovery_point, 3);
    }

    #[test]
    fn the_default_never_fsyncs_on_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open");
        for _ in 0..100 {
            log.append(batch(10), 0, i64::MAX / 2).expect("append");
        }
        assert_eq!(log.recovery_point, 0);
        log.flush().expect("flush");
        assert_eq!(log.recovery_point, 1_000);
    }
}
