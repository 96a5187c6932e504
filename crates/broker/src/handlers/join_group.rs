//! JoinGroup: join (or rejoin) a consumer group; waits until the group's
//! rebalance completes. From v4 a new member first gets its id back with
//! MEMBER_ID_REQUIRED and joins again with it, as Kafka requires.

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{
    JoinGroupRequest, JoinGroupResponse, join_group_response::JoinGroupResponseMember,
};

use crate::coordinator::JoinRequest;
use crate::state::Broker;

pub async fn handle(
    broker: &Broker,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|protocol| (protocol.name.to_string(), protocol.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let result = broker.groups.join(broker, join).await;
    JoinGroupResponse {
        error_code: result.error_code,
        generation_id: result.generation_id,
        protocol_type: result.protocol_type.map(StrBytes::from),
        // Nullable only from v7; before that an error carries "".
        protocol_name: match result.protocol_name {
            Some(name) => Some(StrBytes::from(name)),
            None if version < 7 => Some(StrBytes::from("")),
            None => None,
        },
        leader: StrBytes::from(result.leader),
        member_id: StrBytes::from(result.member_id),
        members: result
            .members
            .into_iter()
            .map(
                |(member_id, group_instance_id, metadata)| JoinGroupResponseMember {
                    member_id: StrBytes::from(member_id),
                    group_instance_id: group_instance_id.map(StrBytes::from),
                    metadata,
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}
