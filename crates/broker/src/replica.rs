//! One partition replica on this node: its log, and its part in replication.
//!
//! The metadata log says who leads a partition, at which leader epoch, and
//! which replicas are in sync (the ISR). A [`Partition`] keeps that
//! assignment as last applied here, and, while this node leads, what each
//! follower has fetched: the high watermark is the smallest log end offset
//! over the ISR, a follower that has not caught up for
//! `replica.lag.time.max.ms` is dropped from the ISR and one that catches
//! up is added back (both through the controller, with AlterPartition).
//!
//! Consumers read below the high watermark only; `acks=all` producers wait
//! for it to pass their batch.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use eddy_log::PartitionLog;
use eddy_protocol::ErrorCode;
use tokio::sync::watch;

use crate::state::now_ms;

/// Who leads, at which epochs, and the replica and in-sync sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas a reassignment is adding (not yet in sync).
    pub adding: Vec<i32>,
}

impl Assignment {
    /// Nothing known yet: a replica just opened, before its first assignment.
    pub fn unknown() -> Self {
        Self {
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            adding: Vec::new(),
        }
    }
}

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowerProgress {
    /// The offset the follower last asked for: everything below it is copied.
    pub log_end_offset: i64,
    /// When the follower last had everything the leader had.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's previous fetch, and when.
    previous_fetch_leader_end: i64,
    previous_fetch_ms: i64,
}

#[derive(Debug)]
struct ReplicaState {
    assignment: Assignment,
    followers: BTreeMap<i32, FollowerProgress>,
    /// An ISR change sent to the controller and not yet answered.
    isr_change_in_flight: bool,
    /// Leader: where this node's log ended when its leadership began. A
    /// follower must reach it to join the ISR, as in Kafka: a new leader's
    /// high watermark can lag its log, and a follower caught up to the
    /// high watermark alone may still miss records of earlier epochs.
    epoch_start_offset: i64,
}

/// One partition hosted on this node.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub log: Mutex<PartitionLog>,
    state: Mutex<ReplicaState>,
    high_watermark: watch::Sender<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why a produce or fetch is refused here.
pub fn epoch_error(current: i32, requested: i32) -> Option<ErrorCode> {
    if requested < 0 || requested == current {
        None
    } else if requested < current {
        Some(ErrorCode::FencedLeaderEpoch)
    } else {
        Some(ErrorCode::UnknownLeaderEpoch)
    }
}

impl Partition {
    /// A replica with no assignment yet; [`Partition::apply_assignment`]
    /// gives it one.
    pub fn new(topic: &str, index: i32, log: PartitionLog) -> Self {
        let (high_watermark, _) = watch::channel(0);
        let assignment = Assignment::unknown();
        Self {
            topic: topic.to_string(),
            index,
            log: Mutex::new(log),
            state: Mutex::new(ReplicaState {
                assignment,
                followers: BTreeMap::new(),
                isr_change_in_flight: false,
                epoch_start_offset: 0,
            }),
            high_watermark,
        }
    }

    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// Calls `visit` with every record of the log, oldest first (reading a
    /// small internal topic back: group state, events). Batches that do not
    /// decode are skipped.
    pub fn for_each_record(&self, mut visit: impl FnMut(eddy_protocol::records::Record)) {
        let log = lock(&self.log);
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
        while offset < end {
            let Ok(chunk) = log.read(offset, 1 << 20, end) else {
                break;
            };
            if chunk.is_empty() {
                break;
            }
            for (header, batch) in eddy_protocol::records::batches(&chunk).flatten() {
                offset = offset.max(header.next_offset());
                let Ok(decoded) = eddy_protocol::records::RecordBatch::decode(&batch) else {
                    continue;
                };
                decoded.records.into_iter().for_each(&mut visit);
            }
        }
    }

    pub fn assignment(&self) -> Assignment {
        lock(&self.state).assignment.clone()
    }

    pub fn leader_epoch(&self) -> i32 {
        lock(&self.state).assignment.leader_epoch
    }

    pub fn is_leader(&self, node_id: i32) -> bool {
        lock(&self.state).assignment.leader == node_id
    }

    /// Checks that this node leads at the epoch a client names (-1: any).
    pub fn check_leader(
        &self,
        node_id: i32,
        requested_epoch: i32,
    ) -> Result<Assignment, ErrorCode> {
        let state = lock(&self.state);
        if state.assignment.leader != node_id {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if let Some(code) = epoch_error(state.assignment.leader_epoch, requested_epoch) {
            return Err(code);
        }
        Ok(state.assignment.clone())
    }

    /// Applies the assignment from the metadata log. Returns whether this
    /// node's role or the leader epoch changed (the caller then starts or
    /// stops fetching).
    pub fn apply_assignment(&self, node_id: i32, assignment: Assignment) -> bool {
        let mut state = lock(&self.state);
        let changed = state.assignment.leader != assignment.leader
            || state.assignment.leader_epoch != assignment.leader_epoch;
        let newer = assignment.partition_epoch >= state.assignment.partition_epoch
            || assignment.leader_epoch > state.assignment.leader_epoch;
        if !newer {
            return false;
        }
        // A follower starts from scratch: its log end offset is unknown
        // (so it joins the ISR only once it fetches up to the high
        // watermark), and it is presumed caught up now so that none is
        // dropped at once.
        let now = now_ms();
        let fresh = FollowerProgress {
            log_end_offset: -1,
            last_caught_up_ms: now,
            previous_fetch_leader_end: -1,
            previous_fetch_ms: now,
        };
        if assignment.leader == node_id && !changed {
            // Same leadership: a reassignment may have changed the replicas
            // at the same leader epoch. Only followers that stay keep their
            // progress; one added (perhaps removed and re-added, its log
            // deleted in between) starts from scratch. So does one that a
            // reassignment has just begun to add, even if this node never
            // saw it leave (the images in between were skipped).
            let previous = &state.assignment;
            state.followers = assignment
                .replicas
                .iter()
                .filter(|&&replica| replica != node_id)
                .map(|&replica| {
                    let newly_added =
                        assignment.adding.contains(&replica) && !previous.adding.contains(&replica);
                    let kept = (previous.replicas.contains(&replica) && !newly_added)
                        .then(|| state.followers.get(&replica).copied())
                        .flatten();
                    (replica, kept.unwrap_or(fresh))
                })
                .collect();
        }
        if changed && assignment.leader == node_id {
            // A new leadership: every follower starts from scratch.
            state.followers = assignment
                .replicas
                .iter()
                .filter(|&&replica| replica != node_id)
                .map(|&replica| (replica, fresh))
                .collect();
            state.isr_change_in_flight = false;
            let mut log = lock(&self.log);
            state.epoch_start_offset = log.log_end_offset();
            if let Err(error) = log.assign_leader_epoch(assignment.leader_epoch) {
                tracing::warn!(partition = self.name(), %error, "could not record the leader epoch");
            }
        }
        state.assignment = assignment;
        drop(state);
        if self.is_leader(node_id) {
            self.advance_high_watermark();
        }
        changed
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A follower takes the leader's high watermark, capped at its own log end.
    pub fn set_follower_high_watermark(&self, leader_high_watermark: i64) {
        let end = lock(&self.log).log_end_offset();
        let value = leader_high_watermark.min(end);
        self.high_watermark.send_if_modified(|current| {
            if *current != value {
                *current = value;
                true
            } else {
                false
            }
        });
    }

    /// Leader: the high watermark is the smallest log end offset in the ISR.
    /// It never moves back. Returns whether it moved.
    pub fn advance_high_watermark(&self) -> bool {
        let end = lock(&self.log).log_end_offset();
        let state = lock(&self.state);
        let leader = state.assignment.leader;
        let mut value = end;
        for member in &state.assignment.isr {
            if *member == leader {
                continue;
            }
            let follower_end = state
                .followers
                .get(member)
                .map_or(-1, |progress| progress.log_end_offset);
            value = value.min(follower_end);
        }
        drop(state);
        self.high_watermark.send_if_modified(|current| {
            if value > *current {
                *current = value;
                true
            } else {
                false
            }
        })
    }

    /// Leader: a follower asked for `fetch_offset`; everything below it is
    /// copied. Kafka's rule for "caught up": it asked for the leader's log
    /// end offset now, or for the one at its previous fetch.
    pub fn record_follower_fetch(&self, follower: i32, fetch_offset: i64) {
        let end = lock(&self.log).log_end_offset();
        let now = now_ms();
        let mut state = lock(&self.state);
        let progress = state.followers.entry(follower).or_default();
        if fetch_offset >= end {
            progress.last_caught_up_ms = now;
        } else if fetch_offset >= progress.previous_fetch_leader_end
            && progress.previous_fetch_leader_end >= 0
        {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.previous_fetch_ms);
        }
        progress.log_end_offset = fetch_offset;
        progress.previous_fetch_leader_end = end;
        progress.previous_fetch_ms = now;
    }

    /// Leader: the ISR this partition should have now, if it differs from
    /// the current one and no change is in flight: laggards out, caught-up
    /// replicas in.
    pub fn wanted_isr(&self, node_id: i32, lag_time_max_ms: i64) -> Option<Assignment> {
        let high_watermark = self.high_watermark();
        let now = now_ms();
        let state = lock(&self.state);
        if state.assignment.leader != node_id || state.isr_change_in_flight {
            return None;
        }
        let mut isr: Vec<i32> = Vec::with_capacity(state.assignment.replicas.len());
        for &replica in &state.assignment.replicas {
            if replica == node_id {
                isr.push(replica);
                continue;
            }
            let Some(progress) = state.followers.get(&replica) else {
                if state.assignment.isr.contains(&replica) {
                    isr.push(replica);
                }
                continue;
            };
            let in_sync = state.assignment.isr.contains(&replica);
            let lagging = now - progress.last_caught_up_ms > lag_time_max_ms;
            let caught_up = progress.log_end_offset >= high_watermark
                && progress.log_end_offset >= state.epoch_start_offset
                && progress.log_end_offset >= 0
                && now - progress.last_caught_up_ms <= lag_time_max_ms;
            if (in_sync && !lagging) || (!in_sync && caught_up) {
                isr.push(replica);
            }
        }
        let mut current = state.assignment.isr.clone();
        current.sort_unstable();
        let mut sorted = isr.clone();
        sorted.sort_unstable();
        if sorted == current {
            return None;
        }
        Some(Assignment {
            isr,
            ..state.assignment.clone()
        })
    }

    pub fn set_isr_change_in_flight(&self, in_flight: bool) {
        lock(&self.state).isr_change_in_flight = in_flight;
    }

    /// Waits until the high watermark passes `last_offset`, leadership is
    /// lost (NOT_LEADER_OR_FOLLOWER), or `timeout` (REQUEST_TIMED_OUT).
    pub async fn wait_replicated(
        &self,
        node_id: i32,
        last_offset: i64,
        timeout: Duration,
    ) -> Result<(), ErrorCode> {
        let mut receiver = self.high_watermark.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if *receiver.borrow_and_update() > last_offset {
                return Ok(());
            }
            if !self.is_leader(node_id) {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
            // Wake at least every 100 ms to notice a lost leadership.
            let wake = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            match tokio::time::timeout_at(wake, receiver.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ErrorCode::NotLeaderOrFollower),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(ErrorCode::RequestTimedOut);
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use eddy_log::LogConfig;
    use eddy_protocol::records::{Compression, Record, RecordBatch};

    use super::*;

    const LAG_MAX_MS: i64 = 30_000;

    fn batch(count: usize) -> Bytes {
        let records = (0..count)
            .map(|i| Record {
                offset_delta: i as i32,
                value: Some(Bytes::from_static(b"value")),
                ..Record::default()
            })
            .collect();
        RecordBatch::new(0, 1_000, records)
            .encode(Compression::None)
            .expect("encode")
    }

    /// Partition `orders-index` on an empty log in a temporary directory
    /// (kept while the returned guard lives).
    fn partition(index: i32) -> (tempfile::TempDir, Partition) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = PartitionLog::open(dir.path(), LogConfig::default()).expect("open log");
        (dir, Partition::new("orders", index, log))
    }

    fn assignment(partition_epoch: i32, replicas: &[i32], isr: &[i32]) -> Assignment {
        Assignment {
            leader: 1,
            leader_epoch: 0,
            partition_epoch,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            adding: Vec::new(),
        }
    }

    #[test]
    fn a_follower_joins_the_isr_only_once_it_reaches_the_start_of_the_leaders_epoch() {
        let (_dir, partition) = partition(0);
        // Node 1 follows node 2: it has 5 records, 3 of them committed.
        partition.apply_assignment(
            1,
            Assignment {
                leader: 2,
                ..assignment(0, &[1, 2, 3], &[1, 2])
            },
        );
        lock(&partition.log)
            .append(batch(5), 0, now_ms())
            .expect("append");
        partition.set_follower_high_watermark(3);
        // Leadership moves to node 1 at epoch 1, from offset 5; its high
        // watermark stays 3 until node 2 fetches again.
        partition.apply_assignment(
            1,
            Assignment {
                leader_epoch: 1,
                ..assignment(1, &[1, 2, 3], &[1, 2])
            },
        );
        assert_eq!(partition.high_watermark(), 3);
        partition.record_follower_fetch(3, 4);
        assert_eq!(
            partition.wanted_isr(1, LAG_MAX_MS),
            None,
            "past the high watermark but short of the epoch's start (5)"
        );
        partition.record_follower_fetch(3, 5);
        let wanted = partition.wanted_isr(1, LAG_MAX_MS).expect("node 3 joins");
        assert_eq!(wanted.isr, vec![1, 2, 3]);
    }

    #[test]
    fn a_replica_re_added_between_two_images_starts_from_scratch() {
        let (_dir, partition) = partition(2);
        partition.apply_assignment(1, assignment(0, &[1, 2, 3], &[1, 2, 3]));
        lock(&partition.log)
            .append(batch(3), 0, now_ms())
            .expect("append");
        partition.record_follower_fetch(2, 3);
        partition.record_follower_fetch(3, 3);
        partition.advance_high_watermark();
        // Node 3 was removed (leaving the ISR, deleting its log) and is being
        // added again; this leader only sees the last of those images.
        partition.apply_assignment(
            1,
            Assignment {
                adding: vec![3],
                ..assignment(4, &[1, 2, 3], &[1, 2])
            },
        );
        assert_eq!(
            partition.wanted_isr(1, LAG_MAX_MS),
            None,
            "not in sync before it fetches"
        );
        partition.record_follower_fetch(3, 3);
        let wanted = partition.wanted_isr(1, LAG_MAX_MS).expect("node 3 rejoins");
        assert_eq!(wanted.isr, vec![1, 2, 3]);
    }

    #[test]
    fn a_removed_and_re_added_follower_rejoins_the_isr_only_after_fetching_up_to_the_high_watermark()
     {
        let (_dir, partition) = partition(1);
        partition.apply_assignment(1, assignment(0, &[1, 2, 3], &[1, 2, 3]));
        lock(&partition.log)
            .append(batch(3), 0, now_ms())
            .expect("append");
        partition.record_follower_fetch(2, 3);
        partition.record_follower_fetch(3, 3);
        partition.advance_high_watermark();
        assert_eq!(partition.high_watermark(), 3);
        assert_eq!(partition.wanted_isr(1, LAG_MAX_MS), None);

        // Node 3 is reassigned away (it leaves the ISR and deletes its
        // log); a fetch it sent before noticing still arrives.
        partition.apply_assignment(1, assignment(1, &[1, 2], &[1, 2]));
        partition.record_follower_fetch(3, 3);
        assert_eq!(partition.wanted_isr(1, LAG_MAX_MS), None);

        // Re-added at the same leader epoch, with an empty log: not in sync
        // until it has fetched up to the high watermark.
        partition.apply_assignment(1, assignment(2, &[1, 2, 3], &[1, 2]));
        assert_eq!(partition.wanted_isr(1, LAG_MAX_MS), None);
        partition.record_follower_fetch(3, 0);
        assert_eq!(partition.wanted_isr(1, LAG_MAX_MS), None);
        partition.record_follower_fetch(3, 3);
        let wanted = partition.wanted_isr(1, LAG_MAX_MS).expect("node 3 rejoins");
        assert_eq!(wanted.isr, vec![1, 2, 3]);

        // Node 2 stayed a replica throughout and kept its progress: the
        // high watermark follows its fetches.
        lock(&partition.log)
            .append(batch(2), 0, now_ms())
            .expect("append");
        partition.record_follower_fetch(2, 5);
        assert!(partition.advance_high_watermark());
        assert_eq!(partition.high_watermark(), 5);
    }
}
