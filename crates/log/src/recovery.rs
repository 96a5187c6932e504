//! Opening a partition directory: find the segments, check them, and rebuild
//! the state that lives in memory.
//!
//! - The active (last) segment is read whole, batch by batch: framing
//!   (length, magic), CRC-32C, offsets increasing and within the segment. The
//!   first batch that fails, and everything after it, is cut off: after a
//!   crash that is a torn write, and nothing after it can be trusted. Its
//!   indexes are always rebuilt.
//! - Older segments were fsynced when they rolled, so only their headers are
//!   walked. Their index files are kept if every entry matches a batch (the
//!   walk checks that in passing), rebuilt otherwise. A framing fault in an
//!   older segment is reported and the rest of that segment is left unread,
//!   not deleted.
//! - Producer state and the leader-epoch cache are rebuilt from the headers
//!   on the way (the cache only if its checkpoint is missing or unreadable;
//!   otherwise it only catches up with epochs newer than its last entry).
//!
//! - A compaction a crash interrupted is settled first: a `.cleaned` file was
//!   never committed and is removed; a `<base>.log.swap` file was, so it
//!   replaces `<base>.log` and every segment starting inside its offsets.
//!
//! What is not here: the append and read paths (`log`, `segment`).

use std::path::{Path, PathBuf};

use eddy_protocol::records::{BatchHeader, verify_crc};

use crate::checkpoint;
use crate::config::LogConfig;
use crate::epoch::LeaderEpochCache;
use crate::error::LogError;
use crate::fileio;
use crate::index::{OffsetIndex, OffsetIndexCheck, TimeEntry, TimeIndex, TimeIndexCheck};
use crate::log::RecoveryReport;
use crate::producer_state::ProducerStateManager;
use crate::scan::{BatchScanner, SCAN_CHUNK_BYTES, Step};
use crate::segment::{
    self, CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, Segment, SegmentStats,
    TIME_INDEX_SUFFIX,
};

/// Bytes read at a time when checking the active segment, whose batches are read whole.
const RECOVERY_CHUNK_BYTES: usize = 1024 * 1024;

/// Everything a partition log holds in memory, as found on disk.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub log_start_offset: i64,
    pub producers: ProducerStateManager,
    pub epochs: LeaderEpochCache,
    pub report: RecoveryReport,
}

/// State rebuilt across segments while walking them.
struct Rebuild {
    producers: ProducerStateManager,
    epochs: LeaderEpochCache,
    /// The epoch checkpoint was unusable: assign every batch's epoch.
    rebuild_epochs: bool,
    epochs_changed: bool,
    log_start_offset: i64,
}

impl Rebuild {
    fn replay(&mut self, header: &BatchHeader) {
        if header.last_offset() >= self.log_start_offset {
            self.producers.update(header);
        } else {
            self.producers.observe_producer_id(header.producer_id);
        }
        let epoch = header.partition_leader_epoch;
        let newer = self
            .epochs
            .latest_epoch()
            .is_none_or(|latest| epoch > latest);
        if self.rebuild_epochs || newer {
            self.epochs_changed |= self.epochs.assign(epoch, header.base_offset);
        }
    }
}

/// Opens `dir` (creating it if absent) and recovers its segments.
pub(crate) fn recover(dir: &Path, config: &LogConfig, now_ms: i64) -> Result<Recovered, LogError> {
    std::fs::create_dir_all(dir).map_err(LogError::io("create partition directory", dir))?;
    let finished_swaps = finish_interrupted_compaction(dir)?;
    let base_offsets = list_segments(dir)?;
    let checkpointed_start = checkpoint::read_log_start_offset(dir)?;
    let (epochs, epochs_trusted) = LeaderEpochCache::load(dir)?;
    let first_base = base_offsets.first().copied();
    let log_start_offset = match (checkpointed_start, first_base) {
        (Some(start), Some(base)) => start.max(base),
        (start, base) => start.or(base).unwrap_or(0),
    };
    let mut rebuild = Rebuild {
        producers: ProducerStateManager::default(),
        epochs,
        rebuild_epochs: !epochs_trusted,
        epochs_changed: !epochs_trusted,
        log_start_offset,
    };
    let mut report = RecoveryReport {
        finished_compaction_swaps: finished_swaps,
        ..RecoveryReport::default()
    };

    let mut segments = Vec::with_capacity(base_offsets.len().max(1));
    for (at, &base_offset) in base_offsets.iter().enumerate() {
        let segment = if at + 1 == base_offsets.len() {
            recover_active(dir, base_offset, config, &mut rebuild, &mut report, now_ms)?
        } else {
            load_sealed(dir, base_offset, config, &mut rebuild, &mut report, now_ms)?
        };
        segments.push(segment);
    }

    let log_end_offset = segments
        .last()
        .map_or(log_start_offset, Segment::next_offset);
    if segments.is_empty() || log_start_offset > log_end_offset {
        // No segment, or everything left lies below the start (a torn tail after
        // DeleteRecords removed it all): start empty at the log start offset.
        for segment in segments.drain(..) {
            segment.delete()?;
        }
        segments.push(Segment::create(dir, log_start_offset, now_ms)?);
        fileio::sync_dir(dir).map_err(LogError::io("sync directory", dir))?;
        rebuild.producers.clear();
    }
    let log_end_offset = segments
        .last()
        .map_or(log_start_offset, Segment::next_offset);

    let mut epochs = rebuild.epochs;
    let truncated_end = epochs.truncate_from_end(log_end_offset);
    let truncated_start = epochs.truncate_from_start(log_start_offset);
    if rebuild.epochs_changed || truncated_end || truncated_start {
        epochs.persist()?;
    }
    report.epoch_checkpoint_rebuilt = !epochs_trusted;
    report.segments = segments.len();
    Ok(Recovered {
        segments,
        log_start_offset,
        producers: rebuild.producers,
        epochs,
        report,
    })
}

/// Settles what a crash left of a compaction: removes `.cleaned` files (never committed),
/// and completes each `<base>.log.swap` (committed): the segments it replaces, `<base>`
/// itself and those starting inside its offsets, are removed, then it becomes
/// `<base>.log`. Their indexes go too; opening rebuilds them. Returns the swaps completed.
fn finish_interrupted_compaction(dir: &Path) -> Result<usize, LogError> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LogError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io("list", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.ends_with(CLEANED_SUFFIX) {
            let path = entry.path();
            fileio::remove_if_exists(&path).map_err(LogError::io("remove", &path))?;
        } else if let Some(base) = segment::parse_base_offset(&name, SWAP_SUFFIX) {
            swaps.push(base);
        } else if let Some(base) = segment::parse_base_offset(&name, LOG_SUFFIX) {
            logs.push(base);
        }
    }
    swaps.sort_unstable();
    for &base in &swaps {
        let swap_path = segment::file_path(dir, base, SWAP_SUFFIX);
        let next_offset = swap_next_offset(&swap_path, base)?;
        for &covered in logs
            .iter()
            .filter(|&&log_base| log_base > base && log_base < next_offset)
        {
            segment::remove_files(dir, covered, false)?;
        }
        segment::remove_files(dir, base, true)?;
        let log_path = segment::file_path(dir, base, LOG_SUFFIX);
        std::fs::rename(&swap_path, &log_path)
            .map_err(LogError::io("rename swap segment to", &log_path))?;
        tracing::info!(segment = %log_path.display(), "finished a compaction swap a crash interrupted");
    }
    if !swaps.is_empty() {
        fileio::sync_dir(dir).map_err(LogError::io("sync directory", dir))?;
    }
    Ok(swaps.len())
}

/// The offset after the last batch of a swap file (its base offset when empty). It was
/// fsynced before its commit, so a framing fault is corruption: the file is cut there.
fn swap_next_offset(path: &Path, base_offset: i64) -> Result<i64, LogError> {
    let file =
        fileio::open_read_write_existing(path).map_err(LogError::io("open segment", path))?;
    let size = file
        .metadata()
        .map_err(LogError::io("stat segment", path))?
        .len();
    let mut next_offset = base_offset;
    let mut scanner = BatchScanner::new(&file, path, 0, size, SCAN_CHUNK_BYTES).headers_only();
    loop {
        match scanner.next_batch()? {
            Step::Batch(batch) => next_offset = batch.header.next_offset(),
            Step::End => break,
            Step::Invalid { position, reason } => {
                tracing::warn!(segment = %path.display(), position, %reason, "cutting a swap segment at a corrupt batch");
                file.set_len(position)
                    .map_err(LogError::io("truncate segment", path))?;
                break;
            }
        }
    }
    Ok(next_offset)
}

/// Base offsets of the segments in `dir`, sorted; removes leftover temporary files and
/// index files whose log is gone.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes: Vec<(i64, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LogError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(LogError::io("list", dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.ends_with(checkpoint::TEMPORARY_SUFFIX) {
            let path = entry.path();
            fileio::remove_if_exists(&path).map_err(LogError::io("remove", &path))?;
        } else if let Some(base) = segment::parse_base_offset(&name, LOG_SUFFIX) {
            logs.push(base);
        } else if let Some(base) = segment::parse_base_offset(&name, INDEX_SUFFIX)
            .or_else(|| segment::parse_base_offset(&name, TIME_INDEX_SUFFIX))
        {
            indexes.push((base, entry.path()));
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            fileio::remove_if_exists(&path).map_err(LogError::io("remove", &path))?;
        }
    }
    Ok(logs)
}

/// Why a batch with sound framing still cannot be part of a segment based at `base_offset`
/// whose previous batch ended before `next_offset`.
fn offsets_fault(header: &BatchHeader, base_offset: i64, next_offset: i64) -> Option<String> {
    if header.base_offset < next_offset {
        return Some(format!(
            "base offset {} is below the expected {next_offset}",
            header.base_offset
        ));
    }
    let fits = header
        .base_offset
        .checked_add(i64::from(header.last_offset_delta))
        .and_then(|last| last.checked_sub(base_offset))
        .is_some_and(|relative| relative <= segment::MAX_RELATIVE_OFFSET);
    if !fits {
        return Some(format!(
            "offsets {}+{} do not fit a segment based at {base_offset}",
            header.base_offset, header.last_offset_delta
        ));
    }
    None
}

fn relative(header: &BatchHeader, base_offset: i64) -> u32 {
    u32::try_from(header.last_offset() - base_offset).unwrap_or(u32::MAX)
}

fn open_log(dir: &Path, base_offset: i64) -> Result<(PathBuf, std::fs::File, u64), LogError> {
    let path = segment::file_path(dir, base_offset, LOG_SUFFIX);
    let file =
        fileio::open_read_write_existing(&path).map_err(LogError::io("open segment", &path))?;
    let size = file
        .metadata()
        .map_err(LogError::io("stat segment", &path))?
        .len();
    Ok((path, file, size))
}

/// Checks every batch of the active segment, cuts a bad tail, and rebuilds its indexes.
fn recover_active(
    dir: &Path,
    base_offset: i64,
    config: &LogConfig,
    rebuild: &mut Rebuild,
    report: &mut RecoveryReport,
    now_ms: i64,
) -> Result<Segment, LogError> {
    let (log_path, log, file_size) = open_log(dir, base_offset)?;
    let mut stats = SegmentStats::empty(base_offset);
    let mut offset_entries = Vec::new();
    let mut time_entries: Vec<TimeEntry> = Vec::new();
    let mut valid_end = 0u64;
    let mut fault = None;
    {
        let mut scanner = BatchScanner::new(&log, &log_path, 0, file_size, RECOVERY_CHUNK_BYTES);
        loop {
            let batch = match scanner.next_batch()? {
                Step::Batch(batch) => batch,
                Step::End => break,
                Step::Invalid { position, reason } => {
                    fault = Some((position, reason));
                    break;
                }
            };
            let header = batch.header;
            let problem = match verify_crc(scanner.batch_bytes(&batch)?) {
                Err(error) => Some(error.to_string()),
                Ok(()) => offsets_fault(&header, base_offset, stats.next_offset),
            };
            if let Some(reason) = problem {
                fault = Some((batch.position, reason));
                break;
            }
            let last_time_ms = time_entries.last().map(|entry| entry.timestamp_ms);
            let entries = stats.account(
                base_offset,
                &header,
                batch.position,
                config.index_interval_bytes,
                last_time_ms,
            );
            offset_entries.extend(entries.offset);
            time_entries.extend(entries.time);
            rebuild.replay(&header);
            valid_end = batch.end();
        }
    }
    if let Some((position, reason)) = fault {
        let cut_bytes = file_size - position;
        tracing::warn!(
            segment = %log_path.display(),
            position,
            cut_bytes,
            %reason,
            "truncating the active segment's tail: torn or corrupt batch"
        );
        log.set_len(position)
            .map_err(LogError::io("truncate segment", &log_path))?;
        report.truncated_bytes += cut_bytes;
    }
    let offset_index = OffsetIndex::create(
        &segment::file_path(dir, base_offset, INDEX_SUFFIX),
        offset_entries,
    )?;
    let time_index = TimeIndex::create(
        &segment::file_path(dir, base_offset, TIME_INDEX_SUFFIX),
        time_entries,
    )?;
    Ok(Segment::from_recovered(
        base_offset,
        log_path,
        log,
        valid_end,
        (offset_index, time_index),
        stats,
        now_ms,
    ))
}

/// Walks the headers of an older segment, checks its index files against them, and
/// rebuilds the indexes if they do not match.
fn load_sealed(
    dir: &Path,
    base_offset: i64,
    config: &LogConfig,
    rebuild: &mut Rebuild,
    report: &mut RecoveryReport,
    now_ms: i64,
) -> Result<Segment, LogError> {
    let (log_path, log, file_size) = open_log(dir, base_offset)?;
    let offset_index = OffsetIndex::load(&segment::file_path(dir, base_offset, INDEX_SUFFIX))?;
    let time_index = TimeIndex::load(&segment::file_path(dir, base_offset, TIME_INDEX_SUFFIX))?;
    let mut offset_check = offset_index
        .as_ref()
        .map(|index| OffsetIndexCheck::new(index.entries()));
    let mut time_check = time_index
        .as_ref()
        .map(|index| TimeIndexCheck::new(index.entries()));
    let mut stats = SegmentStats::empty(base_offset);
    let mut valid_end = 0u64;
    {
        let mut scanner =
            BatchScanner::new(&log, &log_path, 0, file_size, SCAN_CHUNK_BYTES).headers_only();
        loop {
            let (position, reason) = match scanner.next_batch()? {
                Step::Batch(batch) => {
                    let header = batch.header;
                    match offsets_fault(&header, base_offset, stats.next_offset) {
                        Some(reason) => (batch.position, reason),
                        None => {
                            stats.account(base_offset, &header, batch.position, u32::MAX, None);
                            let relative_last = relative(&header, base_offset);
                            if let Some(check) = offset_check.as_mut() {
                                check.observe(batch.position, relative_last);
                            }
                            if let Some(check) = time_check.as_mut() {
                                check.observe(relative_last, header.max_timestamp);
                            }
                            rebuild.replay(&header);
                            valid_end = batch.end();
                            continue;
                        }
                    }
                }
                Step::End => break,
                Step::Invalid { position, reason } => (position, reason),
            };
            tracing::warn!(
                segment = %log_path.display(),
                position,
                %reason,
                "older segment is unreadable from here on; leaving it as it is"
            );
            report.unreadable_bytes += file_size - position;
            break;
        }
    }
    let indexes_match = offset_check.is_some_and(|check| check.passed())
        && time_check.is_some_and(|check| check.passed());
    let indexes = match (offset_index, time_index) {
        (Some(offset_index), Some(time_index)) if indexes_match => (offset_index, time_index),
        _ => (
            OffsetIndex::create(
                &segment::file_path(dir, base_offset, INDEX_SUFFIX),
                Vec::new(),
            )?,
            TimeIndex::create(
                &segment::file_path(dir, base_offset, TIME_INDEX_SUFFIX),
                Vec::new(),
            )?,
        ),
    };
    let mut segment = Segment::from_recovered(
        base_offset,
        log_path,
        log,
        valid_end,
        indexes,
        stats,
        now_ms,
    );
    if !indexes_match {
        tracing::info!(base_offset, "rebuilding the indexes of an older segment");
        segment.rebuild_indexes(config.index_interval_bytes)?;
        segment.sync()?;
        report.rebuilt_indexes += 1;
    }
    Ok(segment)
}
