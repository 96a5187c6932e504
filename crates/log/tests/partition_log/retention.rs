use eddy_log::{LogConfig, LogError};

use crate::support::{
    append, batch, headers, open, read_all, segment_files, small_segments, test_dir,
};

const NOW_MS: i64 = 1_700_000_000_000;

#[test]
fn size_retention_deletes_the_oldest_whole_segments_only() {
    let dir = test_dir();
    let mut config = small_segments(2);
    let mut log = open(&dir.path, config.clone());
    for _ in 0..10 {
        append(&mut log, 3, NOW_MS);
    }
    assert_eq!(log.segment_count(), 5);
    let segment_size = 2 * batch(3, NOW_MS).len() as u64;
    config.retention_bytes = (2 * segment_size + 1) as i64;
    log.update_config(config);

    let freed = log.enforce_retention(NOW_MS).expect("retention");
    assert_eq!(
        freed,
        2 * segment_size,
        "keeps the log at or under retention.bytes"
    );
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.log_start_offset(), 12);
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(segment_files(&dir.path)[0], "00000000000000000012.log");
    assert!(matches!(
        log.read(0, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { start: 12, .. })
    ));
    assert_eq!(read_all(&log).len(), 6);
    assert_eq!(log.enforce_retention(NOW_MS).expect("again"), 0);
}

#[test]
fn time_retention_deletes_segments_whose_newest_record_is_too_old() {
    let dir = test_dir();
    let config = LogConfig {
        retention_ms: 60_000,
        ..small_segments(2)
    };
    let mut log = open(&dir.path, config);
    let old = NOW_MS - 120_000;
    for timestamp in [old, old, old, NOW_MS - 1_000, NOW_MS, NOW_MS] {
        append(&mut log, 3, timestamp);
    }
    assert_eq!(log.segment_count(), 3);
    let freed = log.enforce_retention(NOW_MS).expect("retention");
    assert!(freed > 0);
    // Segment [0, 6) is all old; [6, 12) holds an old batch and a recent one, so it stays.
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log.log_end_offset(), 18);
}

#[test]
fn retention_minus_one_keeps_everything() {
    let dir = test_dir();
    let config = LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..small_segments(2)
    };
    let mut log = open(&dir.path, config);
    for _ in 0..6 {
        append(&mut log, 3, 1_000);
    }
    assert_eq!(log.enforce_retention(NOW_MS).expect("retention"), 0);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn when_everything_expired_the_log_empties_and_continues_at_its_end() {
    let dir = test_dir();
    let config = LogConfig {
        retention_ms: 60_000,
        ..small_segments(2)
    };
    let mut log = open(&dir.path, config.clone());
    for _ in 0..3 {
        append(&mut log, 3, 1_000);
    }
    log.enforce_retention(NOW_MS).expect("retention");
    assert_eq!(log.segment_count(), 1);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (9, 9));
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(append(&mut log, 1, NOW_MS).base_offset, 9);
    drop(log);
    let log = open(&dir.path, config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (9, 10));
}

#[test]
fn an_idle_active_segment_rolls_after_segment_ms() {
    let dir = test_dir();
    let config = LogConfig {
        segment_ms: 60_000,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let mut log = open(&dir.path, config);
    append(&mut log, 3, NOW_MS - 120_000);
    log.enforce_retention(NOW_MS).expect("retention");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(append(&mut log, 1, NOW_MS).base_offset, 3);
    assert_eq!(segment_files(&dir.path)[1], "00000000000000000003.log");
}

#[test]
fn delete_records_raises_the_start_and_drops_whole_segments_below_it() {
    let dir = test_dir();
    let config = small_segments(2);
    let mut log = open(&dir.path, config.clone());
    for _ in 0..6 {
        append(&mut log, 3, 1_000);
    }
    assert_eq!(log.delete_records_before(8).expect("delete"), 8);
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(
        log.segment_count(),
        2,
        "segment [0, 6) went, [6, 12) holds offset 8"
    );
    assert!(log.read(7, 100, i64::MAX).is_err());
    let first = headers(&log.read(8, 1, i64::MAX).expect("read"))[0];
    assert_eq!(first.base_offset, 6, "the batch holding the start offset");
    assert_eq!(log.delete_records_before(5).expect("lower"), 8);
    let error = log.delete_records_before(19).expect_err("past the end");
    assert_eq!(error.kafka_error_code(), 1);
    drop(log);

    let mut log = open(&dir.path, config);
    assert_eq!(log.log_start_offset(), 8, "checkpointed");
    assert_eq!(log.delete_records_before(18).expect("all"), 18);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), 18);
}

#[test]
fn retention_with_defaults_keeps_a_single_segment_log() {
    // A fresh partition has only its active segment; nothing may expire it
    // early (its records are recent and the log start is at its base).
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..5 {
        append(&mut log, 3, NOW_MS);
    }
    assert_eq!(log.enforce_retention(NOW_MS).expect("retention"), 0);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(read_all(&log).len(), 5);
    // DeleteRecords inside the only segment hides records but deletes nothing.
    assert_eq!(log.delete_records_before(6).expect("delete records"), 6);
    assert_eq!(log.enforce_retention(NOW_MS).expect("retention"), 0);
    assert_eq!(log.log_end_offset(), 15);
}
