//! Small text files rewritten whole and atomically: write a temporary file,
//! fsync it, rename it over the old one, fsync the directory. A crash leaves
//! either the old file or the new one, never a mix.
//!
//! Also the one-offset checkpoints: `log-start-offset`, the log start offset
//! that DeleteRecords or retention raised above the first segment's base
//! offset, and `cleaner-offset-checkpoint`, where the log cleaner's dirty
//! section starts (Kafka keeps one such file per log directory; here each
//! partition directory has its own).

use std::io::Write;
use std::path::Path;

use crate::error::LogError;
use crate::fileio;

/// Suffix of a checkpoint being written; leftovers are removed on open.
pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";

/// File name of the log start offset checkpoint.
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset";

/// File name of the cleaner checkpoint: offsets below it were compacted.
pub(crate) const CLEANER_OFFSET_FILE: &str = "cleaner-offset-checkpoint";

/// Format version on the first line, as Kafka's checkpoint files have.
const OFFSET_CHECKPOINT_VERSION: &str = "0";

/// Replaces `dir/name` with `contents`, atomically and durably.
pub(crate) fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), LogError> {
    let path = dir.join(name);
    let temporary = dir.join(format!("{name}{TEMPORARY_SUFFIX}"));
    let mut file = fileio::open_read_write(&temporary, true)
        .map_err(LogError::io("create checkpoint", &temporary))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(LogError::io("write checkpoint", &temporary))?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(LogError::io("rename checkpoint to", &path))?;
    fileio::sync_dir(dir).map_err(LogError::io("sync directory", dir))
}

/// Reads `dir/name` as text; `None` if it does not exist.
pub(crate) fn read_text(dir: &Path, name: &str) -> Result<Option<String>, LogError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(LogError::io("read checkpoint", &path)(error)),
    }
}

/// The checkpointed log start offset; `None` when absent or unreadable (then the first
/// segment's base offset is the start, as if nothing had been deleted by offset).
pub(crate) fn read_log_start_offset(dir: &Path) -> Result<Option<i64>, LogError> {
    read_offset(dir, LOG_START_OFFSET_FILE)
}

/// Persists the log start offset.
pub(crate) fn write_log_start_offset(dir: &Path, offset: i64) -> Result<(), LogError> {
    write_offset(dir, LOG_START_OFFSET_FILE, offset)
}

/// The checkpointed start of the cleaner's dirty section; `None` when absent or unreadable
/// (then everything is dirty, which costs a bigger pass, never a wrong one).
pub(crate) fn read_cleaner_offset(dir: &Path) -> Result<Option<i64>, LogError> {
    read_offset(dir, CLEANER_OFFSET_FILE)
}

/// Persists the start of the cleaner's dirty section.
pub(crate) fn write_cleaner_offset(dir: &Path, offset: i64) -> Result<(), LogError> {
    write_offset(dir, CLEANER_OFFSET_FILE, offset)
}

/// A non-negative offset stored as `version\noffset\n`; `None` when absent or unreadable.
fn read_offset(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    let Some(text) = read_text(dir, name)? else {
        return Ok(None);
    };
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next()) {
        (Some(OFFSET_CHECKPOINT_VERSION), Some(offset)) => {
            offset.trim().parse::<i64>().ok().filter(|&o| o >= 0)
        }
        _ => None,
    };
    if parsed.is_none() {
        tracing::warn!(dir = %dir.display(), file = name, "ignoring unreadable offset checkpoint");
    }
    Ok(parsed)
}

fn write_offset(dir: &Path, name: &str, offset: i64) -> Result<(), LogError> {
    let text = format!("{OFFSET_CHECKPOINT_VERSION}\n{offset}\n");
    write_atomically(dir, name, text.as_bytes())
}
