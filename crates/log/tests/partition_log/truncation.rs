use eddy_log::{LogConfig, LogError};

use crate::support::{append, open, read_all, segment_files, small_segments, test_dir};

#[test]
fn truncation_at_a_batch_boundary_drops_the_tail_and_appends_continue() {
    let dir = test_dir();
    let config = small_segments(2);
    let mut log = open(&dir.path, config.clone());
    for _ in 0..7 {
        append(&mut log, 3, 1_000);
    }
    assert_eq!(log.segment_count(), 4);
    log.truncate_to(9).expect("truncate");
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(segment_files(&dir.path).len(), 2);
    assert_eq!(read_all(&log).len(), 3);
    assert_eq!(append(&mut log, 2, 1_000).base_offset, 9);
    log.truncate_to(100).expect("past the end: nothing to do");
    assert_eq!(log.log_end_offset(), 11);
    drop(log);
    let log = open(&dir.path, config);
    assert_eq!(log.log_end_offset(), 11);
    assert_eq!(read_all(&log).len(), 4);
}

#[test]
fn truncation_inside_a_batch_drops_the_whole_batch() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..3 {
        append(&mut log, 3, 1_000);
    }
    log.truncate_to(4).expect("truncate");
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn truncation_at_a_segment_base_keeps_that_segment_empty() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(2));
    for _ in 0..4 {
        append(&mut log, 3, 1_000);
    }
    log.truncate_to(6).expect("truncate");
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(
        segment_files(&dir.path),
        ["00000000000000000000.log", "00000000000000000006.log"]
    );
    assert_eq!(append(&mut log, 1, 1_000).base_offset, 6);
}

#[test]
fn truncation_below_the_first_segment_restarts_the_log_there() {
    let dir = test_dir();
    let config = small_segments(2);
    let mut log = open(&dir.path, config.clone());
    for _ in 0..6 {
        append(&mut log, 3, 1_000);
    }
    log.delete_records_before(12).expect("delete");
    log.truncate_to(3).expect("truncate");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    assert_eq!(segment_files(&dir.path), ["00000000000000000003.log"]);
    drop(log);
    let log = open(&dir.path, config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
}

#[test]
fn truncation_below_the_start_lowers_the_start() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..4 {
        append(&mut log, 3, 1_000);
    }
    log.delete_records_before(7).expect("delete");
    log.truncate_to(6).expect("truncate");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (6, 6));
    assert!(matches!(
        log.truncate_to(-1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn an_epoch_begun_without_a_write_is_forgotten_when_the_leader_never_had_it() {
    // This replica led at epoch 2 from offset 6 but wrote nothing before it
    // died; the new leader says epoch 0 ends at 6. Truncating to 6 cuts no
    // record, but epoch 2 must go, or every fetch finds the same divergence.
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    append(&mut log, 3, 1_000);
    append(&mut log, 3, 1_000);
    log.assign_leader_epoch(2).expect("new leadership");
    assert_eq!(log.latest_epoch(), Some(2));
    log.truncate_to(6).expect("truncate at the end");
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.latest_epoch(), Some(0));
    drop(log);
    let log = open(&dir.path, LogConfig::default());
    assert_eq!(
        log.latest_epoch(),
        Some(0),
        "the forgotten epoch stays forgotten"
    );
}
