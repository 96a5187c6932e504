//! LeaveGroup: one member (v0-2) or several, by member or instance id (v3+);
//! the rest of the group rebalances.

use eddy_protocol::messages::{
    LeaveGroupRequest, LeaveGroupResponse, leave_group_response::MemberResponse,
};

use crate::state::Broker;

pub fn handle(broker: &Broker, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|member| {
                (
                    member.member_id.to_string(),
                    member.group_instance_id.as_ref().map(|id| id.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (group_error, codes) = broker.groups.leave(broker, &request.group_id, &members);
    if version < 3 {
        return LeaveGroupResponse {
            error_code: codes.first().copied().unwrap_or(group_error).code(),
            ..Default::default()
        };
    }
    LeaveGroupResponse {
        error_code: group_error.code(),
        members: request
            .members
            .into_iter()
            .zip(codes)
            .map(|(member, code)| MemberResponse {
                member_id: member.member_id,
                group_instance_id: member.group_instance_id,
                error_code: code.code(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
