//! eddy-client: an async Kafka client for Eddy's tools and app, built on
//! eddy-protocol. It works against Eddy and any Kafka cluster.
//!
//! What it does:
//! - [`Connection`]: one TCP connection to one node. It negotiates versions
//!   with ApiVersions and sends any eddy-protocol request at the highest
//!   version both sides support, each call bounded by a timeout.
//! - [`Client`]: a set of bootstrap addresses with a connection per node and
//!   short per-node timeouts, plus admin helpers that return plain structs
//!   ([`ClusterMetadata`], [`ClusterDescription`], [`QuorumInfo`]) ready to
//!   print or serialize.
//!
//! What it does not do (yet): produce, fetch, consumer groups, SASL or TLS.

mod admin;
mod client;
mod connection;
mod error;

pub use admin::{
    BrokerInfo, ClusterDescription, ClusterMetadata, PartitionInfo, QuorumInfo, QuorumReplica,
    TopicInfo,
};
pub use client::Client;
pub use connection::{Connection, MAX_RESPONSE_BYTES};
pub use eddy_protocol::ErrorCode;
pub use error::ClientError;
