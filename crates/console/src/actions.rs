//! What the user asks for: one [`Request`] in, one [`Response`] or
//! [`Failure`] out. Both shells (the desktop app and `eddy serve`) hand
//! their requests here unchanged.
//!
//! Failures carry Kafka's error name when Kafka gave one, the message, and
//! what to do about it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use eddy_client::{
    Client, ClientError, ConsumedRecord, ErrorCode, KafkaFailure, NewRecord, NewTopic, OffsetSpec,
};

use crate::model::Failure;
use crate::model::{
    ConfigEntryView, GroupDetail, HeaderView, MemberView, MessageView, NodeAction, PartitionLag,
    PartitionOffsets, Progress, ReplicaSize, Request, ResetTo, Response, StartAt, TopicPartitions,
    Update,
};
use crate::payload::{contains, payload};
use crate::session::Console;

/// Records a browse returns at most, whatever it asks.
const MAX_BROWSE_RECORDS: u32 = 10_000;
/// Bytes one fetch asks for while browsing or replaying.
const FETCH_BYTES: i32 = 4 << 20;
/// Records one replay produce request carries at most.
const REPLAY_BATCH: usize = 500;
/// How long a node may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka error (or any client error) as the UI shows it.
pub fn client_failure(error: ClientError) -> Failure {
    let code = error.error_code();
    Failure {
        kafka_error: code.map(|code| code.name().to_string()),
        hint: code.and_then(hint).map(str::to_string),
        message: error.to_string(),
    }
}

pub(crate) fn kafka_failure(what: &str, failure: KafkaFailure) -> Failure {
    Failure {
        kafka_error: Some(failure.code.name().to_string()),
        hint: hint(failure.code).map(str::to_string),
        message: if failure.message.is_empty() {
            format!("{what}: {}", failure.code.name())
        } else {
            format!("{what}: {}", failure.message)
        },
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        kafka_error: None,
        message: message.into(),
        hint: None,
    }
}

/// What to do about a Kafka error.
fn hint(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::TopicAlreadyExists => "Pick another name, or delete the existing topic first.",
        ErrorCode::InvalidReplicationFactor => {
            "Use at most as many replicas as there are live nodes, or bring stopped nodes back."
        }
        ErrorCode::InvalidPartitions => {
            "A topic needs at least one partition; partitions can only grow."
        }
        ErrorCode::InvalidTopicException => {
            "Topic names use letters, digits, '.', '_' and '-', at most 249 characters."
        }
        ErrorCode::UnknownTopicOrPartition => "Check the name; the topic may have been deleted.",
        ErrorCode::NotEnoughReplicas | ErrorCode::NotEnoughReplicasAfterAppend => {
            "Too few in-sync replicas for acks=all: bring nodes back, or lower min.insync.replicas."
        }
        ErrorCode::RequestTimedOut => {
            "A node may be down or paused, or the metadata quorum lost; see the cluster view."
        }
        ErrorCode::NonEmptyGroup | ErrorCode::UnknownMemberId | ErrorCode::RebalanceInProgress => {
            "Offsets can be reset only while the group has no members: stop its consumers first."
        }
        ErrorCode::InvalidConfig => {
            "Check the config's name and value against Kafka's documentation."
        }
        ErrorCode::NotLeaderOrFollower | ErrorCode::LeaderNotAvailable => {
            "Leadership is moving; try again in a moment."
        }
        ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
            "The group's coordinator is moving; try again in a moment."
        }
        ErrorCode::OffsetOutOfRange => "That offset is no longer (or not yet) in the partition.",
        _ => return None,
    })
}

pub(crate) fn done(message: impl Into<String>) -> Response {
    Response::Done {
        message: message.into(),
    }
}

impl Console {
    /// Carries out one request.
    pub async fn handle(&self, request: Request) -> Result<Response, Failure> {
        if self.info().read_only && changes_cluster(&request) {
            return Err(Failure {
                kafka_error: None,
                message: "this session is read-only".into(),
                hint: Some("Connect with changes allowed to do this.".into()),
            });
        }
        match request {
            Request::Session => Ok(Response::Session(self.info().clone())),
            Request::Snapshot => Ok(Response::Snapshot((*self.snapshot()).clone())),
            Request::Events { after } => Ok(Response::Events(self.events_after(after))),
            Request::NodeAction { node_id, action } => self.node_action(node_id, action).await,
            Request::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
            } => {
                let topic = NewTopic {
                    name: name.clone(),
                    partitions,
                    replication_factor,
                    configs,
                };
                let results = self
                    .client()
                    .create_topics(&[topic])
                    .await
                    .map_err(client_failure)?;
                match results.into_iter().next() {
                    Some((_, Err(failure))) => {
                        Err(kafka_failure(&format!("creating {name}"), failure))
                    }
                    _ => Ok(done(format!("Topic {name} created"))),
                }
            }
            Request::DeleteTopic { name } => {
                let results = self
                    .client()
                    .delete_topics(std::slice::from_ref(&name))
                    .await
                    .map_err(client_failure)?;
                match results.into_iter().next() {
                    Some((_, Err(failure))) => {
                        Err(kafka_failure(&format!("deleting {name}"), failure))
                    }
                    _ => Ok(done(format!("Topic {name} deleted"))),
                }
            }
            Request::TopicConfigs { name } => {
                let entries = self
                    .client()
                    .describe_topic_configs(&name)
                    .await
                    .map_err(client_failure)?;
                Ok(Response::TopicConfigs(
                    entries
                        .into_iter()
                        .map(|entry| ConfigEntryView {
                            name: entry.name,
                            value: entry.value,
                            source: entry.source,
                            read_only: entry.read_only,
                        })
                        .collect(),
                ))
            }
            Request::AlterTopicConfigs { name, set, delete } => {
                self.client()
                    .alter_topic_configs(&name, set, delete)
                    .await
                    .map_err(client_failure)?;
                Ok(done(format!("Configs of {name} changed")))
            }
            Request::PartitionOffsets { topic } => self.partition_offsets(&topic).await,
            Request::Browse {
                topic,
                partition,
                start,
                limit,
                filter,
            } => self.browse(&topic, partition, start, limit, filter).await,
            Request::Produce {
                topic,
                partition,
                key,
                value,
                headers,
            } => {
                let record = NewRecord {
                    key: key.map(Bytes::from),
                    value: value.map(Bytes::from),
                    headers: headers
                        .into_iter()
                        .map(|(key, value)| (key, Some(Bytes::from(value))))
                        .collect(),
                    timestamp_ms: None,
                };
                let result = self
                    .client()
                    .produce(&topic, partition, vec![record], -1)
                    .await
                    .map_err(client_failure)?;
                Ok(Response::Produced {
                    partition: result.partition,
                    offset: result.base_offset.unwrap_or(-1),
                })
            }
            Request::Replay {
                topic,
                partition,
                from_offset,
                to_offset,
                target_topic,
            } => {
                self.replay(&topic, partition, from_offset, to_offset, &target_topic)
                    .await
            }
            Request::Group { group_id } => self.group(&group_id).await,
            Request::ResetOffsets {
                group_id,
                topic,
                to,
            } => self.reset_offsets(&group_id, &topic, to).await,
            Request::LagHistory { group_id, since_ms } => Ok(Response::LagHistory(
                self.lag_history(&group_id, since_ms).await,
            )),
            Request::LagChart { group_id, since_ms } => {
                let points = self.lag_history(&group_id, since_ms).await;
                Ok(Response::Chart {
                    svg: crate::charts::lag_svg(&group_id, &points),
                })
            }
            Request::DemoStart { settings } => crate::demo::start(self, settings).await,
            Request::DemoUpdate { settings } => crate::demo::update(self, settings).await,
            Request::DemoStop => {
                crate::demo::stop(self).await;
                Ok(Response::Demo(crate::demo::status(self).await))
            }
            Request::DemoStatus => Ok(Response::Demo(crate::demo::status(self).await)),
            Request::ElectPreferredLeaders { topic, partition } => {
                self.elect_preferred_leaders(topic, partition).await
            }
            Request::Reassign {
                topic,
                partition,
                replicas,
            } => self.reassign(&topic, partition, Some(replicas)).await,
            Request::CancelReassignment { topic, partition } => {
                self.reassign(&topic, partition, None).await
            }
            Request::AddNode => self.add_node().await,
            Request::RemoveNode { node_id } => self.remove_node(node_id).await,
            Request::SlowNode {
                node_id,
                bytes_per_second,
            } => self.slow_node(node_id, bytes_per_second).await,
            Request::IsolateNode { node_id } => self.isolate_node(node_id).await,
            Request::HealNode { node_id } => self.heal_node(node_id).await,
        }
    }

    async fn node_action(&self, node_id: i32, action: NodeAction) -> Result<Response, Failure> {
        let Some(supervisor) = &self.inner.supervisor else {
            return Err(invalid(
                "nodes of a remote cluster cannot be controlled from here",
            ));
        };
        let id = u16::try_from(node_id).map_err(|_| invalid(format!("no node {node_id}")))?;
        let name = match action {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
            NodeAction::Restart => "restart",
        };
        let operation = format!("{name} node {node_id}");
        self.publish(Update::Progress(Progress {
            operation: operation.clone(),
            done: 0,
            total: None,
            finished: false,
            message: format!("{operation}…"),
        }));
        let mut supervisor = supervisor.lock().await;
        let outcome = match action {
            NodeAction::Kill => supervisor.kill(id),
            NodeAction::Stop => supervisor.stop(id, STOP_TIMEOUT).await,
            NodeAction::Pause => supervisor.pause(id),
            NodeAction::Resume => supervisor.resume(id),
            NodeAction::Restart => supervisor.restart(id, STOP_TIMEOUT).await,
        };
        drop(supervisor);
        let message = match &outcome {
            Ok(()) => match action {
                NodeAction::Kill => format!("Node {node_id} killed (SIGKILL)"),
                NodeAction::Stop => {
                    format!("Node {node_id} stopped after handing over its leaderships")
                }
                NodeAction::Pause => format!("Node {node_id} paused (SIGSTOP)"),
                NodeAction::Resume => format!("Node {node_id} resumed (SIGCONT)"),
                NodeAction::Restart => format!("Node {node_id} restarted"),
            },
            Err(error) => format!("{operation} failed: {error}"),
        };
        self.publish(Update::Progress(Progress {
            operation,
            done: 1,
            total: Some(1),
            finished: true,
            message: message.clone(),
        }));
        outcome.map_err(|_| Failure {
            kafka_error: None,
            message: message.clone(),
            hint: Some("See the node's log (eddy.log) in its data directory.".into()),
        })?;
        Ok(done(message))
    }

    async fn partition_offsets(&self, topic: &str) -> Result<Response, Failure> {
        let mut client = self.client();
        let metadata = client.metadata().await.map_err(client_failure)?;
        let Some(info) = metadata
            .topics
            .iter()
            .find(|candidate| candidate.name == topic)
        else {
            return Err(Failure {
                kafka_error: Some(ErrorCode::UnknownTopicOrPartition.name().to_string()),
                message: format!("topic {topic} does not exist"),
                hint: hint(ErrorCode::UnknownTopicOrPartition).map(str::to_string),
            });
        };
        let partitions: Vec<i32> = info
            .partitions
            .iter()
            .map(|partition| partition.partition)
            .collect();
        let starts = client
            .list_offsets(topic, &partitions, OffsetSpec::Earliest)
            .await
            .map_err(client_failure)?;
        let ends = client
            .list_offsets(topic, &partitions, OffsetSpec::Latest)
            .await
            .map_err(client_failure)?;
        let mut sizes: HashMap<(i32, i32), u64> = HashMap::new();
        let mut replica_ends: HashMap<(i32, i32), i64> = HashMap::new();
        for broker in &metadata.brokers {
            let address = format!("{}:{}", broker.host, broker.port);
            let hosted: Vec<i32> = info
                .partitions
                .iter()
                .filter(|partition| partition.replicas.contains(&broker.id))
                .map(|partition| partition.partition)
                .collect();
            if let Ok(listed) = client
                .replica_end_offsets_from(&address, topic, &hosted)
                .await
            {
                for (partition, end) in listed {
                    if let Ok(end) = end
                        && end >= 0
                    {
                        replica_ends.insert((partition, broker.id), end);
                    }
                }
            }
            if let Ok(dirs) = client.describe_log_dirs_from(&address).await {
                for replica in dirs.iter().flat_map(|dir| &dir.replicas) {
                    if replica.topic == topic {
                        sizes.insert(
                            (replica.partition, broker.id),
                            u64::try_from(replica.size_bytes).unwrap_or(0),
                        );
                    }
                }
            }
        }
        let offset = |listed: Option<&Result<eddy_client::ListedOffset, KafkaFailure>>| {
            listed
                .and_then(|result| result.as_ref().ok())
                .and_then(|listed| listed.offset)
        };
        Ok(Response::PartitionOffsets(
            info.partitions
                .iter()
                .map(|partition| PartitionOffsets {
                    partition: partition.partition,
                    log_start_offset: offset(starts.get(&partition.partition)),
                    high_watermark: offset(ends.get(&partition.partition)),
                    replicas: partition
                        .replicas
                        .iter()
                        .map(|node_id| ReplicaSize {
                            node_id: *node_id,
                            size_bytes: sizes.get(&(partition.partition, *node_id)).copied(),
                            end_offset: replica_ends.get(&(partition.partition, *node_id)).copied(),
                        })
                        .collect(),
                })
                .collect(),
        ))
    }

    /// Where browsing starts in each partition, and where the partition ends.
    async fn starts(
        client: &mut Client,
        topic: &str,
        partitions: &[i32],
        start: &StartAt,
    ) -> Result<BTreeMap<i32, (i64, i64)>, Failure> {
        let listed = |map: BTreeMap<i32, Result<eddy_client::ListedOffset, KafkaFailure>>| {
            map.into_iter()
                .filter_map(|(partition, result)| Some((partition, result.ok()?.offset?)))
                .collect::<BTreeMap<i32, i64>>()
        };
        let earliest = listed(
            client
                .list_offsets(topic, partitions, OffsetSpec::Earliest)
                .await
                .map_err(client_failure)?,
        );
        let latest = listed(
            client
                .list_offsets(topic, partitions, OffsetSpec::Latest)
                .await
                .map_err(client_failure)?,
        );
        let by_time = match start {
            StartAt::Timestamp { timestamp_ms } => Some(listed(
                client
                    .list_offsets(topic, partitions, OffsetSpec::Timestamp(*timestamp_ms))
                    .await
                    .map_err(client_failure)?,
            )),
            _ => None,
        };
        let mut starts = BTreeMap::new();
        for partition in partitions {
            let (Some(&first), Some(&end)) = (earliest.get(partition), latest.get(partition))
            else {
                continue;
            };
            let from = match start {
                StartAt::Beginning => first,
                StartAt::End { count } => (end - i64::from(*count)).max(first),
                StartAt::Offset { offset } => (*offset).clamp(first, end),
                StartAt::Timestamp { .. } => by_time
                    .as_ref()
                    .and_then(|found| found.get(partition).copied())
                    .unwrap_or(end),
            };
            starts.insert(*partition, (from, end));
        }
        Ok(starts)
    }

    async fn browse(
        &self,
        topic: &str,
        partition: Option<i32>,
        start: StartAt,
        limit: u32,
        filter: Option<String>,
    ) -> Result<Response, Failure> {
        let limit = limit.clamp(1, MAX_BROWSE_RECORDS) as usize;
        let needle = filter
            .map(|filter| filter.trim().to_lowercase())
            .filter(|filter| !filter.is_empty());
        let mut client = self.client();
        let partitions = match partition {
            Some(partition) => vec![partition],
            None => {
                let metadata = client.metadata().await.map_err(client_failure)?;
                metadata
                    .topics
                    .iter()
                    .find(|candidate| candidate.name == topic)
                    .map(|info| {
                        info.partitions
                            .iter()
                            .map(|partition| partition.partition)
                            .collect()
                    })
                    .ok_or_else(|| Failure {
                        kafka_error: Some(ErrorCode::UnknownTopicOrPartition.name().to_string()),
                        message: format!("topic {topic} does not exist"),
                        hint: hint(ErrorCode::UnknownTopicOrPartition).map(str::to_string),
                    })?
            }
        };
        let starts = Self::starts(&mut client, topic, &partitions, &start).await?;
        let mut messages = Vec::new();
        for (partition, (from, end)) in starts {
            let mut offset = from;
            let mut found = 0;
            while offset < end && found < limit {
                let fetched = client
                    .fetch(topic, partition, offset, FETCH_BYTES, Duration::ZERO)
                    .await
                    .map_err(client_failure)?;
                if fetched.records.is_empty() {
                    if fetched.next_offset <= offset {
                        break;
                    }
                    offset = fetched.next_offset;
                    continue;
                }
                offset = fetched.next_offset.max(offset + 1);
                for record in fetched.records {
                    if record.offset >= end || found >= limit {
                        break;
                    }
                    let message = message_view(&record);
                    if needle
                        .as_deref()
                        .is_none_or(|needle| matches(&message, needle))
                    {
                        messages.push(message);
                        found += 1;
                    }
                }
            }
        }
        messages.sort_by_key(|message| (message.timestamp_ms, message.partition, message.offset));
        if messages.len() > limit {
            // Of several partitions, keep the newest for "end", else the oldest.
            if matches!(start, StartAt::End { .. }) {
                messages.drain(..messages.len() - limit);
            } else {
                messages.truncate(limit);
            }
        }
        Ok(Response::Messages(messages))
    }

    async fn replay(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
        to_offset: i64,
        target: &str,
    ) -> Result<Response, Failure> {
        if to_offset <= from_offset {
            return Err(invalid(format!(
                "nothing to copy: the range {from_offset}..{to_offset} is empty"
            )));
        }
        if target == topic {
            return Err(invalid("replaying a topic into itself would never end"));
        }
        let mut client = self.client();
        let metadata = client.metadata().await.map_err(client_failure)?;
        let target_partitions = metadata
            .topics
            .iter()
            .find(|candidate| candidate.name == target)
            .map(|info| info.partitions.len() as i32);
        if target_partitions.is_none() {
            // A new topic like the source: as many partitions, replicas as
            // the cluster allows.
            let source = metadata
                .topics
                .iter()
                .find(|candidate| candidate.name == topic);
            let partitions = source.map_or(1, |source| source.partitions.len() as i32);
            let replication_factor = metadata.brokers.len().clamp(1, 3) as i16;
            let created = client
                .create_topics(&[NewTopic {
                    name: target.to_string(),
                    partitions,
                    replication_factor,
                    configs: BTreeMap::new(),
                }])
                .await
                .map_err(client_failure)?;
            if let Some((_, Err(failure))) = created.into_iter().next()
                && failure.code != ErrorCode::TopicAlreadyExists
            {
                return Err(kafka_failure(&format!("creating {target}"), failure));
            }
        }
        // The same partition when the target has it; else keys decide.
        let source_partitions = metadata
            .topics
            .iter()
            .find(|candidate| candidate.name == topic)
            .map_or(1, |source| source.partitions.len() as i32);
        let target_partition =
            (partition < target_partitions.unwrap_or(source_partitions)).then_some(partition);
        let operation = format!("replay {topic}-{partition} → {target}");
        let total = (to_offset - from_offset) as u64;
        let mut offset = from_offset;
        let mut copied = 0u64;
        while offset < to_offset {
            let fetched = client
                .fetch(topic, partition, offset, FETCH_BYTES, Duration::ZERO)
                .await
                .map_err(client_failure)?;
            if fetched.records.is_empty() {
                if fetched.next_offset <= offset || offset >= fetched.high_watermark {
                    break;
                }
                offset = fetched.next_offset;
                continue;
            }
            offset = fetched.next_offset.max(offset + 1);
            let records: Vec<NewRecord> = fetched
                .records
                .into_iter()
                .filter(|record| record.offset < to_offset)
                .map(|record| NewRecord {
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                    timestamp_ms: Some(record.timestamp_ms),
                })
                .collect();
            for chunk in records.chunks(REPLAY_BATCH) {
                client
                    .produce(target, target_partition, chunk.to_vec(), -1)
                    .await
                    .map_err(client_failure)?;
                copied += chunk.len() as u64;
            }
            self.publish(Update::Progress(Progress {
                operation: operation.clone(),
                done: copied,
                total: Some(total),
                finished: false,
                message: format!(
                    "{copied} of up to {total} {} copied",
                    plural_records(copied)
                ),
            }));
        }
        self.publish(Update::Progress(Progress {
            operation,
            done: copied,
            total: Some(total),
            finished: true,
            message: format!("{copied} {} copied to {target}", plural_records(copied)),
        }));
        Ok(Response::Replayed { copied })
    }

    async fn group(&self, group_id: &str) -> Result<Response, Failure> {
        let mut client = self.client();
        let description = client
            .describe_groups(&[group_id.to_string()])
            .await
            .map_err(client_failure)?
            .into_iter()
            .next()
            .ok_or_else(|| invalid(format!("group {group_id} was not described")))?;
        let committed = client
            .group_offsets(group_id)
            .await
            .map_err(client_failure)?;
        let mut assigned: BTreeMap<(String, i32), String> = BTreeMap::new();
        for member in &description.members {
            for (topic, partitions) in &member.assignment {
                for partition in partitions {
                    assigned.insert((topic.clone(), *partition), member.member_id.clone());
                }
            }
        }
        let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
        keys.extend(assigned.keys().cloned());
        keys.sort();
        keys.dedup();
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &keys {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        let mut ends: HashMap<(String, i32), i64> = HashMap::new();
        for (topic, partitions) in &by_topic {
            if let Ok(listed) = client
                .list_offsets(topic, partitions, OffsetSpec::Latest)
                .await
            {
                for (partition, result) in listed {
                    if let Some(offset) = result.ok().and_then(|listed| listed.offset) {
                        ends.insert((topic.clone(), partition), offset);
                    }
                }
            }
        }
        let partitions = keys
            .into_iter()
            .map(|key| {
                let committed = committed.get(&key).copied();
                let end_offset = ends.get(&key).copied();
                PartitionLag {
                    lag: committed
                        .zip(end_offset)
                        .map(|(committed, end)| (end - committed).max(0)),
                    member_id: assigned.get(&key).cloned(),
                    topic: key.0,
                    partition: key.1,
                    committed,
                    end_offset,
                }
            })
            .collect();
        Ok(Response::Group(GroupDetail {
            group_id: description.group_id,
            state: description.state,
            protocol: description.protocol,
            members: description
                .members
                .into_iter()
                .map(|member| MemberView {
                    member_id: member.member_id,
                    client_id: member.client_id,
                    host: member.client_host,
                    assignment: member
                        .assignment
                        .into_iter()
                        .map(|(topic, partitions)| TopicPartitions { topic, partitions })
                        .collect(),
                })
                .collect(),
            partitions,
        }))
    }

    async fn reset_offsets(
        &self,
        group_id: &str,
        topic: &str,
        to: ResetTo,
    ) -> Result<Response, Failure> {
        let mut client = self.client();
        let metadata = client.metadata().await.map_err(client_failure)?;
        let partitions: Vec<i32> = metadata
            .topics
            .iter()
            .find(|candidate| candidate.name == topic)
            .map(|info| {
                info.partitions
                    .iter()
                    .map(|partition| partition.partition)
                    .collect()
            })
            .ok_or_else(|| invalid(format!("topic {topic} does not exist")))?;
        let spec = match to {
            ResetTo::Earliest => Some(OffsetSpec::Earliest),
            ResetTo::Latest => Some(OffsetSpec::Latest),
            ResetTo::Timestamp { timestamp_ms } => Some(OffsetSpec::Timestamp(timestamp_ms)),
            ResetTo::Offset { .. } => None,
        };
        let mut offsets = BTreeMap::new();
        match (spec, to) {
            (Some(spec), _) => {
                let listed = client
                    .list_offsets(topic, &partitions, spec)
                    .await
                    .map_err(client_failure)?;
                let latest = if matches!(spec, OffsetSpec::Timestamp(_)) {
                    Some(
                        client
                            .list_offsets(topic, &partitions, OffsetSpec::Latest)
                            .await
                            .map_err(client_failure)?,
                    )
                } else {
                    None
                };
                for partition in &partitions {
                    let found = listed
                        .get(partition)
                        .and_then(|result| result.as_ref().ok())
                        .and_then(|listed| listed.offset);
                    // No record that recent: the end, as Kafka's tools do.
                    let offset =
                        found.or_else(|| latest.as_ref()?.get(partition)?.as_ref().ok()?.offset);
                    if let Some(offset) = offset {
                        offsets.insert((topic.to_string(), *partition), offset);
                    }
                }
            }
            (None, ResetTo::Offset { offset }) => {
                for partition in &partitions {
                    offsets.insert((topic.to_string(), *partition), offset);
                }
            }
            (None, _) => {}
        }
        client
            .commit_group_offsets(group_id, &offsets)
            .await
            .map_err(client_failure)?;
        Ok(done(format!(
            "Offsets of group {group_id} on {topic} reset ({} partitions)",
            offsets.len()
        )))
    }
}

fn plural_records(count: u64) -> &'static str {
    if count == 1 { "record" } else { "records" }
}

/// Requests that change the cluster (refused on a read-only session).
fn changes_cluster(request: &Request) -> bool {
    matches!(
        request,
        Request::NodeAction { .. }
            | Request::CreateTopic { .. }
            | Request::DeleteTopic { .. }
            | Request::AlterTopicConfigs { .. }
            | Request::Produce { .. }
            | Request::Replay { .. }
            | Request::ResetOffsets { .. }
            | Request::DemoStart { .. }
            | Request::DemoUpdate { .. }
            | Request::ElectPreferredLeaders { .. }
            | Request::Reassign { .. }
            | Request::CancelReassignment { .. }
            | Request::AddNode
            | Request::RemoveNode { .. }
            | Request::SlowNode { .. }
            | Request::IsolateNode { .. }
            | Request::HealNode { .. }
    )
}

fn message_view(record: &ConsumedRecord) -> MessageView {
    MessageView {
        partition: record.partition,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record.key.as_deref().map(payload),
        value: record.value.as_deref().map(payload),
        headers: record
            .headers
            .iter()
            .map(|(key, value)| HeaderView {
                key: key.clone(),
                value: value.as_deref().map(payload),
            })
            .collect(),
    }
}

fn matches(message: &MessageView, needle: &str) -> bool {
    message
        .key
        .as_ref()
        .is_some_and(|key| contains(key, needle))
        || message
            .value
            .as_ref()
            .is_some_and(|value| contains(value, needle))
        || message.headers.iter().any(|header| {
            header.key.to_lowercase().contains(needle)
                || header
                    .value
                    .as_ref()
                    .is_some_and(|value| contains(value, needle))
        })
}
