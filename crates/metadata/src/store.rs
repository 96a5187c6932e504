//! Durable raft storage in one directory: the vote, the log, the commit hint
//! and the latest snapshot, plus the state machine (the image) in memory.
//!
//! Files in the data directory:
//! - `vote.json`, `committed.json`, `log_state.json` (last purged log id),
//!   `snapshot.json`: small, replaced whole (written to a temporary file,
//!   synced, renamed), so a crash leaves the old or the new version;
//! - `raft.log`: entries as 4-byte big-endian length + JSON, appended and
//!   synced. Deleting conflicting entries and purging rewrite it whole (the
//!   log is bounded by snapshots, so it stays small). A torn tail left by a
//!   crash is cut off on open.
//!
//! The image is rebuilt on start from the snapshot plus the committed entries
//! (openraft re-applies them from `committed.json`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogState, RaftLogReader, RaftSnapshotBuilder, RaftStorage, Snapshot};
use openraft::{EntryPayload, OptionalSend, StorageIOError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::command::{CommandOutput, CommandResult, apply};
use crate::image::MetadataImage;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote};

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";
const LOG_STATE_FILE: &str = "log_state.json";
const SNAPSHOT_FILE: &str = "snapshot.json";
/// An entry bigger than this on disk is damage, not data.
const MAX_ENTRY_SIZE_BYTES: u32 = 64 * 1024 * 1024;

/// Why the data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
}

/// The state machine: the image and what raft needs to know about it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Machine {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    image: Arc<MetadataImage>,
}

/// A snapshot as kept in memory and in `snapshot.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    machine: Machine,
}

impl StoredSnapshot {
    fn to_snapshot(&self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = serde_json::to_vec(&self.machine)
            .map_err(|error| StorageIOError::read_snapshot(Some(self.meta.signature()), &error))?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LogStateFile {
    last_purged: Option<LogId>,
}

/// Log entries by index, shared with log readers.
type SharedLog = Arc<Mutex<BTreeMap<u64, Entry>>>;

pub(crate) struct FileStore {
    dir: PathBuf,
    log: SharedLog,
    log_file: File,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    machine: Machine,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    images: watch::Sender<Arc<MetadataImage>>,
    unclean_default: bool,
    snapshot_count: u64,
}

impl FileStore {
    /// Opens (or creates) the store in `dir` and publishes the snapshot's
    /// image on `images`.
    pub(crate) fn open(
        dir: &Path,
        images: watch::Sender<Arc<MetadataImage>>,
        unclean_default: bool,
    ) -> Result<Self, OpenError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let vote: Option<Vote> = read_json(&dir.join(VOTE_FILE))?;
        let committed: Option<LogId> =
            read_json(&dir.join(COMMITTED_FILE)).unwrap_or_else(|error| {
                // Only a hint: without it entries are re-applied once a leader
                // says they are committed.
                tracing::warn!(%error, "ignoring the commit hint");
                None
            });
        let log_state: LogStateFile = read_json(&dir.join(LOG_STATE_FILE))?.unwrap_or_default();
        let snapshot: Option<StoredSnapshot> = read_json(&dir.join(SNAPSHOT_FILE))?;

        let log_path = dir.join(LOG_FILE);
        let mut log = read_log(&log_path)?;
        let purged_index = log_state.last_purged.map(|log_id| log_id.index);
        if let Some(purged) = purged_index {
            log.retain(|&index, _| index > purged);
        }
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;

        let machine = snapshot
            .as_ref()
            .map(|snapshot| snapshot.machine.clone())
            .unwrap_or_default();
        images.send_replace(machine.image.clone());
        tracing::debug!(
            dir = %dir.display(),
            entries = log.len(),
            snapshot = ?snapshot.as_ref().map(|snapshot| &snapshot.meta.last_log_id),
            "opened metadata store"
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            log: Arc::new(Mutex::new(log)),
            log_file,
            last_purged: log_state.last_purged,
            vote,
            committed,
            machine,
            snapshot: Arc::new(Mutex::new(snapshot)),
            images,
            unclean_default,
            snapshot_count: 0,
        })
    }

    fn log(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces `raft.log` with the entries in memory.
    fn rewrite_log(&mut self) -> std::io::Result<()> {
        let path = self.dir.join(LOG_FILE);
        let temporary = self.dir.join(format!("{LOG_FILE}.tmp"));
        let mut buffer = Vec::new();
        for entry in self.log().values() {
            encode_entry(entry, &mut buffer)?;
        }
        let mut file = File::create(&temporary)?;
        file.write_all(&buffer)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)?;
        sync_dir(&self.dir)?;
        self.log_file = OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }

    fn publish(&self) {
        self.images.send_replace(self.machine.image.clone());
    }

    fn apply_entry(&mut self, entry: &Entry) -> CommandResult {
        let index = entry.log_id.index;
        self.machine.last_applied = Some(entry.log_id);
        let image = Arc::make_mut(&mut self.machine.image);
        image.applied_index = index;
        match &entry.payload {
            EntryPayload::Blank => Ok(CommandOutput::Done),
            EntryPayload::Normal(request) => apply(
                image,
                index,
                request.time_ms,
                &request.command,
                self.unclean_default,
            ),
            EntryPayload::Membership(membership) => {
                self.machine.membership =
                    StoredMembership::new(Some(entry.log_id), membership.clone());
                Ok(CommandOutput::Done)
            }
        }
    }
}

fn read_range(log: &SharedLog, range: impl RangeBounds<u64>) -> Vec<Entry> {
    let log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    log.range(range).map(|(_, entry)| entry.clone()).collect()
}

impl RaftLogReader<TypeConfig> for FileStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.log, range))
    }
}

/// Reads log entries while the store is busy elsewhere.
pub(crate) struct LogReader {
    log: SharedLog,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.log, range))
    }
}

/// Writes a snapshot of the state machine as it was when requested.
pub(crate) struct SnapshotBuilder {
    dir: PathBuf,
    machine: Machine,
    slot: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshot_id: String,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.machine.last_applied,
                last_membership: self.machine.membership.clone(),
                snapshot_id: self.snapshot_id.clone(),
            },
            machine: self.machine.clone(),
        };
        write_json(&self.dir.join(SNAPSHOT_FILE), &stored, true).map_err(|error| {
            StorageIOError::write_snapshot(Some(stored.meta.signature()), &error)
        })?;
        let snapshot = stored.to_snapshot()?;
        *self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(stored);
        tracing::debug!(meta = %snapshot.meta, "built metadata snapshot");
        Ok(snapshot)
    }
}

impl RaftStorage<TypeConfig> for FileStore {
    type LogReader = LogReader;
    type SnapshotBuilder = SnapshotBuilder;

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        write_json(&self.dir.join(VOTE_FILE), vote, true)
            .map_err(|error| StorageIOError::write_vote(&error))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // A hint that may lag behind: not synced.
        write_json(&self.dir.join(COMMITTED_FILE), &committed, false)
            .map_err(|error| StorageIOError::write(&error))?;
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed)
    }

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last = self.log().values().next_back().map(|entry| entry.log_id);
        Ok(LogState {
            last_purged_log_id: self.last_purged,
            last_log_id: last.or(self.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            log: self.log.clone(),
        }
    }

    async fn append_to_log<I>(&mut self, entries: I) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
    {
        let mut buffer = Vec::new();
        let mut appended = Vec::new();
        for entry in entries {
            encode_entry(&entry, &mut buffer)
                .map_err(|error| StorageIOError::write_logs(&error))?;
            appended.push(entry);
        }
        self.log_file
            .write_all(&buffer)
            .and_then(|()| self.log_file.sync_data())
            .map_err(|error| StorageIOError::write_logs(&error))?;
        let mut log = self.log();
        for entry in appended {
            log.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    async fn delete_conflict_logs_since(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.log().retain(|&index, _| index < log_id.index);
        self.rewrite_log()
            .map_err(|error| StorageIOError::write_logs(&error).into())
    }

    async fn purge_logs_upto(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let state = LogStateFile {
            last_purged: Some(log_id),
        };
        write_json(&self.dir.join(LOG_STATE_FILE), &state, true)
            .map_err(|error| StorageIOError::write_logs(&error))?;
        self.last_purged = Some(log_id);
        self.log().retain(|&index, _| index > log_id.index);
        self.rewrite_log()
            .map_err(|error| StorageIOError::write_logs(&error).into())
    }

    async fn last_applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.machine.last_applied, self.machine.membership.clone()))
    }

    async fn apply_to_state_machine(
        &mut self,
        entries: &[Entry],
    ) -> Result<Vec<CommandResult>, StorageError> {
        let results = entries
            .iter()
            .map(|entry| self.apply_entry(entry))
            .collect();
        self.publish();
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshot_count += 1;
        let last_index = self.machine.last_applied.map_or(0, |log_id| log_id.index);
        SnapshotBuilder {
            dir: self.dir.clone(),
            machine: self.machine.clone(),
            slot: self.snapshot.clone(),
            snapshot_id: format!("{last_index}-{}", self.snapshot_count),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let machine: Machine = serde_json::from_slice(snapshot.get_ref())
            .map_err(|error| StorageIOError::read_snapshot(Some(meta.signature()), &error))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            machine,
        };
        write_json(&self.dir.join(SNAPSHOT_FILE), &stored, true)
            .map_err(|error| StorageIOError::write_snapshot(Some(meta.signature()), &error))?;
        self.machine = stored.machine.clone();
        *self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(stored);
        tracing::debug!(meta = %meta, "installed metadata snapshot");
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let slot = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref().map(StoredSnapshot::to_snapshot).transpose()
    }
}

fn encode_entry(entry: &Entry, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let json = serde_json::to_vec(entry)?;
    let length = u32::try_from(json.len())
        .ok()
        .filter(|&length| length <= MAX_ENTRY_SIZE_BYTES)
        .ok_or_else(|| std::io::Error::other("log entry too large"))?;
    buffer.extend_from_slice(&length.to_be_bytes());
    buffer.extend_from_slice(&json);
    Ok(())
}

/// Reads `raft.log`, cutting off a torn or unreadable tail.
fn read_log(path: &Path) -> Result<BTreeMap<u64, Entry>, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(error) => return Err(io(error)),
    };
    let mut log = BTreeMap::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let Some(entry) = decode_entry_at(&bytes, offset) else {
            break;
        };
        let (entry, next) = entry;
        if let Some((&last, _)) = log.last_key_value()
            && entry.log_id.index != last + 1
        {
            return Err(OpenError::Damaged {
                path: path.to_path_buf(),
                reason: format!("entry {} follows entry {last}", entry.log_id.index),
            });
        }
        log.insert(entry.log_id.index, entry);
        offset = next;
    }
    if offset < bytes.len() {
        tracing::warn!(
            path = %path.display(),
            valid_bytes = offset,
            dropped_bytes = bytes.len() - offset,
            "cutting off a torn tail of the metadata log"
        );
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(offset as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    Ok(log)
}

/// The entry at `offset` and the offset after it, if it is whole and valid.
fn decode_entry_at(bytes: &[u8], offset: usize) -> Option<(Entry, usize)> {
    let header = bytes.get(offset..offset + 4)?;
    let length = u32::from_be_bytes(header.try_into().ok()?);
    if length > MAX_ENTRY_SIZE_BYTES {
        return None;
    }
    let start = offset + 4;
    let end = start.checked_add(length as usize)?;
    let entry = serde_json::from_slice(bytes.get(start..end)?).ok()?;
    Some((entry, end))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, OpenError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| OpenError::Damaged {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
}

/// Replaces `path` whole: temporary file, optional sync, rename.
fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> std::io::Result<()> {
    let json = serde_json::to_vec(value)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    file.write_all(&json)?;
    if durable {
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    if durable && let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
