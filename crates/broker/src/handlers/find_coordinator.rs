//! FindCoordinator: a group's coordinator is the leader of its partition of
//! `__consumer_offsets` (created on first use), wherever that is.
//!
//! Answering it matters before groups exist: librdkafka only compresses with
//! LZ4 when a broker advertises FindCoordinator.

use eddy_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, find_coordinator_response::Coordinator,
};
use eddy_protocol::{ErrorCode, StrBytes};

use super::error_message;
use crate::coordinator::{OFFSETS_TOPIC, group_partition};
use crate::state::{ApiError, Broker};

/// Key type of a transactional id.
const TRANSACTION_KEY: i8 = 1;

pub async fn handle(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version >= 4 {
        // v4+ asks for several keys at once.
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in request.coordinator_keys {
            let found = find(broker, key.as_str(), request.key_type).await;
            coordinators.push(match found {
                Ok((node_id, host, port)) => Coordinator {
                    key,
                    node_id,
                    host: StrBytes::from(host),
                    port: i32::from(port),
                    ..Default::default()
                },
                Err(error) => Coordinator {
                    key,
                    node_id: -1,
                    port: -1,
                    error_code: error.code.code(),
                    error_message: error_message(&error.message),
                    ..Default::default()
                },
            });
        }
        return FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        };
    }
    match find(broker, request.key.as_str(), request.key_type).await {
        Ok((node_id, host, port)) => FindCoordinatorResponse {
            node_id,
            host: StrBytes::from(host),
            port: i32::from(port),
            ..Default::default()
        },
        Err(error) => FindCoordinatorResponse {
            error_code: error.code.code(),
            error_message: error_message(&error.message),
            node_id: -1,
            port: -1,
            ..Default::default()
        },
    }
}

/// The node coordinating `key`: its id, host and port.
async fn find(broker: &Broker, key: &str, key_type: i8) -> Result<(i32, String, u16), ApiError> {
    if key_type == TRANSACTION_KEY {
        // Transactions are not supported; any node answers (and refuses them).
        let (host, port) = broker.broker_config().advertised_endpoint();
        return Ok((broker.node_id, host, port));
    }
    crate::coordinator::ensure_offsets_topic(broker).await?;
    let image = broker.image();
    let not_available =
        |message: String| ApiError::new(ErrorCode::CoordinatorNotAvailable, message);
    let topic = image
        .topic(OFFSETS_TOPIC)
        .ok_or_else(|| not_available(format!("{OFFSETS_TOPIC} is being created")))?;
    let index = group_partition(key, topic.partitions.len() as i32);
    let leader = topic
        .partitions
        .get(index as usize)
        .map_or(-1, |state| state.leader);
    let registration = image
        .broker(leader)
        .filter(|registration| !registration.fenced)
        .ok_or_else(|| not_available(format!("{OFFSETS_TOPIC}-{index} has no leader right now")))?;
    Ok((leader, registration.host.clone(), registration.port))
}
