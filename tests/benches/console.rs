//! The console core (`eddy-console`) watching a real three-node Eddy
//! cluster (separate `eddy broker` processes, topics with replication
//! factor 3) at the scale the desktop app promises — 2,000 partitions and
//! 300 consumer groups with committed offsets — against a tiny cluster (one
//! topic, one group) measured the same way in the same run:
//!
//! - view latency: SIGKILL a node that leads partitions (every third
//!   trial, the leader of `__eddy_events`, which the console reads before
//!   it publishes each snapshot); the cluster has changed when a raw
//!   Metadata probe to a survivor first names a new leader for one of its
//!   partitions, and the view has when the console's published
//!   `Update::Snapshot` first does;
//! - the console's poll cost, seen from outside: the interval between
//!   published snapshots (one per poll interval, more when a poll
//!   overruns), the time from a snapshot's `taken_at_ms` (end of the
//!   gather) to its publication, and what Metadata + DescribeQuorum (a
//!   poll's requests) take from here; and the detail task's period
//!   (offsets, sizes, group lag), from the moments a partition's high
//!   watermark moves in the view while a record goes to it every 100 ms;
//! - app start: `Console::local` on an initialised data directory (empty,
//!   and holding the large scale) to its first snapshot with three nodes
//!   up, against `eddy cluster up` on the same directory.
//!
//! Run on demand (not part of `npm test`):
//! `cargo bench -p eddy-e2e --bench console`.

#[path = "../e2e/support/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eddy_client::{Client, GroupOffsets, NewRecord, NewTopic};
use eddy_cluster::ClusterSpec;
use eddy_console::model::{ClusterSnapshot, NodeStatus, Update};
use eddy_console::{Console, Options};
use tokio::runtime::Runtime;
use tokio::sync::broadcast::error::RecvError;

use support::cluster::{Cluster, ClusterView, free_base_port, view_of};

const NODES: i32 = 3;
const REPLICATION_FACTOR: i16 = 3;
/// Partitions each group commits an offset for.
const PARTITIONS_PER_GROUP: i32 = 3;
const TRIALS: usize = 15;
/// How long the console is watched with nothing changing but a marker.
const STEADY_WINDOW: Duration = Duration::from_secs(15);
/// How often a record goes to the marker partition during that window.
const MARKER_INTERVAL: Duration = Duration::from_millis(100);
/// Pause between two rounds of the raw Metadata probe.
const PROBE_PAUSE: Duration = Duration::from_millis(10);
/// Poll-like requests timed from here.
const GATHER_SAMPLES: usize = 20;
const STARTUP_RUNS: usize = 3;
/// Budget for any one wait: a topic, a full ISR, a snapshot.
const TIMEOUT: Duration = Duration::from_secs(180);
/// The console's per-request timeout for its polls, matched here.
const NODE_TIMEOUT: Duration = Duration::from_millis(400);
/// Admin requests that create hundreds of partitions take a while.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Where Eddy's controller explains itself; the console tails it.
const EVENTS_TOPIC: &str = "__eddy_events";
const VIEW_TARGET: Duration = Duration::from_secs(1);
const START_TARGET: Duration = Duration::from_secs(2);

/// How many topics, partitions and groups a cluster is given.
#[derive(Clone, Copy)]
struct Scale {
    name: &'static str,
    topics: i32,
    partitions_per_topic: i32,
    groups: usize,
}

const LARGE: Scale = Scale {
    name: "large",
    topics: 40,
    partitions_per_topic: 50,
    groups: 300,
};
/// One partition per node, so a node other than the controller leads one.
const TINY: Scale = Scale {
    name: "tiny",
    topics: 1,
    partitions_per_topic: 3,
    groups: 1,
};

impl Scale {
    fn topic(&self, index: i32) -> String {
        format!("{}-{index:02}", self.name)
    }

    fn topic_names(&self) -> Vec<String> {
        (0..self.topics).map(|index| self.topic(index)).collect()
    }

    fn partitions(&self) -> usize {
        (self.topics * self.partitions_per_topic) as usize
    }

    fn describe(&self) -> String {
        format!(
            "{} topic(s) × {} partitions = {} partitions, RF {REPLICATION_FACTOR}, {} group(s) with offsets on {PARTITIONS_PER_GROUP} partitions each",
            self.topics,
            self.partitions_per_topic,
            self.partitions(),
            self.groups
        )
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing:
    // only run the real thing when asked.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("console benchmark: run with `cargo bench -p eddy-e2e --bench console`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let options = Options::default();
    println!("a {NODES}-node eddy cluster with default settings, watched by Console::remote");
    println!(
        "console options: poll every {} ms, detail every {} ms",
        options.poll_interval.as_millis(),
        options.detail_interval.as_millis()
    );
    println!("large: {}", LARGE.describe());
    println!("reference, tiny: {}", TINY.describe());
    println!(
        "{TRIALS} kill trials per cluster; the killed node leads partitions; every third trial it is the leader of {EVENTS_TOPIC}, otherwise not the active controller when another such node exists"
    );
    println!(
        "raw probe: Metadata to each survivor on a fresh connection, {} ms between rounds\n",
        PROBE_PAUSE.as_millis()
    );

    let tiny = measure(&runtime, TINY);
    let large = measure(&runtime, LARGE);
    report_view_latency(&tiny, &large);
    report_app_start(&runtime);
}

/// What one cluster and its console did.
struct Measured {
    scale: Scale,
    topics_created: Duration,
    in_sync: Duration,
    groups_committed: Duration,
    /// `Console::remote` → a snapshot with every topic and group.
    first_full_view: Duration,
    /// The 1-minute load average when the steady window began.
    load_before_steady: String,
    steady: Steady,
    trials: Vec<Trial>,
}

struct Steady {
    /// Between consecutive published snapshots.
    intervals: Vec<Duration>,
    /// A snapshot's `taken_at_ms` → its arrival here, in ms.
    publish_ms: Vec<f64>,
    /// Metadata + DescribeQuorum from this process, back to back.
    gather: Vec<Duration>,
    /// The mean time between high-watermark moves of the marker partition
    /// in the view, and how many moves it is over.
    detail_period: Option<(Duration, usize)>,
}

struct Trial {
    node: i32,
    was_controller: bool,
    /// It led `__eddy_events`.
    led_events: bool,
    /// Partitions the node led.
    led: usize,
    /// SIGKILL → the raw probe names a new leader.
    changed: Duration,
    /// SIGKILL → a published snapshot names one.
    viewed: Duration,
    /// Round trips of the raw probe (one Metadata per survivor) meanwhile.
    probe_round: Duration,
}

impl Trial {
    /// View after cluster, in ms; negative when the console's poll saw it
    /// before the probe did.
    fn lag_ms(&self) -> f64 {
        (self.viewed.as_secs_f64() - self.changed.as_secs_f64()) * 1000.0
    }
}

fn measure(runtime: &Runtime, scale: Scale) -> Measured {
    let mut cluster = Cluster::start(NODES, &[]);
    let bootstrap = cluster.bootstrap();
    let topics = scale.topic_names();
    let started = Instant::now();
    runtime.block_on(create_topics(
        &bootstrap,
        &topics,
        scale.partitions_per_topic,
    ));
    let topics_created = started.elapsed();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let started = Instant::now();
    cluster
        .wait_for_full_isr(
            &topic_refs,
            usize::from(REPLICATION_FACTOR.unsigned_abs()),
            TIMEOUT,
        )
        .unwrap_or_else(|short| panic!("{}: {short}", scale.name));
    let in_sync = started.elapsed();
    let started = Instant::now();
    runtime.block_on(commit_groups(&bootstrap, scale));
    let groups_committed = started.elapsed();

    let started = Instant::now();
    let console = runtime.block_on(Console::remote(
        "bench",
        &bootstrap,
        false,
        Options::default(),
    ));
    let snapshots = watch_snapshots(runtime, &console);
    wait_for_snapshot(&snapshots, |snapshot| is_full(snapshot, scale))
        .unwrap_or_else(|| panic!("{}: no full snapshot within {TIMEOUT:?}", scale.name));
    let first_full_view = started.elapsed();

    let load_before_steady = load_average();
    let steady = steady(runtime, &bootstrap, &snapshots, scale);
    let trials = (0..TRIALS)
        .map(|index| trial(&mut cluster, &snapshots, &topic_refs, index))
        .collect();
    runtime.block_on(console.shutdown());
    Measured {
        scale,
        topics_created,
        in_sync,
        groups_committed,
        first_full_view,
        load_before_steady,
        steady,
        trials,
    }
}

/// Creates each topic with its own CreateTopics request.
async fn create_topics(bootstrap: &str, topics: &[String], partitions: i32) {
    let mut client = client(bootstrap, ADMIN_TIMEOUT);
    for topic in topics {
        let new_topic = NewTopic {
            replication_factor: REPLICATION_FACTOR,
            ..NewTopic::new(topic.as_str(), partitions)
        };
        let outcome = client
            .create_topics(&[new_topic])
            .await
            .unwrap_or_else(|error| panic!("CreateTopics {topic}: {error}"));
        for (name, result) in outcome {
            if let Err(failure) = result {
                panic!("CreateTopics {name}: {failure:?}");
            }
        }
    }
}

/// Group g commits offset 0 for [`PARTITIONS_PER_GROUP`] partitions of
/// topic g mod topics (the admin path: the groups have no members).
async fn commit_groups(bootstrap: &str, scale: Scale) {
    let mut client = client(bootstrap, ADMIN_TIMEOUT);
    for group in 0..scale.groups {
        let topic = scale.topic(group as i32 % scale.topics);
        let first = (group as i32 * PARTITIONS_PER_GROUP) % scale.partitions_per_topic;
        let offsets: GroupOffsets = (0..PARTITIONS_PER_GROUP)
            .map(|index| {
                let partition = (first + index) % scale.partitions_per_topic;
                ((topic.clone(), partition), 0)
            })
            .collect();
        let group_id = format!("{}-group-{group:03}", scale.name);
        client
            .commit_group_offsets(&group_id, &offsets)
            .await
            .unwrap_or_else(|error| panic!("OffsetCommit for {group_id}: {error}"));
    }
}

fn client(bootstrap: &str, timeout: Duration) -> Client {
    Client::new(bootstrap.split(',')).with_node_timeout(timeout)
}

/// A published snapshot and when it arrived.
struct Seen {
    at: Instant,
    wall_ms: i64,
    snapshot: ClusterSnapshot,
}

/// Every snapshot the console publishes from now on, as it arrives.
fn watch_snapshots(runtime: &Runtime, console: &Console) -> mpsc::Receiver<Seen> {
    let mut updates = console.subscribe();
    let (sender, receiver) = mpsc::channel();
    runtime.spawn(async move {
        loop {
            match updates.recv().await {
                Ok(Update::Snapshot(snapshot)) => {
                    let seen = Seen {
                        at: Instant::now(),
                        wall_ms: support::now_ms(),
                        snapshot,
                    };
                    if sender.send(seen).is_err() {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    receiver
}

/// The first snapshot to arrive for which `condition` holds.
fn wait_for_snapshot(
    snapshots: &mpsc::Receiver<Seen>,
    mut condition: impl FnMut(&ClusterSnapshot) -> bool,
) -> Option<Seen> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let seen = snapshots
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()?;
        if condition(&seen.snapshot) {
            return Some(seen);
        }
    }
}

/// Every topic with every partition, every group, all nodes up.
fn is_full(snapshot: &ClusterSnapshot, scale: Scale) -> bool {
    let partitions: usize = snapshot
        .topics
        .iter()
        .filter(|topic| topic.name.starts_with(scale.name))
        .map(|topic| topic.partitions.len())
        .sum();
    partitions == scale.partitions() && snapshot.groups.len() >= scale.groups && all_up(snapshot)
}

fn all_up(snapshot: &ClusterSnapshot) -> bool {
    snapshot.nodes.len() == NODES as usize
        && snapshot
            .nodes
            .iter()
            .all(|node| node.status == NodeStatus::Up)
}

/// Watches the console for [`STEADY_WINDOW`] while a record goes to
/// partition 0 of the first topic every [`MARKER_INTERVAL`], then times a
/// poll's requests from here.
fn steady(
    runtime: &Runtime,
    bootstrap: &str,
    snapshots: &mpsc::Receiver<Seen>,
    scale: Scale,
) -> Steady {
    let marker_topic = scale.topic(0);
    let marker = {
        let mut client = client(bootstrap, NODE_TIMEOUT);
        let topic = marker_topic.clone();
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(MARKER_INTERVAL);
            loop {
                ticker.tick().await;
                let record = NewRecord::new(None::<Vec<u8>>, "marker");
                let _ = client.produce(&topic, Some(0), vec![record], 1).await;
            }
        })
    };
    while snapshots.try_recv().is_ok() {}
    let until = Instant::now() + STEADY_WINDOW;
    let mut seen = Vec::new();
    while let Ok(next) = snapshots.recv_timeout(until.saturating_duration_since(Instant::now())) {
        seen.push(next);
    }
    marker.abort();

    let intervals = seen
        .windows(2)
        .map(|pair| pair[1].at - pair[0].at)
        .collect();
    let publish_ms = seen
        .iter()
        .map(|seen| (seen.wall_ms - seen.snapshot.taken_at_ms) as f64)
        .collect();
    let watermark = |snapshot: &ClusterSnapshot| {
        snapshot
            .topics
            .iter()
            .find(|topic| topic.name == marker_topic)
            .and_then(|topic| topic.partitions.first())
            .and_then(|partition| partition.high_watermark)
    };
    let moves: Vec<Instant> = seen
        .windows(2)
        .filter(|pair| watermark(&pair[1].snapshot) != watermark(&pair[0].snapshot))
        .map(|pair| pair[1].at)
        .collect();
    let detail_period = match (moves.first(), moves.last()) {
        (Some(first), Some(last)) if moves.len() > 1 => {
            Some(((*last - *first) / (moves.len() as u32 - 1), moves.len() - 1))
        }
        _ => None,
    };
    let gather = runtime.block_on(async {
        let mut client = client(bootstrap, NODE_TIMEOUT);
        let mut times = Vec::with_capacity(GATHER_SAMPLES);
        for _ in 0..GATHER_SAMPLES {
            let started = Instant::now();
            client.metadata().await.expect("Metadata");
            client.describe_quorum().await.expect("DescribeQuorum");
            times.push(started.elapsed());
        }
        times
    });
    Steady {
        intervals,
        publish_ms,
        gather,
        detail_period,
    }
}

/// Kills a node that leads partitions, times the raw probe and the console
/// seeing a new leader for one of them, then restarts the node and waits
/// for every ISR to be full again.
///
/// Every third trial kills the leader of `__eddy_events`, which the
/// console reads before it publishes each snapshot, when it leads any of
/// `topics`.
fn trial(
    cluster: &mut Cluster,
    snapshots: &mpsc::Receiver<Seen>,
    topics: &[&str],
    index: usize,
) -> Trial {
    cluster.wait_for_brokers(NODES as usize, TIMEOUT);
    let controller = cluster.quorum_leader().expect("an active controller");
    let view = agreed_view(cluster, topics);
    let events_leader = view
        .partition(EVENTS_TOPIC, 0)
        .map(|(leader, _, _)| leader)
        .filter(|leader| *leader > 0);
    let prefer = events_leader.filter(|_| index % 3 == 2);
    let (node, led) = victim(&view, topics, controller, prefer);
    let survivors: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|candidate| candidate.node_id() != node)
        .map(support::Node::bootstrap)
        .collect();
    // The view is current: it shows the node leading what it leads.
    wait_for_snapshot(snapshots, |snapshot| {
        snapshot.topics.iter().all(|topic| {
            led.get(&topic.name).is_none_or(|partitions| {
                topic
                    .partitions
                    .iter()
                    .filter(|partition| partitions.contains(&partition.partition))
                    .all(|partition| partition.leader == node)
            })
        })
    })
    .unwrap_or_else(|| panic!("the view never showed node {node} leading its partitions"));

    let killed_at = Instant::now();
    cluster.node(node).kill();
    let probe = {
        let led = led.clone();
        std::thread::spawn(move || probe_new_leader(&survivors, &led, node))
    };
    let viewed = wait_for_snapshot(snapshots, |snapshot| {
        snapshot.topics.iter().any(|topic| {
            led.get(&topic.name).is_some_and(|partitions| {
                topic.partitions.iter().any(|partition| {
                    partitions.contains(&partition.partition)
                        && partition.leader >= 0
                        && partition.leader != node
                })
            })
        })
    })
    .unwrap_or_else(|| panic!("no snapshot named a new leader after node {node} was killed"));
    let (changed_at, probe_round) = probe.join().expect("the raw probe");
    let trial = Trial {
        node,
        was_controller: node == controller,
        led_events: events_leader == Some(node),
        led: led.values().map(HashSet::len).sum(),
        changed: changed_at - killed_at,
        viewed: viewed.at - killed_at,
        probe_round,
    };
    cluster.node(node).restart();
    cluster
        .wait_for_full_isr(
            topics,
            usize::from(REPLICATION_FACTOR.unsigned_abs()),
            TIMEOUT,
        )
        .unwrap_or_else(|short| panic!("after restarting node {node}: {short}"));
    trial
}

/// Metadata in which every node names the same leaders for `topics` and
/// `__eddy_events` (a restarted node may still report the leaders it knew
/// before it died).
fn agreed_view(cluster: &Cluster, topics: &[&str]) -> ClusterView {
    let leaders = |view: &ClusterView| {
        let mut leaders: Vec<(String, i32, i32)> = view
            .metadata
            .topics
            .iter()
            .filter_map(|topic| Some((topic.name.as_deref()?, topic)))
            .filter(|(name, _)| *name == EVENTS_TOPIC || topics.contains(name))
            .flat_map(|(name, topic)| {
                topic.partitions.iter().map(move |partition| {
                    (
                        name.to_string(),
                        partition.partition_index,
                        partition.leader_id,
                    )
                })
            })
            .collect();
        leaders.sort();
        leaders
    };
    let mut agreed = None;
    let held = support::wait_until(TIMEOUT, || {
        let views: Vec<Option<ClusterView>> = cluster
            .nodes
            .iter()
            .map(|node| view_of(&node.bootstrap()))
            .collect();
        let Some(Some(first)) = views.first() else {
            return false;
        };
        let expected = leaders(first);
        let same = views
            .iter()
            .all(|view| view.as_ref().is_some_and(|view| leaders(view) == expected));
        if same {
            agreed = Some(first.clone());
        }
        same
    });
    assert!(
        held,
        "the nodes did not agree on the leaders within {TIMEOUT:?}"
    );
    agreed.expect("an agreed view")
}

/// The node to kill and the partitions of `topics` it leads: `prefer` if it
/// leads any, else the node other than the controller that leads most, or
/// the controller if no other node leads any (Eddy does not move
/// leadership back to a restarted node).
fn victim(
    view: &ClusterView,
    topics: &[&str],
    controller: i32,
    prefer: Option<i32>,
) -> (i32, HashMap<String, HashSet<i32>>) {
    let mut led: HashMap<i32, HashMap<String, HashSet<i32>>> = HashMap::new();
    for topic in &view.metadata.topics {
        let Some(name) = topic.name.as_deref() else {
            continue;
        };
        if !topics.contains(&name) {
            continue;
        }
        for partition in &topic.partitions {
            led.entry(partition.leader_id)
                .or_default()
                .entry(name.to_string())
                .or_default()
                .insert(partition.partition_index);
        }
    }
    let count = |partitions: &HashMap<String, HashSet<i32>>| {
        partitions.values().map(HashSet::len).sum::<usize>()
    };
    let chosen = prefer
        .filter(|node| led.contains_key(node))
        .or_else(|| {
            led.iter()
                .filter(|(node, _)| **node > 0 && **node != controller)
                .max_by_key(|(node, partitions)| (count(partitions), -**node))
                .map(|(node, _)| *node)
        })
        .unwrap_or(controller);
    let partitions = led.remove(&chosen).unwrap_or_default();
    assert!(
        !partitions.is_empty(),
        "node {chosen} leads no partition of {topics:?}"
    );
    (chosen, partitions)
}

/// Polls the survivors' Metadata until one names a leader other than
/// `killed` for a partition in `led`; returns that moment and the median
/// round time.
fn probe_new_leader(
    survivors: &[String],
    led: &HashMap<String, HashSet<i32>>,
    killed: i32,
) -> (Instant, Duration) {
    let deadline = Instant::now() + TIMEOUT;
    let mut rounds = Vec::new();
    loop {
        let round = Instant::now();
        let moved = survivors
            .iter()
            .filter_map(|survivor| view_of(survivor))
            .any(|view| {
                view.metadata.topics.iter().any(|topic| {
                    let partitions = topic.name.as_deref().and_then(|name| led.get(name));
                    partitions.is_some_and(|partitions| {
                        topic.partitions.iter().any(|partition| {
                            partitions.contains(&partition.partition_index)
                                && partition.leader_id > 0
                                && partition.leader_id != killed
                        })
                    })
                })
            });
        let now = Instant::now();
        rounds.push(now - round);
        if moved {
            rounds.sort();
            return (now, rounds[rounds.len() / 2]);
        }
        assert!(now < deadline, "no survivor named a new leader");
        std::thread::sleep(PROBE_PAUSE);
    }
}

fn report_view_latency(tiny: &Measured, large: &Measured) {
    for measured in [large, tiny] {
        report_cluster(measured);
    }
    let large_lags = sorted(large.trials.iter().map(Trial::lag_ms).collect());
    let tiny_lags = sorted(tiny.trials.iter().map(Trial::lag_ms).collect());
    let (large_median, large_max) = (median(&large_lags), max(&large_lags));
    let tiny_median = median(&tiny_lags);
    println!("view latency: the view updated after the cluster changed ({TRIALS} kills each)");
    println!(
        "  large: view updated {large_median:.0} ms (median; max {large_max:.0} ms) after the cluster changed  target ≤ {} ms: {}",
        VIEW_TARGET.as_millis(),
        verdict(large_max <= VIEW_TARGET.as_secs_f64() * 1000.0)
    );
    println!(
        "  reference, tiny: {tiny_median:.0} ms (median; max {:.0} ms)",
        max(&tiny_lags)
    );
    println!(
        "  ratio large / tiny (median): {}",
        ratio(large_median, tiny_median)
    );
    let large_viewed = median(&sorted(
        large
            .trials
            .iter()
            .map(|trial| millis(trial.viewed))
            .collect(),
    ));
    let tiny_viewed = median(&sorted(
        tiny.trials
            .iter()
            .map(|trial| millis(trial.viewed))
            .collect(),
    ));
    println!(
        "  SIGKILL → view shows a new leader (median): large {large_viewed:.0} ms, tiny {tiny_viewed:.0} ms, ratio {}\n",
        ratio(large_viewed, tiny_viewed)
    );
}

fn report_cluster(measured: &Measured) {
    let scale = measured.scale;
    println!("{}: {}", scale.name, scale.describe());
    println!(
        "  setup: {} topic(s) created in {:.1} s ({:.0} ms per topic), every ISR full {:.1} s later, {} group(s) committed in {:.1} s ({:.1} ms per group)",
        scale.topics,
        measured.topics_created.as_secs_f64(),
        millis(measured.topics_created) / f64::from(scale.topics),
        measured.in_sync.as_secs_f64(),
        scale.groups,
        measured.groups_committed.as_secs_f64(),
        millis(measured.groups_committed) / scale.groups as f64
    );
    println!(
        "  Console::remote → first snapshot with every topic and group: {:.0} ms",
        millis(measured.first_full_view)
    );
    let steady = &measured.steady;
    let intervals = sorted(steady.intervals.iter().copied().map(millis).collect());
    let publish = sorted(steady.publish_ms.clone());
    let gather = sorted(steady.gather.iter().copied().map(millis).collect());
    println!(
        "  steady {} s (load average {}): {} snapshots, every {:.0} ms (median; min {:.0}, max {:.0})",
        STEADY_WINDOW.as_secs(),
        measured.load_before_steady,
        steady.intervals.len() + 1,
        median(&intervals),
        intervals.first().copied().unwrap_or(f64::NAN),
        max(&intervals)
    );
    println!(
        "    taken_at (end of gather) → published: {:.0} ms median, {:.0} ms max (build, diff, the __eddy_events tail, publish)",
        median(&publish),
        max(&publish)
    );
    println!(
        "    Metadata + DescribeQuorum from here ({GATHER_SAMPLES} times): {:.1} ms median, {:.1} ms max",
        median(&gather),
        max(&gather)
    );
    match steady.detail_period {
        Some((period, moves)) => println!(
            "    detail task: the marker's high watermark moved in the view every {:.0} ms (mean over {moves} moves; seen through {} ms polls)",
            millis(period),
            Options::default().poll_interval.as_millis()
        ),
        None => {
            println!("    detail task: the marker's high watermark never moved twice in the view")
        }
    }
    println!(
        "  trials (node killed, partitions it led; SIGKILL → raw probe sees a new leader / → view does; view − cluster):"
    );
    for trial in &measured.trials {
        println!(
            "    node {}{}{} ({:>4} led): cluster {:>5.0} ms, view {:>5.0} ms, view − cluster {:>+5.0} ms (probe round {:.0} ms)",
            trial.node,
            if trial.was_controller {
                ", the controller"
            } else {
                ""
            },
            if trial.led_events {
                ", leader of __eddy_events"
            } else {
                ""
            },
            trial.led,
            millis(trial.changed),
            millis(trial.viewed),
            trial.lag_ms(),
            millis(trial.probe_round)
        );
    }
    println!();
}

/// App start on an initialised data directory with no topics and on one
/// holding the large scale, each against `eddy cluster up` on the same
/// directory.
fn report_app_start(runtime: &Runtime) {
    println!(
        "app start: Console::local on an initialised data dir → first snapshot with {NODES} nodes up, and → one with every partition led; reference: eddy cluster up → its ready line, same dir ({STARTUP_RUNS} runs each, alternating, median)"
    );
    for populated in [None, Some(LARGE)] {
        app_start(runtime, populated);
    }
}

fn app_start(runtime: &Runtime, populated: Option<Scale>) {
    let home = tempfile::Builder::new()
        .prefix("eddy-console-bench-")
        .tempdir()
        .expect("temporary data directory");
    let data = home.path().join("data");
    let mut spec = ClusterSpec::new(&data, support::eddy_binary());
    spec.base_port = free_base_port(NODES as u16);
    let mut unlocks = Vec::new();
    let initialise = |console: &Console, snapshots: &mpsc::Receiver<Seen>| {
        let Some(scale) = populated else {
            return;
        };
        let bootstrap = console.info().bootstrap_servers.clone();
        runtime.block_on(create_topics(
            &bootstrap,
            &scale.topic_names(),
            scale.partitions_per_topic,
        ));
        runtime.block_on(commit_groups(&bootstrap, scale));
        wait_for_snapshot(snapshots, |snapshot| is_full(snapshot, scale))
            .unwrap_or_else(|| panic!("the local cluster never showed {}", scale.describe()));
    };
    // The first start finds an empty directory: nothing to lead yet.
    let first = console_start(runtime, &spec, None, initialise);
    unlocks.push(millis(first.unlocked));
    let mut up = Vec::new();
    let mut led = Vec::new();
    let (mut ready_lines, mut registered, mut cluster_led) = (Vec::new(), Vec::new(), Vec::new());
    let mut firsts = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..STARTUP_RUNS {
        loads.push(load_average());
        let cluster = cluster_up(&spec, populated);
        ready_lines.push(millis(cluster.ready));
        registered.push(millis(cluster.registered));
        cluster_led.push(millis(cluster.led));
        let start = console_start(runtime, &spec, populated, |_, _| {});
        firsts.push(format!(
            "{:.0} ms ({})",
            millis(start.first.0),
            start.first.1
        ));
        up.push(millis(start.up));
        led.push(millis(start.led));
        unlocks.push(millis(start.unlocked));
    }
    let (up_median, led_median, registered_median) = (
        median(&sorted(up.clone())),
        median(&sorted(led.clone())),
        median(&sorted(registered.clone())),
    );
    let content = populated.map_or("no topics".to_string(), |scale| scale.describe());
    println!(
        "  data dir with {content} (first start on the empty dir: {:.0} ms)",
        millis(first.up)
    );
    println!(
        "    console → {NODES} nodes up:         {up_median:>6.0} ms  target ≤ {} ms: {}  (runs: {})",
        START_TARGET.as_millis(),
        verdict(up_median <= START_TARGET.as_secs_f64() * 1000.0),
        join(&up)
    );
    println!(
        "    console → every partition led: {led_median:>6.0} ms  (runs: {})",
        join(&led)
    );
    println!(
        "    console → its first snapshot, by run: {}",
        firsts.join("; ")
    );
    println!(
        "    reference, eddy cluster up → ready line:           {:>6.0} ms  (runs: {})",
        median(&sorted(ready_lines.clone())),
        join(&ready_lines)
    );
    println!(
        "    reference, eddy cluster up → {NODES} nodes registered: {registered_median:>6.0} ms  (runs: {}; a raw Metadata probe lists them all)",
        join(&registered)
    );
    println!(
        "    reference, eddy cluster up → every partition led:  {:>6.0} ms  (runs: {})",
        median(&sorted(cluster_led.clone())),
        join(&cluster_led)
    );
    println!(
        "    ratio console / cluster up, to {NODES} nodes up: {}; to every partition led: {}",
        ratio(up_median, registered_median),
        ratio(led_median, median(&sorted(cluster_led.clone())))
    );
    println!(
        "    after Console::shutdown returned, the data dir stayed locked for (ms): {}",
        join(&unlocks)
    );
    println!(
        "    1-minute load average before each run: {}",
        loads.join(", ")
    );
}

struct ConsoleStart {
    /// `Console::local` → its first snapshot with any node, and the nodes'
    /// status in it.
    first: (Duration, String),
    /// `Console::local` → a snapshot with every node up.
    up: Duration,
    /// → a snapshot with every partition of `populated` present and led.
    led: Duration,
    /// `Console::shutdown` returned → the data directory's lock free (the
    /// supervisor goes with the console's last handle, which its poll
    /// tasks hold until they notice the stop).
    unlocked: Duration,
}

/// Starts the console on `spec`, times its first views, runs `then` on it,
/// and shuts it down.
fn console_start(
    runtime: &Runtime,
    spec: &ClusterSpec,
    populated: Option<Scale>,
    then: impl FnOnce(&Console, &mpsc::Receiver<Seen>),
) -> ConsoleStart {
    let started = Instant::now();
    let console = runtime
        .block_on(Console::local("bench", spec.clone(), Options::default()))
        .unwrap_or_else(|failure| panic!("Console::local: {failure:?}"));
    let snapshots = watch_snapshots(runtime, &console);
    let all_led = |snapshot: &ClusterSnapshot| {
        all_up(snapshot)
            && populated.is_none_or(|scale| {
                let partitions: Vec<_> = snapshot
                    .topics
                    .iter()
                    .filter(|topic| topic.name.starts_with(scale.name))
                    .flat_map(|topic| &topic.partitions)
                    .collect();
                partitions.len() == scale.partitions()
                    && partitions.iter().all(|partition| partition.leader >= 0)
            })
    };
    let mut first = None;
    let mut up = None;
    let mut led = None;
    let mut check = |snapshot: &ClusterSnapshot| {
        if first.is_none() && !snapshot.nodes.is_empty() {
            let statuses: Vec<String> = snapshot
                .nodes
                .iter()
                .map(|node| format!("{} {:?}", node.id, node.status))
                .collect();
            first = Some((started.elapsed(), statuses.join(", ")));
        }
        if up.is_none() && all_up(snapshot) {
            up = Some(started.elapsed());
        }
        if led.is_none() && all_led(snapshot) {
            led = Some(started.elapsed());
        }
        led.is_some()
    };
    if !check(&console.snapshot()) {
        wait_for_snapshot(&snapshots, &mut check).unwrap_or_else(|| {
            panic!("no snapshot with {NODES} nodes up and every partition led within {TIMEOUT:?}")
        });
    }
    let (up, led) = (up.unwrap_or_default(), led.unwrap_or_default());
    then(&console, &snapshots);
    runtime.block_on(console.shutdown());
    drop(console);
    let shut_down = Instant::now();
    // The supervisor's lock (eddy-cluster's `DATA/supervisor.lock`).
    let lock = spec.data_dir.join("supervisor.lock");
    let unlocked = support::wait_until(TIMEOUT, || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .is_ok_and(|file| file.try_lock().is_ok())
    });
    assert!(
        unlocked,
        "{} still locked after {TIMEOUT:?}",
        lock.display()
    );
    ConsoleStart {
        first: first.unwrap_or_default(),
        up,
        led,
        unlocked: shut_down.elapsed(),
    }
}

/// `eddy cluster up` on `data` → its ready line; then SIGTERM and wait.
/// What `eddy cluster up` took, from its spawn.
struct ClusterUp {
    /// → its ready line.
    ready: Duration,
    /// → a raw Metadata probe lists every node.
    registered: Duration,
    /// → one also names a leader for every partition of `populated`.
    led: Duration,
}

/// `eddy cluster up` on the directory of `spec` → its ready line, every
/// node registered and every partition led; then SIGTERM and wait.
fn cluster_up(spec: &ClusterSpec, populated: Option<Scale>) -> ClusterUp {
    let data = &spec.data_dir;
    let base_port = spec.base_port;
    let log_path = data.with_file_name("cluster-up.log");
    let log = std::fs::File::create(&log_path).expect("cluster up log file");
    let started = Instant::now();
    let mut supervisor = Command::new(support::eddy_binary())
        .args(["cluster", "up", "--nodes", &NODES.to_string()])
        .arg("--data")
        .arg(data)
        .args(["--base-port", &base_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawning eddy cluster up");
    let received = support::stdout_lines(&mut supervisor);
    let ready = loop {
        let line = received
            .recv_timeout(TIMEOUT.saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| {
                panic!(
                    "eddy cluster up: no ready line; its log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )
            });
        if line.starts_with("eddy cluster ready:") {
            break started.elapsed();
        }
    };
    let addresses: Vec<String> = spec
        .node_ids()
        .map(|node| spec.node_address(node))
        .collect();
    let (mut registered, mut led) = (None, None);
    let formed = support::wait_until(TIMEOUT, || {
        for view in addresses.iter().filter_map(|address| view_of(address)) {
            if registered.is_none() && view.brokers.len() == NODES as usize {
                registered = Some(started.elapsed());
            }
            if registered.is_some() && led.is_none() && every_partition_led(&view, populated) {
                led = Some(started.elapsed());
            }
        }
        led.is_some()
    });
    assert!(
        formed,
        "eddy cluster up: not every node registered and every partition led within {TIMEOUT:?}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &supervisor.id().to_string()])
        .status();
    let stopped = support::wait_until(TIMEOUT, || matches!(supervisor.try_wait(), Ok(Some(_))));
    assert!(stopped, "eddy cluster up did not stop after SIGTERM");
    ClusterUp {
        ready,
        registered: registered.unwrap_or_default(),
        led: led.unwrap_or_default(),
    }
}

/// Whether `view` names a leader for every partition of `populated`.
fn every_partition_led(view: &ClusterView, populated: Option<Scale>) -> bool {
    let Some(scale) = populated else {
        return true;
    };
    let partitions: Vec<i32> = view
        .metadata
        .topics
        .iter()
        .filter(|topic| {
            topic
                .name
                .as_deref()
                .is_some_and(|name| name.starts_with(scale.name))
        })
        .flat_map(|topic| topic.partitions.iter().map(|partition| partition.leader_id))
        .collect();
    partitions.len() == scale.partitions() && partitions.iter().all(|leader| *leader >= 0)
}

/// The 1-minute load average: other work on the machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|loadavg| loadavg.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn max(sorted: &[f64]) -> f64 {
    sorted.last().copied().unwrap_or(f64::NAN)
}

/// `a / b` with one decimal, or a dash when `b` is not positive (a view
/// that kept pace with the probe).
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}×", a / b)
    } else {
        "—".into()
    }
}

fn join(values: &[f64]) -> String {
    values
        .iter()
        .map(|value| format!("{value:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
