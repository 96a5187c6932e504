//! The listener: accepts connections up to `max.connections`, runs log
//! retention in the background, and shuts down cleanly (stop accepting,
//! close connections between requests, flush every log).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::connection;
use crate::state::{Broker, now_ms};

/// How long shutdown waits for connections to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves Kafka clients on `listener` until `shutdown` completes.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
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
    let cleaner = tokio::spawn(cleaner_loop(
        broker.clone(),
        config.cleaner_backoff_ms(),
        stopped.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
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
    flush_all(&broker);
    Ok(())
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
                // On one node the high watermark is the log end offset.
                log.plan_compaction(now_ms(), log.log_end_offset())
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
