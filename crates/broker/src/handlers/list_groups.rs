//! ListGroups: every group, filtered by state (v4+) and type (v5+; all
//! groups here are classic).

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{
    ListGroupsRequest, ListGroupsResponse, list_groups_response::ListedGroup,
};

use crate::state::Broker;

pub fn handle(broker: &Broker, request: ListGroupsRequest) -> ListGroupsResponse {
    let wants_state = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|wanted| wanted.eq_ignore_ascii_case(state))
    };
    let wants_type = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|wanted| wanted.eq_ignore_ascii_case("classic"));
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| wants_type && wants_state(state.name()))
        .map(|(group_id, protocol_type, state)| ListedGroup {
            group_id: StrBytes::from(group_id),
            protocol_type: StrBytes::from(protocol_type),
            group_state: StrBytes::from(state.name()),
            group_type: StrBytes::from("classic"),
            ..Default::default()
        })
        .collect();
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}
