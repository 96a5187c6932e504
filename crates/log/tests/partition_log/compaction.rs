//! Compaction (`cleanup.policy=compact`): what a consumer reading from the start sees
//! after a pass, tombstones, the policies together, producers, crashes mid-swap, and
//! passes that run while the log goes on or that the log overtakes.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_log::{CompactionLimits, LogConfig, PartitionLog};
use eddy_protocol::records::{self, Compression, Record, RecordBatch};

use crate::support::{Producer, batch, open, producer_batch, segment_files, test_dir};

const NOW_MS: i64 = 1_700_000_000_000;

/// A record as a consumer sees it: offset, key, value.
type Seen = (i64, Option<String>, Option<String>);

/// A record to write: key and value, `None` for absent.
type Entry = (Option<&'static str>, Option<&'static str>);

fn put(key: &'static str, value: &'static str) -> Entry {
    (Some(key), Some(value))
}

fn tombstone(key: &'static str) -> Entry {
    (Some(key), None)
}

fn keyless(value: &'static str) -> Entry {
    (None, Some(value))
}

fn keyed_batch(entries: &[Entry], timestamp_ms: i64, compression: Compression) -> Bytes {
    let records = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            offset_delta: i as i32,
            timestamp_delta: i as i64,
            key: key.map(|key| Bytes::from_static(key.as_bytes())),
            value: value.map(|value| Bytes::from_static(value.as_bytes())),
            ..Record::default()
        })
        .collect();
    RecordBatch::new(0, timestamp_ms, records)
        .encode(compression)
        .expect("encode batch")
}

/// Appends one uncompressed batch of `entries` stamped `timestamp_ms`.
fn write(log: &mut PartitionLog, entries: &[Entry], timestamp_ms: i64) -> i64 {
    log.append(
        keyed_batch(entries, timestamp_ms, Compression::None),
        0,
        timestamp_ms,
    )
    .expect("append")
    .base_offset
}

/// `segment.bytes` that gives every batch of these tests (70 to 110 bytes) a segment of
/// its own, so that the last batch written is the active segment.
const ONE_BATCH: u64 = 130;

/// Compaction only, `segment_bytes` as given.
fn compacted(segment_bytes: u64) -> LogConfig {
    LogConfig {
        cleanup_policy_compact: true,
        cleanup_policy_delete: false,
        segment_bytes,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

/// Everything a consumer from the log start reads, one read after another.
fn consume(log: &PartitionLog) -> Vec<Seen> {
    let text = |bytes: Option<Bytes>| bytes.map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut offset = log.log_start_offset();
    let mut seen = Vec::new();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, i64::MAX).expect("read");
        if bytes.is_empty() {
            break;
        }
        for item in records::batches(&bytes) {
            let (header, batch) = item.expect("whole batches");
            let decoded = RecordBatch::decode(&batch).expect("decode");
            for record in decoded.records {
                let record_offset = header.base_offset + i64::from(record.offset_delta);
                if record_offset >= offset {
                    seen.push((record_offset, text(record.key), text(record.value)));
                }
            }
            offset = header.next_offset();
        }
    }
    seen
}

fn seen(offset: i64, key: Option<&str>, value: Option<&str>) -> Seen {
    (offset, key.map(String::from), value.map(String::from))
}

fn files_ending_with(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

fn assert_offsets_strictly_increase(records: &[Seen]) {
    assert!(
        records.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "offsets repeat or go back: {records:?}"
    );
}

#[test]
fn a_consumer_sees_the_latest_value_per_key_at_its_original_offset() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    write(&mut log, &[put("a", "1"), put("b", "1")], NOW_MS);
    write(&mut log, &[put("a", "2"), keyless("no key")], NOW_MS);
    write(&mut log, &[put("c", "1")], NOW_MS);
    write(&mut log, &[put("b", "2"), put("a", "3")], NOW_MS);
    write(&mut log, &[put("d", "1")], NOW_MS);
    assert_eq!(log.segment_count(), 5);

    let report = log.compact(NOW_MS).expect("compact");
    assert!(!report.discarded);
    assert_eq!(report.records_removed, 3);
    assert_eq!(
        report.first_dirty_offset, 7,
        "everything sealed is clean now"
    );
    let expected = vec![
        seen(3, None, Some("no key")),
        seen(4, Some("c"), Some("1")),
        seen(5, Some("b"), Some("2")),
        seen(6, Some("a"), Some("3")),
        seen(7, Some("d"), Some("1")),
    ];
    assert_eq!(consume(&log), expected);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 8));
    assert_eq!(write(&mut log, &[put("e", "1")], NOW_MS), 8);
    drop(log);

    let mut log = open(&dir.path, compacted(ONE_BATCH));
    let mut expected = expected;
    expected.push(seen(8, Some("e"), Some("1")));
    assert_eq!(consume(&log), expected);
    assert_eq!(
        log.first_dirty_offset(),
        7,
        "the cleaner checkpoint survives"
    );

    // The emptied first segment merges into the next one; the log start stays.
    let segments = log.segment_count();
    let report = log.compact(NOW_MS).expect("compact again");
    assert_eq!((report.segments_replaced, report.segments_written), (2, 1));
    assert_eq!(log.segment_count(), segments - 1);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(consume(&log), expected);
}

#[test]
fn tombstones_stay_for_delete_retention_ms_then_go() {
    let dir = test_dir();
    let config = LogConfig {
        delete_retention_ms: 1_000,
        ..compacted(ONE_BATCH)
    };
    let mut log = open(&dir.path, config);
    write(&mut log, &[put("k", "v"), put("other", "x")], NOW_MS);
    write(&mut log, &[tombstone("k")], NOW_MS);
    write(&mut log, &[put("active", "y")], NOW_MS);

    log.compact(NOW_MS).expect("first pass");
    let with_tombstone = vec![
        seen(1, Some("other"), Some("x")),
        seen(2, Some("k"), None),
        seen(3, Some("active"), Some("y")),
    ];
    assert_eq!(
        consume(&log),
        with_tombstone,
        "the value goes, the tombstone stays"
    );
    assert!(!log.compaction_due(NOW_MS + 999));
    assert!(log.compaction_due(NOW_MS + 1_000), "the tombstone is due");

    let report = log.compact(NOW_MS + 999).expect("before the horizon");
    assert_eq!(report.tombstones_expired, 0);
    assert_eq!(consume(&log), with_tombstone);

    let report = log.compact(NOW_MS + 1_000).expect("at the horizon");
    assert_eq!(report.tombstones_expired, 1);
    assert_eq!(
        consume(&log),
        vec![
            seen(1, Some("other"), Some("x")),
            seen(3, Some("active"), Some("y")),
        ]
    );
    assert!(!log.compaction_due(NOW_MS + 10_000));
}

#[test]
fn a_kept_tombstone_keeps_its_timestamp() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    write(&mut log, &[tombstone("k")], NOW_MS - 5_000);
    write(&mut log, &[put("active", "y")], NOW_MS);
    log.compact(NOW_MS).expect("compact");
    let found = log
        .offset_for_timestamp(NOW_MS - 5_000)
        .expect("lookup")
        .expect("found");
    assert_eq!((found.offset, found.timestamp_ms), (0, NOW_MS - 5_000));
}

#[test]
fn compact_and_delete_does_both_and_compact_alone_never_deletes() {
    let old_ms = NOW_MS - 120_000;
    let fill = |log: &mut PartitionLog| {
        write(log, &[put("a", "1")], old_ms);
        write(log, &[put("b", "1")], old_ms);
        write(log, &[put("a", "2")], NOW_MS);
        write(log, &[put("a", "3")], NOW_MS);
        write(log, &[put("c", "1")], NOW_MS);
    };

    let dir = test_dir();
    let both = LogConfig {
        cleanup_policy_delete: true,
        retention_ms: 60_000,
        ..compacted(ONE_BATCH)
    };
    let mut log = open(&dir.path, both);
    fill(&mut log);
    assert!(log.enforce_retention(NOW_MS).expect("retention") > 0);
    assert_eq!(log.log_start_offset(), 2);
    log.compact(NOW_MS).expect("compact");
    assert_eq!(
        consume(&log),
        vec![seen(3, Some("a"), Some("3")), seen(4, Some("c"), Some("1"))]
    );

    let dir = test_dir();
    let compact_only = LogConfig {
        retention_ms: 60_000,
        retention_bytes: 1,
        ..compacted(ONE_BATCH)
    };
    let mut log = open(&dir.path, compact_only);
    fill(&mut log);
    assert_eq!(log.enforce_retention(NOW_MS).expect("retention"), 0);
    assert_eq!(log.log_start_offset(), 0);
    log.compact(NOW_MS).expect("compact");
    assert_eq!(
        consume(&log),
        vec![
            seen(1, Some("b"), Some("1")),
            seen(3, Some("a"), Some("3")),
            seen(4, Some("c"), Some("1")),
        ]
    );
}

#[test]
fn the_active_segment_is_never_cleaned_and_never_hides_older_records() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(1 << 20));
    for value in ["1", "2", "3"] {
        write(&mut log, &[put("a", value)], NOW_MS);
    }
    let active = dir.path.join("00000000000000000000.log");
    let bytes_before = std::fs::read(&active).expect("read");
    let report = log.compact(NOW_MS).expect("compact");
    assert_eq!(report.segments_cleaned, 0, "only the active segment exists");
    assert_eq!(std::fs::read(&active).expect("read"), bytes_before);
    assert_eq!(consume(&log).len(), 3);

    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    write(&mut log, &[put("a", "sealed")], NOW_MS);
    write(&mut log, &[put("a", "active")], NOW_MS);
    log.compact(NOW_MS).expect("compact");
    assert_eq!(
        consume(&log),
        vec![
            seen(0, Some("a"), Some("sealed")),
            seen(1, Some("a"), Some("active")),
        ],
        "the map covers the sealed segments only, as Kafka's"
    );
}

#[test]
fn compressed_batches_stay_compressed_with_the_same_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = test_dir();
        let mut log = open(&dir.path, compacted(ONE_BATCH));
        for entries in [
            vec![put("a", "1"), put("b", "1"), put("c", "1")],
            vec![put("a", "2")],
            vec![put("d", "1")],
        ] {
            log.append(keyed_batch(&entries, NOW_MS, codec), 0, NOW_MS)
                .expect("append");
        }
        let report = log.compact(NOW_MS).expect("compact");
        assert_eq!(report.records_removed, 1, "{codec}");
        let mut offset = 0;
        let mut codecs = Vec::new();
        while offset < log.log_end_offset() {
            let bytes = log.read(offset, 1 << 20, i64::MAX).expect("read");
            for item in records::batches(&bytes) {
                let (header, _) = item.expect("batch");
                codecs.push(header.compression().expect("codec"));
                offset = header.next_offset();
            }
        }
        assert_eq!(codecs, vec![codec; 3], "{codec}");
        assert_eq!(
            consume(&log),
            vec![
                seen(1, Some("b"), Some("1")),
                seen(2, Some("c"), Some("1")),
                seen(3, Some("a"), Some("2")),
                seen(4, Some("d"), Some("1")),
            ],
            "{codec}"
        );
    }
}

#[test]
fn an_idempotent_producer_retry_is_still_a_duplicate_after_compaction_and_a_restart() {
    let dir = test_dir();
    let producer = |sequence| Producer {
        id: 42,
        epoch: 0,
        sequence,
    };
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    log.append(producer_batch(3, producer(0)), 0, NOW_MS)
        .expect("first");
    log.append(producer_batch(3, producer(3)), 0, NOW_MS)
        .expect("second");
    // Same keys (k0, k1, k2): both producer batches are superseded.
    log.append(batch(3, NOW_MS), 0, NOW_MS).expect("newer");
    log.append(batch(1, NOW_MS), 0, NOW_MS).expect("active");

    let report = log.compact(NOW_MS).expect("compact");
    assert_eq!(report.records_removed, 6);
    let offsets: Vec<i64> = consume(&log).iter().map(|record| record.0).collect();
    assert_eq!(offsets, [6, 7, 8, 9]);
    let kept = log.read(0, 1 << 20, i64::MAX).expect("read");
    let header = records::batches(&kept)
        .next()
        .expect("a batch")
        .expect("whole");
    assert_eq!(
        (
            header.0.records_count,
            header.0.producer_id,
            header.0.last_offset()
        ),
        (0, 42, 2),
        "the producer's batch stays, empty"
    );

    let retry = log
        .append(producer_batch(3, producer(3)), 0, NOW_MS)
        .expect("retry");
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (3, 5));
    drop(log);

    let mut log = open(&dir.path, compacted(ONE_BATCH));
    let retry = log
        .append(producer_batch(3, producer(3)), 0, NOW_MS)
        .expect("retry after restart");
    assert!(
        retry.duplicate,
        "state rebuilt from the log still has the batch"
    );
    assert_eq!((retry.base_offset, retry.last_offset), (3, 5));
    let next = log
        .append(producer_batch(1, producer(6)), 0, NOW_MS)
        .expect("next in sequence");
    assert_eq!(next.base_offset, 10);
}

#[test]
fn small_cleaned_segments_merge_and_keep_their_offsets() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    for round in 0..8 {
        let value = if round % 2 == 0 { "even" } else { "odd" };
        write(&mut log, &[put("a", value), put("b", value)], NOW_MS);
    }
    assert_eq!(log.segment_count(), 8);
    log.update_config(compacted(1 << 20));
    let report = log.compact(NOW_MS).expect("compact");
    assert_eq!((report.segments_replaced, report.segments_written), (7, 1));
    assert_eq!(log.segment_count(), 2);
    assert_eq!(
        segment_files(&dir.path),
        ["00000000000000000000.log", "00000000000000000014.log"]
    );
    assert_eq!(
        consume(&log),
        vec![
            seen(12, Some("a"), Some("even")),
            seen(13, Some("b"), Some("even")),
            seen(14, Some("a"), Some("odd")),
            seen(15, Some("b"), Some("odd")),
        ]
    );
    drop(log);
    let log = open(&dir.path, compacted(1 << 20));
    assert_eq!(
        log.recovery_report().rebuilt_indexes,
        0,
        "indexes were written whole"
    );
    assert_eq!(consume(&log).len(), 4);
}

/// Eight one-batch segments of two keys, then a config under which the seven sealed
/// ones merge into one cleaned segment.
fn merging_log(path: &Path) -> PartitionLog {
    let mut log = open(path, compacted(ONE_BATCH));
    for round in 0..8 {
        let value = if round % 2 == 0 { "even" } else { "odd" };
        write(&mut log, &[put("a", value), put("b", value)], NOW_MS);
    }
    log.update_config(compacted(1 << 20));
    log
}

#[test]
fn a_crash_before_the_commit_leaves_the_log_as_it_was() {
    let dir = test_dir();
    let log = merging_log(&dir.path);
    let before = consume(&log);
    let plan = log
        .plan_compaction(NOW_MS, i64::MAX)
        .expect("plan")
        .expect("a plan");
    let cleaned = plan.run(&CompactionLimits::default()).expect("run");
    assert_eq!(files_ending_with(&dir.path, ".cleaned").len(), 1);
    std::mem::forget(cleaned); // the process dies: nothing cleans up
    drop(log);

    let log = open(&dir.path, compacted(1 << 20));
    assert!(files_ending_with(&dir.path, ".cleaned").is_empty());
    assert_eq!(log.recovery_report().finished_compaction_swaps, 0);
    assert_eq!(consume(&log), before);
    assert_eq!(log.segment_count(), 8);
}

/// Runs a pass on a merging log, and stops as a crash right after the commit would:
/// the cleaned file renamed to `.swap`, the old segments still there.
fn crash_after_commit(path: &Path) -> Vec<Seen> {
    let reference = test_dir();
    let mut compacted_reference = merging_log(&reference.path);
    compacted_reference.compact(NOW_MS).expect("compact");
    let expected = consume(&compacted_reference);

    let log = merging_log(path);
    let plan = log
        .plan_compaction(NOW_MS, i64::MAX)
        .expect("plan")
        .expect("a plan");
    let cleaned = plan.run(&CompactionLimits::default()).expect("run");
    let names = files_ending_with(path, ".cleaned");
    assert_eq!(names.len(), 1);
    let base = names[0].split('.').next().expect("base offset");
    std::fs::rename(path.join(&names[0]), path.join(format!("{base}.log.swap"))).expect("commit");
    std::mem::forget(cleaned);
    drop(log);
    expected
}

#[test]
fn a_committed_swap_replaces_the_segments_it_covers_on_open() {
    let dir = test_dir();
    let expected = crash_after_commit(&dir.path);
    let log = open(&dir.path, compacted(1 << 20));
    assert_eq!(log.recovery_report().finished_compaction_swaps, 1);
    let records = consume(&log);
    assert_offsets_strictly_increase(&records);
    assert_eq!(records, expected);
    assert_eq!(log.segment_count(), 2);
    assert!(files_ending_with(&dir.path, ".swap").is_empty());
}

#[test]
fn a_swap_whose_old_segments_were_partly_removed_finishes_the_same() {
    let dir = test_dir();
    let expected = crash_after_commit(&dir.path);
    for base in [2, 4, 6] {
        for suffix in ["log", "index", "timeindex"] {
            std::fs::remove_file(dir.path.join(format!("{base:020}.{suffix}"))).expect("remove");
        }
    }
    let log = open(&dir.path, compacted(1 << 20));
    let records = consume(&log);
    assert_offsets_strictly_increase(&records);
    assert_eq!(records, expected);
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn reads_and_appends_go_on_while_a_pass_runs() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    write(&mut log, &[put("a", "1"), put("b", "1")], NOW_MS);
    write(&mut log, &[put("a", "2")], NOW_MS);
    write(&mut log, &[put("c", "1")], NOW_MS);

    let plan = log
        .plan_compaction(NOW_MS, i64::MAX)
        .expect("plan")
        .expect("a plan");
    assert!(
        log.plan_compaction(NOW_MS, i64::MAX)
            .expect("plan")
            .is_none(),
        "one pass at a time"
    );
    let worker = std::thread::spawn(move || plan.run(&CompactionLimits::default()));
    write(&mut log, &[put("a", "3")], NOW_MS);
    write(&mut log, &[put("d", "1")], NOW_MS);
    assert_eq!(consume(&log).len(), 6, "reads meanwhile see everything");
    let cleaned = worker.join().expect("worker").expect("run");

    let report = log.install_compaction(cleaned).expect("install");
    assert!(!report.discarded);
    assert_eq!(
        consume(&log),
        vec![
            seen(1, Some("b"), Some("1")),
            seen(2, Some("a"), Some("2")),
            seen(3, Some("c"), Some("1")),
            seen(4, Some("a"), Some("3")),
            seen(5, Some("d"), Some("1")),
        ],
        "the pass cleaned what it planned; later segments wait for the next"
    );
    assert!(log.dirty_ratio() > 0.0);
    log.compact(NOW_MS).expect("next pass");
    assert_eq!(consume(&log).len(), 4);
}

#[test]
fn a_plan_overtaken_by_retention_delete_records_or_truncation_is_discarded() {
    type Overtake = fn(&mut PartitionLog);
    let overtakes: [(&str, Overtake); 3] = [
        ("retention", |log| {
            let mut config = log.config().clone();
            config.cleanup_policy_delete = true;
            config.retention_ms = 60_000;
            log.update_config(config);
            assert!(log.enforce_retention(NOW_MS).expect("retention") > 0);
        }),
        ("delete records", |log| {
            log.delete_records_before(2).expect("delete records");
        }),
        ("truncation", |log| log.truncate_to(2).expect("truncate")),
    ];
    for (name, overtake) in overtakes {
        let dir = test_dir();
        let mut log = open(&dir.path, compacted(ONE_BATCH));
        write(&mut log, &[put("a", "1")], NOW_MS - 120_000);
        write(&mut log, &[put("a", "2")], NOW_MS);
        write(&mut log, &[put("a", "3")], NOW_MS);
        write(&mut log, &[put("b", "1")], NOW_MS);
        let plan = log
            .plan_compaction(NOW_MS, i64::MAX)
            .expect("plan")
            .expect("a plan");
        let cleaned = plan.run(&CompactionLimits::default()).expect("run");
        overtake(&mut log);
        let before = consume(&log);

        let report = log.install_compaction(cleaned).expect("install");
        assert!(report.discarded, "{name}");
        assert!(
            files_ending_with(&dir.path, ".cleaned").is_empty(),
            "{name}"
        );
        assert_eq!(
            consume(&log),
            before,
            "{name}: the log is as the overtake left it"
        );
        assert!(
            log.plan_compaction(NOW_MS, i64::MAX)
                .expect("plan")
                .is_some(),
            "{name}: a new pass may start"
        );
    }
}

#[test]
fn a_plan_is_discarded_when_truncation_into_a_gap_lets_its_segment_grow_again() {
    let dir = test_dir();
    let config = |segment_bytes| LogConfig {
        delete_retention_ms: 0,
        ..compacted(segment_bytes)
    };
    let mut log = open(&dir.path, config(1 << 20));
    write(&mut log, &[tombstone("k")], NOW_MS);
    write(&mut log, &[put("a", "1")], NOW_MS);
    log.update_config(config(ONE_BATCH));
    write(&mut log, &[put("a", "2")], NOW_MS);
    write(&mut log, &[put("z", "1")], NOW_MS);
    // a=1 goes, so segment 0 ends in a gap at 1; the tombstone gets its horizon.
    log.compact(NOW_MS).expect("compact");
    let plan = log
        .plan_compaction(NOW_MS, 1)
        .expect("plan")
        .expect("a plan");
    assert_eq!(plan.segment_count(), 1);
    let cleaned = plan.run(&CompactionLimits::default()).expect("run");
    assert_eq!(cleaned.report().tombstones_expired, 1);

    // Truncating into the gap makes segment 0 active without cutting it; it fills again.
    log.truncate_to(1).expect("truncate");
    log.update_config(config(1 << 20));
    write(&mut log, &[put("n", "1")], NOW_MS);
    log.update_config(config(ONE_BATCH));
    write(&mut log, &[put("m", "1")], NOW_MS);
    assert_eq!(log.segment_count(), 2);

    let report = log.install_compaction(cleaned).expect("install");
    assert!(report.discarded);
    assert_eq!(
        consume(&log),
        vec![
            seen(0, Some("k"), None),
            seen(1, Some("n"), Some("1")),
            seen(2, Some("m"), Some("1")),
        ]
    );
}

#[test]
fn the_dirty_ratio_says_when_a_pass_is_due() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    write(&mut log, &[put("a", "1")], NOW_MS);
    assert_eq!(log.dirty_ratio(), 0.0, "nothing sealed");
    assert!(!log.compaction_due(NOW_MS));
    for value in ["2", "3", "4"] {
        write(&mut log, &[put("a", value)], NOW_MS);
    }
    assert_eq!(log.dirty_ratio(), 1.0);
    assert!(log.compaction_due(NOW_MS));
    log.compact(NOW_MS).expect("compact");
    assert_eq!(log.dirty_ratio(), 0.0);
    assert!(!log.compaction_due(NOW_MS));
    write(&mut log, &[put("b", "1")], NOW_MS);
    let ratio = log.dirty_ratio();
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    drop(log);

    let mut log = open(&dir.path, compacted(ONE_BATCH));
    assert_eq!(
        log.dirty_ratio(),
        ratio,
        "the checkpoint survives a restart"
    );
    log.update_config(LogConfig {
        cleanup_policy_compact: false,
        ..compacted(ONE_BATCH)
    });
    assert!(!log.compaction_due(NOW_MS));
    assert!(
        log.plan_compaction(NOW_MS, i64::MAX)
            .expect("plan")
            .is_none()
    );
}

#[test]
fn the_high_watermark_bounds_what_a_pass_cleans() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    for value in ["1", "2", "3", "4"] {
        write(&mut log, &[put("a", value)], NOW_MS);
    }
    let plan = log
        .plan_compaction(NOW_MS, 2)
        .expect("plan")
        .expect("a plan");
    assert_eq!(plan.segment_count(), 2);
    let cleaned = plan.run(&CompactionLimits::default()).expect("run");
    let report = log.install_compaction(cleaned).expect("install");
    assert_eq!(report.first_dirty_offset, 2);
    let offsets: Vec<i64> = consume(&log).iter().map(|record| record.0).collect();
    assert_eq!(offsets, [1, 2, 3]);
}

#[test]
fn a_full_key_map_cleans_part_of_the_dirty_section_and_the_next_pass_the_rest() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    write(&mut log, &[put("a", "1"), put("b", "1")], NOW_MS);
    write(&mut log, &[put("a", "2"), put("c", "1")], NOW_MS);
    write(&mut log, &[put("d", "1"), put("b", "2")], NOW_MS);
    write(&mut log, &[put("e", "1")], NOW_MS);
    let limits = CompactionLimits {
        max_map_entries: 3,
        ..CompactionLimits::default()
    };
    let plan = log
        .plan_compaction(NOW_MS, i64::MAX)
        .expect("plan")
        .expect("a plan");
    let report = log
        .install_compaction(plan.run(&limits).expect("run"))
        .expect("install");
    assert_eq!(
        report.first_dirty_offset, 4,
        "the map filled in the third segment"
    );
    assert_eq!(
        report.records_removed, 1,
        "a=1 went; b=1 waits for b=2 to be mapped"
    );
    let plan = log
        .plan_compaction(NOW_MS, i64::MAX)
        .expect("plan")
        .expect("a plan");
    let report = log
        .install_compaction(plan.run(&limits).expect("run"))
        .expect("install");
    assert_eq!(report.first_dirty_offset, 6);
    assert_eq!(
        consume(&log),
        vec![
            seen(2, Some("a"), Some("2")),
            seen(3, Some("c"), Some("1")),
            seen(4, Some("d"), Some("1")),
            seen(5, Some("b"), Some("2")),
            seen(6, Some("e"), Some("1")),
        ]
    );
}

#[test]
fn io_bytes_per_second_slows_a_pass_down() {
    let dir = test_dir();
    let mut log = open(&dir.path, compacted(ONE_BATCH));
    for value in ["1", "2", "3", "4", "5"] {
        write(&mut log, &[put("a", value)], NOW_MS);
    }
    let sealed_bytes = log.size_bytes();
    let limits = CompactionLimits {
        io_bytes_per_second: Some(sealed_bytes * 5),
        ..CompactionLimits::default()
    };
    let plan = log
        .plan_compaction(NOW_MS, i64::MAX)
        .expect("plan")
        .expect("a plan");
    let started = Instant::now();
    let cleaned = plan.run(&limits).expect("run");
    // The map reads the sealed bytes once and the cleaning once more: at least 2/5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(!log.install_compaction(cleaned).expect("install").discarded);
}
