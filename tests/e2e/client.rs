//! eddy-client against a real `eddy broker`: version negotiation, the admin
//! helpers' view of a node, and errors that name the node, the API and the
//! Kafka error code.

mod support;

use std::time::Duration;

use eddy_client::{Client, ClientError, ErrorCode};
use support::Node;

const NODE_TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn metadata_describes_the_node_its_topics_and_their_leaders() {
    let node = Node::start();
    let address = node.bootstrap();
    runtime().block_on(async {
        let mut client = Client::new([address.as_str()]).with_node_timeout(NODE_TIMEOUT);
        client
            .create_topic_on(&address, "described", 3, 1)
            .await
            .expect("creating a topic");
        let metadata = client.metadata().await.expect("metadata");
        assert_eq!(metadata.answered_by, address);
        assert_eq!(metadata.controller_id, Some(1));
        assert!(
            metadata
                .cluster_id
                .as_deref()
                .is_some_and(|id| !id.is_empty())
        );
        assert_eq!(metadata.brokers.len(), 1);
        assert_eq!(metadata.brokers[0].id, 1);
        assert_eq!(metadata.brokers[0].port, i32::from(node.port()));
        let topic = metadata
            .topics
            .iter()
            .find(|topic| topic.name == "described")
            .expect("the topic is listed");
        assert_eq!(topic.error, None);
        assert_eq!(topic.partitions.len(), 3);
        for partition in &topic.partitions {
            assert_eq!(partition.leader, Some(1));
            assert_eq!(partition.replicas, vec![1]);
            assert_eq!(partition.isr, vec![1]);
        }
        assert_eq!(metadata.leader_counts().get(&1), Some(&3));

        let description = client.describe_cluster().await.expect("describe cluster");
        assert_eq!(description.controller_id, Some(1));
        assert_eq!(Some(description.cluster_id), metadata.cluster_id);
    });
}

#[test]
fn describe_quorum_is_none_when_the_node_does_not_offer_it() {
    let node = Node::start();
    runtime().block_on(async {
        let mut client = Client::new([node.bootstrap()]).with_node_timeout(NODE_TIMEOUT);
        let supported = client
            .connection(&node.bootstrap())
            .await
            .expect("connecting")
            .supports(eddy_protocol::ApiKey::DescribeQuorum);
        let quorum = client.describe_quorum().await.expect("describe quorum");
        assert_eq!(quorum.is_some(), supported);
    });
}

#[test]
fn a_kafka_error_is_an_error_code_naming_the_node_and_api() {
    let node = Node::start();
    let address = node.bootstrap();
    runtime().block_on(async {
        let mut client = Client::new([address.as_str()]).with_node_timeout(NODE_TIMEOUT);
        client
            .create_topic_on(&address, "twice", 1, 1)
            .await
            .expect("first create");
        let error = client
            .create_topic_on(&address, "twice", 1, 1)
            .await
            .expect_err("the topic exists");
        assert_eq!(error.error_code(), Some(ErrorCode::TopicAlreadyExists));
        let text = error.to_string();
        assert!(
            text.contains(&address) && text.contains("CreateTopics"),
            "{text}"
        );
        // The connection survives a Kafka error.
        client
            .metadata_from(&address)
            .await
            .expect("metadata after the error");
    });
}

#[test]
fn an_unreachable_bootstrap_list_names_every_address_tried() {
    let first = format!("127.0.0.1:{}", support::free_port());
    let second = format!("127.0.0.1:{}", support::free_port());
    runtime().block_on(async {
        let mut client =
            Client::new([first.as_str(), second.as_str()]).with_node_timeout(NODE_TIMEOUT);
        let error = client.metadata().await.expect_err("nothing listens");
        assert!(
            matches!(error, ClientError::NoNodeAvailable { .. }),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains(&first) && text.contains(&second), "{text}");
    });
}
