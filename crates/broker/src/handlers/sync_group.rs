//! SyncGroup: the leader hands in every member's assignment; each member,
//! the leader included, gets its own once the leader's arrives.

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use crate::state::Broker;

pub async fn handle(broker: &Broker, request: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = request
        .assignments
        .into_iter()
        .map(|assignment| (assignment.member_id.to_string(), assignment.assignment))
        .collect();
    let result = broker
        .groups
        .sync(
            broker,
            &request.group_id,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            assignments,
        )
        .await;
    SyncGroupResponse {
        error_code: result.error_code,
        protocol_type: result.protocol_type.map(StrBytes::from),
        protocol_name: result.protocol_name.map(StrBytes::from),
        assignment: result.assignment,
        ..Default::default()
    }
}
