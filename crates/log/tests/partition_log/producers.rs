use eddy_log::{LogConfig, LogError};

use crate::support::{Producer, open, producer_batch, test_dir};

const NOW_MS: i64 = 1_000;

fn producer(epoch: i16, sequence: i32) -> Producer {
    Producer {
        id: 42,
        epoch,
        sequence,
    }
}

#[test]
fn a_retry_is_answered_with_the_original_offsets_and_writes_nothing() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    let first = log
        .append(producer_batch(3, producer(0, 0)), 0, NOW_MS)
        .expect("first");
    let second = log
        .append(producer_batch(2, producer(0, 3)), 0, NOW_MS)
        .expect("second");
    assert_eq!((second.base_offset, second.last_offset), (3, 4));
    let size = log.size_bytes();

    let retry = log
        .append(producer_batch(2, producer(0, 3)), 0, NOW_MS)
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (3, 4));
    let older_retry = log
        .append(producer_batch(3, producer(0, 0)), 0, NOW_MS)
        .expect("retry");
    assert!(older_retry.duplicate);
    assert_eq!(older_retry.base_offset, first.base_offset);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.size_bytes(), size);
}

#[test]
fn a_sequence_gap_is_out_of_order() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    log.append(producer_batch(3, producer(0, 0)), 0, NOW_MS)
        .expect("first");
    let error = log
        .append(producer_batch(1, producer(0, 4)), 0, NOW_MS)
        .expect_err("gap");
    assert!(
        matches!(
            error,
            LogError::OutOfOrderSequence {
                sequence: 4,
                last_sequence: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kafka_error_code(), 45);
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn a_producer_new_to_the_partition_may_start_at_any_sequence() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    let outcome = log
        .append(producer_batch(2, producer(3, 1_000)), 0, NOW_MS)
        .expect("unknown producer");
    assert!(!outcome.duplicate);
    log.append(producer_batch(1, producer(3, 1_002)), 0, NOW_MS)
        .expect("next in sequence");
}

#[test]
fn an_older_epoch_is_fenced_and_a_newer_one_starts_fresh() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    log.append(producer_batch(2, producer(1, 0)), 0, NOW_MS)
        .expect("epoch 1");
    let error = log
        .append(producer_batch(1, producer(0, 2)), 0, NOW_MS)
        .expect_err("zombie");
    assert!(
        matches!(
            error,
            LogError::InvalidProducerEpoch {
                producer_epoch: 0,
                current_epoch: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kafka_error_code(), 47);
    log.append(producer_batch(1, producer(2, 0)), 0, NOW_MS)
        .expect("epoch bump");
    let error = log
        .append(producer_batch(1, producer(1, 2)), 0, NOW_MS)
        .expect_err("fenced now");
    assert_eq!(error.kafka_error_code(), 47);
}

#[test]
fn producer_state_survives_a_restart() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    log.append(producer_batch(3, producer(0, 0)), 0, NOW_MS)
        .expect("first");
    log.append(producer_batch(3, producer(0, 3)), 0, NOW_MS)
        .expect("second");
    log.append(
        producer_batch(
            1,
            Producer {
                id: 7,
                epoch: 0,
                sequence: 0,
            },
        ),
        0,
        NOW_MS,
    )
    .expect("other producer");
    drop(log);

    let mut log = open(&dir.path, LogConfig::default());
    assert_eq!(log.max_producer_id(), Some(42));
    let retry = log
        .append(producer_batch(3, producer(0, 3)), 0, NOW_MS)
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 3);
    assert!(
        log.append(producer_batch(1, producer(0, 9)), 0, NOW_MS)
            .is_err()
    );
    let next = log
        .append(producer_batch(1, producer(0, 6)), 0, NOW_MS)
        .expect("next");
    assert_eq!(next.base_offset, 7);
}

#[test]
fn truncation_forgets_the_truncated_batches_of_producers() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    log.append(producer_batch(3, producer(0, 0)), 0, NOW_MS)
        .expect("first");
    log.append(producer_batch(3, producer(0, 3)), 0, NOW_MS)
        .expect("second");
    log.truncate_to(3).expect("truncate");
    let again = log
        .append(producer_batch(3, producer(0, 3)), 0, NOW_MS)
        .expect("rewrite");
    assert!(
        !again.duplicate,
        "the truncated batch is no longer in the log"
    );
    assert_eq!(again.base_offset, 3);
    assert!(
        log.append(producer_batch(3, producer(0, 0)), 0, NOW_MS)
            .expect("retry")
            .duplicate
    );
}

#[test]
fn the_largest_producer_id_is_remembered_even_below_the_log_start() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    log.append(
        producer_batch(
            1,
            Producer {
                id: 900,
                epoch: 0,
                sequence: 0,
            },
        ),
        0,
        NOW_MS,
    )
    .expect("append");
    log.append(producer_batch(1, producer(0, 0)), 0, NOW_MS)
        .expect("append");
    log.delete_records_before(1).expect("delete records");
    drop(log);
    let mut log = open(&dir.path, LogConfig::default());
    assert_eq!(log.max_producer_id(), Some(900));
    let outcome = log
        .append(
            producer_batch(
                1,
                Producer {
                    id: 900,
                    epoch: 0,
                    sequence: 77,
                },
            ),
            0,
            NOW_MS,
        )
        .expect("a producer whose batches left the log starts fresh");
    assert!(!outcome.duplicate);
}
