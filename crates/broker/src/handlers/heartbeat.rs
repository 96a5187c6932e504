//! Heartbeat: keeps a member's session alive, and tells it when the group
//! is rebalancing (REBALANCE_IN_PROGRESS: rejoin).

use eddy_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::state::Broker;

pub fn handle(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let code = broker.groups.heartbeat(
        &request.group_id,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    HeartbeatResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
