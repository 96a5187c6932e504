//! What a local cluster is: how many nodes, where, on which ports, and the
//! exact `eddy broker` command line each node runs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// The metadata quorum has at most this many voters; later nodes are learners.
pub const MAX_VOTERS: u16 = 5;
/// Replication factor ceiling for the cluster's defaults.
pub const MAX_DEFAULT_REPLICATION_FACTOR: u16 = 3;
/// Controller ports sit this far above client ports.
pub const CONTROLLER_PORT_OFFSET: u16 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Holds `cluster.json`, `eddy.toml`, `nodes.json`, the supervisor lock
    /// and `node-N/` per node.
    pub data_dir: PathBuf,
    /// The nodes' ids. Not necessarily 1 to N: a removed node leaves a gap,
    /// and added nodes take the next id.
    pub nodes: BTreeSet<u16>,
    /// The metadata quorum's initial voters: the first [`MAX_VOTERS`] ids of
    /// the cluster as first started. Every node, including ones added
    /// later (which join as learners), is given this same list.
    pub voters: Vec<u16>,
    /// Node N's client port is `base_port + N - 1`; its controller port is
    /// `base_port + 100 + N - 1`.
    pub base_port: u16,
    /// The highest node id the cluster ever used (kept in `nodes.json`):
    /// new nodes get higher ids, so a removed node's id never comes back
    /// (as a voter it would return with an empty log).
    pub highest_id: u16,
    /// The `eddy` binary each node runs.
    pub eddy_binary: PathBuf,
    /// `--log` for every node, e.g. `info`.
    pub log_filter: String,
    /// Extra broker configs, passed to every node as `--set KEY=VALUE`.
    pub settings: Vec<(String, String)>,
}

impl ClusterSpec {
    pub const DEFAULT_NODES: u16 = 3;
    pub const DEFAULT_BASE_PORT: u16 = 19092;

    /// The default cluster (3 nodes from port 19092) in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, eddy_binary: impl Into<PathBuf>) -> ClusterSpec {
        let mut spec = ClusterSpec {
            data_dir: data_dir.into(),
            nodes: BTreeSet::new(),
            voters: Vec::new(),
            base_port: Self::DEFAULT_BASE_PORT,
            highest_id: 0,
            eddy_binary: eddy_binary.into(),
            log_filter: "info".to_string(),
            settings: Vec::new(),
        };
        spec.set_node_count(Self::DEFAULT_NODES);
        spec
    }

    /// A fresh cluster of `count` nodes: ids 1 to `count`, the first five
    /// voting.
    pub fn set_node_count(&mut self, count: u16) {
        self.nodes = (1..=count).collect();
        self.voters = self
            .nodes
            .iter()
            .copied()
            .take(usize::from(MAX_VOTERS))
            .collect();
    }

    /// How many nodes the cluster has.
    pub fn node_count(&self) -> u16 {
        u16::try_from(self.nodes.len()).unwrap_or(u16::MAX)
    }

    /// Node ids, in order.
    pub fn node_ids(&self) -> impl Iterator<Item = u16> + use<> {
        self.nodes.clone().into_iter()
    }

    /// The highest id in use, in the voter list or ever used before.
    pub fn highest_used_id(&self) -> u16 {
        self.nodes
            .iter()
            .chain(self.voters.iter())
            .copied()
            .chain([self.highest_id])
            .max()
            .unwrap_or(0)
    }

    /// The id a node added now gets: one past the highest id in use, in
    /// the voter list or ever used (a removed node's id is never given to a
    /// new node: a voter's would otherwise start as a voter with an empty
    /// log).
    pub fn next_node_id(&self) -> u16 {
        self.highest_used_id() + 1
    }

    /// Drops node `id`, remembering that its id was used.
    pub fn remove_node(&mut self, id: u16) {
        self.highest_id = self.highest_used_id();
        self.nodes.remove(&id);
    }

    pub fn port(&self, node: u16) -> u16 {
        self.base_port + node - 1
    }

    pub fn controller_port(&self, node: u16) -> u16 {
        self.base_port + CONTROLLER_PORT_OFFSET + node - 1
    }

    pub fn node_address(&self, node: u16) -> String {
        format!("127.0.0.1:{}", self.port(node))
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,...`: what Kafka clients are given.
    pub fn bootstrap_servers(&self) -> String {
        self.node_ids()
            .map(|node| self.node_address(node))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node_data_dir(&self, node: u16) -> PathBuf {
        self.data_dir.join(format!("node-{node}"))
    }

    /// Where node N's stdout and stderr go.
    pub fn node_log_path(&self, node: u16) -> PathBuf {
        self.node_data_dir(node).join("eddy.log")
    }

    pub fn replication_factor(&self) -> u16 {
        self.node_count().clamp(1, MAX_DEFAULT_REPLICATION_FACTOR)
    }

    /// `1@127.0.0.1:19192,2@...`: the voters' controller addresses.
    pub fn voters(&self) -> String {
        self.voters
            .iter()
            .map(|&node| format!("{node}@127.0.0.1:{}", self.controller_port(node)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Checks that `node` fits the port ranges.
    pub fn validate_node(&self, node: u16) -> Result<(), String> {
        if node == 0 {
            return Err("node ids start at 1".to_string());
        }
        if node > CONTROLLER_PORT_OFFSET {
            return Err(format!(
                "node ids go up to {CONTROLLER_PORT_OFFSET} (client and controller ports would overlap)"
            ));
        }
        let highest =
            u32::from(self.base_port) + u32::from(CONTROLLER_PORT_OFFSET) + u32::from(node) - 1;
        if self.base_port == 0 || highest > u32::from(u16::MAX) {
            return Err(format!(
                "base port {} with node {node} needs ports up to {highest}, past 65535",
                self.base_port
            ));
        }
        Ok(())
    }

    /// Checks what would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a cluster needs at least one node".to_string());
        }
        if self.voters.is_empty() || self.voters.len() > usize::from(MAX_VOTERS) {
            return Err(format!(
                "the metadata quorum needs 1 to {MAX_VOTERS} voters, not {}",
                self.voters.len()
            ));
        }
        for &node in self.nodes.iter().chain(self.voters.iter()) {
            self.validate_node(node)?;
        }
        Ok(())
    }

    /// The command node `node` runs (without stdio, which the supervisor sets).
    pub fn node_command(&self, node: u16) -> Command {
        let replication_factor = self.replication_factor();
        let mut command = Command::new(&self.eddy_binary);
        command
            .arg("broker")
            .args(["--node-id", &node.to_string()])
            .args(["--listen", &self.node_address(node)])
            .args([
                "--controller-listen",
                &format!("127.0.0.1:{}", self.controller_port(node)),
            ])
            .args(["--voters", &self.voters()])
            .arg("--data")
            .arg(self.node_data_dir(node))
            .args([
                "--set",
                &format!("default.replication.factor={replication_factor}"),
            ])
            .args([
                "--set",
                &format!("offsets.topic.replication.factor={replication_factor}"),
            ])
            .args(["--log", &self.log_filter]);
        for (key, value) in &self.settings {
            command.args(["--set", &format!("{key}={value}")]);
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|argument| argument.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn node_two_of_three_gets_its_ports_voters_and_replication_defaults() {
        let mut spec = ClusterSpec::new("/data", "/bin/eddy");
        spec.settings.push(("num.partitions".into(), "6".into()));
        let expected = [
            "broker",
            "--node-id",
            "2",
            "--listen",
            "127.0.0.1:19093",
            "--controller-listen",
            "127.0.0.1:19193",
            "--voters",
            "1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194",
            "--data",
            "/data/node-2",
            "--set",
            "default.replication.factor=3",
            "--set",
            "offsets.topic.replication.factor=3",
            "--log",
            "info",
            "--set",
            "num.partitions=6",
        ];
        assert_eq!(arguments(&spec.node_command(2)), expected);
        assert_eq!(
            spec.bootstrap_servers(),
            "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
        );
    }

    #[test]
    fn only_the_first_five_nodes_vote_and_replication_caps_at_three() {
        let mut spec = ClusterSpec::new("/data", "/bin/eddy");
        spec.set_node_count(7);
        assert_eq!(spec.voters().split(',').count(), 5);
        assert_eq!(spec.replication_factor(), 3);
        spec.set_node_count(2);
        assert_eq!(spec.replication_factor(), 2);
    }

    #[test]
    fn ports_past_65535_are_refused() {
        let mut spec = ClusterSpec::new("/data", "/bin/eddy");
        spec.base_port = 65_500;
        assert!(spec.validate().is_err());
        spec.set_node_count(0);
        spec.base_port = 19092;
        assert!(spec.validate().is_err());
    }

    #[test]
    fn added_nodes_take_the_next_id_and_keep_the_voters() {
        let mut spec = ClusterSpec::new("/data", "/bin/eddy");
        assert_eq!(spec.next_node_id(), 4);
        spec.nodes.insert(4);
        spec.nodes.remove(&2);
        assert_eq!(spec.next_node_id(), 5);
        assert_eq!(
            spec.voters(),
            "1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"
        );
        assert_eq!(
            spec.bootstrap_servers(),
            "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19095"
        );
        spec.nodes.remove(&4);
        spec.nodes.remove(&3);
        assert_eq!(spec.next_node_id(), 4, "a removed voter's id is not reused");
    }

    #[test]
    fn a_removed_nodes_id_is_never_given_out_again() {
        let mut spec = ClusterSpec::new("/data", "/bin/eddy");
        // Nodes 4 and 5 were added (learners, perhaps promoted to voters
        // since), then removed.
        spec.nodes.extend([4, 5]);
        spec.remove_node(5);
        spec.remove_node(4);
        assert_eq!(spec.highest_id, 5);
        assert_eq!(spec.next_node_id(), 6);
        // What nodes.json keeps outlasts the nodes themselves.
        let mut restarted = ClusterSpec::new("/data", "/bin/eddy");
        restarted.highest_id = spec.highest_id;
        assert_eq!(restarted.next_node_id(), 6);
    }
}
