//! The demo workload: one click starts a producer at N records a second
//! and a group of K consumers that each spend a set time on every record,
//! so lag, rebalancing and failover show without writing code. Settings can
//! change while it runs (the producer's rate and the processing time at
//! once; the number of consumers by starting or stopping members, which
//! rebalances the group).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use eddy_client::{AutoOffsetReset, GroupConsumer, GroupConsumerOptions, NewRecord, NewTopic};
use tokio::task::JoinHandle;

use crate::actions::client_failure;
use crate::model::{DemoSettings, DemoStatus, Failure, Response};
use crate::session::{Console, now_ms};

pub const DEMO_GROUP: &str = "eddy-demo";
/// Errors kept for the status.
const MAX_ERRORS: usize = 20;
/// The producer sends a batch this often.
const PRODUCE_TICK: Duration = Duration::from_millis(100);
/// Consumers commit this often.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The most records per second the demo produces.
const MAX_RATE: u32 = 50_000;
const MAX_CONSUMERS: u32 = 32;

/// A running demo.
pub struct Demo {
    settings: DemoSettings,
    shared: Arc<Shared>,
    producer: JoinHandle<()>,
    consumers: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    rate: AtomicU32,
    processing_ms: AtomicU32,
    produced: AtomicU64,
    consumed: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, error: impl std::fmt::Display) {
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        errors.push(error.to_string());
        let excess = errors.len().saturating_sub(MAX_ERRORS);
        errors.drain(..excess);
    }
}

fn check(settings: &DemoSettings) -> Result<(), Failure> {
    let invalid = |message: String| Failure {
        kafka_error: None,
        message,
        hint: None,
    };
    if settings.topic.trim().is_empty() {
        return Err(invalid("the demo needs a topic name".into()));
    }
    if !(1..=MAX_RATE).contains(&settings.records_per_sec) {
        return Err(invalid(format!("records per second: 1 to {MAX_RATE}")));
    }
    if settings.consumers > MAX_CONSUMERS {
        return Err(invalid(format!("at most {MAX_CONSUMERS} consumers")));
    }
    if settings.partitions < 1 {
        return Err(invalid(
            "the demo topic needs at least one partition".into(),
        ));
    }
    Ok(())
}

pub async fn start(console: &Console, settings: DemoSettings) -> Result<Response, Failure> {
    check(&settings)?;
    stop(console).await;
    let mut client = console.client();
    let replication_factor = console.snapshot().nodes.len().clamp(1, 3) as i16;
    let created = client
        .create_topics(&[NewTopic {
            name: settings.topic.clone(),
            partitions: settings.partitions,
            replication_factor,
            configs: Default::default(),
        }])
        .await
        .map_err(client_failure)?;
    if let Some((_, Err(failure))) = created.into_iter().next()
        && failure.code != eddy_client::ErrorCode::TopicAlreadyExists
    {
        return Err(Failure {
            kafka_error: Some(failure.code.name().to_string()),
            message: format!("creating the demo topic: {}", failure.message),
            hint: None,
        });
    }
    let shared = Arc::new(Shared::default());
    shared
        .rate
        .store(settings.records_per_sec, Ordering::Relaxed);
    shared
        .processing_ms
        .store(settings.processing_ms, Ordering::Relaxed);
    let partitions = topic_partitions(&mut client, &settings.topic)
        .await
        .unwrap_or(settings.partitions);
    let producer = tokio::spawn(produce(
        console.clone(),
        settings.topic.clone(),
        partitions,
        shared.clone(),
    ));
    let consumers = (0..settings.consumers)
        .map(|index| {
            tokio::spawn(consume(
                console.clone(),
                settings.topic.clone(),
                index,
                shared.clone(),
            ))
        })
        .collect();
    *console.inner.demo.lock().await = Some(Demo {
        settings,
        shared,
        producer,
        consumers,
    });
    Ok(Response::Demo(status(console).await))
}

/// Changes the rate and processing time at once, and the number of
/// consumers by starting or stopping members.
pub async fn update(console: &Console, settings: DemoSettings) -> Result<Response, Failure> {
    check(&settings)?;
    let mut guard = console.inner.demo.lock().await;
    let Some(demo) = guard.as_mut() else {
        drop(guard);
        return start(console, settings).await;
    };
    if demo.settings.topic != settings.topic || demo.settings.partitions != settings.partitions {
        drop(guard);
        return start(console, settings).await;
    }
    demo.shared
        .rate
        .store(settings.records_per_sec, Ordering::Relaxed);
    demo.shared
        .processing_ms
        .store(settings.processing_ms, Ordering::Relaxed);
    let wanted = settings.consumers as usize;
    while demo.consumers.len() > wanted {
        if let Some(consumer) = demo.consumers.pop() {
            consumer.abort();
        }
    }
    while demo.consumers.len() < wanted {
        let index = demo.consumers.len() as u32;
        demo.consumers.push(tokio::spawn(consume(
            console.clone(),
            settings.topic.clone(),
            index,
            demo.shared.clone(),
        )));
    }
    demo.settings = settings;
    drop(guard);
    Ok(Response::Demo(status(console).await))
}

/// The topic's partition count, as the cluster reports it.
async fn topic_partitions(client: &mut eddy_client::Client, topic: &str) -> Option<i32> {
    let metadata = client.metadata().await.ok()?;
    let info = metadata
        .topics
        .iter()
        .find(|candidate| candidate.name == topic)?;
    Some(info.partitions.len() as i32).filter(|count| *count > 0)
}

pub async fn stop(console: &Console) {
    if let Some(demo) = console.inner.demo.lock().await.take() {
        demo.producer.abort();
        for consumer in demo.consumers {
            consumer.abort();
        }
    }
}

pub async fn status(console: &Console) -> DemoStatus {
    let guard = console.inner.demo.lock().await;
    match guard.as_ref() {
        Some(demo) => DemoStatus {
            running: true,
            settings: Some(demo.settings.clone()),
            group_id: DEMO_GROUP.to_string(),
            produced: demo.shared.produced.load(Ordering::Relaxed),
            consumed: demo.shared.consumed.load(Ordering::Relaxed),
            errors: demo
                .shared
                .errors
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        },
        None => DemoStatus {
            running: false,
            settings: None,
            group_id: DEMO_GROUP.to_string(),
            produced: 0,
            consumed: 0,
            errors: Vec::new(),
        },
    }
}

/// Sends `rate / 10` records every 100 ms, keyed so they spread over the
/// partitions.
async fn produce(console: Console, topic: String, partitions: i32, shared: Arc<Shared>) {
    let mut client = console.client();
    let mut ticker = tokio::time::interval(PRODUCE_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sequence = 0u64;
    let mut owed = 0f64;
    loop {
        ticker.tick().await;
        owed += f64::from(shared.rate.load(Ordering::Relaxed)) / 10.0;
        let count = owed.floor() as u64;
        owed -= count as f64;
        if count == 0 {
            continue;
        }
        // Spread over the partitions: one batch to each this tick.
        let mut batches: Vec<Vec<NewRecord>> = (0..partitions).map(|_| Vec::new()).collect();
        for _ in 0..count {
            sequence += 1;
            let partition = (sequence % partitions.max(1) as u64) as usize;
            batches[partition].push(NewRecord {
                key: Some(Bytes::from(format!("key-{sequence}"))),
                value: Some(Bytes::from(format!(
                    "{{\"sequence\":{sequence},\"sentMs\":{}}}",
                    now_ms()
                ))),
                headers: Vec::new(),
                timestamp_ms: None,
            });
        }
        for (partition, records) in batches.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let sent = records.len() as u64;
            match client
                .produce(&topic, Some(partition as i32), records, 1)
                .await
            {
                Ok(_) => {
                    shared.produced.fetch_add(sent, Ordering::Relaxed);
                }
                Err(error) => shared.error(format!("producer: {error}")),
            }
        }
    }
}

/// One member of the demo group: reads, spends `processing_ms` on every
/// record, commits every second.
async fn consume(console: Console, topic: String, index: u32, shared: Arc<Shared>) {
    loop {
        let options = GroupConsumerOptions {
            session_timeout_ms: 6000,
            rebalance_timeout_ms: 10_000,
            heartbeat_interval_ms: 1000,
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..GroupConsumerOptions::default()
        };
        let joined = GroupConsumer::join(
            console.client(),
            DEMO_GROUP,
            std::slice::from_ref(&topic),
            options,
        )
        .await;
        let mut consumer = match joined {
            Ok(consumer) => consumer,
            Err(error) => {
                shared.error(format!("consumer {index}: {error}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut last_commit = tokio::time::Instant::now();
        loop {
            match consumer.poll(Duration::from_millis(500)).await {
                Ok(records) => {
                    for _ in &records {
                        let processing = shared.processing_ms.load(Ordering::Relaxed);
                        if processing > 0 {
                            tokio::time::sleep(Duration::from_millis(u64::from(processing))).await;
                        }
                        shared.consumed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(error) => {
                    shared.error(format!("consumer {index}: {error}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                if let Err(error) = consumer.commit().await {
                    shared.error(format!("consumer {index} commit: {error}"));
                }
                last_commit = tokio::time::Instant::now();
            }
        }
    }
}
