//! Positional file I/O and directory syncs, the same on Unix and Windows.
//!
//! Every read and write names its position, so no code depends on a file
//! cursor: reads can share a `&File` while the owner appends.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Fills `buffer` from `file` at `position`; fails with `UnexpectedEof` past the end.
pub(crate) fn read_exact_at(file: &File, buffer: &mut [u8], position: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buffer, position)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < buffer.len() {
            let at = position.saturating_add(done as u64);
            match std::os::windows::fs::FileExt::seek_read(file, &mut buffer[done..], at) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(read) => done += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Writes all of `bytes` to `file` at `position`.
pub(crate) fn write_all_at(file: &File, bytes: &[u8], position: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, position)
    }
    #[cfg(windows)]
    {
        let mut done = 0usize;
        while done < bytes.len() {
            let at = position.saturating_add(done as u64);
            match std::os::windows::fs::FileExt::seek_write(file, &bytes[done..], at) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(written) => done += written,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Opens `path` for reading and writing, creating it if absent; `truncate` empties it.
pub(crate) fn open_read_write(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
}

/// Makes creations, renames and removals in `dir` durable. Windows cannot open a
/// directory as a file, and its metadata updates are journaled: nothing to do there.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes `path`; a file that is already gone is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Opens an existing file for reading and writing.
pub(crate) fn open_read_write_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Creates `path` for reading and writing; fails if it already exists, so that two writers
/// never share a file by accident.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}
