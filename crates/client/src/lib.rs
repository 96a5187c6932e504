//! eddy-client: an async Kafka client for Eddy's tools and app, built on
//! eddy-protocol. It works against Eddy and any Kafka cluster.
//!
//! What it does:
//! - [`Connection`]: one TCP connection to one node. It negotiates versions
//!   with ApiVersions and sends any eddy-protocol request at the highest
//!   version both sides support, each call bounded by a timeout.
//! - [`Client`]: a set of bootstrap addresses with a connection per node and
//!   short per-node timeouts. It follows partition leaders and group
//!   coordinators, and retries briefly, after refreshing what it knows, when
//!   they move. Its helpers return plain structs ready to print or serialize:
//!   - cluster: [`ClusterMetadata`], [`ClusterDescription`], [`QuorumInfo`];
//!   - topics: create, delete, add partitions, describe and alter configs;
//!   - offsets and sizes: [`OffsetSpec`] lookups, log directories;
//!   - browse: [`FetchResult`] of [`ConsumedRecord`]s, any codec;
//!   - produce: one batch of [`NewRecord`]s, partitioned as Kafka does;
//!   - groups: list, describe, committed offsets, admin commit, delete;
//!   - operations: elect leaders ([`ElectionType`]), reassign partitions
//!     ([`PartitionReassignment`], [`OngoingReassignment`]), dynamic broker
//!     configs, unregister a node.
//! - [`GroupConsumer`]: a member of a consumer group (classic protocol,
//!   range assignment) for demo workloads.
//!
//! What it does not do (yet): SASL or TLS, compression when producing,
//! idempotent or transactional producing, the KIP-848 group protocol.

mod admin;
mod browse;
mod client;
mod connection;
mod consumer;
mod error;
mod groups;
mod offsets;
mod operations;
mod produce;
mod topics;

pub use admin::{
    BrokerInfo, ClusterDescription, ClusterMetadata, PartitionInfo, QuorumInfo, QuorumReplica,
    TopicInfo,
};
pub use browse::{ConsumedRecord, FetchResult, TimestampType};
pub use client::Client;
pub use connection::{Connection, MAX_RESPONSE_BYTES};
pub use consumer::{AutoOffsetReset, GroupConsumer, GroupConsumerOptions};
pub use eddy_protocol::ErrorCode;
pub use error::{ClientError, KafkaFailure};
pub use groups::{
    CONSUMER_PROTOCOL_TYPE, GroupDescription, GroupListing, GroupMember, GroupOffsets,
    GroupOverview, NodeFailure,
};
pub use offsets::{ListedOffset, LogDir, OffsetSpec, ReplicaSize};
pub use operations::{ElectionType, OngoingReassignment, PartitionReassignment};
pub use produce::{NewRecord, ProduceResult, murmur2, partition_for_key};
pub use topics::{ConfigEntry, NewTopic};

/// Every public call's future is `Send`, so that an application can spawn
/// it on a multi-threaded runtime.
#[cfg(test)]
mod send_checks {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn assert_send<T: Send>(_: T) {}

    #[allow(dead_code, clippy::diverging_sub_expression)]
    fn futures_are_send(client: &mut Client, consumer: &mut GroupConsumer) {
        let names: Vec<String> = Vec::new();
        let offsets = GroupOffsets::new();
        assert_send(client.metadata_from("a"));
        assert_send(client.metadata());
        assert_send(client.describe_cluster());
        assert_send(client.describe_quorum());
        assert_send(client.create_topics(&[]));
        assert_send(client.delete_topics(&names));
        assert_send(client.create_partitions("t", 1));
        assert_send(client.describe_topic_configs("t"));
        assert_send(client.alter_topic_configs("t", BTreeMap::new(), Vec::new()));
        assert_send(client.list_offsets("t", &[0], OffsetSpec::Latest));
        assert_send(client.describe_log_dirs_from("a"));
        assert_send(client.fetch("t", 0, 0, 1, Duration::ZERO));
        assert_send(client.produce("t", None, Vec::new(), 1));
        assert_send(client.list_groups());
        assert_send(client.describe_groups(&names));
        assert_send(client.group_offsets("g"));
        assert_send(client.commit_group_offsets("g", &offsets));
        assert_send(client.delete_groups(&names));
        assert_send(client.elect_leaders(ElectionType::Preferred, None));
        assert_send(client.alter_partition_reassignments(&[]));
        assert_send(client.list_partition_reassignments());
        let configs = BTreeMap::new();
        assert_send(client.alter_broker_configs(None, &configs, &names, false));
        assert_send(client.unregister_broker(1));
        let options = GroupConsumerOptions::default();
        assert_send(GroupConsumer::join(
            Client::new(["a"]),
            "g",
            &names,
            options,
        ));
        assert_send(consumer.poll(Duration::ZERO));
        assert_send(consumer.commit());
    }
}
