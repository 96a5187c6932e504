//! Metadata: this node as the only broker and controller, and the requested
//! topics (all of them when the list is null, or empty in v0), creating
//! unknown ones when both the request and `auto.create.topics.enable` allow.

use eddy_protocol::messages::{
    MetadataRequest, MetadataResponse,
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
};
use eddy_protocol::{ErrorCode, StrBytes};

use crate::state::{Broker, Topic};

pub fn handle(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let (host, port) = broker.broker_config().advertised_endpoint();
    let all = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    // Before v4 the request cannot say no; auto-creation was always allowed.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let topics = if all {
        broker
            .topics()
            .iter()
            .map(|topic| describe(topic, broker.node_id))
            .collect()
    } else {
        request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|wanted| match (&wanted.name, wanted.topic_id) {
                (Some(name), _) => match broker.topic_or_create(name, allow_auto_create) {
                    Ok(topic) => describe(&topic, broker.node_id),
                    Err(error) => MetadataResponseTopic {
                        error_code: error.code.code(),
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                },
                (None, id) => match broker.topic_by_id(id) {
                    Some(topic) => describe(&topic, broker.node_id),
                    None => MetadataResponseTopic {
                        error_code: ErrorCode::UnknownTopicId.code(),
                        topic_id: id,
                        ..Default::default()
                    },
                },
            })
            .collect()
    };
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: broker.node_id,
            host: StrBytes::from(host),
            port: i32::from(port),
            rack: None,
            ..Default::default()
        }],
        cluster_id: Some(StrBytes::from(broker.cluster_id.as_str())),
        controller_id: broker.node_id,
        topics,
        ..Default::default()
    }
}

fn describe(topic: &Topic, node_id: i32) -> MetadataResponseTopic {
    MetadataResponseTopic {
        name: Some(StrBytes::from(topic.name.as_str())),
        topic_id: topic.id,
        is_internal: topic.is_internal(),
        partitions: (0..topic.partition_count())
            .map(|index| MetadataResponsePartition {
                partition_index: index,
                leader_id: node_id,
                leader_epoch: 0,
                replica_nodes: vec![node_id],
                isr_nodes: vec![node_id],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
