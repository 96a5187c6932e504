//! Faults injected inside the nodes of a three-node cluster of real `eddy
//! broker` processes, under real client load:
//!
//! - a slow follower: Kafka's replication throttles hold it below the
//!   producers' rate, so it leaves the ISR after `replica.lag.time.max.ms`,
//!   and returns once the throttle is lifted;
//! - a cut-off leader: its fault file isolates it from the other nodes
//!   (replication and controller links) while clients still reach it. It
//!   cannot acknowledge acks=all writes, the controller fences it and elects
//!   an in-sync leader, and when it heals it truncates what only it had and
//!   rejoins the ISR. No acknowledged record is lost or duplicated.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eddy_client::{Client, ClientError, ErrorCode, NewRecord};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use support::cluster::Cluster;
use support::kafka::{
    self, Outgoing, RecordingProducer, block_on, create_replicated_topic, read_partition, values,
};

/// Budget for a partition to get a leader and a full ISR, or to fail over.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(15);
/// `replica.lag.time.max.ms` in the throttle test.
const LAG_TIME_MAX_MS: u64 = 2000;
/// The throttled follower's rate, in bytes per second; the load is far above it.
const THROTTLE_RATE: u64 = 20_000;
/// The producers' steady load in the throttle test: records of this size, so
/// many every 100 ms (about 300 kB/s).
const LOAD_RECORD_BYTES: usize = 1000;
const LOAD_RECORDS_PER_TICK: usize = 30;

fn record(sequence: usize) -> Outgoing {
    Outgoing {
        key: b"k".to_vec(),
        value: format!("r-{sequence:07}").into_bytes(),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

/// Writes the node's fault file the way the supervisor does (a temporary
/// file renamed over it).
fn set_isolated(cluster: &mut Cluster, node: i32, isolated: bool) {
    let dir = cluster.node(node).data_dir();
    let temporary = dir.join("faults.json.tmp");
    std::fs::write(&temporary, format!("{{\"isolated\": {isolated}}}")).expect("fault file");
    std::fs::rename(&temporary, dir.join("faults.json")).expect("fault file in place");
}

/// The events the controller wrote to `__eddy_events`, as JSON.
fn events(cluster: &Cluster) -> Vec<serde_json::Value> {
    values(&read_partition(&cluster.bootstrap(), "__eddy_events", 0))
        .iter()
        .filter_map(|event| serde_json::from_str(event).ok())
        .collect()
}

/// Sends records of `LOAD_RECORD_BYTES` to `topic`-0 with acks=1 until
/// `stop`, about `LOAD_RECORDS_PER_TICK` every 100 ms.
fn steady_load(bootstrap: String, topic: &'static str, stop: Arc<AtomicBool>) {
    let producer: ThreadedProducer<kafka::Recorder> = {
        let mut config = kafka::client_config(&bootstrap);
        config.set("acks", "1").set("linger.ms", "5");
        config
            .create_with_context(kafka::Recorder::default())
            .expect("producer")
    };
    let payload = vec![b'x'; LOAD_RECORD_BYTES];
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..LOAD_RECORDS_PER_TICK {
            let _ = producer.send(
                BaseRecord::<str, [u8], usize>::with_opaque_to(topic, 0)
                    .partition(0)
                    .payload(&payload),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = producer.flush(Duration::from_secs(10));
}

#[test]
fn a_throttled_follower_leaves_the_isr_and_returns_when_the_throttle_lifts() {
    let rate = format!("follower.replication.throttled.rate={THROTTLE_RATE}");
    let lag = format!("replica.lag.time.max.ms={LAG_TIME_MAX_MS}");
    let cluster = Cluster::start(3, &[rate.as_str(), lag.as_str()]);
    let bootstrap = cluster.bootstrap();
    let topic = "throttled";
    create_replicated_topic(&bootstrap, topic, 1, 3, &[]);
    let (leader, _, _) = cluster
        .wait_for_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");
    let follower = if leader == 3 { 2 } else { 3 };

    let mut client = Client::new(cluster.nodes.iter().map(|node| node.bootstrap()));
    // The rate as a dynamic config too, so the controller can name it.
    let dynamic_rate = block_on(client.alter_broker_configs(
        Some(follower),
        &BTreeMap::from([(
            "follower.replication.throttled.rate".to_string(),
            THROTTLE_RATE.to_string(),
        )]),
        &[],
        false,
    ));
    if let Err(error) = &dynamic_rate {
        eprintln!("the rate stays a static setting only: {error}");
    }
    block_on(client.alter_topic_configs(
        topic,
        BTreeMap::from([(
            "follower.replication.throttled.replicas".to_string(),
            format!("0:{follower}"),
        )]),
        Vec::new(),
    ))
    .expect("throttling the follower");

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (bootstrap, stop) = (bootstrap.clone(), stop.clone());
        std::thread::spawn(move || steady_load(bootstrap, topic, stop))
    };
    let loaded = Instant::now();
    let out = cluster.wait_for_partition(topic, 0, PARTITION_TIMEOUT, |_, _, isr| {
        !isr.contains(&follower)
    });
    let left_after = loaded.elapsed();
    eprintln!("throttled node {follower} left the ISR {left_after:?} after the load began");
    assert!(
        out.is_some(),
        "node {follower}, throttled to {THROTTLE_RATE} B/s, never left the ISR"
    );
    assert!(
        left_after <= Duration::from_millis(LAG_TIME_MAX_MS + 1000),
        "node {follower} left the ISR after {left_after:?}, later than replica.lag.time.max.ms + 1 s"
    );

    block_on(client.alter_topic_configs(
        topic,
        BTreeMap::new(),
        vec!["follower.replication.throttled.replicas".to_string()],
    ))
    .expect("lifting the throttle");
    let lifted = Instant::now();
    let back = cluster.wait_for_partition(topic, 0, PARTITION_TIMEOUT, |_, _, isr| {
        isr.contains(&follower)
    });
    eprintln!(
        "node {follower} rejoined the ISR {:?} after the throttle was lifted",
        lifted.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    assert!(
        back.is_some(),
        "node {follower} did not rejoin the ISR once unthrottled"
    );

    // The events say that it fell out of sync, and why.
    let events = events(&cluster);
    let shrunk = events
        .iter()
        .find(|event| {
            event["kind"] == "isr_shrunk" && event["node"] == follower && event["topic"] == topic
        })
        .unwrap_or_else(|| panic!("no isr_shrunk event for node {follower} in {events:#?}"));
    let text = shrunk["text"].as_str().unwrap_or_default();
    assert!(text.contains("fell out of sync"), "{text}");
    if dynamic_rate.is_ok() {
        assert!(
            text.contains("throttled") && text.contains(&THROTTLE_RATE.to_string()),
            "the event names the throttle: {text}"
        );
    }
    assert!(
        events.iter().any(|event| event["kind"] == "isr_expanded"
            && event["node"] == follower
            && event["topic"] == topic),
        "no isr_expanded event for node {follower} in {events:#?}"
    );
}

#[test]
fn a_leader_throttle_holds_its_followers_back_until_it_is_lifted() {
    let rate = format!("leader.replication.throttled.rate={THROTTLE_RATE}");
    let lag = format!("replica.lag.time.max.ms={LAG_TIME_MAX_MS}");
    let cluster = Cluster::start(3, &[rate.as_str(), lag.as_str()]);
    let bootstrap = cluster.bootstrap();
    let topic = "leader-throttled";
    create_replicated_topic(&bootstrap, topic, 1, 3, &[]);
    let (leader, _, _) = cluster
        .wait_for_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");
    let mut client = Client::new(cluster.nodes.iter().map(|node| node.bootstrap()));
    block_on(client.alter_topic_configs(
        topic,
        BTreeMap::from([(
            "leader.replication.throttled.replicas".to_string(),
            format!("0:{leader}"),
        )]),
        Vec::new(),
    ))
    .expect("throttling the leader");

    // The leader serves both followers at most THROTTLE_RATE bytes a
    // second in all: they fall behind the load and out of the ISR.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (bootstrap, stop) = (bootstrap.clone(), stop.clone());
        std::thread::spawn(move || steady_load(bootstrap, topic, stop))
    };
    let loaded = Instant::now();
    let alone =
        cluster.wait_for_partition(topic, 0, PARTITION_TIMEOUT, |_, _, isr| isr == [leader]);
    let left_after = loaded.elapsed();
    eprintln!(
        "the followers of throttled leader {leader} left the ISR {left_after:?} after the load began"
    );
    assert!(
        alone.is_some(),
        "the followers of a throttled leader stayed in the ISR"
    );
    assert!(
        left_after <= Duration::from_millis(LAG_TIME_MAX_MS + 1000),
        "the followers left the ISR after {left_after:?}, later than replica.lag.time.max.ms + 1 s"
    );

    block_on(client.alter_topic_configs(
        topic,
        BTreeMap::new(),
        vec!["leader.replication.throttled.replicas".to_string()],
    ))
    .expect("lifting the throttle");
    let lifted = Instant::now();
    let back = cluster.wait_for_partition(topic, 0, PARTITION_TIMEOUT, |_, _, isr| isr.len() == 3);
    eprintln!(
        "the followers rejoined the ISR {:?} after the throttle was lifted",
        lifted.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    assert!(
        back.is_some(),
        "the followers did not rejoin the ISR once unthrottled"
    );
}

/// Checks that every acknowledged record is stored once, in the order sent.
fn assert_acknowledged_once_in_order(stored: &[String], acknowledged: &[usize]) {
    support::kafka::assert_acknowledged_once_in_order(
        "the partition",
        stored,
        acknowledged,
        |sequence| format!("r-{sequence:07}"),
    );
}

#[test]
fn an_isolated_leader_is_fenced_replaced_and_truncated_when_it_heals() {
    let mut cluster = Cluster::start(3, &[]);
    let bootstrap = cluster.bootstrap();
    let topic = "cutoff";
    create_replicated_topic(&bootstrap, topic, 1, 3, &[("min.insync.replicas", "2")]);
    let (leader, epoch, _) = cluster
        .wait_for_partition(topic, 0, PARTITION_TIMEOUT, |leader, _, isr| {
            leader > 0 && isr.len() == 3
        })
        .expect("a leader with a full ISR");

    // A steady acks=all idempotent load, throughout.
    let producer = Arc::new(RecordingProducer::new(&kafka::durable_producer_config(
        &bootstrap,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (producer, stop) = (producer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sequence = 0;
            while !stop.load(Ordering::Relaxed) {
                producer.send(topic, 0, sequence, &record(sequence));
                sequence += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            sequence
        })
    };
    assert!(
        support::wait_until(Duration::from_secs(20), || producer
            .deliveries
            .acknowledged_count()
            > 200),
        "the load is acknowledged before the fault"
    );

    set_isolated(&mut cluster, leader, true);
    let isolated_at = Instant::now();
    let (new_leader, new_epoch, isr) = cluster
        .wait_for_partition(topic, 0, PARTITION_TIMEOUT, |new, _, _| {
            new > 0 && new != leader
        })
        .unwrap_or_else(|| panic!("the isolated leader {leader} was not replaced"));
    eprintln!(
        "node {leader} isolated; node {new_leader} leads {topic}-0 after {:?}",
        isolated_at.elapsed()
    );
    assert!(new_epoch > epoch, "the leader epoch is bumped");
    assert!(!isr.contains(&leader), "the isolated node left the ISR");
    let fenced = support::wait_until(Duration::from_secs(5), || {
        cluster
            .view_from(new_leader)
            .is_some_and(|view| !view.brokers.contains(&leader))
    });
    assert!(fenced, "the cluster no longer lists node {leader} as live");

    // Clients still reach the cut-off node, which still believes it leads:
    // it cannot acknowledge acks=all, and takes acks=1 writes only it has.
    let mut direct = Client::new([cluster.node(leader).bootstrap()])
        .with_node_timeout(Duration::from_millis(1500));
    let refused = block_on(direct.produce(
        topic,
        Some(0),
        vec![NewRecord::new(
            None::<Vec<u8>>,
            "extra-all".as_bytes().to_vec(),
        )],
        -1,
    ));
    assert!(
        refused
            .as_ref()
            .is_err_and(|error| matches!(error, ClientError::Timeout { .. })
                || error.error_code() == Some(ErrorCode::RequestTimedOut)),
        "the isolated leader must leave an acks=all write unanswered until it times out: {refused:?}"
    );
    let extra = block_on(direct.produce(
        topic,
        Some(0),
        vec![
            NewRecord::new(None::<Vec<u8>>, "extra-1".as_bytes().to_vec()),
            NewRecord::new(None::<Vec<u8>>, "extra-2".as_bytes().to_vec()),
        ],
        1,
    ))
    .expect("the isolated node takes acks=1 writes");
    eprintln!(
        "extra records at offset {:?} of node {leader}",
        extra.base_offset
    );

    set_isolated(&mut cluster, leader, false);
    let healed_at = Instant::now();
    cluster
        .wait_for_partition(topic, 0, Duration::from_secs(30), |current, _, isr| {
            current == new_leader && isr.contains(&leader)
        })
        .unwrap_or_else(|| panic!("node {leader} did not rejoin the ISR after healing"));
    eprintln!(
        "node {leader} healed; back in the ISR after {:?}",
        healed_at.elapsed()
    );

    stop.store(true, Ordering::Relaxed);
    let sent = load.join().expect("load thread");
    producer.flush_expecting_every_record_acknowledged(
        Duration::from_secs(60),
        &format!("of {sent} sent: "),
    );
    let mut acknowledged: Vec<usize> = producer
        .deliveries
        .acknowledged
        .lock()
        .expect("deliveries")
        .iter()
        .map(|(index, _, _)| *index)
        .collect();
    acknowledged.sort_unstable();
    assert_eq!(acknowledged.len(), sent, "every record was acknowledged");

    // The old leader's extra records are gone: its log matches the new
    // leader's, and what any consumer reads has every acknowledged record
    // once, in order, and nothing only the cut-off node had.
    let mut admin = Client::new(cluster.nodes.iter().map(|node| node.bootstrap()));
    let mut ends = BTreeMap::new();
    let matched = support::wait_until(Duration::from_secs(10), || {
        ends = [leader, new_leader]
            .into_iter()
            .map(|node| {
                let address = cluster.nodes[(node - 1) as usize].bootstrap();
                let end = block_on(admin.replica_end_offsets_from(&address, topic, &[0]))
                    .ok()
                    .and_then(|mut ends| ends.remove(&0))
                    .and_then(Result::ok);
                (node, end)
            })
            .collect::<BTreeMap<i32, Option<i64>>>();
        ends[&leader].is_some() && ends[&leader] == ends[&new_leader]
    });
    assert!(matched, "the replicas' log end offsets differ: {ends:?}");
    let stored = values(&read_partition(&bootstrap, topic, 0));
    assert!(
        !stored.iter().any(|value| value.starts_with("extra-")),
        "records only the isolated node had survived"
    );
    assert_acknowledged_once_in_order(&stored, &acknowledged);
    let log = cluster.node(leader).log();
    for said in [
        "isolated from the other nodes by fault injection",
        "healed",
        "truncating to where this log and the leader's diverge",
    ] {
        assert!(
            log.contains(said),
            "node {leader}'s log does not say {said:?}"
        );
    }
    let events = events(&cluster);
    assert!(
        events
            .iter()
            .any(|event| event["kind"] == "broker_fenced" && event["node"] == leader),
        "no broker_fenced event for node {leader} in {events:#?}"
    );
}
