//! Metric history: consumer-group lag and topic throughput over time.
//!
//! A sample belongs to a series (a partition of a group's lag, a topic's
//! throughput). Samples are keyed by (series, `time_ms`): recording a second
//! sample for the same series and time replaces the first. Windows are
//! half-open, `since_ms <= time_ms < until_ms`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::{Store, StoreError};

/// Most points a history query returns. A window holding more returns its
/// latest points; charts over long windows should ask for shorter ones.
pub const HISTORY_MAX_POINTS: usize = 100_000;

/// Samples per INSERT statement: 8 bound values a row stays far below
/// SQLite's limit of 32766 per statement.
const INSERT_CHUNK_ROWS: usize = 1000;

/// A consumer group's position on one partition at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagSample {
    /// When it was measured, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The cluster's name or profile key, as the caller chooses.
    pub cluster: String,
    /// Consumer group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The group's committed offset.
    pub committed: i64,
    /// The partition's end offset (high watermark).
    pub end_offset: i64,
    /// Messages the group is behind.
    pub lag: i64,
}

/// A topic's produce rate at one time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputSample {
    /// When it was measured, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The cluster's name or profile key, as the caller chooses.
    pub cluster: String,
    /// Topic name.
    pub topic: String,
    /// Messages appended per second.
    pub messages_per_sec: f64,
    /// Bytes appended per second.
    pub bytes_per_sec: f64,
}

/// A group's total lag at one time: the sum over every partition sampled at
/// exactly that `time_ms`. Record all partitions of a poll with one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LagPoint {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Summed lag.
    pub lag: i64,
}

/// The lag history of one partition for one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLagSeries {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Oldest first.
    pub points: Vec<PartitionLagPoint>,
}

/// One sample of a [`PartitionLagSeries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLagPoint {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The group's committed offset.
    pub committed: i64,
    /// The partition's end offset.
    pub end_offset: i64,
    /// Messages the group was behind.
    pub lag: i64,
}

/// One sample of a topic's throughput history.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ThroughputPoint {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Messages appended per second.
    pub messages_per_sec: f64,
    /// Bytes appended per second.
    pub bytes_per_sec: f64,
}

/// What [`Store::prune_older_than`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Lag samples deleted.
    pub lag_samples_deleted: u64,
    /// Throughput samples deleted.
    pub throughput_samples_deleted: u64,
}

impl Store {
    /// Records lag samples, all or none.
    pub async fn record_lag(&self, samples: &[LagSample]) -> Result<(), StoreError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for chunk in samples.chunks(INSERT_CHUNK_ROWS) {
            insert_lag_chunk(&mut transaction, chunk)
                .await
                .map_err(|source| self.error(source))?;
        }
        transaction
            .commit()
            .await
            .map_err(|source| self.error(source))
    }

    /// Records throughput samples, all or none.
    pub async fn record_throughput(&self, samples: &[ThroughputSample]) -> Result<(), StoreError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for chunk in samples.chunks(INSERT_CHUNK_ROWS) {
            insert_throughput_chunk(&mut transaction, chunk)
                .await
                .map_err(|source| self.error(source))?;
        }
        transaction
            .commit()
            .await
            .map_err(|source| self.error(source))
    }

    /// A group's total lag over time (summed over its partitions), oldest
    /// first.
    pub async fn lag_history(
        &self,
        cluster: &str,
        group: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<LagPoint>, StoreError> {
        let mut points: Vec<LagPoint> = sqlx::query_as(LAG_HISTORY_SQL)
            .bind(cluster)
            .bind(group)
            .bind(since_ms)
            .bind(until_ms)
            .bind(HISTORY_MAX_POINTS as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|source| self.error(source))?;
        points.reverse();
        Ok(points)
    }

    /// A group's lag over time per partition, ordered by topic and partition,
    /// each series oldest first. Partitions without samples in the window are
    /// left out.
    pub async fn partition_lag_history(
        &self,
        cluster: &str,
        group: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<PartitionLagSeries>, StoreError> {
        // One read transaction: both queries see the same snapshot.
        let mut transaction = self
            .pool
            .begin()
            .await
            .map_err(|source| self.error(source))?;
        let names: Vec<(i64, String, i32)> = sqlx::query_as(LAG_SERIES_NAMES_SQL)
            .bind(cluster)
            .bind(group)
            .fetch_all(&mut *transaction)
            .await
            .map_err(|source| self.error(source))?;
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(PARTITION_LAG_HISTORY_SQL)
            .bind(cluster)
            .bind(group)
            .bind(since_ms)
            .bind(until_ms)
            .bind(HISTORY_MAX_POINTS as i64)
            .fetch_all(&mut *transaction)
            .await
            .map_err(|source| self.error(source))?;
        transaction
            .commit()
            .await
            .map_err(|source| self.error(source))?;

        let mut points_by_series: HashMap<i64, Vec<PartitionLagPoint>> = HashMap::new();
        for (series_id, time_ms, committed, end_offset, lag) in rows.into_iter().rev() {
            points_by_series
                .entry(series_id)
                .or_default()
                .push(PartitionLagPoint {
                    time_ms,
                    committed,
                    end_offset,
                    lag,
                });
        }
        let ordered: BTreeMap<(String, i32), Vec<PartitionLagPoint>> = names
            .into_iter()
            .filter_map(|(series_id, topic, partition)| {
                let points = points_by_series.remove(&series_id)?;
                Some(((topic, partition), points))
            })
            .collect();
        Ok(ordered
            .into_iter()
            .map(|((topic, partition), points)| PartitionLagSeries {
                topic,
                partition,
                points,
            })
            .collect())
    }

    /// A topic's throughput over time, oldest first.
    pub async fn throughput_history(
        &self,
        cluster: &str,
        topic: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ThroughputPoint>, StoreError> {
        let mut points: Vec<ThroughputPoint> = sqlx::query_as(THROUGHPUT_HISTORY_SQL)
            .bind(cluster)
            .bind(topic)
            .bind(since_ms)
            .bind(until_ms)
            .bind(HISTORY_MAX_POINTS as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|source| self.error(source))?;
        points.reverse();
        Ok(points)
    }

    /// Deletes every sample older than `time_ms` (and series left empty), then
    /// returns the freed pages to the file system.
    pub async fn prune_older_than(&self, time_ms: i64) -> Result<PruneReport, StoreError> {
        let mut transaction = self.begin_write().await?;
        let report = prune(&mut transaction, time_ms)
            .await
            .map_err(|source| self.error(source))?;
        transaction
            .commit()
            .await
            .map_err(|source| self.error(source))?;
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&self.pool)
            .await
            .map_err(|source| self.error(source))?;
        Ok(report)
    }

    /// Takes the write lock up front: a deferred transaction that reads and
    /// then writes can fail with SQLITE_BUSY instead of waiting.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|source| self.error(source))
    }
}

// The history queries find a group's (or topic's) series through the UNIQUE
// index on the series table, then range-scan the samples' primary key
// (series_id, time_ms) per series: the cost follows the window, not the table.

const LAG_HISTORY_SQL: &str = "
    SELECT samples.time_ms, SUM(samples.lag) AS lag
    FROM lag_series AS series
    JOIN lag_samples AS samples ON samples.series_id = series.id
    WHERE series.cluster = ? AND series.consumer_group = ?
      AND samples.time_ms >= ? AND samples.time_ms < ?
    GROUP BY samples.time_ms
    ORDER BY samples.time_ms DESC
    LIMIT ?";

const LAG_SERIES_NAMES_SQL: &str = "
    SELECT id, topic, partition FROM lag_series
    WHERE cluster = ? AND consumer_group = ?";

const PARTITION_LAG_HISTORY_SQL: &str = "
    SELECT samples.series_id, samples.time_ms, samples.committed,
           samples.end_offset, samples.lag
    FROM lag_series AS series
    JOIN lag_samples AS samples ON samples.series_id = series.id
    WHERE series.cluster = ? AND series.consumer_group = ?
      AND samples.time_ms >= ? AND samples.time_ms < ?
    ORDER BY samples.time_ms DESC
    LIMIT ?";

const THROUGHPUT_HISTORY_SQL: &str = "
    SELECT samples.time_ms, samples.messages_per_sec, samples.bytes_per_sec
    FROM throughput_series AS series
    JOIN throughput_samples AS samples ON samples.series_id = series.id
    WHERE series.cluster = ? AND series.topic = ?
      AND samples.time_ms >= ? AND samples.time_ms < ?
    ORDER BY samples.time_ms DESC
    LIMIT ?";

// `series_id IN (...)` lets SQLite range-scan the primary key once per series
// instead of reading every sample.
const PRUNE_LAG_SAMPLES_SQL: &str = "
    DELETE FROM lag_samples
    WHERE series_id IN (SELECT id FROM lag_series) AND time_ms < ?";

const PRUNE_LAG_SERIES_SQL: &str = "
    DELETE FROM lag_series
    WHERE NOT EXISTS (SELECT 1 FROM lag_samples WHERE series_id = lag_series.id)";

const PRUNE_THROUGHPUT_SAMPLES_SQL: &str = "
    DELETE FROM throughput_samples
    WHERE series_id IN (SELECT id FROM throughput_series) AND time_ms < ?";

const PRUNE_THROUGHPUT_SERIES_SQL: &str = "
    DELETE FROM throughput_series
    WHERE NOT EXISTS
        (SELECT 1 FROM throughput_samples WHERE series_id = throughput_series.id)";

async fn insert_lag_chunk(
    connection: &mut SqliteConnection,
    chunk: &[LagSample],
) -> Result<(), sqlx::Error> {
    let mut series = QueryBuilder::<Sqlite>::new(
        "INSERT INTO lag_series (cluster, consumer_group, topic, partition) ",
    );
    series.push_values(chunk, |mut row, sample| {
        row.push_bind(sample.cluster.as_str())
            .push_bind(sample.group.as_str())
            .push_bind(sample.topic.as_str())
            .push_bind(sample.partition);
    });
    series.push(" ON CONFLICT DO NOTHING");
    series.build().execute(&mut *connection).await?;

    let mut samples = QueryBuilder::<Sqlite>::new(
        "INSERT OR REPLACE INTO lag_samples (series_id, time_ms, committed, end_offset, lag)
         SELECT series.id, v.column5, v.column6, v.column7, v.column8 FROM (",
    );
    samples.push_values(chunk, |mut row, sample| {
        row.push_bind(sample.cluster.as_str())
            .push_bind(sample.group.as_str())
            .push_bind(sample.topic.as_str())
            .push_bind(sample.partition)
            .push_bind(sample.time_ms)
            .push_bind(sample.committed)
            .push_bind(sample.end_offset)
            .push_bind(sample.lag);
    });
    samples.push(
        ") AS v
         JOIN lag_series AS series
           ON series.cluster = v.column1 AND series.consumer_group = v.column2
          AND series.topic = v.column3 AND series.partition = v.column4",
    );
    samples.build().execute(&mut *connection).await?;
    Ok(())
}

async fn insert_throughput_chunk(
    connection: &mut SqliteConnection,
    chunk: &[ThroughputSample],
) -> Result<(), sqlx::Error> {
    let mut series = QueryBuilder::<Sqlite>::new("INSERT INTO throughput_series (cluster, topic) ");
    series.push_values(chunk, |mut row, sample| {
        row.push_bind(sample.cluster.as_str())
            .push_bind(sample.topic.as_str());
    });
    series.push(" ON CONFLICT DO NOTHING");
    series.build().execute(&mut *connection).await?;

    let mut samples = QueryBuilder::<Sqlite>::new(
        "INSERT OR REPLACE INTO throughput_samples
             (series_id, time_ms, messages_per_sec, bytes_per_sec)
         SELECT series.id, v.column3, v.column4, v.column5 FROM (",
    );
    samples.push_values(chunk, |mut row, sample| {
        row.push_bind(sample.cluster.as_str())
            .push_bind(sample.topic.as_str())
            .push_bind(sample.time_ms)
            .push_bind(sample.messages_per_sec)
            .push_bind(sample.bytes_per_sec);
    });
    samples.push(
        ") AS v
         JOIN throughput_series AS series
           ON series.cluster = v.column1 AND series.topic = v.column2",
    );
    samples.build().execute(&mut *connection).await?;
    Ok(())
}

async fn prune(
    connection: &mut SqliteConnection,
    time_ms: i64,
) -> Result<PruneReport, sqlx::Error> {
    let lag = sqlx::query(PRUNE_LAG_SAMPLES_SQL)
        .bind(time_ms)
        .execute(&mut *connection)
        .await?;
    sqlx::query(PRUNE_LAG_SERIES_SQL)
        .execute(&mut *connection)
        .await?;
    let throughput = sqlx::query(PRUNE_THROUGHPUT_SAMPLES_SQL)
        .bind(time_ms)
        .execute(&mut *connection)
        .await?;
    sqlx::query(PRUNE_THROUGHPUT_SERIES_SQL)
        .execute(&mut *connection)
        .await?;
    Ok(PruneReport {
        lag_samples_deleted: lag.rows_affected(),
        throughput_samples_deleted: throughput.rows_affected(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for `sql`, one line per step.
    async fn query_plan(store: &Store, sql: &str) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
        for _ in 0..sql.matches('?').count() {
            query = query.bind(0_i64);
        }
        let steps = query.fetch_all(&store.pool).await.expect("explain");
        steps.into_iter().map(|(_, _, _, detail)| detail).collect()
    }

    #[tokio::test]
    async fn history_and_prune_search_indexes_instead_of_scanning_samples() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = Store::open(directory.path().join("eddy.db"))
            .await
            .expect("open");

        for sql in [
            LAG_HISTORY_SQL,
            LAG_SERIES_NAMES_SQL,
            PARTITION_LAG_HISTORY_SQL,
            THROUGHPUT_HISTORY_SQL,
        ] {
            let plan = query_plan(&store, sql).await;
            let scans = plan.iter().any(|step| step.starts_with("SCAN"));
            assert!(!scans, "{sql}\n{plan:#?}");
        }
        // Pruning visits every series (few), never every sample (many).
        for sql in [
            PRUNE_LAG_SAMPLES_SQL,
            PRUNE_LAG_SERIES_SQL,
            PRUNE_THROUGHPUT_SAMPLES_SQL,
            PRUNE_THROUGHPUT_SERIES_SQL,
        ] {
            let plan = query_plan(&store, sql).await;
            let scans_samples = plan
                .iter()
                .any(|step| step.starts_with("SCAN") && step.contains("samples"));
            assert!(!scans_samples, "{sql}\n{plan:#?}");
        }
    }
}
