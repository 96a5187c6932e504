use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Written to the file header by the first migration ("EDDY"), so a
/// database of another application is never mistaken for ours.
const APPLICATION_ID: i64 = 0x4544_4459;

/// The write-ahead log is truncated to this size after a checkpoint, so a
/// large prune does not leave a large `-wal` file behind.
const WAL_SIZE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

/// Connections in the pool. Writers are serialized by SQLite anyway; the rest
/// serve readers concurrently under WAL.
const POOL_MAX_CONNECTIONS: u32 = 4;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The application database: one SQLite file, opened with a small pool of
/// connections. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    path: Arc<Path>,
}

impl Store {
    /// Opens the database at `path`, creating the file and its parent
    /// directories if missing, and brings its schema up to date.
    ///
    /// Fails without changing the file if it is not an SQLite database, is
    /// damaged, or is another application's database.
    pub async fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDirectory {
                path: path.to_path_buf(),
                source,
            })?;
        }

        // Look before changing anything: the pool's settings (WAL, auto_vacuum)
        // would persist in a file that turns out not to be ours.
        let plain_options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT);
        check_owner(path, &plain_options).await?;

        let options = plain_options
            // Only takes effect on a new file; lets pruning return pages to the
            // file system without a full VACUUM.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL cannot corrupt the file; a power cut may lose
            // the last few commits, which is acceptable for this data.
            .synchronous(SqliteSynchronous::Normal)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string())
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::from_sqlx(path, source))?;
        if let Err(source) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(StoreError::from_migrate(path, source));
        }
        Ok(Store {
            pool,
            path: Arc::from(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for running operations, then closes every connection. Later
    /// operations fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Wraps a failure of an operation on this store's file.
    pub(crate) fn error(&self, source: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(&self.path, source)
    }
}

/// Accepts a file marked as ours, or an empty database (a new file); reports
/// a file that is not a database, or is another application's.
async fn check_owner(path: &Path, options: &SqliteConnectOptions) -> Result<(), StoreError> {
    let mut connection = SqliteConnection::connect_with(options)
        .await
        .map_err(|source| StoreError::from_sqlx(path, source))?;
    let owner = read_owner(&mut connection).await;
    // Closing only flushes a connection that made no changes; its failure
    // tells nothing about the file.
    let _ = connection.close().await;
    let (application_id, object_count) =
        owner.map_err(|source| StoreError::from_sqlx(path, source))?;
    let ours = application_id == APPLICATION_ID || (application_id == 0 && object_count == 0);
    if ours {
        Ok(())
    } else {
        Err(StoreError::ForeignDatabase {
            path: path.to_path_buf(),
        })
    }
}

/// The file's application id and how many schema objects it has.
async fn read_owner(connection: &mut SqliteConnection) -> Result<(i64, i64), sqlx::Error> {
    let application_id = sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(&mut *connection)
        .await?;
    let object_count = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema")
        .fetch_one(&mut *connection)
        .await?;
    Ok((application_id, object_count))
}
