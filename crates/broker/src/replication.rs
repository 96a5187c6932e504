//! Replication, Kafka's way: followers fetch from leaders with the Fetch API.
//!
//! [`run`] keeps one fetcher task per leader this node follows, fed with the
//! partitions it follows there, and one loop that, on partitions this node
//! leads, moves the ISR through the controller (AlterPartition): out after
//! `replica.lag.time.max.ms` without catching up, back in once caught up.
//!
//! A fetcher asks for each partition from its log end offset, naming the
//! epoch of its last batch; the leader answers with records, or with the
//! epoch and offset where the logs diverge (an old leader's unreplicated
//! tail), which the follower truncates before fetching on.
//!
//! Kafka's replication throttles apply here: a fetcher leaves out the
//! partitions that topics' `follower.replication.throttled.replicas` name
//! for this node while the node's `follower.replication.throttled.rate` is
//! used up, and asks for no more than it allows; the leader side
//! (`leader.replication.throttled.*`) is in the Fetch handler. Both read
//! the configs at each fetch, so changes apply at once. Unlike Kafka, whose
//! throttles spare in-sync replicas (they are meant for reassignment
//! traffic), they hold back every listed replica: a throttled follower under
//! a load above its rate falls behind and leaves the ISR after
//! `replica.lag.time.max.ms`, which is how a slow node shows. A node isolated by
//! fault injection ([`crate::faults`]) fetches nothing and drops its
//! connections to leaders until it heals.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use eddy_metadata::{Command, CommandOutput};
use eddy_protocol::messages::{
    FetchRequest, FetchResponse, RequestHeader,
    fetch_request::{FetchPartition, FetchTopic},
};
use eddy_protocol::{ApiKey, ErrorCode, RequestBody, RequestFrame, ResponseBody, ResponseFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::{Assignment, Broker, Partition};

/// The Fetch version followers speak: names topics, carries the replica id
/// and the last fetched epoch, and returns diverging epochs.
const REPLICA_FETCH_VERSION: i16 = 12;
/// Bytes one follower fetch asks for, per partition and in all.
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const FETCH_MAX_BYTES: i32 = 16 << 20;
/// How long a follower waits before reconnecting to a leader it lost.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause after failures in a row (Kafka's
/// `replica.fetch.backoff.ms`): a leader that keeps closing the connection
/// (isolated by fault injection) is not asked ten times a second.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// The pause after `failures` failed attempts in a row: doubling from
/// [`RECONNECT_BACKOFF`] up to [`MAX_RECONNECT_BACKOFF`].
fn reconnect_backoff(failures: u32) -> Duration {
    RECONNECT_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(MAX_RECONNECT_BACKOFF)
}
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often leaders look at their ISRs.
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(200);
/// The largest fetch response a follower accepts.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Runs replication for `broker` until it is dropped.
pub async fn run(broker: Weak<Broker>) {
    let Some(strong) = broker.upgrade() else {
        return;
    };
    let mut role_changes = strong.subscribe_role_changes();
    let isr = tokio::spawn(isr_loop(broker.clone()));
    drop(strong);
    let mut fetchers: HashMap<i32, Fetcher> = HashMap::new();
    loop {
        let Some(strong) = broker.upgrade() else {
            break;
        };
        role_changes.borrow_and_update();
        let mut wanted: BTreeMap<i32, Vec<Arc<Partition>>> = BTreeMap::new();
        for (_, partition) in strong.partitions() {
            let assignment = partition.assignment();
            if assignment.leader >= 0 && assignment.leader != strong.node_id {
                wanted.entry(assignment.leader).or_default().push(partition);
            }
        }
        fetchers.retain(|leader, fetcher| {
            let keep = wanted.contains_key(leader) && !fetcher.task.is_finished();
            if !keep {
                fetcher.task.abort();
            }
            keep
        });
        for (leader, partitions) in wanted {
            match fetchers.get(&leader) {
                Some(fetcher) => {
                    fetcher.partitions.send_replace(partitions);
                }
                None => {
                    let (sender, receiver) = watch::channel(partitions);
                    let task = tokio::spawn(fetch_from(broker.clone(), leader, receiver));
                    fetchers.insert(
                        leader,
                        Fetcher {
                            partitions: sender,
                            task,
                        },
                    );
                }
            }
        }
        drop(strong);
        if role_changes.changed().await.is_err() {
            break;
        }
    }
    for fetcher in fetchers.values() {
        fetcher.task.abort();
    }
    isr.abort();
}

struct Fetcher {
    partitions: watch::Sender<Vec<Arc<Partition>>>,
    task: JoinHandle<()>,
}

/// Copies the partitions in `partitions` from `leader`, for as long as this
/// node follows it.
async fn fetch_from(
    broker: Weak<Broker>,
    leader: i32,
    mut partitions: watch::Receiver<Vec<Arc<Partition>>>,
) {
    let mut link: Option<Link> = None;
    let mut failures: u32 = 0;
    let mut faults = eddy_metadata::fault::subscribe();
    loop {
        if *faults.borrow_and_update() {
            // Isolated by fault injection: nothing goes to the leader.
            link = None;
            if faults.wait_for(|isolated| !*isolated).await.is_err() {
                return;
            }
            continue;
        }
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let followed = partitions.borrow_and_update().clone();
        if followed.is_empty() {
            drop(strong);
            if partitions.changed().await.is_err() {
                return;
            }
            continue;
        }
        if link.is_none() {
            let Some(address) = strong
                .image()
                .broker(leader)
                .map(|registration| format!("{}:{}", registration.host, registration.port))
            else {
                drop(strong);
                tokio::time::sleep(RECONNECT_BACKOFF).await;
                continue;
            };
            match Link::connect(&address, strong.node_id).await {
                Ok(connected) => link = Some(connected),
                Err(error) => {
                    tracing::debug!(leader, %address, %error, "cannot reach the leader");
                    drop(strong);
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(reconnect_backoff(failures)).await;
                    continue;
                }
            }
        }
        let throttle = FollowerThrottle::now(&strong, &followed);
        let request = fetch_request(&strong, &followed, &throttle);
        let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
        drop(strong);
        if request.topics.is_empty() {
            // Every partition is throttled and over the quota: wait for it.
            tokio::time::sleep(throttle.wait).await;
            continue;
        }
        let Some(connected) = link.as_mut() else {
            continue;
        };
        let exchange =
            tokio::time::timeout(wait + Duration::from_secs(5), connected.fetch(request));
        let response = tokio::select! {
            response = exchange => response,
            () = eddy_metadata::fault::until_isolated(&mut faults) => {
                link = None;
                continue;
            }
        };
        let response = match response {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::debug!(leader, %error, "fetch from the leader failed");
                link = None;
                failures = failures.saturating_add(1);
                tokio::time::sleep(reconnect_backoff(failures)).await;
                continue;
            }
            Err(_) => {
                link = None;
                continue;
            }
        };
        failures = 0;
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let mut backoff = false;
        for topic in response.responses {
            for data in topic.partitions {
                let Some(partition) = followed.iter().find(|partition| {
                    partition.topic.as_str() == topic.topic.as_str()
                        && partition.index == data.partition_index
                }) else {
                    continue;
                };
                if throttle.covers(partition) {
                    let bytes = data.records.as_ref().map_or(0, Bytes::len);
                    follower_quota().charge(throttle.rate, bytes);
                }
                if apply_fetched(&strong, partition, data).is_err() {
                    backoff = true;
                }
            }
        }
        drop(strong);
        if backoff {
            // The leader or its epoch moved: wait for the metadata to say so.
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
    }
}

fn fetch_request(
    broker: &Broker,
    followed: &[Arc<Partition>],
    throttle: &FollowerThrottle,
) -> FetchRequest {
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    for partition in followed {
        let throttled = throttle.covers(partition);
        if throttled && throttle.allowance <= 0 {
            // Over the follower quota: left out of this fetch, as in Kafka.
            continue;
        }
        let partition_max_bytes = if throttled {
            i32::try_from(throttle.allowance)
                .unwrap_or(i32::MAX)
                .min(PARTITION_MAX_BYTES)
        } else {
            PARTITION_MAX_BYTES
        };
        let (end, last_epoch, start) = {
            let log = partition
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (
                log.log_end_offset(),
                log.latest_epoch().unwrap_or(-1),
                log.log_start_offset(),
            )
        };
        topics
            .entry(partition.topic.clone())
            .or_default()
            .push(FetchPartition {
                partition: partition.index,
                current_leader_epoch: partition.leader_epoch(),
                fetch_offset: end,
                last_fetched_epoch: last_epoch,
                log_start_offset: start,
                partition_max_bytes,
                ..Default::default()
            });
    }
    FetchRequest {
        replica_id: broker.node_id,
        max_wait_ms: broker.broker_config().replica_fetch_wait_max_ms(),
        min_bytes: 1,
        max_bytes: FETCH_MAX_BYTES,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| FetchTopic {
                topic: topic.as_str().into(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// The follower throttle as it applies to one fetch: the node's
/// `follower.replication.throttled.rate`, the partitions that topics'
/// `follower.replication.throttled.replicas` name for this node, and the
/// bytes the quota allows now.
struct FollowerThrottle {
    rate: Option<u64>,
    throttled: Vec<(String, i32)>,
    allowance: i64,
    /// How long until the quota allows bytes again.
    wait: Duration,
}

impl FollowerThrottle {
    fn now(broker: &Broker, followed: &[Arc<Partition>]) -> FollowerThrottle {
        let rate = broker.broker_config().follower_replication_throttled_rate();
        let mut throttled = Vec::new();
        if rate.is_some() {
            for partition in followed {
                let listed = broker.topic(&partition.topic).is_some_and(|topic| {
                    topic
                        .config
                        .read()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .follower_throttled(partition.index, broker.node_id)
                });
                if listed {
                    throttled.push((partition.topic.clone(), partition.index));
                }
            }
        }
        let (allowance, wait) = if throttled.is_empty() {
            (i64::MAX, Duration::ZERO)
        } else {
            let mut quota = follower_quota();
            (quota.available(rate), quota.wait(rate))
        };
        FollowerThrottle {
            rate,
            throttled,
            allowance,
            wait: wait.max(Duration::from_millis(10)),
        }
    }

    fn covers(&self, partition: &Partition) -> bool {
        self.throttled
            .iter()
            .any(|(topic, index)| *topic == partition.topic && *index == partition.index)
    }
}

/// A replication quota: bytes per second, as a token bucket that holds at
/// most one second of bytes. A batch is never split, so the bucket can go
/// below zero; nothing throttled moves until it refills.
#[derive(Debug)]
pub struct Quota {
    tokens: f64,
    updated: std::time::Instant,
}

impl Quota {
    const fn new() -> Option<Quota> {
        None
    }

    fn refill(&mut self, rate: u64) {
        let now = std::time::Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate as f64).min(rate as f64);
        self.updated = now;
    }

    /// Bytes the quota allows now (`i64::MAX` without a rate).
    pub fn available(&mut self, rate: Option<u64>) -> i64 {
        let Some(rate) = rate else {
            return i64::MAX;
        };
        self.refill(rate);
        self.tokens.floor() as i64
    }

    /// Counts `bytes` sent or received under the quota.
    pub fn charge(&mut self, rate: Option<u64>, bytes: usize) {
        if let Some(rate) = rate {
            self.refill(rate);
            self.tokens -= bytes as f64;
        }
    }

    /// How long until the quota allows bytes again.
    pub fn wait(&mut self, rate: Option<u64>) -> Duration {
        match rate {
            Some(rate) if rate > 0 => {
                self.refill(rate);
                if self.tokens >= 1.0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64(((1.0 - self.tokens) / rate as f64).min(1.0))
                }
            }
            Some(_) => Duration::from_secs(1),
            None => Duration::ZERO,
        }
    }
}

/// A node-wide quota (one process is one node).
pub struct QuotaGuard(std::sync::MutexGuard<'static, Option<Quota>>);

impl std::ops::Deref for QuotaGuard {
    type Target = Quota;
    fn deref(&self) -> &Quota {
        self.0.as_ref().expect("initialised when locked")
    }
}

impl std::ops::DerefMut for QuotaGuard {
    fn deref_mut(&mut self) -> &mut Quota {
        self.0.as_mut().expect("initialised when locked")
    }
}

fn lock_quota(quota: &'static std::sync::Mutex<Option<Quota>>) -> QuotaGuard {
    let mut guard = quota
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.get_or_insert_with(|| Quota {
        tokens: f64::MAX,
        updated: std::time::Instant::now(),
    });
    QuotaGuard(guard)
}

/// This node's follower quota (`follower.replication.throttled.rate`), shared
/// by its fetchers.
fn follower_quota() -> QuotaGuard {
    static QUOTA: std::sync::Mutex<Option<Quota>> = std::sync::Mutex::new(Quota::new());
    lock_quota(&QUOTA)
}

/// This node's leader quota (`leader.replication.throttled.rate`), shared by
/// the replica fetches it serves.
pub fn leader_quota() -> QuotaGuard {
    static QUOTA: std::sync::Mutex<Option<Quota>> = std::sync::Mutex::new(Quota::new());
    lock_quota(&QUOTA)
}

/// Applies one partition of a fetch response: truncation at a divergence,
/// new records, the leader's high watermark and log start.
fn apply_fetched(
    broker: &Broker,
    partition: &Partition,
    data: eddy_protocol::messages::fetch_response::PartitionData,
) -> Result<(), ErrorCode> {
    let code = ErrorCode::from_code(data.error_code).unwrap_or(ErrorCode::UnknownServerError);
    if code != ErrorCode::None {
        if code == ErrorCode::OffsetOutOfRange {
            // The leader no longer has what we would fetch next (retention,
            // DeleteRecords): start again from its log start.
            let mut log = partition
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if data.log_start_offset > log.log_end_offset() {
                if let Err(error) = log.truncate_to(0) {
                    tracing::warn!(partition = partition.name(), %error, "could not reset the log");
                }
                let _ = log.delete_records_before(data.log_start_offset);
            }
        }
        tracing::debug!(
            partition = partition.name(),
            ?code,
            "leader refused a fetch"
        );
        return Err(code);
    }
    let mut log = partition
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
        let (_, own_end) = log.end_offset_for_epoch(data.diverging_epoch.epoch);
        let to = data
            .diverging_epoch
            .end_offset
            .min(own_end)
            .min(log.log_end_offset());
        tracing::info!(
            partition = partition.name(),
            from = log.log_end_offset(),
            to,
            epoch = data.diverging_epoch.epoch,
            "truncating to where this log and the leader's diverge"
        );
        let to = to.max(log.log_start_offset());
        if let Err(error) = log.truncate_to(to) {
            tracing::error!(partition = partition.name(), %error, "truncation failed");
            return Err(ErrorCode::KafkaStorageError);
        }
        return Ok(());
    }
    if let Some(records) = data.records.filter(|records| !records.is_empty())
        && let Err(error) = log.append_as_follower(records)
    {
        tracing::warn!(partition = partition.name(), %error, "could not append fetched batches");
        return Err(ErrorCode::KafkaStorageError);
    }
    if data.log_start_offset > log.log_start_offset() {
        let start = data.log_start_offset.min(log.log_end_offset());
        let _ = log.delete_records_before(start);
    }
    drop(log);
    partition.set_follower_high_watermark(data.high_watermark);
    broker.notify_appended();
    Ok(())
}

/// Moves ISRs of partitions this node leads through the controller.
async fn isr_loop(broker: Weak<Broker>) {
    let mut ticker = tokio::time::interval(ISR_CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let lag_max_ms = strong.broker_config().replica_lag_time_max_ms();
        for (_, partition) in strong.partitions() {
            if let Some(wanted) = partition.wanted_isr(strong.node_id, lag_max_ms) {
                partition.set_isr_change_in_flight(true);
                tokio::spawn(alter_isr(strong.clone(), partition, wanted));
            }
        }
    }
}

async fn alter_isr(broker: Arc<Broker>, partition: Arc<Partition>, wanted: Assignment) {
    tracing::info!(
        partition = partition.name(),
        from = ?partition.assignment().isr,
        to = ?wanted.isr,
        "asking the controller to change the ISR"
    );
    let result = broker
        .metadata
        .propose(
            Command::AlterPartition {
                topic: partition.topic.clone(),
                partition: partition.index,
                leader: broker.node_id,
                leader_epoch: wanted.leader_epoch,
                partition_epoch: wanted.partition_epoch,
                isr: wanted.isr.clone(),
            },
            Duration::from_secs(5),
        )
        .await;
    match result {
        Ok(Ok(CommandOutput::Partition(state))) => {
            partition.apply_assignment(
                broker.node_id,
                Assignment {
                    leader: state.leader,
                    leader_epoch: state.leader_epoch,
                    partition_epoch: state.partition_epoch,
                    replicas: state.replicas,
                    isr: state.isr,
                    adding: state.adding_replicas,
                },
            );
            if partition.advance_high_watermark() {
                broker.notify_appended();
            }
        }
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::info!(partition = partition.name(), code = ?error.code, %error.message, "ISR change refused");
        }
        Err(error) => {
            tracing::warn!(partition = partition.name(), %error, "ISR change not answered");
        }
    }
    partition.set_isr_change_in_flight(false);
}

/// A follower's connection to a leader's Kafka listener.
struct Link {
    stream: TcpStream,
    client_id: String,
    correlation_id: i32,
    buffer: BytesMut,
}

impl Link {
    async fn connect(address: &str, node_id: i32) -> std::io::Result<Link> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        Ok(Link {
            stream,
            client_id: format!("eddy-replica-{node_id}"),
            correlation_id: 0,
            buffer: BytesMut::new(),
        })
    }

    async fn fetch(&mut self, request: FetchRequest) -> std::io::Result<FetchResponse> {
        let invalid =
            |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = RequestFrame {
            header: RequestHeader {
                request_api_key: ApiKey::Fetch as i16,
                request_api_version: REPLICA_FETCH_VERSION,
                correlation_id: self.correlation_id,
                client_id: Some(self.client_id.as_str().into()),
                ..Default::default()
            },
            body: RequestBody::Fetch(request),
        };
        let mut encoded = frame.encode().map_err(|error| invalid(error.to_string()))?;
        while encoded.has_remaining() {
            let chunk = encoded.chunk().to_vec();
            self.stream.write_all(&chunk).await?;
            encoded.advance(chunk.len());
        }
        let length = self.stream.read_i32().await?;
        let length = usize::try_from(length)
            .ok()
            .filter(|length| *length <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| invalid(format!("response of {length} bytes")))?;
        self.buffer.clear();
        self.buffer.resize(length, 0);
        self.stream.read_exact(&mut self.buffer).await?;
        let bytes: Bytes = self.buffer.split().freeze();
        let response = ResponseFrame::decode(&bytes, ApiKey::Fetch, REPLICA_FETCH_VERSION)
            .map_err(|error| invalid(error.to_string()))?;
        if response.header.correlation_id != self.correlation_id {
            return Err(invalid("response to another request".into()));
        }
        match response.body {
            ResponseBody::Fetch(response) => Ok(response),
            _ => Err(invalid("not a fetch response".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Quota {
        Quota {
            tokens: f64::MAX,
            updated: std::time::Instant::now(),
        }
    }

    #[test]
    fn a_quota_allows_a_second_of_bytes_and_refills_at_its_rate() {
        let mut quota = full();
        assert_eq!(quota.available(None), i64::MAX);
        assert_eq!(quota.wait(None), Duration::ZERO);
        let rate = Some(1_000_000);
        assert_eq!(
            quota.available(rate),
            1_000_000,
            "at most one second's worth"
        );
        // A batch larger than what is left overdraws the quota.
        quota.charge(rate, 1_500_000);
        assert!(quota.available(rate) < 0);
        let wait = quota.wait(rate);
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(501),
            "{wait:?}"
        );
        std::thread::sleep(Duration::from_millis(600));
        assert!(quota.available(rate) > 0, "refilled");
        assert_eq!(quota.wait(Some(0)), Duration::from_secs(1));
    }

    #[test]
    fn fetchers_back_off_more_after_each_failure_in_a_row() {
        let pauses: Vec<u128> = (1..=6)
            .map(|failures| reconnect_backoff(failures).as_millis())
            .collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(reconnect_backoff(u32::MAX), MAX_RECONNECT_BACKOFF);
    }
}
