//! eddy-cluster: the local supervisor. It spawns, kills, stops, pauses,
//! resumes and restarts node processes of the `eddy` binary, and lets other
//! processes do the same through a small control port.
//!
//! What it does:
//! - [`ClusterSpec`]: nodes, ports, data directory and each node's exact
//!   `eddy broker` command line.
//! - The cluster file `DATA/eddy.toml` ([`ClusterFile`], watched with
//!   [`watch_config`]) and the node ids in `DATA/nodes.json`.
//! - Operations: adding and removing nodes, slowing (Kafka's replication
//!   throttles, in [`ops`]) and isolating nodes (`DATA/node-N/faults.json`).
//! - [`Supervisor`]: owns the node processes (process group per node, death
//!   with the supervisor on Linux, logs to `DATA/node-N/eddy.log`, a lock on
//!   the data directory, raised open-files limit) and writes
//!   `DATA/cluster.json`.
//! - [`process`]: the only place signals are sent, behind [`Signal`].
//! - [`control`]: the control port ([`control::serve`]) and its client
//!   ([`ControlClient`]).
//!
//! What it does not do: link the broker (nodes are separate processes of the
//! `eddy` binary), or know what nodes do with the signals beyond waiting for
//! them to exit and for their Kafka port to answer.

mod config;
pub mod control;
mod error;
pub mod ops;
pub mod process;
mod spawner;
mod spec;
mod state;
mod supervisor;

pub use config::{CONFIG_FILE, ClusterFile, FileError, MEMBERSHIP_FILE, watch_config};
pub use control::{ControlClient, ControlCommand, ControlReply, ControlServer, ServeEnd};
pub use error::ClusterError;
pub use process::{ExitInfo, Signal};
pub use spec::ClusterSpec;
pub use state::ClusterState;
pub use supervisor::{
    ADD_TIMEOUT, ConfigReload, DEFAULT_DOWN_TIMEOUT, DEFAULT_STOP_TIMEOUT, DRAIN_TIMEOUT, Drain,
    FAULT_FILE, NodeState, NodeStatus, Supervisor,
};
