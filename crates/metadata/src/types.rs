//! The openraft type configuration shared by storage, network and node.

use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandResult};

/// One entry of the metadata log: a command and when its proposer made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Milliseconds since the Unix epoch at the proposer; events use it so
    /// that applying is deterministic.
    pub time_ms: i64,
    pub command: Command,
}

openraft::declare_raft_types!(
    /// Node ids are Eddy node ids; a node is reached at its controller address.
    pub TypeConfig:
        D = Request,
        R = CommandResult,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, BasicNode>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
