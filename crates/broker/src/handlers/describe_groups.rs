//! DescribeGroups: state, protocol, and every member with its metadata and
//! assignment. An unknown group is "Dead" (with GROUP_ID_NOT_FOUND from v6,
//! as Kafka; NONE before).

use eddy_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse,
    describe_groups_response::{DescribedGroup, DescribedGroupMember},
};
use eddy_protocol::{ErrorCode, StrBytes};

use crate::state::Broker;

pub fn handle(
    broker: &Broker,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            if let Err(code) = broker.groups.check_coordinator(&group_id) {
                return DescribedGroup {
                    error_code: code.code(),
                    group_id,
                    ..Default::default()
                };
            }
            let described = broker.groups.with_group(&group_id, |group| {
                let protocol = group.protocol_name.clone().unwrap_or_default();
                DescribedGroup {
                    group_id: group_id.clone(),
                    group_state: StrBytes::from(group.state.name()),
                    protocol_type: StrBytes::from(group.protocol_type.clone().unwrap_or_default()),
                    protocol_data: StrBytes::from(protocol.as_str()),
                    members: group
                        .members
                        .values()
                        .map(|member| DescribedGroupMember {
                            member_id: StrBytes::from(member.member_id.as_str()),
                            group_instance_id: member
                                .group_instance_id
                                .as_deref()
                                .map(StrBytes::from),
                            client_id: StrBytes::from(member.client_id.as_str()),
                            client_host: StrBytes::from(member.client_host.as_str()),
                            member_metadata: member.metadata_for(&protocol),
                            member_assignment: member.assignment.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            });
            described.unwrap_or_else(|| DescribedGroup {
                error_code: if version >= 6 {
                    ErrorCode::GroupIdNotFound.code()
                } else {
                    0
                },
                group_id,
                group_state: StrBytes::from("Dead"),
                ..Default::default()
            })
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
