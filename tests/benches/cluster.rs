//! A three-node Eddy cluster (separate `eddy broker` processes, a metadata
//! quorum of all three, topics with replication factor 3) against
//! references measured in the same run:
//!
//! - partition failover: SIGKILL a partition's leader, time until an
//!   acks=all produce to that partition is acknowledged; reference: the
//!   same on a cluster with Kafka's default timeouts, where a dead node is
//!   only fenced when its session expires;
//! - controller failover: SIGKILL the metadata quorum's leader, time until
//!   a surviving node names another; reference: the same with Kafka's
//!   default election timeout;
//! - `eddy cluster up --nodes 3` to its ready line, against one `eddy broker`;
//! - idle RSS of the three nodes together, against one node's;
//! - acks=all produce throughput at RF=3, against one node at acks=1.
//!
//! Run on demand (not part of `npm test`):
//! `cargo bench -p eddy-e2e --bench cluster`.

#[path = "../e2e/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eddy_client::Client;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use tempfile::TempDir;

use support::Node;
use support::cluster::{Cluster, free_base_port, view_of};
use support::kafka::{self, Outgoing, RecordingProducer, create_replicated_topic};

const NODES: u16 = 3;
const FAILOVER_TRIALS: usize = 20;
const REFERENCE_FAILOVER_TRIALS: usize = 4;
const CONTROLLER_TRIALS: usize = 5;
const STARTUP_RUNS: usize = 5;
const THROUGHPUT_RUNS: usize = 3;
const THROUGHPUT_RECORDS: usize = 200_000;
const RECORD_BYTES: usize = 1024;
/// How long a cluster is left alone before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);
/// Budget for any one wait: a failover, a rejoin, a flush.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request to one node may take while polling.
const NODE_TIMEOUT: Duration = Duration::from_millis(500);
const FAILOVER_TOPIC: &str = "failover";
/// One partition per node, so that both kinds of kill are at hand: of a
/// leader that is not the active controller, and of one that is.
const FAILOVER_PARTITIONS: i32 = NODES as i32;

/// Kafka's defaults for the timeouts Eddy shortens. A disconnect fence as
/// long as the session turns off the fast path (fencing a node soon after
/// its controller connection closes).
const KAFKA_TIMEOUTS: &[&str] = &[
    "broker.session.timeout.ms=9000",
    "broker.heartbeat.interval.ms=2000",
    "broker.disconnect.fence.ms=9000",
    "controller.quorum.election.timeout.ms=1000",
];

/// The failover probe: one long-lived producer, one record at a time, that
/// refreshes metadata and retries quickly. Printed with the results.
const FAILOVER_PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("linger.ms", "0"),
    ("enable.idempotence", "false"),
    ("message.timeout.ms", "60000"),
    ("retry.backoff.ms", "10"),
    ("retry.backoff.max.ms", "50"),
    ("reconnect.backoff.ms", "10"),
    ("reconnect.backoff.max.ms", "50"),
    ("topic.metadata.refresh.interval.ms", "100"),
    ("topic.metadata.refresh.fast.interval.ms", "10"),
];
/// The throughput producer (batch.size left at librdkafka's default).
const THROUGHPUT_PRODUCER_SETTINGS: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    ("compression.codec", "none"),
    ("enable.idempotence", "false"),
];

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass
    // nothing: only run the real thing when asked.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("cluster benchmark: run with `cargo bench -p eddy-e2e --bench cluster`");
        return;
    }
    println!("eddy: a {NODES}-node cluster with default settings; topics RF=3");
    println!("reference: the same cluster with {KAFKA_TIMEOUTS:?}");
    println!("failover producer (rdkafka): {FAILOVER_PRODUCER_SETTINGS:?}");
    println!(
        "throughput producer (rdkafka): {THROUGHPUT_PRODUCER_SETTINGS:?}, {RECORD_BYTES} B records"
    );
    println!("p99 is the nearest rank: with fewer than 100 trials it is the slowest one\n");

    // EDDY_BENCH_ONLY=failover|startup|throughput runs one part.
    let only = std::env::var("EDDY_BENCH_ONLY").ok();
    let wanted = |part: &str| only.as_deref().is_none_or(|only| only == part);
    if wanted("failover") {
        let eddy = failovers(&[], FAILOVER_TRIALS);
        let reference = failovers(KAFKA_TIMEOUTS, REFERENCE_FAILOVER_TRIALS);
        report_partition_failover(&eddy, &reference);
        report_controller_failover(&eddy, &reference);
    }
    if wanted("startup") {
        report_startup_and_memory();
    }
    if wanted("throughput") {
        report_throughput();
    }
}

/// What one cluster did when its nodes were killed.
struct Failovers {
    partition: Vec<PartitionFailover>,
    /// SIGKILL of the active controller → a survivor names another.
    controller: Vec<Duration>,
}

struct PartitionFailover {
    /// SIGKILL → the probe record acknowledged (acks=all).
    produced: Duration,
    /// SIGKILL → a survivor names a new leader in Metadata.
    elected: Duration,
    /// The killed node was also the metadata quorum's leader.
    killed_controller: bool,
    /// Delivery errors the probe saw before its record went through.
    errors: Vec<KafkaError>,
}

fn failovers(settings: &[&str], partition_trials: usize) -> Failovers {
    let mut cluster = Cluster::start(i32::from(NODES), settings);
    create_replicated_topic(
        &cluster.bootstrap(),
        FAILOVER_TOPIC,
        FAILOVER_PARTITIONS,
        3,
        &[],
    );
    let partition = (0..partition_trials)
        .map(|trial| partition_failover(&mut cluster, trial))
        .collect();
    let controller = (0..CONTROLLER_TRIALS)
        .map(|_| controller_failover(&mut cluster))
        .collect();
    Failovers {
        partition,
        controller,
    }
}

/// Kills the leader of a partition with a connected producer waiting, times
/// the first acks=all produce to it after that, then brings the node back
/// and waits for a full ISR.
///
/// Every third trial kills a leader that is also the active controller, as
/// a random partition's leader is in a three-node cluster with leadership
/// spread evenly. Killing the same partition's leader every time would
/// not: a new leader is the first in-sync replica in replica order and the
/// node restarted last tends to win the next controller election, so after
/// one such kill both roles keep landing on the same node.
fn partition_failover(cluster: &mut Cluster, trial: usize) -> PartitionFailover {
    let controller = wait_for_caught_up_quorum(cluster);
    let leaders: Vec<(i32, i32)> = (0..FAILOVER_PARTITIONS)
        .map(|partition| {
            let (leader, _, _) = cluster
                .wait_for_agreed_partition(FAILOVER_TOPIC, partition, TIMEOUT, |leader, _, isr| {
                    leader > 0 && isr.len() == usize::from(NODES)
                })
                .unwrap_or_else(|| {
                    panic!("no agreed leader with a full ISR for partition {partition}")
                });
            (partition, leader)
        })
        .collect();
    let want_controller = trial % 3 == 2;
    let (partition, leader) = leaders
        .iter()
        .copied()
        .find(|(_, leader)| (*leader == controller) == want_controller)
        .unwrap_or(leaders[0]);
    let killed_controller = controller == leader;
    let producer = failover_producer(&cluster.bootstrap());
    // A first record, so the producer knows the leader and is connected.
    let mut sent = 0;
    deliver(&producer, partition, &mut sent).expect("a record before the kill");
    let survivors: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|node| node.node_id() != leader)
        .map(Node::bootstrap)
        .collect();

    let killed_at = Instant::now();
    cluster.node(leader).kill();
    let election = std::thread::spawn(move || {
        let elected = support::wait_until(TIMEOUT, || {
            survivors.iter().any(|survivor| {
                view_of(survivor)
                    .and_then(|view| view.partition(FAILOVER_TOPIC, partition))
                    .is_some_and(|(new_leader, _, _)| new_leader > 0 && new_leader != leader)
            })
        });
        assert!(
            elected,
            "no survivor named a new leader of partition {partition}"
        );
        killed_at.elapsed()
    });
    let mut errors = Vec::new();
    let produced = loop {
        match deliver(&producer, partition, &mut sent) {
            Ok(acknowledged_at) => break acknowledged_at - killed_at,
            Err(error) => errors.push(error),
        }
        assert!(
            killed_at.elapsed() < TIMEOUT,
            "no acks=all produce within {TIMEOUT:?} of killing node {leader}: {errors:?}"
        );
    };
    let elected = election.join().expect("the election probe");
    drop(producer);
    cluster.node(leader).restart();
    PartitionFailover {
        produced,
        elected,
        killed_controller,
        errors,
    }
}

fn failover_producer(bootstrap: &str) -> RecordingProducer {
    let mut config: ClientConfig = kafka::client_config(bootstrap);
    for (key, value) in FAILOVER_PRODUCER_SETTINGS {
        config.set(*key, *value);
    }
    RecordingProducer::new(&config)
}

/// Sends one record to `partition` and waits for its delivery report;
/// returns when the acknowledgement arrived, or the error librdkafka gave.
fn deliver(
    producer: &RecordingProducer,
    partition: i32,
    sent: &mut usize,
) -> Result<Instant, KafkaError> {
    let deliveries = &producer.deliveries;
    let acknowledged = deliveries.acknowledged_count();
    let failed = deliveries.failed_count();
    let record = Outgoing {
        key: Vec::new(),
        value: format!("probe-{sent}").into_bytes(),
        headers: Vec::new(),
        timestamp_ms: None,
    };
    producer.send(FAILOVER_TOPIC, partition, *sent, &record);
    *sent += 1;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if deliveries.acknowledged_count() > acknowledged {
            return Ok(Instant::now());
        }
        if deliveries.failed_count() > failed {
            let failures = deliveries.failed.lock().expect("deliveries");
            let (_, error) = failures.last().expect("a failed delivery");
            return Err(error.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no delivery report within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kills the active controller, times until a survivor names another, then
/// brings the node back and waits until every voter has caught up.
fn controller_failover(cluster: &mut Cluster) -> Duration {
    let controller = wait_for_caught_up_quorum(cluster);
    let survivors: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|node| node.node_id() != controller)
        .map(Node::bootstrap)
        .collect();
    let killed_at = Instant::now();
    cluster.node(controller).kill();
    let moved = support::wait_until(TIMEOUT, || {
        survivors.iter().any(|survivor| {
            quorum_of(survivor)
                .and_then(|quorum| quorum.leader_id)
                .is_some_and(|leader| leader != controller)
        })
    });
    let elapsed = killed_at.elapsed();
    assert!(
        moved,
        "no survivor named a controller other than node {controller}"
    );
    cluster.node(controller).restart();
    elapsed
}

/// What `bootstrap` says about the metadata quorum, if it answers.
fn quorum_of(bootstrap: &str) -> Option<eddy_client::QuorumInfo> {
    kafka::block_on(async {
        let mut client = Client::new([bootstrap]).with_node_timeout(NODE_TIMEOUT);
        client.describe_quorum_from(bootstrap).await.ok().flatten()
    })
}

/// Waits until every node is registered, every node names the same
/// metadata quorum leader and that leader reports every voter caught up, so
/// the next kill leaves a healthy majority; returns the leader.
fn wait_for_caught_up_quorum(cluster: &Cluster) -> i32 {
    cluster.wait_for_brokers(usize::from(NODES), TIMEOUT);
    let mut agreed = None;
    let caught_up = support::wait_until(TIMEOUT, || {
        let quorums: Vec<Option<eddy_client::QuorumInfo>> = cluster
            .nodes
            .iter()
            .map(|node| quorum_of(&node.bootstrap()))
            .collect();
        let leaders: Vec<Option<i32>> = quorums
            .iter()
            .map(|quorum| quorum.as_ref().and_then(|quorum| quorum.leader_id))
            .collect();
        let Some(Some(leader)) = leaders.first().copied() else {
            return false;
        };
        if leaders.iter().any(|other| *other != Some(leader)) {
            return false;
        }
        agreed = Some(leader);
        cluster
            .nodes
            .iter()
            .zip(&quorums)
            .find(|(node, _)| node.node_id() == leader)
            .and_then(|(_, quorum)| quorum.as_ref())
            .is_some_and(|quorum| {
                quorum.voters.len() == usize::from(NODES) && quorum.max_voter_lag() == Some(0)
            })
    });
    assert!(caught_up, "the metadata quorum did not settle");
    agreed.expect("an agreed quorum leader")
}

fn report_partition_failover(eddy: &Failovers, reference: &Failovers) {
    let produced = |failovers: &Failovers| {
        seconds(
            failovers
                .partition
                .iter()
                .map(|trial| trial.produced)
                .collect(),
        )
    };
    let elected = |failovers: &Failovers| {
        seconds(
            failovers
                .partition
                .iter()
                .map(|trial| trial.elected)
                .collect(),
        )
    };
    let (eddy_produced, reference_produced) = (produced(eddy), produced(reference));
    let (eddy_p50, eddy_p99) = (p50(&eddy_produced), p99(&eddy_produced));
    let (reference_p50, reference_p99) = (p50(&reference_produced), p99(&reference_produced));
    println!(
        "partition failover: SIGKILL a partition's leader (every third also the active controller) → first acks=all produce to it acknowledged"
    );
    println!(
        "  eddy      ({:>2} trials): p50 {eddy_p50:>6.3} s  p99 {eddy_p99:>6.3} s  targets p50 ≤ 1 s: {}, p99 ≤ 2.5 s: {}",
        eddy_produced.len(),
        verdict(eddy_p50 <= 1.0),
        verdict(eddy_p99 <= 2.5),
    );
    println!(
        "  reference ({:>2} trials): p50 {reference_p50:>6.3} s  p99 {reference_p99:>6.3} s",
        reference_produced.len()
    );
    println!(
        "  ratio reference / eddy: p50 {:.1}×, p99 {:.1}×",
        reference_p50 / eddy_p50,
        reference_p99 / eddy_p99
    );
    let (eddy_elected, reference_elected) = (elected(eddy), elected(reference));
    println!(
        "  new leader in a survivor's Metadata after: eddy p50 {:.3} s, p99 {:.3} s; reference p50 {:.3} s",
        p50(&eddy_elected),
        p99(&eddy_elected),
        p50(&reference_elected)
    );
    for (name, failovers) in [("eddy", eddy), ("reference", reference)] {
        print_trials(name, failovers);
    }
    println!();
}

/// Each trial's produce time, marking those where the killed node was also
/// the active controller, and the delivery errors the probe saw.
fn print_trials(name: &str, failovers: &Failovers) {
    let trials: Vec<String> = failovers
        .partition
        .iter()
        .map(|trial| {
            format!(
                "{:.3}{}",
                trial.produced.as_secs_f64(),
                if trial.killed_controller { "c" } else { "" }
            )
        })
        .collect();
    println!(
        "  {name} trials, s (c: the leader was also the active controller): {}",
        trials.join(" ")
    );
    for (killed_controller, kind) in [(false, "not the controller"), (true, "also the controller")]
    {
        let times = seconds(
            failovers
                .partition
                .iter()
                .filter(|trial| trial.killed_controller == killed_controller)
                .map(|trial| trial.produced)
                .collect(),
        );
        if !times.is_empty() {
            println!(
                "  {name}, leader {kind}: {} trials, p50 {:.3} s, max {:.3} s",
                times.len(),
                p50(&times),
                max(&times)
            );
        }
    }
    let errors: Vec<String> = failovers
        .partition
        .iter()
        .flat_map(|trial| &trial.errors)
        .map(ToString::to_string)
        .collect();
    if !errors.is_empty() {
        println!("  {name} delivery errors on the way: {errors:?}");
    }
}

fn report_controller_failover(eddy: &Failovers, reference: &Failovers) {
    let eddy_times = seconds(eddy.controller.clone());
    let reference_times = seconds(reference.controller.clone());
    let (eddy_p50, eddy_max) = (p50(&eddy_times), max(&eddy_times));
    let (reference_p50, reference_max) = (p50(&reference_times), max(&reference_times));
    println!(
        "controller failover: SIGKILL the metadata quorum's leader → a survivor names another (DescribeQuorum)"
    );
    println!(
        "  eddy      ({} trials): p50 {eddy_p50:>6.3} s  max {eddy_max:>6.3} s  target ≤ 2 s: {}",
        eddy_times.len(),
        verdict(eddy_max <= 2.0)
    );
    println!(
        "  reference ({} trials): p50 {reference_p50:>6.3} s  max {reference_max:>6.3} s",
        reference_times.len()
    );
    println!(
        "  ratio reference / eddy: p50 {:.1}×, max {:.1}×\n",
        reference_p50 / eddy_p50,
        reference_max / eddy_max
    );
}

/// `eddy cluster up` to its ready line and the nodes' idle memory, with one
/// `eddy broker` as the reference for both.
fn report_startup_and_memory() {
    let mut cluster_startups = Vec::new();
    let mut cluster_rss_kib = Vec::new();
    let mut supervisor_rss_kib = Vec::new();
    let mut node_startups = Vec::new();
    let mut node_rss_kib = Vec::new();
    for _ in 0..STARTUP_RUNS {
        let cluster = ClusterUp::start();
        cluster_startups.push(cluster.ready_after.as_secs_f64());
        std::thread::sleep(SETTLE);
        cluster_rss_kib.push(
            cluster
                .node_pids
                .iter()
                .map(|pid| resident_set_kib(*pid))
                .sum::<u64>() as f64,
        );
        supervisor_rss_kib.push(resident_set_kib(cluster.supervisor.id()) as f64);
        drop(cluster);

        let started = Instant::now();
        let node = Node::start();
        // Node::start returns once the node printed its ready line.
        node_startups.push(started.elapsed().as_secs_f64());
        std::thread::sleep(SETTLE);
        node_rss_kib.push(resident_set_kib(node.pid()) as f64);
    }
    let cluster_startup = median(cluster_startups);
    let node_startup = median(node_startups);
    println!("startup: exec → ready line ({STARTUP_RUNS} runs each, median)");
    println!(
        "  eddy cluster up --nodes {NODES}: {:>7.1} ms  target ≤ 1000 ms: {}",
        cluster_startup * 1000.0,
        verdict(cluster_startup <= 1.0)
    );
    println!(
        "  reference, one eddy broker: {:>7.1} ms",
        node_startup * 1000.0
    );
    println!(
        "  ratio cluster / one node: {:.1}×\n",
        cluster_startup / node_startup
    );

    let cluster_mib = median(cluster_rss_kib) / 1024.0;
    let node_mib = median(node_rss_kib) / 1024.0;
    println!(
        "idle RSS on empty data dirs, {:.0} s after ready ({STARTUP_RUNS} runs each, median)",
        SETTLE.as_secs_f64()
    );
    println!(
        "  {NODES} cluster nodes together: {cluster_mib:>6.1} MiB  target ≤ 60 MiB: {}",
        verdict(cluster_mib <= 60.0)
    );
    println!("  reference, one eddy broker:   {node_mib:>6.1} MiB");
    println!(
        "  ratio cluster / one node: {:.2}× (the supervisor, not counted: {:.1} MiB)\n",
        cluster_mib / node_mib,
        median(supervisor_rss_kib) / 1024.0
    );
}

fn resident_set_kib(pid: u32) -> u64 {
    support::resident_set_kib(pid).unwrap_or_else(|| panic!("no VmRSS for process {pid}"))
}

/// One `eddy cluster up --nodes 3` in the foreground on an empty data
/// directory; dropping it stops the cluster with SIGTERM.
struct ClusterUp {
    /// Holds the data directory and the supervisor's log.
    _home: TempDir,
    supervisor: Child,
    /// Spawn → the ready line on stdout.
    ready_after: Duration,
    node_pids: Vec<u32>,
}

impl ClusterUp {
    fn start() -> ClusterUp {
        let home = tempfile::Builder::new()
            .prefix("eddy-cluster-bench-")
            .tempdir()
            .expect("temporary cluster directory");
        let log =
            std::fs::File::create(home.path().join("supervisor.log")).expect("supervisor log file");
        let started = Instant::now();
        let mut supervisor = Command::new(support::eddy_binary())
            .args(["cluster", "up", "--nodes", &NODES.to_string()])
            .arg("--data")
            .arg(home.path().join("data"))
            .args(["--base-port", &free_base_port(NODES).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning eddy cluster up");
        let received = support::stdout_lines(&mut supervisor);
        let mut ready_after = None;
        let mut node_pids = Vec::new();
        while node_pids.len() < usize::from(NODES) {
            let line = received
                .recv_timeout(TIMEOUT.saturating_sub(started.elapsed()))
                .unwrap_or_else(|_| {
                    panic!(
                        "eddy cluster up: no ready line and node lines within {TIMEOUT:?}; its log:\n{}",
                        std::fs::read_to_string(home.path().join("supervisor.log"))
                            .unwrap_or_default()
                    )
                });
            if line.starts_with("eddy cluster ready: bootstrap servers") {
                ready_after = Some(started.elapsed());
            } else if let Some(pid) = node_pid(&line) {
                node_pids.push(pid);
            }
        }
        ClusterUp {
            _home: home,
            supervisor,
            ready_after: ready_after.expect("the ready line comes before the node lines"),
            node_pids,
        }
    }
}

/// The pid in a node line of `eddy cluster up`:
/// `  node 1: 127.0.0.1:P (controller 127.0.0.1:C), pid 123, log ...`.
fn node_pid(line: &str) -> Option<u32> {
    let rest = line.trim_start().strip_prefix("node ")?;
    let (_, after) = rest.split_once(", pid ")?;
    after.split(',').next()?.trim().parse().ok()
}

impl Drop for ClusterUp {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.supervisor.id().to_string()])
            .status();
        let stopped = support::wait_until(Duration::from_secs(10), || {
            matches!(self.supervisor.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.supervisor.kill();
            let _ = self.supervisor.wait();
        }
    }
}

/// RF=3 acks=all on the cluster against one node (no voters) at acks=1,
/// alternating, a fresh one-partition topic per run; RF=3 acks=1 for context.
fn report_throughput() {
    let cluster = Cluster::start(i32::from(NODES), &[]);
    let node = Node::start();
    let mut cluster_rates = Vec::new();
    let mut node_rates = Vec::new();
    // Not a target: separates the cost of replicating from waiting for it.
    let mut cluster_acks_one_rates = Vec::new();
    for run in 0..THROUGHPUT_RUNS {
        let topic = format!("throughput-{run}");
        kafka::create_topic(&node.bootstrap(), &topic, 1, &[]);
        node_rates.push(produce(&node.bootstrap(), &topic, "1"));

        create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3, &[]);
        cluster
            .wait_for_agreed_partition(&topic, 0, TIMEOUT, |leader, _, isr| {
                leader > 0 && isr.len() == usize::from(NODES)
            })
            .expect("a leader with a full ISR");
        cluster_rates.push(produce(&cluster.bootstrap(), &topic, "all"));

        let topic = format!("throughput-acks-1-{run}");
        create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3, &[]);
        cluster
            .wait_for_agreed_partition(&topic, 0, TIMEOUT, |leader, _, isr| {
                leader > 0 && isr.len() == usize::from(NODES)
            })
            .expect("a leader with a full ISR");
        cluster_acks_one_rates.push(produce(&cluster.bootstrap(), &topic, "1"));
    }
    let cluster_rate = median(cluster_rates);
    let node_rate = median(node_rates);
    let ratio = cluster_rate / node_rate;
    let mib_per_second = |rate: f64| rate * RECORD_BYTES as f64 / (1024.0 * 1024.0);
    println!(
        "produce throughput, {THROUGHPUT_RECORDS} records of {RECORD_BYTES} B to one partition ({THROUGHPUT_RUNS} runs each, median)"
    );
    println!(
        "  eddy, RF=3 acks=all:          {cluster_rate:>9.0} records/s ({:.1} MiB/s)",
        mib_per_second(cluster_rate)
    );
    println!(
        "  reference, one node acks=1:   {node_rate:>9.0} records/s ({:.1} MiB/s)",
        mib_per_second(node_rate)
    );
    let acks_one_rate = median(cluster_acks_one_rates);
    println!(
        "  context, RF=3 acks=1:         {acks_one_rate:>9.0} records/s ({:.1} MiB/s)",
        mib_per_second(acks_one_rate)
    );
    println!(
        "  ratio cluster acks=all / one node: {ratio:.2}×  target ≥ 0.4×: {}",
        verdict(ratio >= 0.4)
    );
}

/// Produces [`THROUGHPUT_RECORDS`] to partition 0 and waits for every
/// delivery report; returns records per second.
fn produce(bootstrap: &str, topic: &str, acks: &str) -> f64 {
    let mut config = kafka::client_config(bootstrap);
    config.set("acks", acks);
    for (key, value) in THROUGHPUT_PRODUCER_SETTINGS {
        config.set(*key, *value);
    }
    let producer = RecordingProducer::new(&config);
    let record = Outgoing {
        key: Vec::new(),
        value: vec![b'x'; RECORD_BYTES],
        headers: Vec::new(),
        timestamp_ms: None,
    };
    let started = Instant::now();
    for index in 0..THROUGHPUT_RECORDS {
        producer.send(topic, 0, index, &record);
    }
    producer.flush(TIMEOUT);
    let elapsed = started.elapsed();
    assert_eq!(
        producer.deliveries.failed_count(),
        0,
        "records failed on {bootstrap} (acks={acks})"
    );
    assert_eq!(
        producer.deliveries.acknowledged_count(),
        THROUGHPUT_RECORDS,
        "every record acknowledged on {bootstrap} (acks={acks})"
    );
    THROUGHPUT_RECORDS as f64 / elapsed.as_secs_f64()
}

fn seconds(durations: Vec<Duration>) -> Vec<f64> {
    let mut values: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
    values.sort_by(f64::total_cmp);
    values
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn p50(sorted: &[f64]) -> f64 {
    percentile(sorted, 0.50)
}

fn p99(sorted: &[f64]) -> f64 {
    percentile(sorted, 0.99)
}

fn max(sorted: &[f64]) -> f64 {
    percentile(sorted, 1.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.50)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
