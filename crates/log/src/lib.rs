//! eddy-log: Kafka's on-disk partition log, synchronous.
//!
//! A partition is a directory (e.g. `DATA/orders-0`) of segments, laid out as
//! Kafka lays them out so its tools can read them:
//!
//! - `00000000000000000000.log`: record batches exactly as produced, with the
//!   base offset and partition leader epoch rewritten (and the max timestamp,
//!   for `LogAppendTime` topics); named by the segment's base offset.
//! - `.index`: sparse offset index, one entry (relative offset u32, file
//!   position u32) per `index.interval.bytes` of batches.
//! - `.timeindex`: sparse time index (timestamp i64, relative offset u32),
//!   written when the segment's max timestamp grows.
//! - `leader-epoch-checkpoint`: Kafka's text file of `epoch start_offset`
//!   lines, rewritten atomically when an epoch starts or is truncated.
//! - `log-start-offset`: the log start offset raised by DeleteRecords or
//!   retention.
//! - `cleaner-offset-checkpoint`: where compaction's dirty section starts.
//! - Transient, during compaction: `<base>.log.<n>.cleaned` (being written)
//!   and `<base>.log.swap` (committed, being swapped in); open settles both.
//!
//! [`PartitionLog`] is the whole API: [`PartitionLog::open`] (with recovery),
//! [`PartitionLog::append`] (leader: assigns offsets, idempotent-producer
//! checks), [`PartitionLog::append_as_follower`], [`PartitionLog::read`]
//! (whole batches, at least one: KIP-74), lookups by timestamp and by leader
//! epoch, [`PartitionLog::truncate_to`], [`PartitionLog::delete_records_before`],
//! [`PartitionLog::enforce_retention`], compaction
//! ([`PartitionLog::plan_compaction`], [`CompactionPlan::run`],
//! [`PartitionLog::install_compaction`]), [`PartitionLog::flush`] and
//! [`PartitionLog::delete`]. Configuration is [`LogConfig`] with Kafka's topic
//! config names and defaults; failures are [`LogError`], each with its Kafka
//! error code; [`PartitionLog::recovery_report`] tells what opening repaired.
//!
//! Compaction (`cleanup.policy=compact`, alone or with `delete`) is Kafka's
//! log cleaner: only sealed segments are cleaned; the latest record per key
//! survives, at its original offset; tombstones go once `delete.retention.ms`
//! has passed since a pass first kept them; cleaned segments are swapped in
//! crash-safely. The cleaning itself runs without the log, so appends and
//! reads go on; see `cleaner` and `log::compaction`. Nothing here schedules
//! passes: the broker asks [`PartitionLog::compaction_due`] and runs them on a
//! blocking thread.
//!
//! Recovery on open: the active (last) segment is read batch by batch and
//! checked (length, magic, CRC-32C, offsets); a torn or corrupt tail is cut
//! off and its indexes are rebuilt. Older segments are flushed when they roll,
//! so only their framing is checked, and their indexes are trusted when they
//! look sane (sizes, ordering, bounds), rebuilt otherwise. Producer state and,
//! if its checkpoint is missing or unreadable, the leader-epoch cache are
//! rebuilt from the batch headers of every segment.
//!
//! What it does not do:
//! - No async, no locking: the broker owns one `PartitionLog` per partition
//!   behind a mutex. Reads take `&self` and use positional reads.
//! - No decoding on the append and fetch paths: records are only decoded to
//!   answer a lookup by timestamp with a record's exact offset.
//! - No high watermark, ISR or replication protocol: the broker passes the
//!   high watermark to [`PartitionLog::read`] as `max_offset`. Retention does
//!   not know it either (Kafka never deletes past it); with replication, the
//!   broker should hold retention back for unreplicated data.
//! - No transactions: transactional and control batches are stored as they
//!   come, with no last-stable-offset or aborted-transaction index.
//! - No producer-state snapshots: open scans every batch header (cost grows
//!   with the log). Compaction keeps the batches producer state remembers, so
//!   state rebuilt after it still detects retries.
//! - No `min.compaction.lag.ms` / `max.compaction.lag.ms`, and no transaction
//!   awareness in compaction: transactional batches are kept as they are.
//! - No zero-copy reads: [`PartitionLog::read`] copies bytes into a `Bytes`.

mod checkpoint;
mod cleaner;
mod config;
mod epoch;
mod error;
mod fileio;
mod index;
mod log;
mod producer_state;
mod recovery;
mod scan;
mod segment;

pub use cleaner::{CleanedSegments, CompactionLimits, CompactionPlan, CompactionReport};
pub use config::{LogConfig, MAX_SEGMENT_BYTES};
pub use error::LogError;
pub use log::{AppendOutcome, PartitionLog, RecoveryReport, TimestampOffset};
pub use producer_state::RETAINED_BATCHES_PER_PRODUCER;
