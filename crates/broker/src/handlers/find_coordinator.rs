//! FindCoordinator: this node coordinates every group and transaction id.
//!
//! Answering it matters before groups exist: librdkafka only compresses with
//! LZ4 when a broker advertises FindCoordinator.

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, find_coordinator_response::Coordinator,
};

use crate::state::Broker;

pub fn handle(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = broker.broker_config().advertised_endpoint();
    if version >= 4 {
        // v4+ asks for several keys at once.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| Coordinator {
                key,
                node_id: broker.node_id,
                host: StrBytes::from(host.as_str()),
                port: i32::from(port),
                ..Default::default()
            })
            .collect();
        return FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        };
    }
    FindCoordinatorResponse {
        node_id: broker.node_id,
        host: StrBytes::from(host),
        port: i32::from(port),
        ..Default::default()
    }
}
