//! Cluster operations as a user drives them against a real `eddy cluster
//! up`: `add` starts a node that partitions can move to and `remove` drains a
//! node before it goes, under a steady acks=all idempotent load that loses
//! and duplicates nothing; editing `eddy.toml` starts nodes and bad edits
//! change nothing but are reported; `isolate`, `slow` and `heal` show in
//! `eddy cluster status` and in the cluster's configs.
//!
//! Each test runs its own cluster in a temporary directory on a port range
//! probed free, so tests run in parallel.

mod support;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use eddy_client::{Client, PartitionReassignment};
use eddy_cluster::{ClusterSpec, NodeState, Supervisor};
use serde_json::Value;
use support::kafka::{self, Deliveries, Outgoing, RecordingProducer, create_replicated_topic};
use support::wait_until;

/// From `up` to its ready line, on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `eddy cluster` command may take (`remove` moves data).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the cluster gets to show the effect of a change.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one Kafka request from the test may take.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);
/// Room for the nodes a test adds.
const PORT_ROOM: u16 = 6;

/// One `eddy cluster up` in the foreground with its own data directory.
struct Up {
    up: support::up::Up,
}

impl Deref for Up {
    type Target = support::up::Up;

    fn deref(&self) -> &support::up::Up {
        &self.up
    }
}

impl Up {
    fn start(nodes: u16) -> Up {
        let base_port = support::cluster::free_base_port(PORT_ROOM);
        let mut up = Up {
            up: support::up::Up::new("eddy-cluster-ops-", COMMAND_TIMEOUT),
        };
        up.run(&[
            "--nodes",
            &nodes.to_string(),
            "--base-port",
            &base_port.to_string(),
        ]);
        up
    }

    /// `eddy cluster down`, then `eddy cluster up` on the same data with
    /// no other arguments: the cluster file says the rest.
    fn restart(&mut self) {
        self.command(&["down"]);
        self.up.wait_supervisor(Duration::from_secs(15));
        self.run(&[]);
    }

    /// Runs `eddy cluster up ARGS --data DIR` and waits for its ready line.
    fn run(&mut self, args: &[&str]) {
        let printed = self.up.spawn(args);
        match printed.recv_timeout(READY_TIMEOUT) {
            Ok(line) if line.starts_with("eddy cluster ready") => {}
            other => panic!(
                "eddy cluster up printed {other:?}; its log:\n{}",
                self.supervisor_log()
            ),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.data_dir().join("eddy.toml")
    }

    fn node_ids(status: &Value) -> Vec<u64> {
        status["nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter_map(|node| node["id"].as_u64())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn bootstrap(&self) -> String {
        self.status()["bootstrap_servers"]
            .as_str()
            .expect("bootstrap servers")
            .to_string()
    }

    fn client(&self) -> Client {
        Client::new(self.bootstrap().split(',').map(str::to_string)).with_node_timeout(NODE_TIMEOUT)
    }
}

/// Runs `future` on this test thread's runtime: a [`Client`] keeps its
/// connections, which belong to the runtime that opened them.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// Each partition's replicas, as the cluster reports them.
fn replicas(client: &mut Client, topic: &str) -> Option<BTreeMap<i32, Vec<i32>>> {
    let metadata = block_on(client.metadata()).ok()?;
    let topic = metadata.topics.iter().find(|found| found.name == topic)?;
    Some(
        topic
            .partitions
            .iter()
            .map(|partition| (partition.partition, partition.replicas.clone()))
            .collect(),
    )
}

fn broker_ids(client: &mut Client) -> Vec<i32> {
    block_on(client.metadata())
        .map(|metadata| metadata.brokers.iter().map(|broker| broker.id).collect())
        .unwrap_or_default()
}

const LOAD_TOPIC: &str = "moving";
const LOAD_PARTITIONS: i32 = 3;

fn value(partition: i32, sequence: usize) -> String {
    format!("p{partition}-{sequence:08}")
}

/// Sends one record per partition every few milliseconds until stopped;
/// record `sequence * LOAD_PARTITIONS + partition` is `value(partition, sequence)`.
fn start_load(
    bootstrap: &str,
    stop: Arc<AtomicBool>,
) -> (JoinHandle<RecordingProducer>, Arc<Deliveries>) {
    let mut config = kafka::durable_producer_config(bootstrap);
    config.set("message.timeout.ms", "120000");
    let producer = RecordingProducer::new(&config);
    let deliveries = producer.deliveries.clone();
    let thread = std::thread::spawn(move || {
        let mut sequence = 0;
        while !stop.load(Ordering::Relaxed) {
            for partition in 0..LOAD_PARTITIONS {
                let index = sequence * LOAD_PARTITIONS as usize + partition as usize;
                let record = Outgoing {
                    key: format!("p{partition}").into_bytes(),
                    value: value(partition, sequence).into_bytes(),
                    headers: Vec::new(),
                    timestamp_ms: None,
                };
                producer.send(LOAD_TOPIC, partition, index, &record);
            }
            sequence += 1;
            std::thread::sleep(Duration::from_millis(4));
        }
        producer
    });
    (thread, deliveries)
}

fn acknowledged_count(deliveries: &Deliveries) -> usize {
    deliveries.acknowledged.lock().expect("deliveries").len()
}

/// Waits until `more` further records are acknowledged.
fn wait_for_acknowledgements(deliveries: &Deliveries, more: usize, what: &str) {
    let target = acknowledged_count(deliveries) + more;
    assert!(
        wait_until(SETTLE_TIMEOUT, || acknowledged_count(deliveries) >= target),
        "{what}: the load stalled at {} acknowledged records",
        acknowledged_count(deliveries)
    );
}

#[test]
fn adding_a_node_moving_partitions_to_it_and_removing_another_keeps_every_acknowledged_record() {
    let up = Up::start(3);
    let bootstrap = up.bootstrap();
    create_replicated_topic(&bootstrap, LOAD_TOPIC, LOAD_PARTITIONS, 2, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (load, deliveries) = start_load(&bootstrap, stop.clone());
    wait_for_acknowledgements(&deliveries, 100, "before adding a node");

    // `add` starts node 4 and waits until it has joined.
    let added = up.command(&["add"]);
    assert!(added.contains("node 4 added"), "add printed:\n{added}");
    assert_eq!(up.node_status(4)["state"], "running");
    let mut client = up.client();
    assert!(
        wait_until(SETTLE_TIMEOUT, || broker_ids(&mut client).contains(&4)),
        "the cluster does not list node 4: {:?}",
        broker_ids(&mut client)
    );

    wait_for_acknowledgements(&deliveries, 100, "after adding node 4");

    // Move partition 0 onto node 4 and raise partition 1 to three replicas
    // including node 4.
    let before = replicas(&mut client, LOAD_TOPIC).expect("the topic's replicas");
    let mut moved_0 = before[&0].clone();
    moved_0[1] = 4;
    let mut raised_1 = before[&1].clone();
    raised_1.push(4);
    let outcomes = block_on(client.alter_partition_reassignments(&[
        PartitionReassignment {
            topic: LOAD_TOPIC.into(),
            partition: 0,
            replicas: Some(moved_0.clone()),
        },
        PartitionReassignment {
            topic: LOAD_TOPIC.into(),
            partition: 1,
            replicas: Some(raised_1.clone()),
        },
    ]))
    .expect("AlterPartitionReassignments");
    assert!(
        outcomes.values().all(Result::is_ok),
        "reassignments refused: {outcomes:?}"
    );
    assert!(
        wait_until(Duration::from_secs(60), || {
            let done = block_on(client.list_partition_reassignments())
                .is_ok_and(|ongoing| ongoing.is_empty());
            done && replicas(&mut client, LOAD_TOPIC)
                .is_some_and(|now| now[&0] == moved_0 && now[&1] == raised_1)
        }),
        "the reassignments did not complete: {:?}, in flight {:?}",
        replicas(&mut client, LOAD_TOPIC),
        block_on(client.list_partition_reassignments())
    );

    wait_for_acknowledgements(&deliveries, 100, "after the reassignments");

    // `remove 2` drains node 2, stops it and forgets it.
    let removed = up.command(&["remove", "2"]);
    assert!(
        removed.contains("off node 2") && removed.contains("node 2 removed"),
        "remove printed:\n{removed}"
    );
    let status = up.status();
    assert_eq!(Up::node_ids(&status), vec![1, 3, 4], "{status}");
    let mut client = up.client();
    let after = replicas(&mut client, LOAD_TOPIC).expect("the topic's replicas");
    assert!(
        after.values().all(|replicas| !replicas.contains(&2)),
        "node 2 still holds replicas: {after:?}"
    );
    assert!(
        wait_until(SETTLE_TIMEOUT, || !broker_ids(&mut client).contains(&2)),
        "the cluster still lists node 2: {:?}",
        broker_ids(&mut client)
    );
    assert!(
        !up.data_dir().join("node-2").exists(),
        "node 2's data directory is still there"
    );

    // The load carries on after the moves, then everything is checked.
    wait_for_acknowledgements(&deliveries, 100, "after removing node 2");
    stop.store(true, Ordering::Relaxed);
    let producer = load.join().expect("the load thread");
    producer.flush_expecting_every_record_acknowledged(Duration::from_secs(60), "");
    let by_partition = producer.acknowledged_in_offset_order(LOAD_PARTITIONS as usize);
    let bootstrap = up.bootstrap();
    for (partition, acknowledged) in &by_partition {
        assert!(
            acknowledged.len() > 10,
            "partition {partition} barely got any load"
        );
        kafka::assert_acknowledged_at_offsets(
            &bootstrap,
            LOAD_TOPIC,
            *partition,
            acknowledged,
            |sequence| value(*partition, sequence),
            "",
        );
    }
    assert_eq!(by_partition.len(), LOAD_PARTITIONS as usize);
}

#[test]
fn removed_ids_are_not_given_out_again_and_a_removal_that_would_lose_the_quorum_is_refused() {
    let up = Up::start(3);
    // Node 4 comes and goes (perhaps promoted to voter meanwhile): the next
    // node added is node 5, never a second node 4.
    let added = up.command(&["add"]);
    assert!(added.contains("node 4 added"), "add printed:\n{added}");
    let removed = up.command(&["remove", "4"]);
    assert!(
        removed.contains("node 4 removed"),
        "remove printed:\n{removed}"
    );
    assert!(
        !up.data_dir().join("node-4").exists(),
        "node 4's data directory is still there"
    );
    let added = up.command(&["add"]);
    assert!(added.contains("node 5 added"), "add printed:\n{added}");
    let nodes_file = std::fs::read_to_string(up.data_dir().join("nodes.json")).expect("nodes.json");
    assert!(
        nodes_file.contains("\"highest_id\": 5"),
        "nodes.json:\n{nodes_file}"
    );

    // With voter 2 stopped, removing voter 3 would leave a minority of the
    // metadata quorum's voters: refused before anything moves or stops.
    up.command(&["stop", "2"]);
    let refused = up.eddy(&["remove", "3"]);
    assert!(
        !refused.status.success(),
        "remove 3 succeeded:\n{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("metadata quorum") && refused.stderr.contains("not a majority"),
        "remove 3 said:\n{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert_eq!(up.node_status(3)["state"], "running");
    assert!(up.data_dir().join("node-3").exists());
    assert_eq!(Up::node_ids(&up.status()), vec![1, 2, 3, 5]);
}

#[test]
fn finishing_a_removal_leaves_a_node_that_still_hosts_replicas_running_with_its_data() {
    let home = tempfile::Builder::new()
        .prefix("eddy-cluster-ops-")
        .tempdir()
        .expect("temporary cluster directory");
    let mut spec = ClusterSpec::new(home.path().join("data"), support::eddy_binary());
    spec.base_port = support::cluster::free_base_port(PORT_ROOM);
    let mut supervisor = Supervisor::start(spec).expect("supervisor");
    block_on(supervisor.wait_ready(READY_TIMEOUT)).expect("the cluster is ready");
    let bootstrap = supervisor.spec().bootstrap_servers();
    create_replicated_topic(&bootstrap, "kept", 1, 3, &[]);
    let mut client =
        Client::new(bootstrap.split(',').map(str::to_string)).with_node_timeout(NODE_TIMEOUT);
    assert!(
        wait_until(SETTLE_TIMEOUT, || replicas(&mut client, "kept")
            .is_some_and(|now| now.get(&0).is_some_and(|on| on.contains(&3)))),
        "kept-0 has no replica on node 3: {:?}",
        replicas(&mut client, "kept")
    );

    // Without the drain, node 3 still hosts kept-0: the last step refuses
    // before stopping it, and it keeps running, listed, with its data.
    let mut said = Vec::new();
    let error = block_on(supervisor.finish_removal(3, &mut |line| said.push(line)))
        .expect_err("node 3 still hosts a replica");
    let error = error.to_string();
    assert!(
        error.contains("node 3 still hosts replicas of") && error.contains("kept-0"),
        "{error}"
    );
    assert!(said.is_empty(), "it went ahead: {said:?}");
    let node = supervisor
        .nodes()
        .into_iter()
        .find(|node| node.id == 3)
        .expect("node 3 is still listed");
    assert_eq!(node.state, NodeState::Running);
    assert!(supervisor.spec().node_data_dir(3).exists());
    assert!(broker_ids(&mut client).contains(&3));
    drop(supervisor);
}

#[test]
fn editing_the_cluster_file_starts_nodes_and_bad_edits_change_nothing() {
    let mut up = Up::start(3);
    let text = std::fs::read_to_string(up.config_path()).expect("eddy.toml written on start");
    assert!(text.contains("nodes = 3"), "eddy.toml:\n{text}");
    let edit = |text: &str| {
        // As an editor saves: a new file renamed over the old one.
        let temporary = up.data_dir().join(".eddy.toml.edit");
        std::fs::write(&temporary, text).expect("writing the edit");
        std::fs::rename(&temporary, up.config_path()).expect("saving eddy.toml");
    };

    // Raising `nodes` starts node 4.
    edit(&text.replace("nodes = 3", "nodes = 4"));
    assert!(
        wait_until(SETTLE_TIMEOUT, || {
            let status = up.status();
            Up::node_ids(&status) == vec![1, 2, 3, 4]
                && status["nodes"][3]["state"] == "running"
                && status["config_error"].is_null()
        }),
        "node 4 did not start: {}",
        up.status()
    );
    let mut client = up.client();
    assert!(
        wait_until(SETTLE_TIMEOUT, || broker_ids(&mut client).contains(&4)),
        "the cluster does not list node 4: {:?}",
        broker_ids(&mut client)
    );

    // A value of the wrong type: nothing changes, the error shows.
    let good = text.replace("nodes = 3", "nodes = 4");
    edit(&good.replace("nodes = 4", "nodes = \"x\""));
    assert!(
        wait_until(SETTLE_TIMEOUT, || up.status()["config_error"].is_string()),
        "status shows no error for nodes = \"x\": {}",
        up.status()
    );
    let status = up.status();
    let error = status["config_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("eddy.toml: line") && error.contains("the cluster is unchanged"),
        "{error}"
    );
    assert_eq!(Up::node_ids(&status), vec![1, 2, 3, 4]);
    let text_status = up.command(&["status"]);
    assert!(
        text_status.contains("the cluster is unchanged"),
        "{text_status}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || up
            .supervisor_log()
            .contains("the cluster is unchanged")),
        "eddy cluster up did not report the bad edit:\n{}",
        up.supervisor_log()
    );

    // Lowering `nodes` is refused with a pointer to `remove`.
    edit(&good.replace("nodes = 4", "nodes = 2"));
    assert!(
        wait_until(SETTLE_TIMEOUT, || up.status()["config_error"]
            .as_str()
            .is_some_and(|error| error.contains("eddy cluster remove"))),
        "lowering nodes was not refused: {}",
        up.status()
    );
    assert_eq!(Up::node_ids(&up.status()), vec![1, 2, 3, 4]);

    // A config value the cluster refuses: nothing is applied.
    edit(&format!("{good}\"log.retention.ms\" = \"soon\"\n"));
    assert!(
        wait_until(SETTLE_TIMEOUT, || up.status()["config_error"]
            .as_str()
            .is_some_and(|error| error.contains("log.retention.ms"))),
        "a bad [defaults] value was not refused: {}",
        up.status()
    );

    // A good edit clears the error.
    edit(&format!("{good}\"log.retention.ms\" = \"3600000\"\n"));
    assert!(
        wait_until(SETTLE_TIMEOUT, || up.status()["config_error"].is_null()),
        "a good edit did not clear the error: {}",
        up.status()
    );
    assert_eq!(Up::node_ids(&up.status()), vec![1, 2, 3, 4]);

    // The next `up` follows the file: the same four nodes.
    up.restart();
    let status = up.status();
    assert_eq!(Up::node_ids(&status), vec![1, 2, 3, 4], "{status}");
    assert!(status["config_error"].is_null(), "{status}");
}

#[test]
fn isolate_slow_and_heal_show_in_status_and_the_cluster() {
    let up = Up::start(3);
    let bootstrap = up.bootstrap();
    create_replicated_topic(&bootstrap, "throttled", 2, 3, &[]);

    let printed = up.command(&["isolate", "2"]);
    assert!(printed.contains("cut off"), "{printed}");
    assert_eq!(up.node_status(2)["isolated"], true);
    let faults = up.data_dir().join("node-2").join("faults.json");
    let fault: Value =
        serde_json::from_str(&std::fs::read_to_string(&faults).expect("faults.json"))
            .expect("JSON");
    assert_eq!(fault["isolated"], true);
    assert!(up.command(&["status"]).contains("isolated"));

    up.command(&["heal", "2"]);
    assert_eq!(up.node_status(2)["isolated"], false);
    let fault: Value =
        serde_json::from_str(&std::fs::read_to_string(&faults).expect("faults.json"))
            .expect("JSON");
    assert_eq!(fault["isolated"], false);

    let printed = up.command(&["slow", "3", "--rate", "100k"]);
    assert!(printed.contains("102400 B/s"), "{printed}");
    assert_eq!(up.node_status(3)["throttle_rate"], 102_400);
    let mut client = up.client();
    let throttled = |client: &mut Client| {
        block_on(client.describe_topic_configs("throttled"))
            .expect("DescribeConfigs")
            .into_iter()
            .find(|entry| entry.name == "follower.replication.throttled.replicas")
            .and_then(|entry| entry.value)
            .unwrap_or_default()
    };
    let entries = throttled(&mut client);
    assert!(
        entries.contains("0:3") && entries.contains("1:3"),
        "follower.replication.throttled.replicas = {entries:?}"
    );

    up.command(&["heal", "3"]);
    assert!(up.node_status(3)["throttle_rate"].is_null());
    let entries = throttled(&mut client);
    assert!(!entries.contains(":3"), "the throttle stayed: {entries:?}");

    // Removing a node that every partition of an RF 3 topic needs moves
    // nothing and says why.
    let finished = up.eddy(&["remove", "2"]);
    assert!(!finished.status.success(), "{}", finished.stdout);
    assert!(
        finished
            .stderr
            .contains("cannot move every replica off node 2")
            && finished.stderr.contains("throttled-"),
        "{}",
        finished.stderr
    );
    assert_eq!(Up::node_ids(&up.status()), vec![1, 2, 3]);
    assert!(
        block_on(client.list_partition_reassignments())
            .expect("ListPartitionReassignments")
            .is_empty(),
        "a refused removal started moves"
    );

    // Mistakes are explained.
    let finished = up.eddy(&["slow", "3", "--rate", "fast"]);
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("bytes per second"),
        "{}",
        finished.stderr
    );
    let finished = up.eddy(&["isolate", "9"]);
    assert!(!finished.status.success());
    assert!(finished.stderr.contains("no node 9"), "{}", finished.stderr);
}
