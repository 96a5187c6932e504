//! eddy-broker: one Eddy node, serving the Kafka protocol to any client.
//!
//! - [`server`] accepts connections; [`connection`] frames requests and
//!   writes responses in order; [`handlers`] has one module per Kafka API.
//! - [`state::Broker`] owns the topics and their partition logs (`eddy-log`),
//!   persisted under the data directory, which it locks.
//! - [`config`] holds broker and topic configs with Kafka's names.
//!
//! - [`coordinator`] runs consumer groups (the classic protocol) and keeps
//!   committed offsets in the internal `__consumer_offsets` topic.
//!
//! Not here yet: replication and the replicated metadata log (a node is its
//! own single-broker cluster), transactions, SASL/TLS.

pub mod config;
mod connection;
pub mod coordinator;
pub mod handlers;
pub mod server;
pub mod state;

pub use config::{BrokerConfig, TopicConfig};
pub use state::{Broker, StartError};
