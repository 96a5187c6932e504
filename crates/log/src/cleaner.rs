//! The log cleaner's work on files, after Kafka's `LogCleaner`: read sealed
//! segments, decide which records survive, write cleaned segments beside the
//! old ones. [`CompactionPlan::run`] does it without the partition log, so
//! appends and reads go on meanwhile; swapping the result in is the log's job
//! (`log::compaction`), as is choosing what a pass covers.
//!
//! A pass, as Kafka's:
//! 1. Map. Walk the dirty segments (written since the last pass) and note,
//!    per key, the offset of its latest record. A key is kept as two
//!    independent 64-bit hashes (128 bits, like Kafka's 16-byte MD5), so the
//!    map's memory does not depend on key sizes. It holds at most
//!    [`CompactionLimits::max_map_entries`] keys: a dirty section with more is
//!    cleaned up to the segment where the map filled, the rest next pass.
//! 2. Clean. Rewrite every planned segment up to there, clean ones included:
//!    - a record with a key survives unless the map has a later offset for it;
//!    - a tombstone (key, no value) that is the latest for its key survives
//!      until its batch's delete horizon (KIP-534): the first pass that keeps
//!      it stamps the batch with `now + delete.retention.ms` (attribute bit 6,
//!      the horizon in `base_timestamp`, record timestamp deltas rebased so
//!      every record keeps its timestamp); a pass after that drops it;
//!    - records without a key survive (Kafka refuses them on compacted topics
//!      at produce time; here they are kept rather than lost);
//!    - control and transactional batches are kept byte for byte, and their
//!      records stay out of the map: without transaction state the cleaner
//!      cannot tell committed from aborted, and an aborted record must never
//!      hide a committed one.
//! 3. Write. A rewritten batch keeps its base offset, last offset delta,
//!    producer id, epoch and base sequence, leader epoch, max timestamp and
//!    codec, so offsets are never renumbered and gaps are left where records
//!    went. A batch left with no record is dropped, unless producer state
//!    remembers it for duplicate checks: then it stays as an empty batch, as
//!    Kafka keeps a producer's last batch, so state rebuilt after a restart
//!    still knows it. Consecutive segments whose original sizes fit in one
//!    segment are written as one, merging what earlier passes shrank; a lone
//!    segment with nothing to drop is not rewritten at all.
//!
//! I/O is bounded: segments are read [`CompactionLimits::read_chunk_bytes`] at
//! a time and decoded batch by batch (decompressed size bounded as in
//! `RecordBatch::decode`), output is buffered up to the same size, and
//! [`CompactionLimits::io_bytes_per_second`] throttles reads plus writes by
//! sleeping, as Kafka's `log.cleaner.io.max.bytes.per.second`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use eddy_protocol::records::{BatchHeader, Compression, RecordBatch};

use crate::config::MAX_SEGMENT_BYTES;
use crate::error::LogError;
use crate::fileio;
use crate::index::{OffsetEntry, TimeEntry};
use crate::scan::{BatchScanner, Step};
use crate::segment::{self, CLEANED_SUFFIX, LOG_SUFFIX, MAX_RELATIVE_OFFSET, SegmentStats};

/// Attribute bit 6: `base_timestamp` holds the batch's delete horizon (KIP-534). The
/// protocol crate reads it (`BatchHeader::has_delete_horizon`); only the cleaner sets it.
const DELETE_HORIZON_FLAG: i16 = 0x40;

/// Source of unique `.cleaned` file names, so that a run can never write into another's file.
static NEXT_CLEANED_FILE: AtomicU64 = AtomicU64::new(1);

/// Bounds on what one [`CompactionPlan::run`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionLimits {
    /// Bytes read from a segment file at once, and bytes of output buffered before a
    /// write. Default 1 MiB. A batch larger than this is still read whole.
    pub read_chunk_bytes: usize,
    /// Keys the key → latest offset map may hold (about 40 bytes each). The first dirty
    /// segment is always mapped whole; the pass stops cleaning at the segment where the
    /// map fills. Default 1 Mi keys (Kafka's default 128 MiB dedupe buffer holds ~5 Mi).
    pub max_map_entries: usize,
    /// Bytes read plus written per second; `None` for no limit (the default, as Kafka's
    /// `log.cleaner.io.max.bytes.per.second`). The run sleeps to stay under it.
    pub io_bytes_per_second: Option<u64>,
}

impl Default for CompactionLimits {
    fn default() -> Self {
        CompactionLimits {
            read_chunk_bytes: 1024 * 1024,
            max_map_entries: 1 << 20,
            io_bytes_per_second: None,
        }
    }
}

/// What a compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// The log changed under the plan (retention, DeleteRecords or truncation removed or
    /// cut a planned segment, or the log was reopened): nothing was installed.
    pub discarded: bool,
    /// Segments the pass cleaned (read and filtered), whether or not they changed.
    pub segments_cleaned: usize,
    /// Old segments replaced by cleaned ones.
    pub segments_replaced: usize,
    /// Cleaned segments written in their place (fewer when small ones merged).
    pub segments_written: usize,
    /// Bytes of the cleaned segments before the pass.
    pub bytes_before: u64,
    /// Bytes of the same offsets after it.
    pub bytes_after: u64,
    /// Records dropped: superseded by a later record with the same key, or expired tombstones.
    pub records_removed: u64,
    /// Of those, tombstones dropped because their delete horizon had passed.
    pub tombstones_expired: u64,
    /// Batches that could not be decoded; they were kept as they were.
    pub undecodable_batches: u64,
    /// Keys in the map.
    pub keys_mapped: usize,
    /// Where the dirty section starts after the pass (the cleaner checkpoint).
    pub first_dirty_offset: i64,
}

/// Marks a log as having a compaction in flight until dropped: one pass at a time per log.
pub(crate) struct InFlight(Arc<AtomicBool>);

impl InFlight {
    /// Takes the log's flag, or `None` when a pass is already in flight.
    pub fn acquire(flag: &Arc<AtomicBool>) -> Option<InFlight> {
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| InFlight(Arc::clone(flag)))
    }

    /// Whether this is the flag of the log that owns `flag`.
    pub fn is_for(&self, flag: &Arc<AtomicBool>) -> bool {
        Arc::ptr_eq(&self.0, flag)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A sealed segment a plan covers, with its own handle on the `.log` file.
pub(crate) struct PlannedSegment {
    /// The segment's id when planned: install checks it is still the same.
    pub id: u64,
    pub base_offset: i64,
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Holds offsets at or after the first dirty offset: its keys go into the map.
    pub dirty: bool,
    pub path: PathBuf,
    pub file: File,
}

/// One pass, planned by [`crate::PartitionLog::plan_compaction`]: the sealed segments to
/// clean, with handles on their files, and what the pass needs to know of the log. Run it
/// without the log (it reads only files that do not change), then hand the result to
/// [`crate::PartitionLog::install_compaction`]. Dropping it cancels the pass.
pub struct CompactionPlan {
    pub(crate) dir: PathBuf,
    /// In offset order, contiguous.
    pub(crate) segments: Vec<PlannedSegment>,
    /// Base offset of the segment after the last planned one.
    pub(crate) end_offset: i64,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    /// Largest total of original sizes merged into one cleaned segment (`segment.bytes`).
    pub(crate) max_group_bytes: u64,
    pub(crate) index_interval_bytes: u32,
    /// Last offsets of the batches producer state remembers (kept, empty if need be).
    pub(crate) producer_batches: HashSet<i64>,
    pub(crate) guard: InFlight,
}

impl std::fmt::Debug for CompactionPlan {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CompactionPlan")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("end_offset", &self.end_offset)
            .finish_non_exhaustive()
    }
}

/// A cleaned segment written for a run of consecutive old ones, not yet installed.
pub(crate) struct CleanedGroup {
    /// Base offsets of the segments it replaces, in order; the first is its own.
    pub members: Vec<i64>,
    /// The `.cleaned` file, fsynced.
    pub path: PathBuf,
    pub file: File,
    pub size_bytes: u64,
    pub stats: SegmentStats,
    pub offset_entries: Vec<OffsetEntry>,
    pub time_entries: Vec<TimeEntry>,
    /// The newest modification time of the segments it replaces: kept, as Kafka keeps it,
    /// so that time retention of a segment without timestamps does not restart.
    pub modified: Option<SystemTime>,
}

impl CleanedGroup {
    pub fn base_offset(&self) -> i64 {
        self.members.first().copied().unwrap_or(-1)
    }
}

/// The outcome of [`CompactionPlan::run`]: cleaned segment files waiting to be installed
/// with [`crate::PartitionLog::install_compaction`]. Dropping it deletes the files.
pub struct CleanedSegments {
    pub(crate) dir: PathBuf,
    /// Every planned segment (base offset, id): install requires all of them unchanged,
    /// since records in any of them may be why a record elsewhere was dropped.
    pub(crate) inputs: Vec<(i64, u64)>,
    /// Only the groups that changed, in offset order.
    pub(crate) groups: Vec<CleanedGroup>,
    /// A `.cleaned` file being written (removed if the run fails).
    writing: Option<PathBuf>,
    pub(crate) next_delete_horizon_ms: Option<i64>,
    pub(crate) report: CompactionReport,
    pub(crate) guard: InFlight,
}

impl std::fmt::Debug for CleanedSegments {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CleanedSegments")
            .field("dir", &self.dir)
            .field("groups", &self.groups.len())
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl CleanedSegments {
    /// What the pass did, as far as the files go (install adds nothing but `discarded`).
    pub fn report(&self) -> &CompactionReport {
        &self.report
    }
}

impl Drop for CleanedSegments {
    fn drop(&mut self) {
        let paths = self
            .groups
            .iter()
            .map(|group| &group.path)
            .chain(self.writing.as_ref());
        for path in paths {
            if let Err(error) = fileio::remove_if_exists(path) {
                tracing::warn!(path = %path.display(), %error, "could not remove a cleaned segment; open removes it");
            }
        }
    }
}

impl CompactionPlan {
    /// Segments the plan covers.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Does the pass: maps the dirty segments' keys, then writes a cleaned segment for
    /// each run of planned segments that changes (see the module docs for what survives).
    /// Reads and writes only files, never the log: call it on a blocking thread while the
    /// log goes on serving. May sleep to honour `limits.io_bytes_per_second`.
    pub fn run(self, limits: &CompactionLimits) -> Result<CleanedSegments, LogError> {
        let CompactionPlan {
            dir,
            segments,
            end_offset,
            now_ms,
            delete_retention_ms,
            max_group_bytes,
            index_interval_bytes,
            producer_batches,
            guard,
        } = self;
        let mut throttle = Throttle::new(limits.io_bytes_per_second);
        let mut map = KeyMap::default();
        let clean_until = build_map(&segments, &mut map, limits, &mut throttle)?;
        let first_dirty_offset = segments
            .get(clean_until)
            .map_or(end_offset, |segment| segment.base_offset);
        let mut cleaned = CleanedSegments {
            dir,
            inputs: segments
                .iter()
                .map(|segment| (segment.base_offset, segment.id))
                .collect(),
            groups: Vec::new(),
            writing: None,
            next_delete_horizon_ms: None,
            report: CompactionReport {
                keys_mapped: map.len(),
                first_dirty_offset,
                ..CompactionReport::default()
            },
            guard,
        };
        let filter = RecordFilter {
            map: &map,
            now_ms,
            delete_retention_ms,
            producer_batches: &producer_batches,
        };
        let to_clean = segments.get(..clean_until).unwrap_or_default();
        for range in group_segments(to_clean, max_group_bytes) {
            let Some(members) = to_clean.get(range) else {
                continue;
            };
            let Some(first) = members.first() else {
                continue;
            };
            let token = NEXT_CLEANED_FILE.fetch_add(1, Ordering::Relaxed);
            let path = segment::file_path(
                &cleaned.dir,
                first.base_offset,
                &format!("{LOG_SUFFIX}.{token}{CLEANED_SUFFIX}"),
            );
            cleaned.writing = Some(path.clone());
            let mut group = GroupCleaner {
                filter: &filter,
                limits,
                throttle: &mut throttle,
                report: &mut cleaned.report,
                next_delete_horizon_ms: &mut cleaned.next_delete_horizon_ms,
            };
            let written = group.clean(members, path, index_interval_bytes)?;
            cleaned.groups.extend(written);
            cleaned.writing = None;
        }
        Ok(cleaned)
    }
}

/// Runs of consecutive segments to write as one: at most `max_bytes` of original sizes
/// (a lone segment may be larger) and relative offsets that fit the index.
fn group_segments(segments: &[PlannedSegment], max_bytes: u64) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while let Some(first) = segments.get(start) {
        let mut end = start + 1;
        let mut size = first.size_bytes;
        while let Some(next) = segments.get(end) {
            let last_offset = next.base_offset.max(next.next_offset - 1);
            let fits_offsets = last_offset - first.base_offset <= MAX_RELATIVE_OFFSET;
            let fits_size = size.saturating_add(next.size_bytes) <= max_bytes;
            if !(fits_offsets && fits_size) {
                break;
            }
            size += next.size_bytes;
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    groups
}

/// Walks the dirty segments into `map`; returns how many planned segments the pass may
/// clean: all of them, or those before the segment where the map filled.
fn build_map(
    segments: &[PlannedSegment],
    map: &mut KeyMap,
    limits: &CompactionLimits,
    throttle: &mut Throttle,
) -> Result<usize, LogError> {
    let Some(first_dirty) = segments.iter().position(|segment| segment.dirty) else {
        return Ok(segments.len());
    };
    for (index, segment) in segments.iter().enumerate().skip(first_dirty) {
        let mut scanner = segment_scanner(segment, limits);
        while let Some(batch) = next_batch(&mut scanner, segment)? {
            throttle.consume(batch.size());
            let header = batch.header;
            if header.is_control() || header.is_transactional() || header.records_count == 0 {
                continue;
            }
            let bytes = Bytes::copy_from_slice(scanner.batch_bytes(&batch)?);
            let decoded = match RecordBatch::decode(&bytes) {
                Ok(decoded) => decoded,
                Err(error) => {
                    tracing::warn!(segment = %segment.path.display(), base_offset = header.base_offset, %error, "cannot decode a batch: its keys stay out of the compaction map");
                    continue;
                }
            };
            for record in &decoded.records {
                let Some(key) = &record.key else {
                    continue;
                };
                let offset = header
                    .base_offset
                    .wrapping_add(i64::from(record.offset_delta));
                map.insert(key, offset);
                if map.len() > limits.max_map_entries && index > first_dirty {
                    // This segment is only partly mapped: clean up to it. Its records
                    // stay as they are, so the map's offsets in it remain true.
                    return Ok(index);
                }
            }
        }
    }
    Ok(segments.len())
}

fn segment_scanner<'a>(segment: &'a PlannedSegment, limits: &CompactionLimits) -> BatchScanner<'a> {
    BatchScanner::new(
        &segment.file,
        &segment.path,
        0,
        segment.size_bytes,
        limits.read_chunk_bytes,
    )
}

/// The next batch of a planned segment; recovery checked their framing, so a fault is
/// corruption.
fn next_batch(
    scanner: &mut BatchScanner<'_>,
    segment: &PlannedSegment,
) -> Result<Option<crate::scan::ScannedBatch>, LogError> {
    match scanner.next_batch()? {
        Step::Batch(batch) => Ok(Some(batch)),
        Step::End => Ok(None),
        Step::Invalid { position, reason } => Err(LogError::corrupt(format!(
            "{} at position {position}: {reason}",
            segment.path.display()
        ))),
    }
}

/// Key → offset of its latest record in the dirty section, keyed by a 128-bit digest.
#[derive(Default)]
struct KeyMap {
    first: RandomState,
    second: RandomState,
    offsets: HashMap<u128, i64>,
}

impl KeyMap {
    fn digest(&self, key: &[u8]) -> u128 {
        (u128::from(self.first.hash_one(key)) << 64) | u128::from(self.second.hash_one(key))
    }

    /// Records `offset` as the latest for `key` (segments are walked in offset order).
    fn insert(&mut self, key: &[u8], offset: i64) {
        let digest = self.digest(key);
        self.offsets.insert(digest, offset);
    }

    fn latest_offset(&self, key: &[u8]) -> Option<i64> {
        self.offsets.get(&self.digest(key)).copied()
    }

    fn len(&self) -> usize {
        self.offsets.len()
    }
}

/// Sleeps so that the bytes counted stay under a rate since the run started.
struct Throttle {
    bytes_per_second: Option<u64>,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(bytes_per_second: Option<u64>) -> Self {
        Throttle {
            bytes_per_second: bytes_per_second.filter(|&rate| rate > 0),
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn consume(&mut self, bytes: u64) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        self.bytes = self.bytes.saturating_add(bytes);
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// What becomes of one batch.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Every record survives and the batch needs no horizon: keep its bytes.
    Keep,
    /// No record survives and no producer needs the batch.
    Drop,
    /// The batch rewritten with the surviving records (or none, for a producer's sake).
    Replace(Bytes),
}

/// A batch's fate and what it counts for the report.
#[derive(Debug)]
struct Cleaning {
    decision: Decision,
    records_removed: u64,
    tombstones_expired: u64,
    undecodable: bool,
    /// The delete horizon of the tombstones the batch still holds.
    delete_horizon_ms: Option<i64>,
}

impl Cleaning {
    fn decided(decision: Decision) -> Self {
        Cleaning {
            decision,
            records_removed: 0,
            tombstones_expired: 0,
            undecodable: false,
            delete_horizon_ms: None,
        }
    }
}

/// Decides which records of a batch survive.
struct RecordFilter<'a> {
    map: &'a KeyMap,
    now_ms: i64,
    delete_retention_ms: i64,
    producer_batches: &'a HashSet<i64>,
}

impl RecordFilter<'_> {
    fn clean_batch(&self, header: &BatchHeader, bytes: &Bytes) -> Result<Cleaning, LogError> {
        if header.is_control() || header.is_transactional() {
            return Ok(Cleaning::decided(Decision::Keep));
        }
        let remembered =
            header.has_producer_id() && self.producer_batches.contains(&header.last_offset());
        if header.records_count == 0 {
            let decision = if remembered {
                Decision::Keep
            } else {
                Decision::Drop
            };
            return Ok(Cleaning::decided(decision));
        }
        let mut batch = match RecordBatch::decode(bytes) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(base_offset = header.base_offset, %error, "cannot decode a batch: keeping it as it is");
                let mut cleaning = Cleaning::decided(Decision::Keep);
                cleaning.undecodable = true;
                return Ok(cleaning);
            }
        };
        let has_horizon = header.has_delete_horizon();
        // Kafka keeps a tombstone while the clock is before the horizon.
        let horizon_passed = has_horizon && self.now_ms >= batch.base_timestamp;
        let records = std::mem::take(&mut batch.records);
        let total = records.len();
        let mut kept = Vec::with_capacity(total);
        let mut tombstones_kept = false;
        let mut tombstones_expired = 0u64;
        for record in records {
            let offset = header
                .base_offset
                .wrapping_add(i64::from(record.offset_delta));
            let keep = match &record.key {
                None => true,
                Some(key) => {
                    let latest = self
                        .map
                        .latest_offset(key)
                        .is_none_or(|latest| offset >= latest);
                    let tombstone = record.value.is_none();
                    if latest && tombstone && horizon_passed {
                        tombstones_expired += 1;
                        false
                    } else {
                        tombstones_kept |= latest && tombstone;
                        latest
                    }
                }
            };
            if keep {
                kept.push(record);
            }
        }
        let records_removed = (total - kept.len()) as u64;
        let set_horizon = tombstones_kept && !has_horizon;
        let horizon_ms = if has_horizon {
            batch.base_timestamp
        } else {
            self.now_ms.saturating_add(self.delete_retention_ms)
        };
        let mut cleaning = Cleaning {
            decision: Decision::Keep,
            records_removed,
            tombstones_expired,
            undecodable: false,
            delete_horizon_ms: tombstones_kept.then_some(horizon_ms),
        };
        if records_removed == 0 && !set_horizon {
            return Ok(cleaning);
        }
        if kept.is_empty() && !remembered {
            cleaning.decision = Decision::Drop;
            return Ok(cleaning);
        }
        let compression = if kept.is_empty() {
            Compression::None
        } else {
            header
                .compression()
                .map_err(|error| LogError::corrupt(error.to_string()))?
        };
        if set_horizon {
            // Record timestamps are deltas from `base_timestamp`: rebase them so that every
            // record keeps its timestamp once the horizon takes that field.
            let original_base = batch.base_timestamp;
            for record in &mut kept {
                let timestamp = original_base.wrapping_add(record.timestamp_delta);
                record.timestamp_delta = timestamp.wrapping_sub(horizon_ms);
            }
            batch.base_timestamp = horizon_ms;
            batch.attributes |= DELETE_HORIZON_FLAG;
        }
        batch.records = kept;
        let rewritten = batch
            .encode(compression)
            .map_err(|error| LogError::corrupt(error.to_string()))?;
        cleaning.decision = Decision::Replace(rewritten);
        Ok(cleaning)
    }
}

/// Cleans one run of segments into one output.
struct GroupCleaner<'a, 'b> {
    filter: &'a RecordFilter<'a>,
    limits: &'a CompactionLimits,
    throttle: &'b mut Throttle,
    report: &'b mut CompactionReport,
    next_delete_horizon_ms: &'b mut Option<i64>,
}

impl GroupCleaner<'_, '_> {
    /// Writes `members`' surviving batches to `path`; `None` when a lone segment needs no
    /// change (nothing is written then).
    fn clean(
        &mut self,
        members: &[PlannedSegment],
        path: PathBuf,
        index_interval_bytes: u32,
    ) -> Result<Option<CleanedGroup>, LogError> {
        let Some(first) = members.first() else {
            return Ok(None);
        };
        let lone = members.len() == 1;
        let deferred = lone.then_some((&first.file, first.path.as_path()));
        let mut output = Output::new(
            path,
            first.base_offset,
            deferred,
            self.limits.read_chunk_bytes,
            index_interval_bytes,
        );
        if !lone {
            output.mark_changed(self.throttle)?;
        }
        let mut modified = None;
        for segment in members {
            self.report.segments_cleaned += 1;
            self.report.bytes_before += segment.size_bytes;
            let segment_modified = segment.file.metadata().and_then(|meta| meta.modified());
            modified = modified.max(segment_modified.ok());
            self.clean_segment(segment, &mut output)?;
        }
        let Some(written) = output.finish(self.throttle)? else {
            self.report.bytes_after += first.size_bytes;
            return Ok(None);
        };
        self.report.bytes_after += written.size_bytes;
        self.report.segments_replaced += members.len();
        self.report.segments_written += 1;
        Ok(Some(CleanedGroup {
            members: members.iter().map(|segment| segment.base_offset).collect(),
            modified,
            ..written
        }))
    }

    fn clean_segment(
        &mut self,
        segment: &PlannedSegment,
        output: &mut Output<'_>,
    ) -> Result<(), LogError> {
        let mut scanner = segment_scanner(segment, self.limits);
        while let Some(batch) = next_batch(&mut scanner, segment)? {
            let bytes = Bytes::copy_from_slice(scanner.batch_bytes(&batch)?);
            self.throttle.consume(batch.size());
            let cleaning = self.filter.clean_batch(&batch.header, &bytes)?;
            self.report.records_removed += cleaning.records_removed;
            self.report.tombstones_expired += cleaning.tombstones_expired;
            self.report.undecodable_batches += u64::from(cleaning.undecodable);
            if let Some(horizon) = cleaning.delete_horizon_ms {
                let earliest = self
                    .next_delete_horizon_ms
                    .map_or(horizon, |h| h.min(horizon));
                *self.next_delete_horizon_ms = Some(earliest);
            }
            match cleaning.decision {
                Decision::Keep => output.push(&batch.header, &bytes, self.throttle)?,
                Decision::Drop => output.mark_changed(self.throttle)?,
                Decision::Replace(rewritten) => {
                    output.mark_changed(self.throttle)?;
                    let header = BatchHeader::parse(&rewritten)
                        .map_err(|error| LogError::corrupt(error.to_string()))?;
                    output.push(&header, &rewritten, self.throttle)?;
                }
            }
        }
        Ok(())
    }
}

/// A cleaned segment being written, with its stats and index entries computed as the
/// append path computes them.
struct Output<'a> {
    path: PathBuf,
    file: Option<File>,
    base_offset: i64,
    /// A lone segment with no change so far: the output equals the source's first
    /// `size_bytes` bytes and is not written until something changes.
    deferred_source: Option<(&'a File, &'a Path)>,
    size_bytes: u64,
    /// Output not yet written; it starts at `size_bytes - buffer.len()`.
    buffer: Vec<u8>,
    buffer_limit: usize,
    stats: SegmentStats,
    offset_entries: Vec<OffsetEntry>,
    time_entries: Vec<TimeEntry>,
    interval_bytes: u32,
}

impl<'a> Output<'a> {
    fn new(
        path: PathBuf,
        base_offset: i64,
        deferred_source: Option<(&'a File, &'a Path)>,
        buffer_limit: usize,
        interval_bytes: u32,
    ) -> Self {
        Output {
            path,
            file: None,
            base_offset,
            deferred_source,
            size_bytes: 0,
            buffer: Vec::new(),
            buffer_limit: buffer_limit.max(1),
            stats: SegmentStats::empty(base_offset),
            offset_entries: Vec::new(),
            time_entries: Vec::new(),
            interval_bytes,
        }
    }

    /// Appends a batch that survives, as it is or rewritten.
    fn push(
        &mut self,
        header: &BatchHeader,
        bytes: &[u8],
        throttle: &mut Throttle,
    ) -> Result<(), LogError> {
        let position = self.size_bytes;
        let end = position + bytes.len() as u64;
        if end > MAX_SEGMENT_BYTES {
            return Err(LogError::BatchTooLarge {
                size_bytes: usize::try_from(end).unwrap_or(usize::MAX),
                segment_bytes: MAX_SEGMENT_BYTES,
            });
        }
        let last_time_ms = self.time_entries.last().map(|entry| entry.timestamp_ms);
        let entries = self.stats.account(
            self.base_offset,
            header,
            position,
            self.interval_bytes,
            last_time_ms,
        );
        self.offset_entries.extend(entries.offset);
        self.time_entries.extend(entries.time);
        self.size_bytes = end;
        if self.deferred_source.is_none() {
            self.buffer.extend_from_slice(bytes);
            if self.buffer.len() >= self.buffer_limit {
                self.flush(throttle)?;
            }
        }
        Ok(())
    }

    /// The output differs from its source: create the file, and copy the unchanged
    /// prefix a lone segment had so far.
    fn mark_changed(&mut self, throttle: &mut Throttle) -> Result<(), LogError> {
        if self.file.is_none() {
            let file = fileio::create_new(&self.path)
                .map_err(LogError::io("create cleaned segment", &self.path))?;
            self.file = Some(file);
        }
        let Some((source, source_path)) = self.deferred_source.take() else {
            return Ok(());
        };
        let mut copied = 0u64;
        let mut chunk = Vec::new();
        while copied < self.size_bytes {
            let length = (self.size_bytes - copied).min(self.buffer_limit as u64);
            chunk.resize(usize::try_from(length).unwrap_or(self.buffer_limit), 0);
            fileio::read_exact_at(source, &mut chunk, copied)
                .map_err(LogError::io("read segment", source_path))?;
            self.write_at(&chunk, copied)?;
            throttle.consume(2 * length);
            copied += length;
        }
        Ok(())
    }

    fn write_at(&self, bytes: &[u8], position: u64) -> Result<(), LogError> {
        let Some(file) = &self.file else {
            return Err(LogError::corrupt(
                "cleaned segment written before it was created",
            ));
        };
        fileio::write_all_at(file, bytes, position)
            .map_err(LogError::io("write cleaned segment", &self.path))
    }

    fn flush(&mut self, throttle: &mut Throttle) -> Result<(), LogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let start = self.size_bytes - self.buffer.len() as u64;
        self.write_at(&self.buffer, start)?;
        throttle.consume(self.buffer.len() as u64);
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered and fsyncs; `None` if nothing changed (no file exists).
    fn finish(mut self, throttle: &mut Throttle) -> Result<Option<CleanedGroup>, LogError> {
        if self.deferred_source.is_some() {
            return Ok(None);
        }
        self.flush(throttle)?;
        let Some(file) = self.file else {
            return Ok(None);
        };
        file.sync_all()
            .map_err(LogError::io("sync cleaned segment", &self.path))?;
        Ok(Some(CleanedGroup {
            members: Vec::new(),
            path: self.path,
            file,
            size_bytes: self.size_bytes,
            stats: self.stats,
            offset_entries: self.offset_entries,
            time_entries: self.time_entries,
            modified: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use eddy_protocol::records::Record;

    use super::*;

    fn record(delta: i32, key: Option<&str>, value: Option<&str>) -> Record {
        Record {
            offset_delta: delta,
            timestamp_delta: i64::from(delta),
            key: key.map(|key| Bytes::copy_from_slice(key.as_bytes())),
            value: value.map(|value| Bytes::copy_from_slice(value.as_bytes())),
            ..Record::default()
        }
    }

    fn encode(batch: &RecordBatch, compression: Compression) -> (BatchHeader, Bytes) {
        let bytes = batch.encode(compression).expect("encode");
        (BatchHeader::parse(&bytes).expect("header"), bytes)
    }

    fn filter<'a>(map: &'a KeyMap, producers: &'a HashSet<i64>, now_ms: i64) -> RecordFilter<'a> {
        RecordFilter {
            map,
            now_ms,
            delete_retention_ms: 100,
            producer_batches: producers,
        }
    }

    #[test]
    fn superseded_records_go_and_offsets_stay() {
        let mut map = KeyMap::default();
        map.insert(b"a", 12);
        let producers = HashSet::new();
        let batch = RecordBatch::new(
            10,
            1_000,
            vec![
                record(0, Some("a"), Some("old")),
                record(1, None, Some("keyless")),
                record(2, Some("a"), Some("new")),
                record(3, Some("b"), Some("only")),
            ],
        );
        let (header, bytes) = encode(&batch, Compression::Lz4);
        let cleaning = filter(&map, &producers, 0)
            .clean_batch(&header, &bytes)
            .expect("clean");
        assert_eq!(cleaning.records_removed, 1);
        let Decision::Replace(rewritten) = cleaning.decision else {
            panic!("expected a rewrite, got {:?}", cleaning.decision);
        };
        let decoded = RecordBatch::decode(&rewritten).expect("decode");
        assert_eq!(decoded.compression().expect("codec"), Compression::Lz4);
        assert_eq!((decoded.base_offset, decoded.last_offset_delta), (10, 3));
        let deltas: Vec<i32> = decoded.records.iter().map(|r| r.offset_delta).collect();
        assert_eq!(deltas, [1, 2, 3]);
    }

    #[test]
    fn a_tombstone_gets_a_horizon_then_expires() {
        let map = KeyMap::default();
        let producers = HashSet::new();
        let batch = RecordBatch::new(0, 1_000, vec![record(0, Some("a"), None)]);
        let (header, bytes) = encode(&batch, Compression::None);
        let first = filter(&map, &producers, 5_000)
            .clean_batch(&header, &bytes)
            .expect("clean");
        assert_eq!(first.delete_horizon_ms, Some(5_100));
        let Decision::Replace(stamped) = first.decision else {
            panic!("the horizon is set by a rewrite");
        };
        let stamped_header = BatchHeader::parse(&stamped).expect("header");
        assert!(stamped_header.has_delete_horizon());
        let decoded = RecordBatch::decode(&stamped).expect("decode");
        let timestamp = decoded.base_timestamp + decoded.records[0].timestamp_delta;
        assert_eq!(timestamp, 1_000, "the record keeps its timestamp");

        let before = filter(&map, &producers, 5_099)
            .clean_batch(&stamped_header, &stamped)
            .expect("clean");
        assert_eq!(before.decision, Decision::Keep);
        let after = filter(&map, &producers, 5_100)
            .clean_batch(&stamped_header, &stamped)
            .expect("clean");
        assert_eq!(after.decision, Decision::Drop);
        assert_eq!(after.tombstones_expired, 1);
    }

    #[test]
    fn a_remembered_producer_batch_stays_empty() {
        let mut map = KeyMap::default();
        map.insert(b"a", 50);
        let mut batch = RecordBatch::new(3, 1_000, vec![record(0, Some("a"), Some("v"))]);
        batch.producer_id = 7;
        batch.producer_epoch = 0;
        batch.base_sequence = 4;
        let (header, bytes) = encode(&batch, Compression::Zstd);
        let producers = HashSet::from([3]);
        let cleaning = filter(&map, &producers, 0)
            .clean_batch(&header, &bytes)
            .expect("clean");
        let Decision::Replace(empty) = cleaning.decision else {
            panic!("expected an empty batch");
        };
        let empty = BatchHeader::parse(&empty).expect("header");
        assert_eq!(empty.records_count, 0);
        assert_eq!(
            (empty.producer_id, empty.base_sequence, empty.last_offset()),
            (7, 4, 3)
        );
        let forgotten = HashSet::new();
        let cleaning = filter(&map, &forgotten, 0)
            .clean_batch(&header, &bytes)
            .expect("clean");
        assert_eq!(cleaning.decision, Decision::Drop);
    }

    #[test]
    fn groups_respect_the_size_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = |base: i64, size: u64| PlannedSegment {
            id: 0,
            base_offset: base,
            next_offset: base + 10,
            size_bytes: size,
            dirty: false,
            path: dir.path().join("x"),
            file: tempfile::tempfile().expect("file"),
        };
        let segments = [
            segment(0, 40),
            segment(10, 50),
            segment(20, 20),
            segment(30, 100),
        ];
        assert_eq!(group_segments(&segments, 100), [0..2, 2..3, 3..4]);
        let one_group = group_segments(&segments, 1_000);
        assert_eq!(one_group.len(), 1);
        assert_eq!(one_group.first(), Some(&(0..4)));
    }
}
