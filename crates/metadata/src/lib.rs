//! Eddy's cluster metadata as a replicated log, as in KRaft: brokers, topics,
//! partitions (replicas, ISR, leader, epochs) and topic configs, kept by an
//! openraft group among the nodes. The Raft leader is the active controller:
//! it tracks broker heartbeats, fences silent brokers and elects partition
//! leaders from the ISR.
//!
//! - [`image`]: the metadata every node applies to its own view.
//! - [`command`]: the log's commands and their deterministic [`apply`].
//! - [`MetadataNode`]: one node of the quorum (raft, controller listener,
//!   heartbeats); [`MetadataNode::propose`] is how the broker changes metadata.
//!
//! This crate does not serve the Kafka protocol and does not hold partition
//! data; the broker reads the image and proposes commands.

// openraft's error types are large, and its traits fix them.
#![allow(clippy::result_large_err)]

pub mod command;
mod controller;
pub mod fault;
pub mod image;
mod network;
mod node;
mod peers;
mod server;
mod store;
mod types;
mod wire;

pub use command::{Command, CommandError, CommandOutput, CommandResult, apply};
pub use image::{BrokerRegistration, ClusterEvent, MetadataImage, PartitionState, TopicImage};
pub use node::{
    MAX_VOTERS, MetadataConfig, MetadataError, MetadataNode, QuorumStatus, ReplicaStatus,
};
pub use store::OpenError;
pub use wire::{Heartbeat, HeartbeatReply, MAX_FRAME_SIZE_BYTES};
