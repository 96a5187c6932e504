//! The leader-epoch cache: which leader epoch started at which offset, kept in
//! Kafka's `leader-epoch-checkpoint` text format:
//!
//! ```text
//! 0            version
//! 2            number of entries
//! 0 0          epoch start_offset
//! 3 150
//! ```
//!
//! Followers and consumers ask OffsetForLeaderEpoch where an epoch ended to
//! detect and cut divergent logs after a leader change; wrong answers make
//! them truncate needlessly, so the semantics follow Kafka's
//! `LeaderEpochFileCache`. This module keeps the entries and the file; the
//! partition log decides when to assign and truncate.

use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::LogError;

/// The checkpoint's file name, as Kafka's.
pub(crate) const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

const CHECKPOINT_VERSION: i32 = 0;

/// Kafka's `UNDEFINED_EPOCH` and `UNDEFINED_EPOCH_OFFSET`.
pub(crate) const UNDEFINED: (i32, i64) = (-1, -1);

/// An epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Entries in increasing epoch and start offset, and the directory of their checkpoint.
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir`. The flag is false when it is missing or unreadable:
    /// then the caller rebuilds the entries from the batches' partition leader epochs.
    pub fn load(dir: &Path) -> Result<(LeaderEpochCache, bool), LogError> {
        let text = checkpoint::read_text(dir, CHECKPOINT_FILE)?;
        let parsed = text.as_deref().and_then(parse);
        if text.is_some() && parsed.is_none() {
            tracing::warn!(dir = %dir.display(), "rebuilding unreadable leader-epoch-checkpoint");
        }
        let trusted = parsed.is_some();
        let cache = LeaderEpochCache {
            dir: dir.to_path_buf(),
            entries: parsed.unwrap_or_default(),
        };
        Ok((cache, trusted))
    }

    #[cfg(test)]
    fn in_memory(entries: Vec<EpochEntry>) -> LeaderEpochCache {
        LeaderEpochCache {
            dir: PathBuf::new(),
            entries,
        }
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|entry| entry.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, as Kafka's `assign`: a new latest
    /// epoch is appended; an entry that breaks monotonicity removes the entries it
    /// contradicts first. Returns whether anything changed (then persist).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let needed = self
            .entries
            .last()
            .is_none_or(|latest| latest.epoch != epoch || start_offset < latest.start_offset);
        if !needed {
            return false;
        }
        self.entries
            .retain(|entry| entry.epoch < epoch && entry.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Forgets epochs starting at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.start_offset < end_offset);
        self.entries.len() != before
    }

    /// Forgets epochs wholly below `start_offset` (the log start moved up): the latest of
    /// them is kept, now starting at `start_offset`.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|entry| entry.start_offset <= start_offset);
        let Some(last_below) = below.checked_sub(1).and_then(|at| self.entries.get(at)) else {
            return false;
        };
        let kept = EpochEntry {
            epoch: last_below.epoch,
            start_offset,
        };
        if below == 1 && self.entries.first() == Some(&kept) {
            return false;
        }
        self.entries.drain(..below);
        self.entries.insert(0, kept);
        true
    }

    /// OffsetForLeaderEpoch, as Kafka's `endOffsetFor`: for the latest epoch, the log end
    /// offset; otherwise the largest known epoch at or below `epoch` and the start offset of
    /// the epoch after it; for an epoch below all known ones, `epoch` itself and the start
    /// of the first known epoch; `(-1, -1)` when the epoch is undefined or above all known.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> (i32, i64) {
        if epoch < 0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(epoch) {
            return (epoch, log_end_offset);
        }
        let higher = self.entries.partition_point(|entry| entry.epoch <= epoch);
        let Some(next) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1).and_then(|at| self.entries.get(at)) {
            Some(floor) => (floor.epoch, next.start_offset),
            None => (epoch, next.start_offset),
        }
    }

    /// Writes the checkpoint, atomically.
    pub fn persist(&self) -> Result<(), LogError> {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for entry in &self.entries {
            text.push_str(&format!("{} {}\n", entry.epoch, entry.start_offset));
        }
        checkpoint::write_atomically(&self.dir, CHECKPOINT_FILE, text.as_bytes())
    }
}

/// The entries of a checkpoint file, or `None` if it is not one (wrong version or count,
/// bad numbers, entries out of order).
fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let version: i32 = lines.next()?.trim().parse().ok()?;
    if version != CHECKPOINT_VERSION {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries: Vec<EpochEntry> = Vec::new();
    for line in lines {
        let mut fields = line.split_whitespace();
        let entry = EpochEntry {
            epoch: fields.next()?.parse().ok()?,
            start_offset: fields.next()?.parse().ok()?,
        };
        let ordered = entries.last().is_none_or(|previous| {
            previous.epoch < entry.epoch && previous.start_offset <= entry.start_offset
        });
        if fields.next().is_some() || !ordered || entry.epoch < 0 || entry.start_offset < 0 {
            return None;
        }
        entries.push(entry);
    }
    (entries.len() == count).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(i32, i64)]) -> Vec<EpochEntry> {
        pairs
            .iter()
            .map(|&(epoch, start_offset)| EpochEntry {
                epoch,
                start_offset,
            })
            .collect()
    }

    #[test]
    fn end_offset_follows_kafka() {
        let cache = LeaderEpochCache::in_memory(entries(&[(1, 0), (3, 100), (5, 200)]));
        assert_eq!(cache.end_offset_for(5, 250), (5, 250), "latest: log end");
        assert_eq!(cache.end_offset_for(3, 250), (3, 200));
        assert_eq!(
            cache.end_offset_for(4, 250),
            (3, 200),
            "unknown: floor epoch"
        );
        assert_eq!(cache.end_offset_for(1, 250), (1, 100));
        assert_eq!(cache.end_offset_for(0, 250), (0, 0), "below all known");
        assert_eq!(cache.end_offset_for(6, 250), UNDEFINED, "above all known");
        assert_eq!(cache.end_offset_for(-1, 250), UNDEFINED);
        assert_eq!(
            LeaderEpochCache::in_memory(Vec::new()).end_offset_for(0, 0),
            UNDEFINED
        );
    }

    #[test]
    fn assign_appends_new_epochs_and_drops_contradicted_ones() {
        let mut cache = LeaderEpochCache::in_memory(Vec::new());
        assert!(cache.assign(1, 0));
        assert!(!cache.assign(1, 10), "same epoch, later offset");
        assert!(cache.assign(2, 10));
        assert!(cache.assign(2, 5), "same epoch, earlier offset");
        assert_eq!(cache.entries, entries(&[(1, 0), (2, 5)]));
        assert!(
            cache.assign(1, 20),
            "older epoch replaces what contradicts it"
        );
        assert_eq!(cache.entries, entries(&[(1, 20)]));
        assert!(!cache.assign(-1, 30));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut cache = LeaderEpochCache::in_memory(entries(&[(1, 0), (3, 100), (5, 200)]));
        assert!(cache.truncate_from_end(200));
        assert_eq!(cache.entries, entries(&[(1, 0), (3, 100)]));
        assert!(!cache.truncate_from_end(150));
        assert!(cache.truncate_from_start(120));
        assert_eq!(cache.entries, entries(&[(3, 120)]));
        assert!(!cache.truncate_from_start(120));
        assert!(!cache.truncate_from_start(50));
    }

    #[test]
    fn checkpoint_text_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut cache, trusted) = LeaderEpochCache::load(dir.path()).expect("load");
        assert!(!trusted);
        cache.assign(0, 0);
        cache.assign(4, 17);
        cache.persist().expect("persist");
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).expect("read");
        assert_eq!(text, "0\n2\n0 0\n4 17\n");
        let (loaded, trusted) = LeaderEpochCache::load(dir.path()).expect("load");
        assert!(trusted);
        assert_eq!(loaded.entries, entries(&[(0, 0), (4, 17)]));

        for bad in [
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n2\n4 0\n1 5\n",
            "0\n1\nx y\n",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
