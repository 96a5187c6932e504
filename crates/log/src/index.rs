//! The sparse offset and time indexes of a segment, in Kafka's file formats.
//!
//! - Offset index (`.index`): 8-byte entries, relative offset (u32) and file
//!   position (u32), big-endian. An entry names the last offset of a batch and
//!   the position where that batch starts.
//! - Time index (`.timeindex`): 12-byte entries, timestamp (i64) and relative
//!   offset (u32): from that offset on, the segment's max timestamp is at
//!   least that timestamp.
//!
//! Entries are kept in memory (about 20 bytes per `index.interval.bytes` of
//! log, 0.5 % at the default) and appended to the file as they are made;
//! Kafka memory-maps preallocated files instead. Lookups binary-search the
//! memory copy. What is not here: deciding when to add an entry (the
//! segment does), and rebuilding from the log (recovery does).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::fileio;

/// One fixed-size entry of an index file.
pub(crate) trait IndexEntry: Copy {
    /// Bytes per entry on disk.
    const SIZE: usize;
    /// Reads an entry from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
    /// Appends the entry's `SIZE` bytes.
    fn encode(&self, out: &mut Vec<u8>);
}

/// An offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Offset minus the segment's base offset.
    pub relative_offset: u32,
    /// File position of the batch holding that offset.
    pub position: u32,
}

/// A time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Max timestamp of the segment up to and including the batch at `relative_offset`.
    pub timestamp_ms: i64,
    /// Relative (last) offset of the batch that reached this timestamp.
    pub relative_offset: u32,
}

fn be_bytes<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|field| <[u8; N]>::try_from(field).ok())
        .unwrap_or([0; N])
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;

    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes(be_bytes(bytes, 0)),
            position: u32::from_be_bytes(be_bytes(bytes, 4)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;

    fn decode(bytes: &[u8]) -> Self {
        TimeEntry {
            timestamp_ms: i64::from_be_bytes(be_bytes(bytes, 0)),
            relative_offset: u32::from_be_bytes(be_bytes(bytes, 8)),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
}

/// An index file and its entries in memory.
pub(crate) struct IndexFile<E> {
    path: PathBuf,
    file: File,
    entries: Vec<E>,
}

/// The offset index of a segment.
pub(crate) type OffsetIndex = IndexFile<OffsetEntry>;
/// The time index of a segment.
pub(crate) type TimeIndex = IndexFile<TimeEntry>;

impl<E: IndexEntry> IndexFile<E> {
    /// Creates (or empties) the index at `path` and writes `entries` to it.
    pub fn create(path: &Path, entries: Vec<E>) -> Result<Self, LogError> {
        let file =
            fileio::open_read_write(path, true).map_err(LogError::io("create index", path))?;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
        };
        index.replace_all(entries)?;
        Ok(index)
    }

    /// Reads the index at `path`; `None` if the file is missing or not a whole number of
    /// entries (then the caller rebuilds it).
    pub fn load(path: &Path) -> Result<Option<Self>, LogError> {
        let mut file = match fileio::open_read_write_existing(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(LogError::io("open index", path)(error)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(LogError::io("read index", path))?;
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            file,
            entries,
        }))
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// Appends an entry to memory and file.
    pub fn push(&mut self, entry: E) -> Result<(), LogError> {
        let mut bytes = Vec::with_capacity(E::SIZE);
        entry.encode(&mut bytes);
        let position = (self.entries.len() * E::SIZE) as u64;
        fileio::write_all_at(&self.file, &bytes, position)
            .map_err(LogError::io("write index", &self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Replaces every entry, in memory and on disk.
    pub fn replace_all(&mut self, entries: Vec<E>) -> Result<(), LogError> {
        let mut bytes = Vec::with_capacity(entries.len() * E::SIZE);
        for entry in &entries {
            entry.encode(&mut bytes);
        }
        self.file
            .set_len(0)
            .and_then(|()| fileio::write_all_at(&self.file, &bytes, 0))
            .map_err(LogError::io("rewrite index", &self.path))?;
        self.entries = entries;
        Ok(())
    }

    pub fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(LogError::io("sync index", &self.path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl OffsetIndex {
    /// File position to start scanning from for `relative_offset`: that of the last entry
    /// at or below it, or 0.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let after = self
            .entries
            .partition_point(|entry| entry.relative_offset <= relative_offset);
        after
            .checked_sub(1)
            .and_then(|at| self.entries.get(at))
            .map_or(0, |entry| entry.position)
    }
}

impl TimeIndex {
    /// Relative offset to start searching from for `timestamp_ms`: that of the last entry
    /// at or below it, or `None` (search from the start).
    pub fn lookup(&self, timestamp_ms: i64) -> Option<u32> {
        let after = self
            .entries
            .partition_point(|entry| entry.timestamp_ms <= timestamp_ms);
        after
            .checked_sub(1)
            .and_then(|at| self.entries.get(at))
            .map(|entry| entry.relative_offset)
    }
}

/// Checks an offset index loaded from disk against the batches of its segment, visited
/// in file order: every entry must name the start of a batch and that batch's last
/// offset, as appending or a rebuild would have written it.
pub(crate) struct OffsetIndexCheck<'a> {
    entries: &'a [OffsetEntry],
    next: usize,
    consistent: bool,
}

impl<'a> OffsetIndexCheck<'a> {
    pub fn new(entries: &'a [OffsetEntry]) -> Self {
        OffsetIndexCheck {
            entries,
            next: 0,
            consistent: true,
        }
    }

    /// The next batch of the segment: its file position and relative last offset.
    pub fn observe(&mut self, position: u64, relative_last_offset: u32) {
        let Some(entry) = self.entries.get(self.next) else {
            return;
        };
        let entry_position = u64::from(entry.position);
        if entry_position == position {
            self.consistent &= entry.relative_offset == relative_last_offset;
            self.next += 1;
        } else if entry_position < position {
            // Points inside a batch, or the entries are out of order.
            self.consistent = false;
            self.next += 1;
        }
    }

    /// Whether every entry matched a batch.
    pub fn passed(&self) -> bool {
        self.consistent && self.next == self.entries.len()
    }
}

/// Checks a time index loaded from disk against the batches of its segment: timestamps
/// strictly increasing, each entry naming a batch's last offset and that batch's max
/// timestamp (the batch that raised the segment's max timestamp).
pub(crate) struct TimeIndexCheck<'a> {
    entries: &'a [TimeEntry],
    next: usize,
    consistent: bool,
}

impl<'a> TimeIndexCheck<'a> {
    pub fn new(entries: &'a [TimeEntry]) -> Self {
        let increasing = entries.windows(2).all(|pair| {
            pair[0].timestamp_ms < pair[1].timestamp_ms
                && pair[0].relative_offset < pair[1].relative_offset
        });
        TimeIndexCheck {
            entries,
            next: 0,
            consistent: increasing,
        }
    }

    /// The next batch of the segment: its relative last offset and max timestamp.
    pub fn observe(&mut self, relative_last_offset: u32, max_timestamp_ms: i64) {
        let Some(entry) = self.entries.get(self.next) else {
            return;
        };
        if entry.relative_offset == relative_last_offset {
            self.consistent &= entry.timestamp_ms == max_timestamp_ms;
            self.next += 1;
        } else if entry.relative_offset < relative_last_offset {
            self.consistent = false;
            self.next += 1;
        }
    }

    /// Whether every entry matched a batch.
    pub fn passed(&self) -> bool {
        self.consistent && self.next == self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_index(dir: &Path, entries: &[(u32, u32)]) -> OffsetIndex {
        let entries = entries
            .iter()
            .map(|&(relative_offset, position)| OffsetEntry {
                relative_offset,
                position,
            })
            .collect();
        OffsetIndex::create(&dir.join("0.index"), entries).expect("create index")
    }

    #[test]
    fn offset_lookup_returns_the_position_of_the_last_entry_at_or_below() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = offset_index(dir.path(), &[(9, 100), (19, 200), (29, 300)]);
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(8), 0);
        assert_eq!(index.lookup(9), 100);
        assert_eq!(index.lookup(25), 200);
        assert_eq!(index.lookup(1000), 300);
    }

    #[test]
    fn entries_survive_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut index = offset_index(dir.path(), &[(9, 100)]);
        index
            .push(OffsetEntry {
                relative_offset: 19,
                position: 200,
            })
            .expect("push");
        let loaded = OffsetIndex::load(&dir.path().join("0.index"))
            .expect("load")
            .expect("whole entries");
        assert_eq!(loaded.entries(), index.entries());
        assert_eq!(loaded.lookup(30), 200);
    }

    #[test]
    fn a_missing_file_or_a_partial_entry_is_not_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        assert!(OffsetIndex::load(&path).expect("load").is_none());
        std::fs::write(&path, [0u8; 12]).expect("write");
        assert!(OffsetIndex::load(&path).expect("load").is_none());
    }

    #[test]
    fn offset_index_check_accepts_only_entries_at_batch_starts() {
        let entries = [
            OffsetEntry {
                relative_offset: 9,
                position: 100,
            },
            OffsetEntry {
                relative_offset: 19,
                position: 200,
            },
        ];
        let batches = [(0u64, 4u32), (100, 9), (150, 14), (200, 19)];
        let mut check = OffsetIndexCheck::new(&entries);
        batches.iter().for_each(|&(p, o)| check.observe(p, o));
        assert!(check.passed());

        let mut check = OffsetIndexCheck::new(&entries);
        batches[..3].iter().for_each(|&(p, o)| check.observe(p, o));
        assert!(!check.passed(), "an entry past the last batch");

        let mut check = OffsetIndexCheck::new(&entries);
        [(0u64, 4u32), (120, 9), (200, 19)]
            .iter()
            .for_each(|&(p, o)| check.observe(p, o));
        assert!(!check.passed(), "an entry inside a batch");
    }

    #[test]
    fn time_lookup_finds_the_last_entry_at_or_below() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entries = vec![
            TimeEntry {
                timestamp_ms: 100,
                relative_offset: 5,
            },
            TimeEntry {
                timestamp_ms: 200,
                relative_offset: 15,
            },
        ];
        let index = TimeIndex::create(&dir.path().join("0.timeindex"), entries).expect("create");
        assert_eq!(index.lookup(50), None);
        assert_eq!(index.lookup(100), Some(5));
        assert_eq!(index.lookup(199), Some(5));
        assert_eq!(index.lookup(300), Some(15));

        let mut check = TimeIndexCheck::new(index.entries());
        check.observe(5, 100);
        check.observe(10, 150);
        check.observe(15, 200);
        assert!(check.passed());
        let mut check = TimeIndexCheck::new(index.entries());
        check.observe(5, 100);
        check.observe(15, 250);
        assert!(!check.passed(), "timestamp differs from the batch's");
    }
}
