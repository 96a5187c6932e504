//! Metadata: the cluster as this node's metadata image has it — the live
//! nodes, a live node as controller id (as KRaft reports it), and the
//! requested topics (all of them when the list is null, or empty in v0)
//! with each partition's leader, epoch, replicas and in-sync replicas.
//! Unknown topics are created when both the request and
//! `auto.create.topics.enable` allow.

use eddy_metadata::{MetadataImage, TopicImage};
use eddy_protocol::messages::{
    MetadataRequest, MetadataResponse,
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
};
use eddy_protocol::{ErrorCode, StrBytes, Uuid};

use crate::state::Broker;

pub async fn handle(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let all = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    // Before v4 the request cannot say no; auto-creation was always allowed.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut topics = Vec::new();
    if all {
        let image = broker.image();
        topics.extend(image.topics.values().map(|topic| describe(&image, topic)));
    } else {
        for wanted in request.topics.unwrap_or_default() {
            let described = match (&wanted.name, wanted.topic_id) {
                (Some(name), _) => match broker.topic_or_create(name, allow_auto_create).await {
                    Ok(_) => {
                        let image = broker.image();
                        match image.topic(name) {
                            Some(topic) => describe(&image, topic),
                            None => unknown(Some(name.clone()), ErrorCode::UnknownTopicOrPartition),
                        }
                    }
                    Err(error) => unknown(Some(name.clone()), error.code),
                },
                (None, id) => {
                    let image = broker.image();
                    match image.topic_by_id(id.as_u128()) {
                        Some(topic) => describe(&image, topic),
                        None => MetadataResponseTopic {
                            topic_id: id,
                            ..unknown(None, ErrorCode::UnknownTopicId)
                        },
                    }
                }
            };
            topics.push(described);
        }
    }
    let image = broker.image();
    MetadataResponse {
        brokers: image
            .live_brokers()
            .map(|registration| MetadataResponseBroker {
                node_id: registration.id,
                host: StrBytes::from(registration.host.as_str()),
                port: i32::from(registration.port),
                rack: None,
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(StrBytes::from(image.cluster_id.as_str())),
        controller_id: reported_controller(broker, &image),
        topics,
        ..Default::default()
    }
}

/// The controller id clients are told: the active controller when it is a
/// live node, else this node (clients send admin requests there, and every
/// node forwards them).
pub fn reported_controller(broker: &Broker, image: &MetadataImage) -> i32 {
    broker
        .metadata
        .controller_id()
        .filter(|id| {
            image
                .broker(*id)
                .is_some_and(|registration| !registration.fenced)
        })
        .unwrap_or(broker.node_id)
}

fn unknown(name: Option<StrBytes>, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: code.code(),
        name,
        ..Default::default()
    }
}

fn describe(image: &MetadataImage, topic: &TopicImage) -> MetadataResponseTopic {
    MetadataResponseTopic {
        name: Some(StrBytes::from(topic.name.as_str())),
        topic_id: Uuid::from_u128(topic.id),
        is_internal: topic.name.starts_with("__"),
        partitions: topic
            .partitions
            .iter()
            .enumerate()
            .map(|(index, state)| MetadataResponsePartition {
                error_code: if state.leader < 0 {
                    ErrorCode::LeaderNotAvailable.code()
                } else {
                    0
                },
                partition_index: index as i32,
                leader_id: state.leader,
                leader_epoch: state.leader_epoch,
                replica_nodes: state.replicas.clone(),
                isr_nodes: state.isr.clone(),
                offline_replicas: state
                    .replicas
                    .iter()
                    .copied()
                    .filter(|replica| {
                        image
                            .broker(*replica)
                            .is_none_or(|registration| registration.fenced)
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
