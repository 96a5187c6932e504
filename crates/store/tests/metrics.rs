//! Lag and throughput history, through a real database file.

use std::time::{Duration, Instant};

use eddy_store::{
    HISTORY_MAX_POINTS, LagPoint, LagSample, PartitionLagPoint, PruneReport, Store,
    ThroughputPoint, ThroughputSample,
};
use tempfile::TempDir;

async fn open_store() -> (TempDir, Store) {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = Store::open(directory.path().join("eddy.db"))
        .await
        .expect("open store");
    (directory, store)
}

fn lag(time_ms: i64, group: &str, topic: &str, partition: i32, lag: i64) -> LagSample {
    LagSample {
        time_ms,
        cluster: "local".to_owned(),
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
        committed: 1_000,
        end_offset: 1_000 + lag,
        lag,
    }
}

fn throughput(time_ms: i64, topic: &str, messages_per_sec: f64) -> ThroughputSample {
    ThroughputSample {
        time_ms,
        cluster: "local".to_owned(),
        topic: topic.to_owned(),
        messages_per_sec,
        bytes_per_sec: messages_per_sec * 100.0,
    }
}

#[tokio::test]
async fn lag_history_sums_partitions_and_topics_per_time() {
    let (_directory, store) = open_store().await;
    store
        .record_lag(&[
            lag(1_000, "billing", "orders", 0, 5),
            lag(1_000, "billing", "orders", 1, 7),
            lag(1_000, "billing", "refunds", 0, 1),
            lag(2_000, "billing", "orders", 0, 2),
            lag(2_000, "billing", "orders", 1, 0),
            lag(2_000, "billing", "refunds", 0, 0),
            lag(2_000, "shipping", "orders", 0, 99),
        ])
        .await
        .expect("record");

    let history = store
        .lag_history("local", "billing", 0, 10_000)
        .await
        .expect("history");

    assert_eq!(
        history,
        [
            LagPoint {
                time_ms: 1_000,
                lag: 13
            },
            LagPoint {
                time_ms: 2_000,
                lag: 2
            },
        ]
    );
}

#[tokio::test]
async fn history_windows_include_since_and_exclude_until() {
    let (_directory, store) = open_store().await;
    let samples: Vec<LagSample> = (1..=5)
        .map(|second| lag(second * 1_000, "billing", "orders", 0, second))
        .collect();
    store.record_lag(&samples).await.expect("record");

    let times: Vec<i64> = store
        .lag_history("local", "billing", 2_000, 4_000)
        .await
        .expect("history")
        .iter()
        .map(|point| point.time_ms)
        .collect();

    assert_eq!(times, [2_000, 3_000]);
}

#[tokio::test]
async fn history_of_other_clusters_and_groups_is_separate() {
    let (_directory, store) = open_store().await;
    let mut remote = lag(1_000, "billing", "orders", 0, 50);
    remote.cluster = "prod".to_owned();
    store
        .record_lag(&[remote, lag(1_000, "billing", "orders", 0, 5)])
        .await
        .expect("record");

    let local = store.lag_history("local", "billing", 0, 10_000).await;
    let prod = store.lag_history("prod", "billing", 0, 10_000).await;
    let unknown = store.lag_history("local", "nobody", 0, 10_000).await;

    assert_eq!(local.expect("local")[0].lag, 5);
    assert_eq!(prod.expect("prod")[0].lag, 50);
    assert!(unknown.expect("unknown").is_empty());
}

#[tokio::test]
async fn partition_lag_history_has_one_series_per_partition() {
    let (_directory, store) = open_store().await;
    store
        .record_lag(&[
            lag(2_000, "billing", "orders", 1, 7),
            lag(1_000, "billing", "orders", 1, 9),
            lag(1_000, "billing", "orders", 0, 5),
            lag(1_000, "billing", "audit", 3, 1),
        ])
        .await
        .expect("record");

    let series = store
        .partition_lag_history("local", "billing", 0, 10_000)
        .await
        .expect("history");

    let keys: Vec<(&str, i32)> = series
        .iter()
        .map(|series| (series.topic.as_str(), series.partition))
        .collect();
    assert_eq!(keys, [("audit", 3), ("orders", 0), ("orders", 1)]);
    assert_eq!(
        series[2].points,
        [
            PartitionLagPoint {
                time_ms: 1_000,
                committed: 1_000,
                end_offset: 1_009,
                lag: 9
            },
            PartitionLagPoint {
                time_ms: 2_000,
                committed: 1_000,
                end_offset: 1_007,
                lag: 7
            },
        ]
    );
}

#[tokio::test]
async fn a_second_sample_for_the_same_partition_and_time_replaces_the_first() {
    let (_directory, store) = open_store().await;
    store
        .record_lag(&[lag(1_000, "billing", "orders", 0, 5)])
        .await
        .expect("record");
    store
        .record_lag(&[lag(1_000, "billing", "orders", 0, 8)])
        .await
        .expect("record again");

    let history = store
        .lag_history("local", "billing", 0, 10_000)
        .await
        .expect("history");

    assert_eq!(
        history,
        [LagPoint {
            time_ms: 1_000,
            lag: 8
        }]
    );
}

#[tokio::test]
async fn throughput_history_returns_one_topic_oldest_first() {
    let (_directory, store) = open_store().await;
    store
        .record_throughput(&[
            throughput(2_000, "orders", 20.0),
            throughput(1_000, "orders", 10.5),
            throughput(1_000, "refunds", 3.0),
        ])
        .await
        .expect("record");

    let history = store
        .throughput_history("local", "orders", 0, 10_000)
        .await
        .expect("history");

    assert_eq!(
        history,
        [
            ThroughputPoint {
                time_ms: 1_000,
                messages_per_sec: 10.5,
                bytes_per_sec: 1_050.0
            },
            ThroughputPoint {
                time_ms: 2_000,
                messages_per_sec: 20.0,
                bytes_per_sec: 2_000.0
            },
        ]
    );
}

#[tokio::test]
async fn recording_nothing_is_a_no_op() {
    let (_directory, store) = open_store().await;
    store.record_lag(&[]).await.expect("record lag");
    store
        .record_throughput(&[])
        .await
        .expect("record throughput");
    assert!(
        store
            .lag_history("local", "billing", i64::MIN, i64::MAX)
            .await
            .expect("history")
            .is_empty()
    );
}

#[tokio::test]
async fn prune_deletes_only_older_samples() {
    let (_directory, store) = open_store().await;
    store
        .record_lag(&[
            lag(1_000, "billing", "orders", 0, 1),
            lag(2_000, "billing", "orders", 0, 2),
            lag(3_000, "billing", "orders", 0, 3),
            lag(1_000, "old-group", "orders", 0, 9),
        ])
        .await
        .expect("record lag");
    store
        .record_throughput(&[
            throughput(1_000, "orders", 1.0),
            throughput(3_000, "orders", 3.0),
        ])
        .await
        .expect("record throughput");

    let report = store.prune_older_than(2_000).await.expect("prune");

    assert_eq!(
        report,
        PruneReport {
            lag_samples_deleted: 2,
            throughput_samples_deleted: 1
        }
    );
    let lag_times: Vec<i64> = store
        .lag_history("local", "billing", i64::MIN, i64::MAX)
        .await
        .expect("lag history")
        .iter()
        .map(|point| point.time_ms)
        .collect();
    assert_eq!(lag_times, [2_000, 3_000]);
    let throughput_times: Vec<i64> = store
        .throughput_history("local", "orders", i64::MIN, i64::MAX)
        .await
        .expect("throughput history")
        .iter()
        .map(|point| point.time_ms)
        .collect();
    assert_eq!(throughput_times, [3_000]);
    assert!(
        store
            .partition_lag_history("local", "old-group", i64::MIN, i64::MAX)
            .await
            .expect("old group")
            .is_empty()
    );
}

#[tokio::test]
async fn pruning_returns_space_to_the_file_system() {
    let (directory, store) = open_store().await;
    let samples: Vec<LagSample> = (0..50_000)
        .map(|index| lag(index, "billing", "orders", (index % 10) as i32, index))
        .collect();
    store.record_lag(&samples).await.expect("record");
    store.close().await;
    let path = directory.path().join("eddy.db");
    let full_bytes = std::fs::metadata(&path).expect("metadata").len();

    let store = Store::open(&path).await.expect("reopen");
    store.prune_older_than(i64::MAX).await.expect("prune");
    store.close().await;

    let pruned_bytes = std::fs::metadata(&path).expect("metadata").len();
    assert!(
        pruned_bytes * 4 < full_bytes,
        "{full_bytes} bytes before, {pruned_bytes} after"
    );
}

#[tokio::test]
async fn a_window_holding_more_than_the_limit_returns_its_latest_points() {
    let (_directory, store) = open_store().await;
    let extra = 10;
    let samples: Vec<ThroughputSample> = (0..(HISTORY_MAX_POINTS as i64 + extra))
        .map(|time_ms| throughput(time_ms, "orders", 1.0))
        .collect();
    store.record_throughput(&samples).await.expect("record");

    let history = store
        .throughput_history("local", "orders", i64::MIN, i64::MAX)
        .await
        .expect("history");

    assert_eq!(history.len(), HISTORY_MAX_POINTS);
    assert_eq!(history.first().map(|point| point.time_ms), Some(extra));
    assert!(
        history
            .windows(2)
            .all(|pair| pair[0].time_ms < pair[1].time_ms)
    );
}

/// 200,000 samples: 10 groups of 20 partitions, 1,000 polls 5 s apart.
#[tokio::test]
async fn windows_over_200k_samples_are_queried_well_under_a_second() {
    const GROUPS: i64 = 10;
    const PARTITIONS: i64 = 20;
    const POLLS: i64 = 1_000;
    const POLL_INTERVAL_MS: i64 = 5_000;
    let (_directory, store) = open_store().await;
    let mut samples = Vec::with_capacity((GROUPS * PARTITIONS * POLLS) as usize);
    for poll in 0..POLLS {
        for group in 0..GROUPS {
            for partition in 0..PARTITIONS {
                samples.push(lag(
                    poll * POLL_INTERVAL_MS,
                    &format!("group-{group}"),
                    "orders",
                    partition as i32,
                    poll + partition,
                ));
            }
        }
    }

    let started = Instant::now();
    store.record_lag(&samples).await.expect("record");
    let insert_time = started.elapsed();

    // The last 100 polls of one group: 2,000 samples.
    let since_ms = (POLLS - 100) * POLL_INTERVAL_MS;
    let started = Instant::now();
    let total = store
        .lag_history("local", "group-3", since_ms, i64::MAX)
        .await
        .expect("total");
    let total_time = started.elapsed();
    let started = Instant::now();
    let partitions = store
        .partition_lag_history("local", "group-3", since_ms, i64::MAX)
        .await
        .expect("per partition");
    let partitions_time = started.elapsed();
    let started = Instant::now();
    let whole_group = store
        .lag_history("local", "group-7", i64::MIN, i64::MAX)
        .await
        .expect("whole group");
    let whole_group_time = started.elapsed();

    println!(
        "insert 200k: {insert_time:?}; window total: {total_time:?}; \
         window per partition: {partitions_time:?}; whole group total: {whole_group_time:?}"
    );
    assert_eq!(total.len(), 100);
    let expected_lag: i64 = (0..PARTITIONS).map(|partition| POLLS - 1 + partition).sum();
    assert_eq!(total.last().map(|point| point.lag), Some(expected_lag));
    assert_eq!(partitions.len(), PARTITIONS as usize);
    assert!(partitions.iter().all(|series| series.points.len() == 100));
    assert_eq!(whole_group.len(), POLLS as usize);
    for (what, elapsed) in [
        ("window total", total_time),
        ("window per partition", partitions_time),
        ("whole group total", whole_group_time),
    ] {
        assert!(elapsed < Duration::from_millis(250), "{what}: {elapsed:?}");
    }
}
