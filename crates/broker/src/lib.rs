//! eddy-broker: one Eddy node, serving the Kafka protocol to any client.
//!
//! - [`server`] accepts connections; [`connection`] frames requests and
//!   writes responses in order; [`handlers`] has one module per Kafka API.
//! - [`state::Broker`] applies the replicated metadata (`eddy-metadata`) and
//!   owns the partition replicas hosted here ([`replica`]) and their logs
//!   (`eddy-log`), under the data directory, which it locks.
//! - [`replication`] copies followed partitions from their leaders and moves
//!   the ISRs of led ones through the controller.
//! - [`config`] holds broker and topic configs with Kafka's names.
//!
//! - [`coordinator`] runs consumer groups (the classic protocol) and keeps
//!   committed offsets in the internal `__consumer_offsets` topic.
//!
//! Not here yet: transactions, SASL/TLS, reassignment.

pub mod config;
mod connection;
pub mod coordinator;
pub mod events;
pub mod faults;
pub mod handlers;
pub mod replica;
pub mod replication;
pub mod server;
pub mod state;

pub use config::{BrokerConfig, TopicConfig};
pub use state::{Broker, StartError};
