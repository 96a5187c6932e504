//! Cluster operations on [`Client`]: leader elections, partition
//! reassignments, dynamic broker configs, and forgetting a node that is
//! gone. Requests that change the cluster's metadata go to the active
//! controller; the list of reassignments in flight is read there too, so
//! that it reflects every change the controller has accepted.

use std::collections::BTreeMap;

use eddy_protocol::ApiKey;
use eddy_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use eddy_protocol::messages::elect_leaders_request::TopicPartitions;
use eddy_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use eddy_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ElectLeadersRequest,
    ElectLeadersResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, UnregisterBrokerRequest,
    UnregisterBrokerResponse,
};
use serde::Serialize;

use crate::client::{Client, RetryKind};
use crate::error::{ClientError, KafkaFailure, check};

/// IncrementalAlterConfigs' resource type for a broker.
const BROKER_RESOURCE: i8 = 4;
/// IncrementalAlterConfigs operations.
const SET_CONFIG: i8 = 0;
const DELETE_CONFIG: i8 = 1;

/// Which replica an ElectLeaders request makes leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ElectionType {
    /// The preferred replica (the first of the partition's replicas), when
    /// it is alive and in sync.
    Preferred,
    /// Any live replica when no in-sync replica is left; it may lose
    /// acknowledged records.
    Unclean,
}

impl ElectionType {
    /// ElectLeaders' `ElectionType` field.
    fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }
}

/// A change to one partition's replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    /// The replicas the partition should end with, the preferred leader
    /// first; `None` cancels the reassignment in flight.
    pub replicas: Option<Vec<i32>>,
}

/// A reassignment in flight, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    /// Every replica the partition has while it moves: the target ones and
    /// those about to leave.
    pub replicas: Vec<i32>,
    /// Replicas being added (catching up before they count).
    pub adding: Vec<i32>,
    /// Replicas that leave once the added ones are in sync.
    pub removing: Vec<i32>,
}

impl Client {
    /// Elects leaders (ElectLeaders): the preferred replica, or any live
    /// one for an unclean election. `None` means every partition. The
    /// answer says, per partition, whether a leader was elected;
    /// ELECTION_NOT_NEEDED (the preferred replica already leads) comes back
    /// as a failure the caller may ignore.
    pub async fn elect_leaders(
        &mut self,
        election: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<BTreeMap<(String, i32), Result<(), KafkaFailure>>, ClientError> {
        let topic_partitions = partitions.map(|partitions| {
            let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in partitions {
                by_topic.entry(topic).or_default().push(partition);
            }
            by_topic
                .into_iter()
                .map(|(topic, partitions)| TopicPartitions {
                    topic: topic.into(),
                    partitions,
                    ..TopicPartitions::default()
                })
                .collect()
        });
        let request = ElectLeadersRequest {
            election_type: election.code(),
            topic_partitions,
            timeout_ms: self.node_timeout_ms(),
            ..ElectLeadersRequest::default()
        };
        let answer = |address: &str, response: ElectLeadersResponse| {
            check(address, ApiKey::ElectLeaders, response.error_code, None)?;
            let mut outcomes = BTreeMap::new();
            for topic in &response.replica_election_results {
                for partition in &topic.partition_result {
                    let outcome = KafkaFailure::check(
                        partition.error_code,
                        partition.error_message.as_deref(),
                    );
                    if let Err(failure) = &outcome
                        && failure.code == eddy_protocol::ErrorCode::NotController
                    {
                        return Err(failure.clone().into_error(address, ApiKey::ElectLeaders));
                    }
                    outcomes.insert((topic.topic.to_string(), partition.partition_id), outcome);
                }
            }
            Ok(outcomes)
        };
        let outcomes = self.call_controller(request, answer).await?;
        for (topic, _) in outcomes.keys() {
            self.forget_route(topic);
        }
        Ok(outcomes)
    }

    /// Starts (or cancels) partition reassignments
    /// (AlterPartitionReassignments). The answer says, per partition,
    /// whether the change was accepted; the data then moves in the
    /// background, and [`Client::list_partition_reassignments`] shows what
    /// is still in flight.
    pub async fn alter_partition_reassignments(
        &mut self,
        changes: &[PartitionReassignment],
    ) -> Result<BTreeMap<(String, i32), Result<(), KafkaFailure>>, ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for change in changes {
            by_topic
                .entry(change.topic.as_str())
                .or_default()
                .push(ReassignablePartition {
                    partition_index: change.partition,
                    replicas: change.replicas.clone(),
                    ..ReassignablePartition::default()
                });
        }
        let request = AlterPartitionReassignmentsRequest {
            timeout_ms: self.node_timeout_ms(),
            topics: by_topic
                .into_iter()
                .map(|(name, partitions)| ReassignableTopic {
                    name: name.into(),
                    partitions,
                    ..ReassignableTopic::default()
                })
                .collect(),
            ..AlterPartitionReassignmentsRequest::default()
        };
        let answer = |address: &str, response: AlterPartitionReassignmentsResponse| {
            check(
                address,
                ApiKey::AlterPartitionReassignments,
                response.error_code,
                response.error_message.as_deref(),
            )?;
            let mut outcomes = BTreeMap::new();
            for topic in &response.responses {
                for partition in &topic.partitions {
                    let outcome = KafkaFailure::check(
                        partition.error_code,
                        partition.error_message.as_deref(),
                    );
                    if let Err(failure) = &outcome
                        && failure.code == eddy_protocol::ErrorCode::NotController
                    {
                        return Err(failure
                            .clone()
                            .into_error(address, ApiKey::AlterPartitionReassignments));
                    }
                    outcomes.insert((topic.name.to_string(), partition.partition_index), outcome);
                }
            }
            Ok(outcomes)
        };
        let outcomes = self.call_controller(request, answer).await?;
        for (topic, _) in outcomes.keys() {
            self.forget_route(topic);
        }
        Ok(outcomes)
    }

    /// Every partition reassignment in flight
    /// (ListPartitionReassignments), ordered by topic and partition.
    pub async fn list_partition_reassignments(
        &mut self,
    ) -> Result<Vec<OngoingReassignment>, ClientError> {
        let request = ListPartitionReassignmentsRequest {
            timeout_ms: self.node_timeout_ms(),
            topics: None,
            ..ListPartitionReassignmentsRequest::default()
        };
        let answer = |address: &str, response: ListPartitionReassignmentsResponse| {
            check(
                address,
                ApiKey::ListPartitionReassignments,
                response.error_code,
                response.error_message.as_deref(),
            )?;
            let mut ongoing: Vec<OngoingReassignment> = response
                .topics
                .iter()
                .flat_map(|topic| {
                    topic
                        .partitions
                        .iter()
                        .map(|partition| OngoingReassignment {
                            topic: topic.name.to_string(),
                            partition: partition.partition_index,
                            replicas: partition.replicas.clone(),
                            adding: partition.adding_replicas.clone(),
                            removing: partition.removing_replicas.clone(),
                        })
                })
                .collect();
            ongoing.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            Ok(ongoing)
        };
        self.call_controller(request, answer).await
    }

    /// Changes dynamic broker configs (IncrementalAlterConfigs on a BROKER
    /// resource): on node `broker`, or the cluster-wide default for every
    /// node when `None`. Sets the configs in `set`, removes those in
    /// `delete` (back to the static or built-in value), and leaves the
    /// others as they are. The call is all or nothing: one refused config
    /// refuses it all. With `validate_only` nothing changes.
    pub async fn alter_broker_configs(
        &mut self,
        broker: Option<i32>,
        set: &BTreeMap<String, String>,
        delete: &[String],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let settings = set.iter().map(|(name, value)| AlterableConfig {
            name: name.as_str().into(),
            config_operation: SET_CONFIG,
            value: Some(value.as_str().into()),
            ..AlterableConfig::default()
        });
        let removals = delete.iter().map(|name| AlterableConfig {
            name: name.as_str().into(),
            config_operation: DELETE_CONFIG,
            value: None,
            ..AlterableConfig::default()
        });
        let resource_name = broker.map(|id| id.to_string()).unwrap_or_default();
        let request = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: BROKER_RESOURCE,
                resource_name: resource_name.into(),
                configs: settings.chain(removals).collect(),
                ..AlterConfigsResource::default()
            }],
            validate_only,
            ..IncrementalAlterConfigsRequest::default()
        };
        let answer = |address: &str, response: IncrementalAlterConfigsResponse| {
            for result in &response.responses {
                check(
                    address,
                    ApiKey::IncrementalAlterConfigs,
                    result.error_code,
                    result.error_message.as_deref(),
                )?;
            }
            Ok(())
        };
        self.call_any(RetryKind::Write, request, answer).await
    }

    /// Forgets node `broker` (UnregisterBroker): for a node that is gone
    /// for good and hosts no replicas any more.
    pub async fn unregister_broker(&mut self, broker: i32) -> Result<(), ClientError> {
        let request = UnregisterBrokerRequest {
            broker_id: broker,
            ..UnregisterBrokerRequest::default()
        };
        let answer = |address: &str, response: UnregisterBrokerResponse| {
            check(
                address,
                ApiKey::UnregisterBroker,
                response.error_code,
                response.error_message.as_deref(),
            )
        };
        self.call_controller(request, answer).await
    }
}
