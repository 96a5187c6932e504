//! DeleteGroups: a group with no members, and its committed offsets.

use eddy_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, delete_groups_response::DeletableGroupResult,
};

use crate::state::Broker;

pub fn handle(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    DeleteGroupsResponse {
        results: request
            .groups_names
            .into_iter()
            .map(|group_id| DeletableGroupResult {
                error_code: broker.groups.delete_group(broker, &group_id).code(),
                group_id,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
