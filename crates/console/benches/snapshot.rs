//! The poller's pure work at the scale the desktop app promises (3 nodes,
//! 2,000 partitions, 300 consumer groups), without a cluster:
//!
//! - `snapshot::build`: what one poll gathered → the snapshot the UI shows;
//! - `diff::diff`: a healthy snapshot → one where a node died (its
//!   leaderships moved to the next in-sync replica, every ISR it was in
//!   shrank), once as for any Kafka cluster (every partition compared) and
//!   once as for Eddy (the controller explains partition changes);
//! - reference: serialising the snapshot as the JSON `Update` the UI
//!   receives (serde_json), which every poll pays too.
//!
//! Run on demand: `cargo bench -p eddy-console --bench snapshot`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use eddy_client::{
    BrokerInfo, ClusterMetadata, PartitionInfo, QuorumInfo, QuorumReplica, TopicInfo,
};
use eddy_console::diff::diff;
use eddy_console::model::{ClusterSnapshot, GroupSummary, Update};
use eddy_console::snapshot::{Gathered, Process, build};

const NODES: i32 = 3;
const TOPICS: i32 = 40;
const PARTITIONS_PER_TOPIC: i32 = 50;
const REPLICATION_FACTOR: i32 = 3;
const GROUPS: usize = 300;
/// The node that dies between the two snapshots; not the controller.
const DEAD_NODE: i32 = 2;
const CONTROLLER: i32 = 1;
const WARMUP: usize = 20;
const ITERATIONS: usize = 500;
const DIFF_TARGET: Duration = Duration::from_millis(50);

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing:
    // only run the real thing when asked.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("snapshot benchmark: run with `cargo bench -p eddy-console --bench snapshot`");
        return;
    }
    let partitions = TOPICS * PARTITIONS_PER_TOPIC;
    println!(
        "{NODES} nodes, {TOPICS} topics × {PARTITIONS_PER_TOPIC} partitions = {partitions} partitions, RF {REPLICATION_FACTOR}, leaders spread evenly, {GROUPS} groups"
    );
    println!(
        "after: node {DEAD_NODE} died (down, fenced: its leaderships moved to the next replica, it left every ISR)"
    );
    println!("{WARMUP} warm-up + {ITERATIONS} timed iterations each; p99 is the nearest rank\n");

    let healthy = Cluster::healthy();
    let broken = healthy.without(DEAD_NODE);
    let before = build(healthy.gathered(1_000), None, 1);
    let after = build(broken.gathered(1_500), Some(&before), 2);
    check(&before, &after);

    let build_times = time(|| {
        let gathered = broken.gathered(1_500);
        let started = Instant::now();
        black_box(build(gathered, Some(&before), 2));
        started.elapsed()
    });
    let observed = diff(&before, &after, false);
    let diff_times = time(|| {
        let started = Instant::now();
        black_box(diff(black_box(&before), black_box(&after), false));
        started.elapsed()
    });
    let controller_explains = diff(&before, &after, true);
    let explained_diff_times = time(|| {
        let started = Instant::now();
        black_box(diff(black_box(&before), black_box(&after), true));
        started.elapsed()
    });
    let update = Update::Snapshot(after.clone());
    let json_bytes = serde_json::to_string(&update).map_or(0, |json| json.len());
    let serialise_times = time(|| {
        let started = Instant::now();
        let json = serde_json::to_string(black_box(&update));
        black_box(json.ok());
        started.elapsed()
    });

    println!("{:<52} {:>10} {:>10}", "operation", "median", "p99");
    print_row("snapshot::build (Gathered → ClusterSnapshot)", &build_times);
    print_row(
        &format!("diff::diff, every partition ({} events)", observed.len()),
        &diff_times,
    );
    print_row(
        &format!(
            "diff::diff, controller explains ({} events)",
            controller_explains.len()
        ),
        &explained_diff_times,
    );
    print_row(
        &format!(
            "reference: serde_json Update::Snapshot ({} KiB)",
            json_bytes / 1024
        ),
        &serialise_times,
    );
    let diff_p99 = percentile(&diff_times, 0.99);
    println!(
        "\ndiff (every partition) p99 {:.3} ms, target < {} ms: {}",
        millis(diff_p99),
        DIFF_TARGET.as_millis(),
        if diff_p99 < DIFF_TARGET {
            "met"
        } else {
            "MISSED"
        }
    );
    let serialise_median = millis(percentile(&serialise_times, 0.5));
    println!(
        "ratio to serialising the snapshot (median): build {:.2}×, diff {:.2}×, diff with the controller explaining {:.3}×",
        millis(percentile(&build_times, 0.5)) / serialise_median,
        millis(percentile(&diff_times, 0.5)) / serialise_median,
        millis(percentile(&explained_diff_times, 0.5)) / serialise_median,
    );
}

/// A cluster's state as Metadata and DescribeQuorum report it, with what
/// the detail task adds (offsets, sizes, groups).
struct Cluster {
    metadata: ClusterMetadata,
    quorum: QuorumInfo,
    processes: Vec<Process>,
    offsets: HashMap<(String, i32), (i64, i64)>,
    sizes: HashMap<String, u64>,
    groups: Vec<GroupSummary>,
}

impl Cluster {
    /// Every node up, every ISR full; partition p of topic t has replicas
    /// starting at node (t + p) % 3 + 1, and leads there.
    fn healthy() -> Cluster {
        let brokers = (1..=NODES)
            .map(|id| BrokerInfo {
                id,
                host: "127.0.0.1".into(),
                port: 19091 + id,
                rack: None,
            })
            .collect();
        let mut offsets = HashMap::new();
        let mut sizes = HashMap::new();
        let topics = (0..TOPICS)
            .map(|topic| {
                let name = format!("topic-{topic:02}");
                let partitions = (0..PARTITIONS_PER_TOPIC)
                    .map(|partition| {
                        let replicas: Vec<i32> = (0..REPLICATION_FACTOR)
                            .map(|index| (topic + partition + index) % NODES + 1)
                            .collect();
                        offsets.insert(
                            (name.clone(), partition),
                            (0, 10_000 + i64::from(partition)),
                        );
                        PartitionInfo {
                            partition,
                            leader: Some(replicas[0]),
                            leader_epoch: 3,
                            isr: replicas.clone(),
                            replicas,
                            offline_replicas: Vec::new(),
                            error: None,
                        }
                    })
                    .collect();
                sizes.insert(name.clone(), 3 * 1024 * 1024);
                TopicInfo {
                    name,
                    topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                    internal: false,
                    error: None,
                    partitions,
                }
            })
            .collect();
        let voter = |id| QuorumReplica {
            id,
            log_end_offset: Some(5_000),
            lag: Some(0),
            last_fetch_timestamp_ms: Some(0),
            last_caught_up_timestamp_ms: Some(0),
        };
        let groups = (0..GROUPS)
            .map(|group| GroupSummary {
                group_id: format!("group-{group:03}"),
                state: "Empty".into(),
                protocol_type: "consumer".into(),
                members: 0,
                total_lag: Some(42),
            })
            .collect();
        Cluster {
            metadata: ClusterMetadata {
                answered_by: "127.0.0.1:19092".into(),
                cluster_id: Some("eddy-bench".into()),
                controller_id: Some(CONTROLLER),
                brokers,
                topics,
            },
            quorum: QuorumInfo {
                answered_by: "127.0.0.1:19092".into(),
                leader_id: Some(CONTROLLER),
                leader_epoch: 2,
                high_watermark: 5_000,
                voters: (1..=NODES).map(voter).collect(),
                observers: Vec::new(),
            },
            processes: (1..=NODES)
                .map(|id| Process {
                    id,
                    port: 19091 + id as u16,
                    pid: Some(1000 + id as u32),
                    running: true,
                    paused: false,
                    isolated: false,
                    throttle_rate: None,
                })
                .collect(),
            offsets,
            sizes,
            groups,
        }
    }

    /// The same cluster after `dead` was SIGKILLed and fenced: gone from
    /// Metadata, its process not running, out of every ISR, and each
    /// partition it led now led by its next in-sync replica.
    fn without(&self, dead: i32) -> Cluster {
        let mut metadata = self.metadata.clone();
        metadata.brokers.retain(|broker| broker.id != dead);
        for partition in metadata
            .topics
            .iter_mut()
            .flat_map(|topic| &mut topic.partitions)
        {
            partition.isr.retain(|node| *node != dead);
            partition.offline_replicas = vec![dead];
            if partition.leader == Some(dead) {
                partition.leader = partition.isr.first().copied();
                partition.leader_epoch += 1;
            }
        }
        let mut quorum = self.quorum.clone();
        for voter in quorum.voters.iter_mut().filter(|voter| voter.id == dead) {
            voter.lag = Some(40);
        }
        let mut processes = self.processes.clone();
        for process in processes.iter_mut().filter(|process| process.id == dead) {
            process.running = false;
            process.pid = None;
        }
        Cluster {
            metadata,
            quorum,
            processes,
            offsets: self.offsets.clone(),
            sizes: self.sizes.clone(),
            groups: self.groups.clone(),
        }
    }

    /// What one poll hands to `build`, as the poller assembles it.
    fn gathered(&self, taken_at_ms: i64) -> Gathered {
        Gathered {
            taken_at_ms,
            metadata: Some(self.metadata.clone()),
            quorum: Some(self.quorum.clone()),
            processes: self.processes.clone(),
            offsets: self.offsets.clone(),
            sizes: self.sizes.clone(),
            groups: self.groups.clone(),
            problems: Vec::new(),
            reassignments: Vec::new(),
            config_error: None,
        }
    }
}

/// The snapshots look like what is measured: every partition present, the
/// dead node's leaderships gone.
fn check(before: &ClusterSnapshot, after: &ClusterSnapshot) {
    let count = |snapshot: &ClusterSnapshot| {
        snapshot
            .topics
            .iter()
            .map(|topic| topic.partitions.len())
            .sum::<usize>()
    };
    let expected = (TOPICS * PARTITIONS_PER_TOPIC) as usize;
    assert_eq!(count(before), expected, "partitions before");
    assert_eq!(count(after), expected, "partitions after");
    assert_eq!(after.groups.len(), GROUPS, "groups after");
    let leads = |snapshot: &ClusterSnapshot| {
        snapshot
            .nodes
            .iter()
            .find(|node| node.id == DEAD_NODE)
            .map_or(0, |node| node.leader_count)
    };
    assert!(leads(before) > 0, "the node to die leads partitions");
    assert_eq!(leads(after), 0, "the dead node leads nothing");
}

/// Runs `iteration` [`WARMUP`] times untimed, then [`ITERATIONS`] times;
/// returns the times sorted.
fn time(mut iteration: impl FnMut() -> Duration) -> Vec<Duration> {
    for _ in 0..WARMUP {
        iteration();
    }
    let mut times: Vec<Duration> = (0..ITERATIONS).map(|_| iteration()).collect();
    times.sort();
    times
}

/// Nearest-rank percentile of sorted times.
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_row(label: &str, sorted: &[Duration]) {
    println!(
        "{label:<52} {:>7.3} ms {:>7.3} ms",
        millis(percentile(sorted, 0.5)),
        millis(percentile(sorted, 0.99))
    );
}
