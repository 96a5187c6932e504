//! Admin helpers on [`Client`] and the plain structs they return: what the
//! cluster looks like (Metadata, DescribeCluster) and how its metadata
//! quorum is doing (DescribeQuorum).

use eddy_protocol::messages::create_topics_request::CreatableTopic;
use eddy_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use eddy_protocol::messages::describe_quorum_response::ReplicaState;
use eddy_protocol::messages::{
    CreateTopicsRequest, DescribeClusterRequest, DescribeQuorumRequest, MetadataRequest,
    MetadataResponse,
};
use eddy_protocol::{ApiKey, ErrorCode};
use serde::Serialize;

use crate::client::Client;
use crate::error::{ClientError, check, failure, optional_code_name};

/// The metadata log's topic, whose partition 0 DescribeQuorum reports on.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// A Metadata response, as a client sees the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterMetadata {
    /// The node that answered.
    pub answered_by: String,
    pub cluster_id: Option<String>,
    /// The active controller, if the node knows one.
    pub controller_id: Option<i32>,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    pub name: String,
    /// Kafka's base64 form; empty when the node sends no id.
    pub topic_id: String,
    pub internal: bool,
    #[serde(serialize_with = "optional_code_name")]
    pub error: Option<ErrorCode>,
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    /// `None` while the partition has no leader.
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    #[serde(serialize_with = "optional_code_name")]
    pub error: Option<ErrorCode>,
}

impl ClusterMetadata {
    /// How many partitions each broker leads, by broker id (brokers leading
    /// none included).
    pub fn leader_counts(&self) -> std::collections::BTreeMap<i32, usize> {
        let mut counts: std::collections::BTreeMap<i32, usize> =
            self.brokers.iter().map(|broker| (broker.id, 0)).collect();
        let leaders = self
            .topics
            .iter()
            .flat_map(|topic| &topic.partitions)
            .filter_map(|partition| partition.leader);
        for leader in leaders {
            *counts.entry(leader).or_default() += 1;
        }
        counts
    }
}

/// A DescribeCluster response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterDescription {
    pub answered_by: String,
    pub cluster_id: String,
    pub controller_id: Option<i32>,
    pub brokers: Vec<BrokerInfo>,
}

/// The metadata quorum (`__cluster_metadata` partition 0), from DescribeQuorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumInfo {
    pub answered_by: String,
    /// The Raft leader, which is the active controller; `None` during an election.
    pub leader_id: Option<i32>,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumReplica {
    pub id: i32,
    /// `None` when the leader does not know it.
    pub log_end_offset: Option<i64>,
    /// How far this replica's log end is behind the high watermark.
    pub lag: Option<i64>,
    pub last_fetch_timestamp_ms: Option<i64>,
    pub last_caught_up_timestamp_ms: Option<i64>,
}

impl QuorumInfo {
    /// The highest lag among voters, if every voter's log end is known.
    pub fn max_voter_lag(&self) -> Option<i64> {
        self.voters
            .iter()
            .map(|voter| voter.lag)
            .collect::<Option<Vec<i64>>>()
            .map(|lags| lags.into_iter().max().unwrap_or(0))
    }
}

impl Client {
    /// Cluster metadata from the first bootstrap node that answers.
    pub async fn metadata(&mut self) -> Result<ClusterMetadata, ClientError> {
        let mut nodes = self.bootstrap_nodes();
        while let Some(address) = nodes.next_address() {
            match self.metadata_from(&address).await {
                Ok(answer) => return Ok(answer),
                Err(error) => nodes.failed(error)?,
            }
        }
        Err(nodes.exhausted())
    }

    /// Cluster metadata as the node at `address` sees it.
    pub async fn metadata_from(&mut self, address: &str) -> Result<ClusterMetadata, ClientError> {
        let request = MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        let response = self.send_to(address, request).await?;
        Ok(cluster_metadata(address, response))
    }

    /// DescribeCluster from the first bootstrap node that answers.
    pub async fn describe_cluster(&mut self) -> Result<ClusterDescription, ClientError> {
        let mut nodes = self.bootstrap_nodes();
        while let Some(address) = nodes.next_address() {
            match self.describe_cluster_from(&address).await {
                Ok(answer) => return Ok(answer),
                Err(error) => nodes.failed(error)?,
            }
        }
        Err(nodes.exhausted())
    }

    pub async fn describe_cluster_from(
        &mut self,
        address: &str,
    ) -> Result<ClusterDescription, ClientError> {
        let response = self
            .send_to(address, DescribeClusterRequest::default())
            .await?;
        check(
            address,
            ApiKey::DescribeCluster,
            response.error_code,
            response.error_message.as_deref(),
        )?;
        Ok(ClusterDescription {
            answered_by: address.to_string(),
            cluster_id: response.cluster_id.to_string(),
            controller_id: known_id(response.controller_id),
            brokers: response
                .brokers
                .iter()
                .map(|broker| BrokerInfo {
                    id: broker.broker_id,
                    host: broker.host.to_string(),
                    port: broker.port,
                    rack: broker.rack.as_ref().map(ToString::to_string),
                })
                .collect(),
        })
    }

    /// The metadata quorum from the first bootstrap node that answers;
    /// `None` when that node does not offer DescribeQuorum.
    pub async fn describe_quorum(&mut self) -> Result<Option<QuorumInfo>, ClientError> {
        let mut nodes = self.bootstrap_nodes();
        while let Some(address) = nodes.next_address() {
            match self.describe_quorum_from(&address).await {
                Ok(answer) => return Ok(answer),
                Err(error) => nodes.failed(error)?,
            }
        }
        Err(nodes.exhausted())
    }

    pub async fn describe_quorum_from(
        &mut self,
        address: &str,
    ) -> Result<Option<QuorumInfo>, ClientError> {
        if !self
            .connection(address)
            .await?
            .supports(ApiKey::DescribeQuorum)
        {
            return Ok(None);
        }
        let request = DescribeQuorumRequest {
            topics: vec![TopicData {
                topic_name: METADATA_TOPIC.into(),
                partitions: vec![PartitionData {
                    partition_index: 0,
                    ..PartitionData::default()
                }],
                ..TopicData::default()
            }],
            ..DescribeQuorumRequest::default()
        };
        let response = self.send_to(address, request).await?;
        check(
            address,
            ApiKey::DescribeQuorum,
            response.error_code,
            response.error_message.as_deref(),
        )?;
        let partition = response
            .topics
            .iter()
            .filter(|topic| topic.topic_name.as_str() == METADATA_TOPIC)
            .flat_map(|topic| &topic.partitions)
            .find(|partition| partition.partition_index == 0)
            .ok_or_else(|| ClientError::Protocol {
                address: address.to_string(),
                api: ApiKey::DescribeQuorum.name(),
                reason: format!("the response has no {METADATA_TOPIC} partition 0"),
            })?;
        check(
            address,
            ApiKey::DescribeQuorum,
            partition.error_code,
            partition.error_message.as_deref(),
        )?;
        let high_watermark = partition.high_watermark;
        let replica = |state: &ReplicaState| {
            let log_end_offset = (state.log_end_offset >= 0).then_some(state.log_end_offset);
            QuorumReplica {
                id: state.replica_id,
                log_end_offset,
                lag: log_end_offset.map(|end| (high_watermark - end).max(0)),
                last_fetch_timestamp_ms: (state.last_fetch_timestamp >= 0)
                    .then_some(state.last_fetch_timestamp),
                last_caught_up_timestamp_ms: (state.last_caught_up_timestamp >= 0)
                    .then_some(state.last_caught_up_timestamp),
            }
        };
        Ok(Some(QuorumInfo {
            answered_by: address.to_string(),
            leader_id: known_id(partition.leader_id),
            leader_epoch: partition.leader_epoch,
            high_watermark,
            voters: partition.current_voters.iter().map(replica).collect(),
            observers: partition.observers.iter().map(replica).collect(),
        }))
    }

    /// Creates a topic through the node at `address`. `replication_factor`
    /// -1 takes the broker's default.
    pub async fn create_topic_on(
        &mut self,
        address: &str,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), ClientError> {
        let timeout_ms = i32::try_from(self.node_timeout().as_millis()).unwrap_or(i32::MAX);
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor,
                ..CreatableTopic::default()
            }],
            timeout_ms,
            ..CreateTopicsRequest::default()
        };
        let response = self.send_to(address, request).await?;
        for topic in &response.topics {
            check(
                address,
                ApiKey::CreateTopics,
                topic.error_code,
                topic.error_message.as_deref(),
            )?;
        }
        Ok(())
    }
}

fn cluster_metadata(address: &str, response: MetadataResponse) -> ClusterMetadata {
    ClusterMetadata {
        answered_by: address.to_string(),
        cluster_id: response.cluster_id.as_ref().map(ToString::to_string),
        controller_id: known_id(response.controller_id),
        brokers: response
            .brokers
            .iter()
            .map(|broker| BrokerInfo {
                id: broker.node_id,
                host: broker.host.to_string(),
                port: broker.port,
                rack: broker.rack.as_ref().map(ToString::to_string),
            })
            .collect(),
        topics: response
            .topics
            .iter()
            .map(|topic| TopicInfo {
                name: topic
                    .name
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                topic_id: if topic.topic_id.is_zero() {
                    String::new()
                } else {
                    topic.topic_id.to_string()
                },
                internal: topic.is_internal,
                error: failure(topic.error_code),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|partition| PartitionInfo {
                        partition: partition.partition_index,
                        leader: known_id(partition.leader_id),
                        leader_epoch: partition.leader_epoch,
                        replicas: partition.replica_nodes.clone(),
                        isr: partition.isr_nodes.clone(),
                        offline_replicas: partition.offline_replicas.clone(),
                        error: failure(partition.error_code),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Kafka sends -1 for "no such node".
pub(crate) fn known_id(id: i32) -> Option<i32> {
    (id >= 0).then_some(id)
}
