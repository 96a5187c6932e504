//! UnregisterBroker (key 64): forgets a node that is gone for good, so that
//! it no longer shows in the cluster. The controller refuses a node that
//! still hosts replicas (move them off first with
//! AlterPartitionReassignments).

use eddy_metadata::Command;
use eddy_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};

use super::error_message;
use crate::state::Broker;

pub async fn handle(broker: &Broker, request: UnregisterBrokerRequest) -> UnregisterBrokerResponse {
    let id = request.broker_id;
    match broker.propose(Command::UnregisterBroker { id }).await {
        Ok(_) => {
            tracing::info!(node = id, "unregistered a node");
            UnregisterBrokerResponse::default()
        }
        Err(error) => UnregisterBrokerResponse {
            error_code: error.code.code(),
            error_message: error_message(&error.message),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use eddy_protocol::ErrorCode;

    use super::*;
    use crate::handlers::describe_configs::tests::{create_topic, open_broker};

    #[tokio::test]
    async fn unknown_nodes_and_nodes_hosting_replicas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open_broker(&dir, &[]).await;
        create_topic(&broker, "orders", 1, &[]).await;
        let unknown = handle(
            &broker,
            UnregisterBrokerRequest {
                broker_id: 7,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(unknown.error_code, ErrorCode::BrokerIdNotRegistered.code());
        let hosting = handle(
            &broker,
            UnregisterBrokerRequest {
                broker_id: 1,
                ..Default::default()
            },
        )
        .await;
        assert_ne!(hosting.error_code, 0);
        let message = hosting.error_message.as_deref().unwrap_or_default();
        assert!(message.contains("orders-0"), "{message}");
        assert!(broker.image().broker(1).is_some());
    }
}
