use bytes::Bytes;
use eddy_log::{LogConfig, LogError, TimestampOffset};
use eddy_protocol::records::{RecordBatch, TimestampType, verify_crc};

use crate::support::{
    append, batch, headers, open, read_all, segment_files, small_segments, test_dir,
};

#[test]
fn appends_get_contiguous_offsets_and_read_back_as_written() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    let outcomes: Vec<_> = [3, 2, 4]
        .iter()
        .map(|&count| log.append(batch(count, 1_000), 7, 1_000).expect("append"))
        .collect();
    let offsets: Vec<_> = outcomes
        .iter()
        .map(|o| (o.base_offset, o.last_offset))
        .collect();
    assert_eq!(offsets, [(0, 2), (3, 4), (5, 8)]);
    assert!(
        outcomes
            .iter()
            .all(|o| !o.duplicate && o.log_append_time_ms == -1)
    );
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 9);

    let bytes = log.read(0, 1 << 20, i64::MAX).expect("read");
    let read: Vec<_> = headers(&bytes)
        .iter()
        .map(|h| (h.base_offset, h.partition_leader_epoch))
        .collect();
    assert_eq!(read, [(0, 7), (3, 7), (5, 7)]);
    let second = RecordBatch::decode(
        &bytes.slice(batch(3, 1_000).len()..batch(3, 1_000).len() + batch(2, 1_000).len()),
    )
    .expect("decode: CRC still valid after stamping offsets and epoch");
    assert_eq!(second.base_offset, 3);
    assert_eq!(second.records[1].value, Some(Bytes::from("value-1")));
    assert_eq!(log.size_bytes(), bytes.len() as u64);
}

#[test]
fn a_read_from_the_middle_of_a_batch_starts_with_that_batch() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..3 {
        append(&mut log, 5, 1_000);
    }
    let bytes = log.read(7, 1 << 20, i64::MAX).expect("read");
    let bases: Vec<_> = headers(&bytes).iter().map(|h| h.base_offset).collect();
    assert_eq!(bases, [5, 10]);
}

#[test]
fn max_bytes_keeps_whole_batches_but_always_returns_one() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..4 {
        append(&mut log, 3, 1_000);
    }
    let one = batch(3, 1_000).len();
    assert_eq!(headers(&log.read(0, 1, i64::MAX).expect("read")).len(), 1);
    assert_eq!(headers(&log.read(0, 0, i64::MAX).expect("read")).len(), 1);
    assert_eq!(
        headers(&log.read(0, 2 * one, i64::MAX).expect("read")).len(),
        2
    );
    assert_eq!(
        headers(&log.read(0, 2 * one + 1, i64::MAX).expect("read")).len(),
        2
    );
    assert_eq!(
        headers(&log.read(3, 1 << 20, i64::MAX).expect("read")).len(),
        3
    );
}

#[test]
fn max_offset_holds_back_batches_that_reach_it() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    for _ in 0..3 {
        append(&mut log, 3, 1_000);
    }
    let bases = |offset, max_offset| -> Vec<i64> {
        headers(&log.read(offset, 1 << 20, max_offset).expect("read"))
            .iter()
            .map(|h| h.base_offset)
            .collect()
    };
    assert_eq!(bases(0, 6), [0, 3]);
    assert_eq!(bases(0, 5), [0], "a batch straddling the limit stays back");
    assert_eq!(bases(4, 5), Vec::<i64>::new());
    assert_eq!(bases(6, 6), Vec::<i64>::new());
}

#[test]
fn reads_at_the_end_are_empty_and_outside_the_log_are_out_of_range() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    assert!(log.read(0, 100, i64::MAX).expect("empty log").is_empty());
    append(&mut log, 2, 1_000);
    assert!(log.read(2, 100, i64::MAX).expect("log end").is_empty());
    for offset in [3, -1] {
        let error = log.read(offset, 100, i64::MAX).expect_err("out of range");
        assert!(
            matches!(
                error,
                LogError::OffsetOutOfRange {
                    start: 0,
                    end: 2,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.kafka_error_code(), 1);
    }
}

#[test]
fn log_append_time_topics_stamp_the_broker_clock() {
    let dir = test_dir();
    let config = LogConfig {
        message_timestamp_type_log_append_time: true,
        ..LogConfig::default()
    };
    let mut log = open(&dir.path, config);
    let outcome = log.append(batch(3, 1_000), 0, 55_555).expect("append");
    assert_eq!(outcome.log_append_time_ms, 55_555);
    let bytes = log.read(0, 1 << 20, i64::MAX).expect("read");
    verify_crc(&bytes).expect("CRC recomputed");
    let decoded = RecordBatch::decode(&bytes).expect("decode");
    assert_eq!(decoded.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(decoded.max_timestamp, 55_555);
    assert_eq!(
        log.offset_for_timestamp(55_555).expect("lookup"),
        Some(TimestampOffset {
            offset: 0,
            timestamp_ms: 55_555
        })
    );
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(3));
    for _ in 0..20 {
        append(&mut log, 3, 1_000);
    }
    assert_eq!(log.log_end_offset(), 60);
    assert!(log.segment_count() >= 6, "{} segments", log.segment_count());
    let files = segment_files(&dir.path);
    assert_eq!(files.len(), log.segment_count());
    assert_eq!(files[0], "00000000000000000000.log");
    assert_eq!(files[1], "00000000000000000009.log");

    let batches = read_all(&log);
    assert_eq!(batches.len(), 20);
    for offset in 0..60 {
        let bytes = log.read(offset, 1, i64::MAX).expect("read");
        let header = headers(&bytes)[0];
        assert!(header.base_offset <= offset && offset <= header.last_offset());
    }
}

#[test]
fn segments_roll_when_older_than_segment_ms() {
    let dir = test_dir();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(&dir.path, config);
    append(&mut log, 1, 10_000);
    append(&mut log, 1, 10_900);
    assert_eq!(log.segment_count(), 1);
    append(&mut log, 1, 11_001);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(read_all(&log).len(), 3);
}

#[test]
fn a_batch_larger_than_a_segment_is_refused() {
    let dir = test_dir();
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let mut log = open(&dir.path, config);
    let error = log
        .append(batch(10, 1_000), 0, 1_000)
        .expect_err("too large");
    assert!(matches!(error, LogError::BatchTooLarge { .. }), "{error}");
    assert_eq!(error.kafka_error_code(), 18);
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn a_buffer_that_is_not_exactly_one_batch_is_refused() {
    let dir = test_dir();
    let mut log = open(&dir.path, LogConfig::default());
    let whole = batch(2, 1_000);
    let cut = whole.slice(..whole.len() - 1);
    let error = log.append(cut, 0, 1_000).expect_err("cut batch");
    assert!(matches!(error, LogError::CorruptBatch { .. }), "{error}");
    assert_eq!(error.kafka_error_code(), 2);
    let two = [whole.clone(), whole].concat();
    assert!(log.append(Bytes::from(two), 0, 1_000).is_err());
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(2));
    for round in 0..10 {
        append(&mut log, 3, 1_000 * (round + 1));
    }
    let lookup = |timestamp| log.offset_for_timestamp(timestamp).expect("lookup");
    let at = |offset, timestamp_ms| {
        Some(TimestampOffset {
            offset,
            timestamp_ms,
        })
    };
    assert_eq!(lookup(0), at(0, 1_000));
    assert_eq!(lookup(1_001), at(1, 1_001));
    assert_eq!(lookup(1_500), at(3, 2_000));
    assert_eq!(lookup(7_002), at(20, 7_002));
    assert_eq!(lookup(9_003), at(27, 10_000));
    assert_eq!(lookup(10_002), at(29, 10_002));
    assert_eq!(lookup(10_003), None);
}

#[test]
fn max_timestamp_names_the_newest_record_wherever_it_is() {
    let dir = test_dir();
    let mut log = open(&dir.path, small_segments(2));
    assert_eq!(log.max_timestamp().expect("empty"), None);
    for timestamp in [5_000, 9_000, 2_000, 3_000, 1_000] {
        append(&mut log, 3, timestamp);
    }
    assert_eq!(
        log.max_timestamp().expect("max"),
        Some(TimestampOffset {
            offset: 5,
            timestamp_ms: 9_002
        })
    );
}
