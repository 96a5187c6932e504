use bytes::Bytes;
use eddy_log::{LogConfig, LogError};

use crate::support::{append, batch, open, read_all, small_segments, test_dir};

fn log_with_epochs(dir: &std::path::Path, config: LogConfig) -> eddy_log::PartitionLog {
    let mut log = open(dir, config);
    for epoch in [0, 0, 2, 2, 5] {
        log.append(batch(3, 1_000), epoch, 1_000).expect("append");
    }
    log
}

#[test]
fn the_checkpoint_records_where_each_epoch_started() {
    let dir = test_dir();
    let log = log_with_epochs(&dir.path, LogConfig::default());
    let text = std::fs::read_to_string(dir.path.join("leader-epoch-checkpoint")).expect("read");
    assert_eq!(text, "0\n3\n0 0\n2 6\n5 12\n");
    assert_eq!(log.latest_epoch(), Some(5));
}

#[test]
fn end_offset_for_epoch_follows_kafka() {
    let dir = test_dir();
    let log = log_with_epochs(&dir.path, LogConfig::default());
    assert_eq!(log.end_offset_for_epoch(0), (0, 6));
    assert_eq!(
        log.end_offset_for_epoch(1),
        (0, 6),
        "unknown epoch: the one below"
    );
    assert_eq!(log.end_offset_for_epoch(2), (2, 12));
    assert_eq!(log.end_offset_for_epoch(4), (2, 12));
    assert_eq!(log.end_offset_for_epoch(5), (5, 15), "latest: the log end");
    assert_eq!(log.end_offset_for_epoch(6), (-1, -1));
    assert_eq!(log.end_offset_for_epoch(-1), (-1, -1));
}

#[test]
fn truncation_and_deletion_move_the_epoch_entries() {
    let dir = test_dir();
    let mut log = log_with_epochs(&dir.path, LogConfig::default());
    log.truncate_to(12).expect("truncate");
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(2), (2, 12));
    log.delete_records_before(7).expect("delete records");
    let text = std::fs::read_to_string(dir.path.join("leader-epoch-checkpoint")).expect("read");
    assert_eq!(text, "0\n1\n2 7\n");
    assert_eq!(
        log.end_offset_for_epoch(0),
        (0, 7),
        "below all known epochs"
    );
}

#[test]
fn a_lost_checkpoint_is_rebuilt_from_the_batches() {
    let dir = test_dir();
    let log = log_with_epochs(&dir.path, small_segments(2));
    drop(log);
    let path = dir.path.join("leader-epoch-checkpoint");
    let original = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, "garbage").expect("write");
    let log = open(&dir.path, small_segments(2));
    assert!(log.recovery_report().epoch_checkpoint_rebuilt);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
    assert_eq!(log.end_offset_for_epoch(2), (2, 12));
}

#[test]
fn a_follower_copies_the_leaders_batches_exactly() {
    let leader_dir = test_dir();
    let leader = log_with_epochs(&leader_dir.path, small_segments(2));
    let follower_dir = test_dir();
    let mut follower = open(&follower_dir.path, LogConfig::default());
    while follower.log_end_offset() < leader.log_end_offset() {
        let fetched = leader
            .read(follower.log_end_offset(), 1 << 20, i64::MAX)
            .expect("fetch");
        follower.append_as_follower(fetched).expect("copy");
    }
    assert_eq!(read_all(&follower), read_all(&leader));
    for epoch in 0..7 {
        assert_eq!(
            follower.end_offset_for_epoch(epoch),
            leader.end_offset_for_epoch(epoch)
        );
    }

    let again = leader.read(3, 1 << 20, i64::MAX).expect("fetch");
    let error = follower.append_as_follower(again).expect_err("overlap");
    assert!(
        matches!(
            error,
            LogError::NonContiguousOffsets {
                expected: 15,
                found: 3
            }
        ),
        "{error}"
    );
}

#[test]
fn a_follower_refuses_corrupt_batches_and_writes_none_of_them() {
    let leader_dir = test_dir();
    let mut leader = open(&leader_dir.path, LogConfig::default());
    append(&mut leader, 3, 1_000);
    append(&mut leader, 3, 1_000);
    let mut fetched = leader.read(0, 1 << 20, i64::MAX).expect("fetch").to_vec();
    let last = fetched.len() - 1;
    fetched[last] ^= 0x01;
    let follower_dir = test_dir();
    let mut follower = open(&follower_dir.path, LogConfig::default());
    let error = follower
        .append_as_follower(Bytes::from(fetched))
        .expect_err("CRC mismatch");
    assert_eq!(error.kafka_error_code(), 2);
    assert_eq!(follower.log_end_offset(), 0);
}
