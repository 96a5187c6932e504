use std::fs::OpenOptions;

use eddy_log::LogConfig;

use crate::support::{append, batch, headers, open, read_all, small_segments, test_dir};

#[test]
fn reopening_after_a_clean_close_restores_the_same_log() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(3));
    for round in 0..10 {
        log.append(batch(3, 1_000 + round), round as i32 / 4, 1_000)
            .expect("append");
    }
    log.delete_records_before(4).expect("delete records");
    let before = read_all(&log);
    let (start, end, epoch) = (
        log.log_start_offset(),
        log.log_end_offset(),
        log.latest_epoch(),
    );
    let segments = log.segment_count();
    drop(log);

    let log = open(&dir.path, small_segments(3));
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.latest_epoch(), epoch);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(read_all(&log), before);
    let report = log.recovery_report();
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.rebuilt_indexes, 0);
    assert!(!report.epoch_checkpoint_rebuilt);
}

#[test]
fn a_new_directory_opens_as_an_empty_log() {
    let dir = test_dir();
    let log = open(&dir.path, LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.max_producer_id(), None);
    assert!(dir.path.join("00000000000000000000.log").exists());
}

fn segment_path(dir: &std::path::Path, base: i64) -> std::path::PathBuf {
    dir.join(format!("{base:020}.log"))
}

#[test]
fn a_torn_last_batch_is_cut_and_appends_continue() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..5 {
        append(&mut log, 3, 1_000);
    }
    drop(log);
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(&dir.path, 0))
        .expect("open segment");
    let length = file.metadata().expect("stat").len();
    file.set_len(length - 10).expect("tear the last batch");

    let mut log = open(&dir.path, LogConfig::default());
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(
        log.recovery_report().truncated_bytes,
        length - 10 - 4 * batch(3, 1_000).len() as u64
    );
    assert_eq!(read_all(&log).len(), 4);
    let outcome = append(&mut log, 2, 2_000);
    assert_eq!((outcome.base_offset, outcome.last_offset), (12, 13));
    drop(log);
    let log = open(&dir.path, LogConfig::default());
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(log.recovery_report().truncated_bytes, 0);
    assert_eq!(read_all(&log).len(), 5);
}

#[test]
fn a_tail_too_short_for_a_header_is_cut() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    append(&mut log, 3, 1_000);
    append(&mut log, 3, 1_000);
    drop(log);
    let one = batch(3, 1_000).len() as u64;
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(&dir.path, 0))
        .expect("open segment");
    file.set_len(one + 5).expect("cut inside the length field");
    let log = open(&dir.path, LogConfig::default());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.size_bytes(), one);
}

#[test]
fn a_corrupt_byte_in_the_last_batches_truncates_there() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..4 {
        append(&mut log, 3, 1_000);
    }
    drop(log);
    let path = segment_path(&dir.path, 0);
    let mut bytes = std::fs::read(&path).expect("read segment");
    let one = batch(3, 1_000).len();
    bytes[2 * one + 70] ^= 0xff; // a record of the third batch
    std::fs::write(&path, &bytes).expect("write segment");

    let mut log = open(&dir.path, LogConfig::default());
    assert_eq!(log.log_end_offset(), 6, "third and fourth batches dropped");
    assert_eq!(log.recovery_report().truncated_bytes, 2 * one as u64);
    assert_eq!(read_all(&log).len(), 2);
    assert_eq!(append(&mut log, 1, 1_000).base_offset, 6);
}

#[test]
fn garbage_after_the_last_batch_is_cut() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    append(&mut log, 3, 1_000);
    drop(log);
    let path = segment_path(&dir.path, 0);
    let mut bytes = std::fs::read(&path).expect("read segment");
    bytes.extend_from_slice(&[0xab; 200]);
    std::fs::write(&path, &bytes).expect("write segment");
    let log = open(&dir.path, LogConfig::default());
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(log.recovery_report().truncated_bytes, 200);
}

#[test]
fn a_deleted_or_wrong_index_of_an_older_segment_is_rebuilt() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(4));
    for _ in 0..12 {
        append(&mut log, 3, 1_000);
    }
    assert_eq!(log.segment_count(), 3);
    let expected = read_all(&log);
    drop(log);
    let index = dir.path.join("00000000000000000000.index");
    let index_bytes = std::fs::read(&index).expect("index");
    assert!(!index_bytes.is_empty(), "an entry per batch at interval 1");
    std::fs::remove_file(&index).expect("delete index");
    // Whole entries that point nowhere: positions inside batches.
    std::fs::write(
        dir.path.join("00000000000000000012.index"),
        [0, 0, 0, 5, 0, 0, 0, 7],
    )
    .expect("scribble on index");

    let log = open(&dir.path, small_segments(4));
    assert_eq!(log.recovery_report().rebuilt_indexes, 2);
    assert_eq!(std::fs::read(&index).expect("rebuilt"), index_bytes);
    assert_eq!(read_all(&log), expected);
    for offset in 0..log.log_end_offset() {
        let header = headers(&log.read(offset, 1, i64::MAX).expect("read"))[0];
        assert!(header.base_offset <= offset && offset <= header.last_offset());
    }
    drop(log);
    let log = open(&dir.path, small_segments(4));
    assert_eq!(log.recovery_report().rebuilt_indexes, 0);
}

#[test]
fn leftovers_of_interrupted_writes_are_removed() {
    let dir = test_dir();
    let log = open(&dir.path, LogConfig::default());
    drop(log);
    let temporary = dir.path.join("leader-epoch-checkpoint.tmp");
    let orphan = dir.path.join("00000000000000000099.index");
    std::fs::write(&temporary, "half").expect("write");
    std::fs::write(&orphan, [0; 8]).expect("write");
    let _log = open(&dir.path, LogConfig::default());
    assert!(!temporary.exists());
    assert!(!orphan.exists());
}

#[test]
fn delete_removes_the_directory() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    append(&mut log, 1, 1_000);
    log.delete().expect("delete");
    assert!(!dir.path.exists());
}

#[test]
fn an_unreadable_older_segment_is_reported_and_the_rest_of_the_log_stays_readable() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(3));
    for _ in 0..9 {
        append(&mut log, 3, 1_000);
    }
    assert_eq!(log.segment_count(), 3);
    drop(log);
    let one = batch(3, 1_000).len();
    let path = segment_path(&dir.path, 0);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[one + 16] = 7; // magic byte of the second batch
    std::fs::write(&path, &bytes).expect("write");

    let log = open(&dir.path, small_segments(3));
    assert_eq!(log.recovery_report().unreadable_bytes, 2 * one as u64);
    assert_eq!(log.log_end_offset(), 27);
    let after_gap = headers(&log.read(3, 1 << 20, i64::MAX).expect("read"))[0];
    assert_eq!(after_gap.base_offset, 9, "skips to the next segment");
    assert_eq!(
        std::fs::read(&path).expect("read").len(),
        bytes.len(),
        "left on disk"
    );
}
