//! The `eddy broker` process as a user runs it: SIGTERM stops it cleanly
//! and a restart finds the data; a second node on the same data directory,
//! or on a port someone else holds, is refused with a message that says why.

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use eddy_protocol::records::Compression;
use support::Node;
use support::kafka::{Outgoing, client_config, create_topic, produce_all, read_partition, values};

/// How long a refused start may take to exit.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

fn outgoing(value: &str) -> Outgoing {
    Outgoing {
        key: Vec::new(),
        value: value.as_bytes().to_vec(),
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

#[test]
fn sigterm_stops_the_node_cleanly_and_a_restart_finds_every_record() {
    let mut node = Node::start();
    let topic = "kept";
    create_topic(&node.bootstrap(), topic, 2, &[]);
    let sent: Vec<Outgoing> = (0..50)
        .map(|index| outgoing(&format!("kept {index}")))
        .collect();
    let mut config = client_config(&node.bootstrap());
    config.set("compression.type", Compression::Zstd.name());
    produce_all(&config, topic, 1, &sent);

    let status = node.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    node.restart();
    let expected: Vec<String> = (0..50).map(|index| format!("kept {index}")).collect();
    assert_eq!(
        values(&read_partition(&node.bootstrap(), topic, 1)),
        expected,
        "records after the restart"
    );
    // The restarted node takes new records after the old ones.
    let offsets = produce_all(&config, topic, 1, &[outgoing("after restart")]);
    assert_eq!(offsets, vec![50]);
}

#[test]
fn a_second_node_on_the_same_data_directory_is_refused() {
    let mut node = Node::start();
    let data = node.data_dir();
    let finished = support::run(
        Command::new(support::eddy_binary())
            .args(["broker", "--node-id", "1", "--listen"])
            .arg(format!("127.0.0.1:{}", support::free_port()))
            .arg("--data")
            .arg(&data),
        REFUSAL_TIMEOUT,
    );
    assert!(
        !finished.status.success(),
        "a second node started on {}",
        data.display()
    );
    assert!(
        finished.stderr.contains(&data.display().to_string()) && finished.stderr.contains("in use"),
        "the refusal should name the data directory and say it is in use:\n{}",
        finished.stderr
    );
    node.assert_running();
}

#[test]
fn a_node_on_a_taken_port_is_refused_and_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("holding a port");
    let address = taken.local_addr().expect("held address").to_string();
    let data = tempfile::tempdir().expect("temporary data directory");
    let finished = support::run(
        Command::new(support::eddy_binary())
            .args(["broker", "--node-id", "1", "--listen", &address, "--data"])
            .arg(data.path()),
        REFUSAL_TIMEOUT,
    );
    assert!(
        !finished.status.success(),
        "a node started on the taken port {address}"
    );
    assert!(
        finished.stderr.contains(&address),
        "the refusal should name {address}:\n{}",
        finished.stderr
    );
    assert!(
        finished.stdout.is_empty(),
        "no ready line for a node that is not ready:\n{}",
        finished.stdout
    );
}
