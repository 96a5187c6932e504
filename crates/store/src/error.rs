use std::path::{Path, PathBuf};

use sqlx::migrate::MigrateError;

/// Why a store operation failed. Errors about the database file name it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory that should hold the database could not be created.
    #[error("cannot create the directory for {}: {source}", path.display())]
    CreateDirectory {
        /// The database file.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },

    /// The file exists but is not an SQLite database (or is encrypted).
    #[error("{} is not an SQLite database", path.display())]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },

    /// The file is an SQLite database whose contents are damaged.
    #[error("{} is damaged: {source}", path.display())]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// SQLite's report.
        source: sqlx::Error,
    },

    /// The file is an SQLite database that belongs to another application;
    /// Eddy does not add its tables to it.
    #[error("{} is an SQLite database of another application", path.display())]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
    },

    /// The schema could not be brought to this version, e.g. because the file
    /// was written by a newer Eddy.
    #[error("cannot migrate {}: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The migration failure.
        source: MigrateError,
    },

    /// Any other database failure (locked past the busy timeout, disk full,
    /// I/O error, ...).
    #[error("{}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// The underlying failure.
        source: sqlx::Error,
    },

    /// Profile names are unique.
    #[error("a connection profile named {name:?} already exists")]
    DuplicateProfileName {
        /// The name asked for.
        name: String,
    },

    /// `save_profile` was given an id that no profile has.
    #[error("no connection profile with id {id}")]
    ProfileNotFound {
        /// The id asked for.
        id: i64,
    },

    /// A profile field is empty, too long, or not in its format.
    #[error("invalid connection profile: {reason}")]
    InvalidProfile {
        /// What is wrong.
        reason: String,
    },
}

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_NOTADB: i64 = 26;

impl StoreError {
    /// Classifies a database failure on the file at `path`: a damaged or
    /// foreign file gets its own variant, so callers can tell the user to
    /// move the file away rather than retry.
    pub(crate) fn from_sqlx(path: &Path, source: sqlx::Error) -> StoreError {
        let path = path.to_path_buf();
        match primary_code(&source) {
            Some(SQLITE_NOTADB) => StoreError::NotADatabase { path },
            Some(SQLITE_CORRUPT) => StoreError::Damaged { path, source },
            _ => StoreError::Database { path, source },
        }
    }

    pub(crate) fn from_migrate(path: &Path, source: MigrateError) -> StoreError {
        match source {
            MigrateError::Execute(error) | MigrateError::ExecuteMigration(error, _)
                if is_damage(&error) =>
            {
                StoreError::from_sqlx(path, error)
            }
            source => StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

fn primary_code(error: &sqlx::Error) -> Option<i64> {
    match error {
        sqlx::Error::Database(error) => error
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .map(|code| code & 0xff),
        _ => None,
    }
}

fn is_damage(error: &sqlx::Error) -> bool {
    matches!(primary_code(error), Some(SQLITE_NOTADB | SQLITE_CORRUPT))
}
