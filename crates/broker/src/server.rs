//! The listener: accepts connections up to `max.connections`, runs
//! replication, log retention and compaction in the background, and shuts
//! down cleanly: a controlled shutdown (SIGTERM) first hands this node's
//! leaderships to in-sync followers while clients are still served, then
//! every shutdown stops accepting, closes connections between requests,
//! flushes every log and leaves the metadata quorum.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::connection;
use crate::state::{Broker, now_ms};

/// How long shutdown waits for connections to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a controlled shutdown waits for its leaderships to move.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: hand leaderships to in-sync followers first.
    Controlled,
    /// SIGINT (Ctrl-C, `eddy cluster down`): stop cleanly, no hand-offs.
    Immediate,
}

/// Serves Kafka clients on `listener` until `shutdown` completes.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = Shutdown>,
) -> std::io::Result<()> {
    let config = broker.broker_config();
    let max_request_bytes = config.socket_request_max_bytes();
    let connections = Arc::new(Semaphore::new(config.max_connections()));
    let (stop, stopped) = watch::channel(false);
    let retention = tokio::spawn(retention_loop(
        broker.clone(),
        config.retention_check_interval_ms(),
        stopped.clone(),
    ));
    let groups = tokio::spawn(group_loop(broker.clone(), stopped.clone()));
    let replication = tokio::spawn(crate::replication::run(Arc::downgrade(&broker)));
    let quorum = tokio::spawn(quorum_watch(broker.clone(), stopped.clone()));
    let events = tokio::spawn(crate::events::run(Arc::downgrade(&broker)));
    let faults = tokio::spawn(crate::faults::watch_file(
        broker.data_dir.clone(),
        stopped.clone(),
    ));
    let cleaner = tokio::spawn(cleaner_loop(
        broker.clone(),
        config.cleaner_backoff_ms(),
        stopped.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    // Clients are still served while a controlled shutdown hands off.
    let stop_when = {
        let broker = broker.clone();
        async move {
            if shutdown.await == Shutdown::Controlled {
                hand_off_leadership(broker).await;
            }
        }
    };
    tokio::pin!(stop_when);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop_when => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = config.max_connections(), "max.connections reached; refusing connection");
            drop(stream);
            continue;
        };
        let broker = broker.clone();
        let stopped = stopped.clone();
        tasks.spawn(async move {
            connection::serve(broker, stream, peer, max_request_bytes, stopped).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    retention.abort();
    groups.abort();
    cleaner.abort();
    replication.abort();
    quorum.abort();
    events.abort();
    faults.abort();
    flush_all(&broker);
    broker.metadata.clone().shutdown().await;
    Ok(())
}

/// Asks the controller to move this node's leaderships to in-sync
/// followers, and waits (bounded) until this node leads nothing it could
/// hand over.
async fn hand_off_leadership(broker: Arc<Broker>) {
    tracing::info!("controlled shutdown: handing leaderships to in-sync followers");
    if let Err(error) = broker
        .metadata
        .controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT)
        .await
    {
        tracing::warn!(%error, "controlled shutdown was not confirmed; stopping anyway");
        return;
    }
    let deadline = tokio::time::Instant::now() + CONTROLLED_SHUTDOWN_TIMEOUT;
    loop {
        let led = broker
            .partitions()
            .into_iter()
            .filter(|(_, partition)| {
                let assignment = partition.assignment();
                assignment.leader == broker.node_id && assignment.isr.len() > 1
            })
            .count();
        if led == 0 || tokio::time::Instant::now() >= deadline {
            tracing::info!(
                still_leading = led,
                "controlled shutdown: leaderships handed over"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn retention_loop(broker: Arc<Broker>, interval_ms: u64, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(1000)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        for (topic, partition) in broker.partitions() {
            let mut log = partition
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match log.enforce_retention(now_ms()) {
                Ok(0) => {}
                Ok(freed) => tracing::info!(
                    topic = topic.name,
                    partition = partition.index,
                    freed,
                    "retention deleted old segments"
                ),
                Err(error) => {
                    tracing::warn!(topic = topic.name, partition = partition.index, %error, "retention failed")
                }
            }
        }
    }
}

/// Compacts partitions of `cleanup.policy=compact` topics that are due. A
/// pass is planned and installed under the partition's lock but runs on a
/// blocking thread without it, so appends and reads never wait for it.
async fn cleaner_loop(broker: Arc<Broker>, backoff_ms: u64, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(backoff_ms.max(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let limits = eddy_log::CompactionLimits::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        for (topic, partition) in broker.partitions() {
            let plan = {
                let log = partition
                    .log
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if !log.compaction_due(now_ms()) {
                    continue;
                }
                // Only committed records are compacted.
                log.plan_compaction(now_ms(), partition.high_watermark())
            };
            let plan = match plan {
                Ok(Some(plan)) => plan,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(topic = topic.name, partition = partition.index, %error, "could not plan compaction");
                    continue;
                }
            };
            let limits = limits.clone();
            let cleaned = match tokio::task::spawn_blocking(move || plan.run(&limits)).await {
                Ok(Ok(cleaned)) => cleaned,
                Ok(Err(error)) => {
                    tracing::warn!(topic = topic.name, partition = partition.index, %error, "compaction failed");
                    continue;
                }
                Err(_) => continue,
            };
            let mut log = partition
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match log.install_compaction(cleaned) {
                Ok(report) if !report.discarded => tracing::info!(
                    topic = topic.name,
                    partition = partition.index,
                    bytes_before = report.bytes_before,
                    bytes_after = report.bytes_after,
                    "compacted"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(topic = topic.name, partition = partition.index, %error, "installing compaction failed; reopening the log");
                    let dir = log.dir().to_path_buf();
                    let config = log.config().clone();
                    match eddy_log::PartitionLog::open(&dir, config) {
                        Ok(reopened) => *log = reopened,
                        Err(error) => {
                            tracing::error!(topic = topic.name, partition = partition.index, %error, "reopening failed")
                        }
                    }
                }
            }
        }
    }
}

/// How often the metadata quorum's health is looked at, and how long a
/// starting node waits for one before saying so.
const QUORUM_CHECK_INTERVAL: Duration = Duration::from_millis(500);
const QUORUM_WAIT_WARNING: Duration = Duration::from_secs(5);

/// Says in the log when the metadata quorum is lost and when it is back,
/// so that a node without a majority of voters explains why metadata
/// changes and acks=all writes wait, instead of seeming to hang.
async fn quorum_watch(broker: Arc<Broker>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(QUORUM_CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let mut healthy_before = false;
    let mut warned_at_start = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        let quorum = broker.metadata.quorum();
        let voters = quorum.voters.len().max(1);
        if quorum.healthy && !healthy_before {
            if warned_at_start || started.elapsed() > QUORUM_WAIT_WARNING {
                tracing::info!(controller = ?quorum.leader_id, "the metadata quorum is back");
            }
        } else if !quorum.healthy && healthy_before {
            tracing::warn!(
                voters,
                needed = voters / 2 + 1,
                "metadata quorum lost: fewer than a majority of voters answer; topic changes, leader elections and ISR changes wait, and acks=all writes time out"
            );
        } else if !quorum.healthy && !warned_at_start && started.elapsed() > QUORUM_WAIT_WARNING {
            warned_at_start = true;
            tracing::warn!(
                voters,
                needed = voters / 2 + 1,
                "still waiting for a metadata quorum: start more of the cluster's nodes"
            );
        }
        healthy_before = quorum.healthy;
    }
}

/// How often group sessions and rebalance deadlines are checked.
const GROUP_TICK: Duration = Duration::from_millis(100);

async fn group_loop(broker: Arc<Broker>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(GROUP_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => broker.groups.tick(&broker),
            _ = stopped.changed() => return,
        }
    }
}

/// fsyncs every log, so a clean stop loses nothing the OS still buffered.
pub fn flush_all(broker: &Broker) {
    for (topic, partition) in broker.partitions() {
        let mut log = partition
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = log.flush() {
            tracing::warn!(topic = topic.name, partition = partition.index, %error, "flush failed");
        }
    }
}
