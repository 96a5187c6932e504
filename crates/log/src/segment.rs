//! One segment: a `.log` file of batches and its two sparse indexes, named by
//! the segment's base offset.
//!
//! A segment appends batches it is given (offsets already assigned), finds
//! the batch holding an offset or reaching a timestamp, reads byte ranges of
//! whole batches, and truncates. It knows nothing of producers, epochs or
//! retention: the partition log decides when to roll, delete or recover it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use eddy_protocol::records::BatchHeader;

use crate::error::LogError;
use crate::fileio;
use crate::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::scan::{BatchScanner, SCAN_CHUNK_BYTES, ScannedBatch, Step};

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// A segment the cleaner is writing (`<base>.log.<n>.cleaned`); removed on open.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// A cleaned segment committed to replace the segments it covers (`<base>.log.swap`);
/// open finishes the replacement.
pub(crate) const SWAP_SUFFIX: &str = ".log.swap";

/// Largest offset distance from the base offset a segment holds: Kafka's relative offsets
/// are Java ints.
pub(crate) const MAX_RELATIVE_OFFSET: i64 = i32::MAX as i64;

/// Largest chunk a read pulls in at once; longer reads refill.
const MAX_READ_CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Read beyond `max_bytes`: the walk from the index entry (about `index.interval.bytes`)
/// and the first batch, which is returned whole even past `max_bytes`.
const READ_SLACK_BYTES: usize = 16 * 1024;

/// `dir/<base offset, 20 digits><suffix>`, as Kafka names segment files.
pub(crate) fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

/// Source of [`Segment::id`]s, unique within the process.
static NEXT_SEGMENT_ID: AtomicU64 = AtomicU64::new(1);

fn next_segment_id() -> u64 {
    NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Removes the three files of the segment at `base_offset` (missing ones are fine), or only
/// its two indexes when `keep_log`.
pub(crate) fn remove_files(dir: &Path, base_offset: i64, keep_log: bool) -> Result<(), LogError> {
    let suffixes: &[&str] = if keep_log {
        &[INDEX_SUFFIX, TIME_INDEX_SUFFIX]
    } else {
        &[LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]
    };
    for suffix in suffixes {
        let path = file_path(dir, base_offset, suffix);
        fileio::remove_if_exists(&path).map_err(LogError::io("delete", &path))?;
    }
    Ok(())
}

/// The base offset a segment file name carries, if it is one with `suffix`.
pub(crate) fn parse_base_offset(file_name: &str, suffix: &str) -> Option<i64> {
    let digits = file_name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Index entries a batch earned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntries {
    pub offset: Option<OffsetEntry>,
    pub time: Option<TimeEntry>,
}

/// What a segment knows about its batches. Append and the recovery scan update it with
/// the same code, so a rebuilt segment looks exactly like one built by appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentStats {
    /// Offset after the last batch; the base offset when empty.
    pub next_offset: i64,
    /// Largest batch max timestamp, -1 when there is none.
    pub max_timestamp_ms: i64,
    /// Last offset of the batch holding `max_timestamp_ms`, -1 when none.
    pub offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: `segment.ms` counts from it.
    pub first_batch_max_timestamp_ms: Option<i64>,
    /// Bytes appended since the last offset-index entry.
    pub bytes_since_index_entry: u64,
}

impl SegmentStats {
    pub fn empty(base_offset: i64) -> Self {
        SegmentStats {
            next_offset: base_offset,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: -1,
            first_batch_max_timestamp_ms: None,
            bytes_since_index_entry: 0,
        }
    }

    /// Accounts for a batch written at `position` of a segment based at `base_offset`
    /// (the caller checked its offsets fit), and returns the index entries it earns: as
    /// Kafka, one offset entry once more than `interval_bytes` were appended since the
    /// last, and a time entry with it when the max timestamp grew past `last_time_ms`.
    pub fn account(
        &mut self,
        base_offset: i64,
        header: &BatchHeader,
        position: u64,
        interval_bytes: u32,
        last_time_ms: Option<i64>,
    ) -> IndexEntries {
        let relative = |offset: i64| u32::try_from(offset - base_offset).unwrap_or(u32::MAX);
        if self.first_batch_max_timestamp_ms.is_none() {
            self.first_batch_max_timestamp_ms = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp_ms {
            self.max_timestamp_ms = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        let mut entries = IndexEntries::default();
        if self.bytes_since_index_entry > u64::from(interval_bytes) {
            entries.offset = Some(OffsetEntry {
                relative_offset: relative(header.last_offset()),
                position: u32::try_from(position).unwrap_or(u32::MAX),
            });
            if self.max_timestamp_ms > last_time_ms.unwrap_or(-1) {
                entries.time = Some(TimeEntry {
                    timestamp_ms: self.max_timestamp_ms,
                    relative_offset: relative(self.offset_of_max_timestamp),
                });
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.total_size() as u64;
        self.next_offset = header.next_offset();
        entries
    }
}

/// A segment's files and what is known about them.
pub(crate) struct Segment {
    /// Names this segment's contents: new for every segment opened or created, and changed
    /// by every append and truncation, so that the cleaner can tell whether the segment it
    /// read is still the one in the log.
    id: u64,
    base_offset: i64,
    log_path: PathBuf,
    log: File,
    size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    stats: SegmentStats,
    /// When this process created or opened the segment: `segment.ms` counts from it
    /// until the segment has a batch.
    created_ms: i64,
}

impl Segment {
    /// Creates an empty segment at `base_offset`, replacing files of that name.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Segment, LogError> {
        let log_path = file_path(dir, base_offset, LOG_SUFFIX);
        let log = fileio::open_read_write(&log_path, true)
            .map_err(LogError::io("create segment", &log_path))?;
        let offset_index =
            OffsetIndex::create(&file_path(dir, base_offset, INDEX_SUFFIX), Vec::new())?;
        let time_index =
            TimeIndex::create(&file_path(dir, base_offset, TIME_INDEX_SUFFIX), Vec::new())?;
        Ok(Segment {
            id: next_segment_id(),
            base_offset,
            log_path,
            log,
            size_bytes: 0,
            offset_index,
            time_index,
            stats: SegmentStats::empty(base_offset),
            created_ms: now_ms,
        })
    }

    /// A segment from files recovery or the cleaner has opened and checked: `size_bytes`
    /// of valid batches described by `stats`, with indexes that match them.
    pub fn from_recovered(
        base_offset: i64,
        log_path: PathBuf,
        log: File,
        size_bytes: u64,
        indexes: (OffsetIndex, TimeIndex),
        stats: SegmentStats,
        now_ms: i64,
    ) -> Segment {
        Segment {
            id: next_segment_id(),
            base_offset,
            log_path,
            log,
            size_bytes,
            offset_index: indexes.0,
            time_index: indexes.1,
            stats,
            created_ms: now_ms,
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// See the field: equal ids mean equal contents.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A second handle on the `.log` file, for the cleaner to read without the log. A
    /// sealed segment's bytes never change while it keeps its id; a handle still reads
    /// them after the file is deleted or replaced.
    pub fn clone_log_file(&self) -> Result<File, LogError> {
        self.log
            .try_clone()
            .map_err(LogError::io("open segment", &self.log_path))
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Offset after the last batch (the base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.stats.next_offset
    }

    pub fn stats(&self) -> &SegmentStats {
        &self.stats
    }

    /// Whether a batch ending at `last_offset` can go in this segment: relative offsets
    /// must fit a Java int.
    pub fn can_hold(&self, last_offset: i64) -> bool {
        last_offset
            .checked_sub(self.base_offset)
            .is_some_and(|relative| (0..=MAX_RELATIVE_OFFSET).contains(&relative))
    }

    /// `offset` relative to the base offset, clamped into the index's range.
    fn relative_clamped(&self, offset: i64) -> u32 {
        let relative = offset.saturating_sub(self.base_offset);
        u32::try_from(relative.clamp(0, MAX_RELATIVE_OFFSET)).unwrap_or(0)
    }

    /// Milliseconds the segment has been filling, for `segment.ms`: from its first batch's
    /// timestamp to `message_timestamp_ms` (Kafka's rule), or from its creation to `now_ms`
    /// when it has no timestamped batch.
    pub fn rolling_age_ms(&self, message_timestamp_ms: i64, now_ms: i64) -> i64 {
        match self.stats.first_batch_max_timestamp_ms {
            Some(first) if first >= 0 => message_timestamp_ms.saturating_sub(first),
            _ => now_ms.saturating_sub(self.created_ms),
        }
    }

    /// The timestamp retention.ms compares with: the max timestamp, or the file's
    /// modification time when no batch has one (as Kafka).
    pub fn retention_timestamp_ms(&self) -> Result<i64, LogError> {
        if self.stats.max_timestamp_ms >= 0 {
            return Ok(self.stats.max_timestamp_ms);
        }
        let modified = self
            .log
            .metadata()
            .and_then(|metadata| metadata.modified())
            .map_err(LogError::io("read modification time of", &self.log_path))?;
        let since_epoch = modified
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// Appends one batch whose offsets are assigned and fit (see [`Segment::can_hold`]).
    pub fn append(
        &mut self,
        batch: &[&[u8]],
        header: &BatchHeader,
        interval_bytes: u32,
    ) -> Result<(), LogError> {
        self.id = next_segment_id();
        let position = self.size_bytes;
        let mut written = 0u64;
        for part in batch {
            if let Err(error) = fileio::write_all_at(&self.log, part, position + written) {
                // Drop a partial write so the file ends with whole batches.
                let _ = self.log.set_len(position);
                return Err(LogError::io("write segment", &self.log_path)(error));
            }
            written += part.len() as u64;
        }
        self.size_bytes += written;
        let last_time_ms = self.time_index.last().map(|entry| entry.timestamp_ms);
        let entries = self.stats.account(
            self.base_offset,
            header,
            position,
            interval_bytes,
            last_time_ms,
        );
        if let Some(entry) = entries.offset {
            self.offset_index.push(entry)?;
        }
        if let Some(entry) = entries.time {
            self.time_index.push(entry)?;
        }
        Ok(())
    }

    fn scanner(&self, start: u64, chunk_bytes: usize) -> BatchScanner<'_> {
        BatchScanner::new(
            &self.log,
            &self.log_path,
            start,
            self.size_bytes,
            chunk_bytes,
        )
    }

    fn corrupt(&self, position: u64, reason: &str) -> LogError {
        LogError::corrupt(format!(
            "{} at position {position}: {reason}",
            self.log_path.display()
        ))
    }

    /// Walks from the index entry for `offset` to the first batch whose last offset is at
    /// least `offset` and that satisfies `wanted`; `None` past the end of the segment.
    fn find_from_index<'a>(
        &'a self,
        scanner: &mut BatchScanner<'a>,
        offset: i64,
        wanted: impl Fn(&BatchHeader) -> bool,
    ) -> Result<Option<ScannedBatch>, LogError> {
        loop {
            match scanner.next_batch()? {
                Step::Batch(batch)
                    if batch.header.last_offset() >= offset && wanted(&batch.header) =>
                {
                    return Ok(Some(batch));
                }
                Step::Batch(_) => {}
                Step::End => return Ok(None),
                Step::Invalid { position, reason } => return Err(self.corrupt(position, &reason)),
            }
        }
    }

    /// Whole batches from the one holding `offset`: those whose last offset is below
    /// `max_offset`, within `max_bytes` except that the first is always whole (KIP-74).
    /// `None` when no batch of this segment reaches `offset`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Option<Bytes>, LogError> {
        let start = self.offset_index.lookup(self.relative_clamped(offset));
        let chunk = max_bytes
            .saturating_add(READ_SLACK_BYTES)
            .min(MAX_READ_CHUNK_BYTES);
        let mut scanner = self.scanner(u64::from(start), chunk);
        let Some(first) = self.find_from_index(&mut scanner, offset, |_| true)? else {
            return Ok(None);
        };
        if first.header.last_offset() >= max_offset {
            return Ok(Some(Bytes::new()));
        }
        let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        let mut end = first.end();
        // A fault after the first batch ends the read there; the next read reports it.
        while let Step::Batch(next) = scanner.next_batch()? {
            if next.header.last_offset() >= max_offset || next.end() - first.position > limit {
                break;
            }
            end = next.end();
        }
        scanner.read_range(first.position, end).map(Some)
    }

    /// The bytes of the batch holding `offset`, if this segment has it.
    pub fn batch_containing(&self, offset: i64) -> Result<Option<Bytes>, LogError> {
        let start = self.offset_index.lookup(self.relative_clamped(offset));
        let mut scanner = self.scanner(u64::from(start), SCAN_CHUNK_BYTES);
        match self.find_from_index(&mut scanner, offset, |header| header.base_offset <= offset)? {
            Some(batch) => scanner.read_range(batch.position, batch.end()).map(Some),
            None => Ok(None),
        }
    }

    /// The bytes of the first batch with a max timestamp of at least `timestamp_ms` and a
    /// last offset of at least `min_offset`, using the time index to skip ahead.
    pub fn find_by_timestamp(
        &self,
        timestamp_ms: i64,
        min_offset: i64,
    ) -> Result<Option<Bytes>, LogError> {
        let from_time = self.time_index.lookup(timestamp_ms).unwrap_or(0);
        let from = from_time.max(self.relative_clamped(min_offset));
        let start = self.offset_index.lookup(from);
        let mut scanner = self.scanner(u64::from(start), SCAN_CHUNK_BYTES);
        let found = self.find_from_index(&mut scanner, min_offset, |header| {
            header.max_timestamp >= timestamp_ms
        })?;
        match found {
            Some(batch) => scanner.read_range(batch.position, batch.end()).map(Some),
            None => Ok(None),
        }
    }

    /// Removes the batch holding `offset` and everything after it, then rebuilds the
    /// indexes and stats from what remains.
    pub fn truncate_to(&mut self, offset: i64, interval_bytes: u32) -> Result<(), LogError> {
        let start = self.offset_index.lookup(self.relative_clamped(offset));
        let cut = {
            let mut scanner = self.scanner(u64::from(start), SCAN_CHUNK_BYTES);
            match self.find_from_index(&mut scanner, offset, |_| true)? {
                Some(batch) => batch.position,
                None => return Ok(()),
            }
        };
        self.truncate_at_position(cut)?;
        self.rebuild_indexes(interval_bytes)
    }

    /// Cuts the file at `position` (a batch boundary).
    pub fn truncate_at_position(&mut self, position: u64) -> Result<(), LogError> {
        self.id = next_segment_id();
        self.log
            .set_len(position)
            .map_err(LogError::io("truncate segment", &self.log_path))?;
        self.size_bytes = position;
        Ok(())
    }

    /// Recomputes stats and both indexes from the batches in the file.
    pub fn rebuild_indexes(&mut self, interval_bytes: u32) -> Result<(), LogError> {
        let mut stats = SegmentStats::empty(self.base_offset);
        let mut offset_entries = Vec::new();
        let mut time_entries: Vec<TimeEntry> = Vec::new();
        let mut scanner = self.scanner(0, SCAN_CHUNK_BYTES).headers_only();
        loop {
            let batch = match scanner.next_batch()? {
                Step::Batch(batch) => batch,
                Step::End => break,
                Step::Invalid { position, reason } => return Err(self.corrupt(position, &reason)),
            };
            let last_time_ms = time_entries.last().map(|entry| entry.timestamp_ms);
            let entries = stats.account(
                self.base_offset,
                &batch.header,
                batch.position,
                interval_bytes,
                last_time_ms,
            );
            offset_entries.extend(entries.offset);
            time_entries.extend(entries.time);
        }
        self.offset_index.replace_all(offset_entries)?;
        self.time_index.replace_all(time_entries)?;
        self.stats = stats;
        Ok(())
    }

    /// Visits the header of every batch, in order.
    pub fn for_each_header(&self, mut visit: impl FnMut(&BatchHeader)) -> Result<(), LogError> {
        let mut scanner = self.scanner(0, SCAN_CHUNK_BYTES).headers_only();
        loop {
            match scanner.next_batch()? {
                Step::Batch(batch) => visit(&batch.header),
                Step::End => return Ok(()),
                Step::Invalid { position, reason } => return Err(self.corrupt(position, &reason)),
            }
        }
    }

    /// Fsyncs the log and its indexes.
    pub fn sync(&self) -> Result<(), LogError> {
        self.log
            .sync_data()
            .map_err(LogError::io("sync segment", &self.log_path))?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Fsyncs the log file only (the indexes of the active segment are rebuilt on open).
    pub fn sync_log(&self) -> Result<(), LogError> {
        self.log
            .sync_data()
            .map_err(LogError::io("sync segment", &self.log_path))
    }

    /// Closes and removes the segment's three files.
    pub fn delete(self) -> Result<(), LogError> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ];
        drop(self);
        for path in &paths {
            fileio::remove_if_exists(path).map_err(LogError::io("delete", path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_twenty_digit_base_offsets() {
        let path = file_path(Path::new("/data/t-0"), 42, LOG_SUFFIX);
        assert_eq!(path, Path::new("/data/t-0/00000000000000000042.log"));
        assert_eq!(
            parse_base_offset("00000000000000000042.log", LOG_SUFFIX),
            Some(42)
        );
        assert_eq!(parse_base_offset("42.log", LOG_SUFFIX), None);
        assert_eq!(
            parse_base_offset("00000000000000000042.index", LOG_SUFFIX),
            None
        );
        assert_eq!(
            parse_base_offset("0000000000000000004x.log", LOG_SUFFIX),
            None
        );
    }
}
