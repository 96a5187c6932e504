//! One module per Kafka API. [`handle`] decodes a request frame, sends its
//! body to the module for its API, and says what to write back.
//!
//! [`SUPPORTED`] lists what this node implements and is the whole source of
//! its ApiVersions answer: versions come from the codec's table
//! (`eddy_protocol::API_TABLE`), capped at what each handler understands, so
//! the advertised set is exactly what works.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use eddy_protocol::{API_TABLE, ApiKey, RequestBody, RequestFrame, ResponseBody};

use crate::state::Broker;

mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_log_dirs;
mod describe_quorum;
mod elect_leaders;
mod fetch;
mod find_coordinator;
mod incremental_alter_configs;
mod init_producer_id;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
mod sasl_handshake;
mod unregister_broker;
// Consumer groups.
mod delete_groups;
mod describe_groups;
mod heartbeat;
mod join_group;
mod leave_group;
mod list_groups;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod sync_group;

/// The APIs this node serves and the version range each handler speaks.
/// Produce below 3 and Fetch below 4 (old message formats) are left out, as
/// current clients never need them.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

/// The version range advertised for `key`, if this node serves it: the
/// handler's range within the codec's stable versions.
pub fn advertised_versions(key: ApiKey) -> Option<(i16, i16)> {
    let (_, min, max) = SUPPORTED
        .iter()
        .find(|(supported, _, _)| *supported == key)?;
    let info = API_TABLE.iter().find(|info| info.key == key)?;
    let min = (*min).max(info.min_version);
    let max = (*max).min(info.max_stable_version);
    (min <= max).then_some((min, max))
}

/// A response body still being made (an acks=all Produce waiting for its
/// replicas).
pub type PendingBody = Pin<Box<dyn Future<Output = ResponseBody> + Send>>;

/// What a connection does with a request.
pub enum Reply {
    /// Write this response, encoded at `version`, with this correlation id.
    Respond {
        correlation_id: i32,
        version: i16,
        body: Box<ResponseBody>,
    },
    /// Write this response once `body` is ready (an acks=all Produce
    /// waiting for its replicas); later responses wait behind it.
    Deferred {
        correlation_id: i32,
        version: i16,
        body: PendingBody,
    },
    /// Write nothing (a Produce with acks=0 that succeeded).
    Nothing,
    /// Close the connection, as Kafka does for malformed or unsupported
    /// requests (and for a failed acks=0 Produce, so the client notices).
    Close(String),
}

/// Handles one request frame (without its length prefix) from `peer`.
pub async fn handle(broker: &Arc<Broker>, frame: Bytes, peer: SocketAddr) -> Reply {
    let (key, header, body_offset) = match RequestFrame::decode_header(&frame) {
        Ok(parsed) => parsed,
        Err(error) => return Reply::Close(format!("malformed request header: {error}")),
    };
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    let Some((min, max)) = advertised_versions(key) else {
        return Reply::Close(format!("unsupported API {key:?} (key {})", key as i16));
    };
    if !(min..=max).contains(&version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with our ranges so the client can retry.
            return Reply::Respond {
                correlation_id,
                version: 0,
                body: Box::new(ResponseBody::ApiVersions(
                    api_versions::unsupported_version(),
                )),
            };
        }
        return Reply::Close(format!(
            "{key:?} v{version} is not supported (v{min}-v{max} are)"
        ));
    }
    let body = match RequestFrame::decode_body(&frame, key, version, body_offset) {
        Ok(body) => body,
        Err(error) => {
            return Reply::Close(format!("malformed {key:?} v{version} request: {error}"));
        }
    };
    let client_id: &str = header.client_id.as_deref().unwrap_or_default();
    tracing::trace!(?key, version, correlation_id, client_id, "request");
    let body = match body {
        RequestBody::ApiVersions(_) => ResponseBody::ApiVersions(api_versions::handle(version)),
        RequestBody::Metadata(request) => {
            ResponseBody::Metadata(metadata::handle(broker, request, version).await)
        }
        RequestBody::DescribeCluster(request) => {
            ResponseBody::DescribeCluster(describe_cluster::handle(broker, request))
        }
        RequestBody::DescribeQuorum(request) => {
            ResponseBody::DescribeQuorum(describe_quorum::handle(broker, request))
        }
        RequestBody::Produce(request) => match produce::handle(broker, request, version).await {
            produce::Outcome::Respond(response) => ResponseBody::Produce(response),
            produce::Outcome::Replicating(body) => {
                return Reply::Deferred {
                    correlation_id,
                    version,
                    body,
                };
            }
            produce::Outcome::Nothing => return Reply::Nothing,
            produce::Outcome::Close(reason) => return Reply::Close(reason),
        },
        RequestBody::Fetch(request) => match fetch::handle(broker, request, version).await {
            Some(response) => ResponseBody::Fetch(response),
            None => return Reply::Close("a replica's fetch while this node is isolated".into()),
        },
        RequestBody::ListOffsets(request) => {
            ResponseBody::ListOffsets(list_offsets::handle(broker, request))
        }
        RequestBody::OffsetForLeaderEpoch(request) => {
            ResponseBody::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, request))
        }
        RequestBody::FindCoordinator(request) => {
            ResponseBody::FindCoordinator(find_coordinator::handle(broker, request, version).await)
        }
        RequestBody::SaslHandshake(_) => ResponseBody::SaslHandshake(sasl_handshake::handle()),
        RequestBody::InitProducerId(request) => {
            ResponseBody::InitProducerId(init_producer_id::handle(broker, request).await)
        }
        RequestBody::CreateTopics(request) => {
            ResponseBody::CreateTopics(create_topics::handle(broker, request, version).await)
        }
        RequestBody::DeleteTopics(request) => {
            ResponseBody::DeleteTopics(delete_topics::handle(broker, request, version).await)
        }
        RequestBody::CreatePartitions(request) => {
            ResponseBody::CreatePartitions(create_partitions::handle(broker, request).await)
        }
        RequestBody::DescribeConfigs(request) => {
            ResponseBody::DescribeConfigs(describe_configs::handle(broker, request, version))
        }
        RequestBody::AlterConfigs(request) => {
            ResponseBody::AlterConfigs(alter_configs::handle(broker, request).await)
        }
        RequestBody::IncrementalAlterConfigs(request) => ResponseBody::IncrementalAlterConfigs(
            incremental_alter_configs::handle(broker, request).await,
        ),
        RequestBody::ElectLeaders(request) => {
            ResponseBody::ElectLeaders(elect_leaders::handle(broker, request, version).await)
        }
        RequestBody::AlterPartitionReassignments(request) => {
            ResponseBody::AlterPartitionReassignments(
                alter_partition_reassignments::handle(broker, request).await,
            )
        }
        RequestBody::ListPartitionReassignments(request) => {
            ResponseBody::ListPartitionReassignments(list_partition_reassignments::handle(
                broker, request,
            ))
        }
        RequestBody::UnregisterBroker(request) => {
            ResponseBody::UnregisterBroker(unregister_broker::handle(broker, request).await)
        }
        RequestBody::DeleteRecords(request) => {
            ResponseBody::DeleteRecords(delete_records::handle(broker, request))
        }
        RequestBody::DescribeLogDirs(request) => {
            ResponseBody::DescribeLogDirs(describe_log_dirs::handle(broker, request))
        }
        RequestBody::JoinGroup(request) => {
            let host = format!("/{}", peer.ip());
            ResponseBody::JoinGroup(
                join_group::handle(broker, request, version, client_id, &host).await,
            )
        }
        RequestBody::SyncGroup(request) => {
            ResponseBody::SyncGroup(sync_group::handle(broker, request).await)
        }
        RequestBody::Heartbeat(request) => {
            ResponseBody::Heartbeat(heartbeat::handle(broker, request))
        }
        RequestBody::LeaveGroup(request) => {
            ResponseBody::LeaveGroup(leave_group::handle(broker, request, version))
        }
        RequestBody::OffsetCommit(request) => {
            ResponseBody::OffsetCommit(offset_commit::handle(broker, request).await)
        }
        RequestBody::OffsetFetch(request) => {
            ResponseBody::OffsetFetch(offset_fetch::handle(broker, request, version))
        }
        RequestBody::ListGroups(request) => {
            ResponseBody::ListGroups(list_groups::handle(broker, request))
        }
        RequestBody::DescribeGroups(request) => {
            ResponseBody::DescribeGroups(describe_groups::handle(broker, request, version))
        }
        RequestBody::DeleteGroups(request) => {
            ResponseBody::DeleteGroups(delete_groups::handle(broker, request))
        }
        RequestBody::OffsetDelete(request) => {
            ResponseBody::OffsetDelete(offset_delete::handle(broker, request))
        }
        other => return Reply::Close(format!("no handler for {:?}", other.api_key())),
    };
    Reply::Respond {
        correlation_id,
        version,
        body: Box::new(body),
    }
}

/// An error message for the wire: `None` for success.
pub(crate) fn error_message(message: &str) -> Option<eddy_protocol::StrBytes> {
    (!message.is_empty()).then(|| eddy_protocol::StrBytes::from(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_and_fetch_are_advertised_without_old_message_formats() {
        assert_eq!(
            advertised_versions(ApiKey::Produce).map(|range| range.0),
            Some(3)
        );
        assert_eq!(
            advertised_versions(ApiKey::Fetch).map(|range| range.0),
            Some(4)
        );
        assert_eq!(advertised_versions(ApiKey::ConsumerGroupHeartbeat), None);
    }

    #[test]
    fn cluster_operation_apis_are_advertised() {
        assert_eq!(advertised_versions(ApiKey::ElectLeaders), Some((0, 2)));
        for key in [
            ApiKey::AlterPartitionReassignments,
            ApiKey::ListPartitionReassignments,
            ApiKey::UnregisterBroker,
        ] {
            assert_eq!(advertised_versions(key), Some((0, 0)), "{key:?}");
        }
    }

    #[test]
    fn every_supported_api_is_advertised_within_stable_versions() {
        for (key, _, _) in SUPPORTED {
            let (min, max) = advertised_versions(*key).expect("advertised");
            assert!(min <= max);
            assert!(max <= key.info().max_stable_version, "{key:?}");
        }
    }
}
