//! InitProducerId for idempotent producers: a producer id never used before
//! (taken from blocks the controller hands out, so no two nodes and no restart
//! ever reuse one), epoch 0.
//!
//! A producer that already has an id asks to bump its epoch (KIP-360); it
//! gets a fresh id instead, which is always safe. Transactions are not
//! supported: a transactional id is refused.

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use crate::state::Broker;

pub async fn handle(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.is_empty())
    {
        return InitProducerIdResponse {
            error_code: ErrorCode::TransactionalIdAuthorizationFailed.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
    }
    match broker.allocate_producer_id().await {
        Ok(producer_id) => InitProducerIdResponse {
            producer_id,
            producer_epoch: 0,
            ..Default::default()
        },
        Err(error) => InitProducerIdResponse {
            error_code: error.code.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    }
}
