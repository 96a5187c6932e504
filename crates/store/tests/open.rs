//! Opening database files: new, existing, and ones that are not ours.

use std::path::Path;

use eddy_store::{Store, StoreError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Runs a query returning one text value on a separate read-only connection.
async fn query_text(path: &Path, sql: &'static str) -> String {
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .expect("connect");
    let value: String = sqlx::query_scalar(sql)
        .fetch_one(&mut connection)
        .await
        .expect("pragma");
    connection.close().await.expect("close");
    value
}

#[tokio::test]
async fn open_creates_the_file_and_missing_parent_directories() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("data").join("eddy").join("eddy.db");

    let store = Store::open(&path).await.expect("open");

    assert_eq!(store.path(), path);
    assert!(path.is_file());
    store.close().await;
    assert_eq!(
        query_text(&path, "SELECT journal_mode FROM pragma_journal_mode").await,
        "wal"
    );
    assert_eq!(
        query_text(
            &path,
            "SELECT CAST(application_id AS TEXT) FROM pragma_application_id"
        )
        .await,
        "1162101849"
    );
}

#[tokio::test]
async fn a_text_file_is_not_a_database_and_is_left_unchanged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("notes.txt");
    let contents = "these are notes, not a database\n".repeat(100);
    std::fs::write(&path, &contents).expect("write");

    let error = Store::open(&path).await.unwrap_err();

    assert!(
        matches!(&error, StoreError::NotADatabase { path: named } if named == &path),
        "{error:?}"
    );
    assert!(error.to_string().contains("notes.txt"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), contents);
}

#[tokio::test]
async fn a_database_with_damaged_pages_is_reported_not_panicked_on() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("eddy.db");
    let store = Store::open(&path).await.expect("open");
    store.close().await;
    // Keep the 100-byte header, overwrite the schema page and the rest.
    let mut bytes = std::fs::read(&path).expect("read");
    for (index, byte) in bytes.iter_mut().enumerate().skip(100) {
        *byte = (index * 7 + 13) as u8;
    }
    std::fs::write(&path, &bytes).expect("write");

    let error = Store::open(&path).await.unwrap_err();

    assert!(matches!(error, StoreError::Damaged { .. }), "{error:?}");
    assert!(error.to_string().contains("eddy.db"), "{error}");
}

#[tokio::test]
async fn another_applications_database_is_refused_and_left_unchanged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("other.db");
    let mut connection = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .expect("create");
    sqlx::query("CREATE TABLE notes (body TEXT)")
        .execute(&mut connection)
        .await
        .expect("create table");
    connection.close().await.expect("close");

    let error = Store::open(&path).await.unwrap_err();

    assert!(
        matches!(error, StoreError::ForeignDatabase { .. }),
        "{error:?}"
    );
    let tables = query_text(&path, "SELECT group_concat(name) FROM sqlite_schema").await;
    assert_eq!(tables, "notes");
    let journal_mode = query_text(&path, "SELECT journal_mode FROM pragma_journal_mode").await;
    assert_eq!(journal_mode, "delete");
}

#[tokio::test]
async fn a_directory_in_place_of_the_file_is_an_error_naming_it() {
    let directory = tempfile::tempdir().expect("temp dir");

    let error = Store::open(directory.path()).await.unwrap_err();

    assert!(
        error
            .to_string()
            .contains(&directory.path().display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn two_stores_on_one_file_share_its_data() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("eddy.db");
    let first = Store::open(&path).await.expect("open first");
    let second = Store::open(&path).await.expect("open second");

    let profile = eddy_store::Profile::new(
        "laptop",
        "127.0.0.1:19092",
        eddy_store::ProfileKind::Local,
        0,
    );
    first.save_profile(&profile).await.expect("save");

    assert_eq!(second.profiles().await.expect("list").len(), 1);
}

#[tokio::test]
async fn damage_found_by_a_query_is_reported_as_damaged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("eddy.db");
    let store = Store::open(&path).await.expect("open");
    let samples: Vec<eddy_store::LagSample> = (0..20_000)
        .map(|time_ms| eddy_store::LagSample {
            time_ms,
            cluster: "local".to_owned(),
            group: "billing".to_owned(),
            topic: "orders".to_owned(),
            partition: 0,
            committed: time_ms,
            end_offset: time_ms + 5,
            lag: 5,
        })
        .collect();
    store.record_lag(&samples).await.expect("record");
    store.close().await;
    // Overwrite the second half of the file: sample pages, not the schema.
    let mut bytes = std::fs::read(&path).expect("read");
    let half = bytes.len() / 2;
    for byte in &mut bytes[half..] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).expect("write");

    let store = Store::open(&path).await.expect("the schema is intact");
    let error = store
        .lag_history("local", "billing", i64::MIN, i64::MAX)
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Damaged { .. }), "{error:?}");
    assert!(error.to_string().contains("eddy.db"), "{error}");
}
