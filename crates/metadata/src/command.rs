//! The commands the metadata log holds and how each one changes the image.
//!
//! [`apply`] is pure: the same image, index, time and command give the same
//! result on every node. Time comes from the entry (stamped by the proposer),
//! never from the clock at apply time. The rules follow Kafka's KRaft
//! controller: partition leaders come from the ISR, an ISR never becomes
//! empty, and every change bumps the partition epoch.

use std::collections::BTreeMap;

use eddy_protocol::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::image::{
    BrokerRegistration, ClusterEvent, MetadataImage, NO_LEADER, PartitionState, TopicImage,
    UNCLEAN_LEADER_ELECTION_CONFIG,
};

/// A change to the cluster metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Sets the cluster id; a no-op once it is set.
    InitCluster {
        cluster_id: String,
    },
    /// Registers (or re-registers after a restart) a broker. It starts fenced.
    RegisterBroker {
        id: i32,
        host: String,
        port: u16,
        controller_address: String,
        incarnation: u64,
    },
    FenceBroker {
        id: i32,
        reason: String,
    },
    UnfenceBroker {
        id: i32,
    },
    ControlledShutdown {
        id: i32,
    },
    CreateTopic {
        name: String,
        id: u128,
        partitions: i32,
        replication_factor: i16,
        /// Replicas per partition; when present it decides the partition
        /// count and the replication factor.
        assignments: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        /// The new total number of partitions.
        count: i32,
        /// Replicas for the new partitions only.
        assignments: Option<Vec<Vec<i32>>>,
    },
    AlterTopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        /// AlterConfigs semantics: `set` becomes the whole override map.
        replace_all: bool,
    },
    AllocateProducerIds {
        broker_id: i32,
        count: i64,
    },
    /// Sets (and deletes) dynamic broker configs, for one node or (`None`)
    /// the cluster-wide default. The values are checked by the proposer.
    AlterBrokerConfigs {
        broker: Option<i32>,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// Elects leaders: the preferred replica (the first live in-sync one in
    /// replica order), or with `unclean` any live replica when no ISR member
    /// is. `None` means every partition; `automatic` marks the controller's
    /// own rebalancing (for the events' wording).
    ElectLeaders {
        partitions: Option<Vec<(String, i32)>>,
        unclean: bool,
        automatic: bool,
    },
    /// Starts (`Some(target replicas)`) or cancels (`None`) reassignments.
    AlterReassignments {
        changes: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// Forgets a node that is gone for good; it must host no replicas.
    UnregisterBroker {
        id: i32,
    },
    /// Sent by a partition leader to change the ISR.
    AlterPartition {
        topic: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
}

/// What a successful command produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandOutput {
    Done,
    TopicCreated {
        id: u128,
        partitions: Vec<PartitionState>,
    },
    TopicDeleted {
        id: u128,
    },
    /// The block `[first, first + count)`.
    ProducerIds {
        first: i64,
        count: i64,
    },
    Partition(PartitionState),
    /// Per partition of an ElectLeaders or AlterReassignments command: the
    /// reason it was refused, if it was.
    PerPartition(Vec<(String, i32, Option<CommandError>)>),
}

/// Why a command was refused: Kafka's error code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CommandError {
    #[serde(with = "error_code_as_i16")]
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub type CommandResult = Result<CommandOutput, CommandError>;

mod error_code_as_i16 {
    use eddy_protocol::ErrorCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(code: &ErrorCode, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i16(code.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
        let code = i16::deserialize(deserializer)?;
        Ok(ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError))
    }
}

/// Applies `command`, the entry at log `index` proposed at `time_ms`.
/// `unclean_default` is the broker default of
/// `unclean.leader.election.enable`, used when the topic does not set it.
pub fn apply(
    image: &mut MetadataImage,
    index: u64,
    time_ms: i64,
    command: &Command,
    unclean_default: bool,
) -> CommandResult {
    let mut applier = Applier {
        image,
        index,
        time_ms,
        unclean_default,
    };
    let result = applier.apply(command);
    image_invariants(applier.image);
    result
}

/// Every live partition's leader is in its ISR and no ISR is empty.
fn image_invariants(image: &MetadataImage) {
    for topic in image.topics.values() {
        for partition in &topic.partitions {
            debug_assert!(!partition.isr.is_empty(), "empty ISR in {}", topic.name);
            debug_assert!(
                partition.is_offline() || partition.isr.contains(&partition.leader),
                "leader outside the ISR in {}",
                topic.name
            );
        }
    }
}

struct Applier<'a> {
    image: &'a mut MetadataImage,
    index: u64,
    time_ms: i64,
    unclean_default: bool,
}

/// Who is being taken out of partition leadership, and why.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Departure {
    Fenced,
    ControlledShutdown,
}

impl Applier<'_> {
    fn apply(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::InitCluster { cluster_id } => self.init_cluster(cluster_id),
            Command::RegisterBroker {
                id,
                host,
                port,
                controller_address,
                incarnation,
            } => self.register_broker(BrokerRegistration {
                id: *id,
                host: host.clone(),
                port: *port,
                controller_address: controller_address.clone(),
                fenced: true,
                in_controlled_shutdown: false,
                incarnation: *incarnation,
            }),
            Command::FenceBroker { id, reason } => self.fence_broker(*id, reason),
            Command::UnfenceBroker { id } => self.unfence_broker(*id),
            Command::ControlledShutdown { id } => self.controlled_shutdown(*id),
            Command::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                assignments,
                configs,
            } => self.create_topic(
                name,
                *id,
                *partitions,
                *replication_factor,
                assignments.as_deref(),
                configs,
            ),
            Command::DeleteTopic { name } => self.delete_topic(name),
            Command::CreatePartitions {
                name,
                count,
                assignments,
            } => self.create_partitions(name, *count, assignments.as_deref()),
            Command::AlterTopicConfigs {
                name,
                set,
                delete,
                replace_all,
            } => self.alter_topic_configs(name, set, delete, *replace_all),
            Command::AllocateProducerIds { broker_id, count } => {
                self.allocate_producer_ids(*broker_id, *count)
            }
            Command::AlterBrokerConfigs {
                broker,
                set,
                delete,
            } => self.alter_broker_configs(*broker, set, delete),
            Command::ElectLeaders {
                partitions,
                unclean,
                automatic,
            } => Ok(self.elect_leaders(partitions.as_deref(), *unclean, *automatic)),
            Command::AlterReassignments { changes } => Ok(self.alter_reassignments(changes)),
            Command::UnregisterBroker { id } => self.unregister_broker(*id),
            Command::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.alter_partition(
                topic,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
        }
    }

    fn event(
        &mut self,
        kind: &str,
        text: String,
        topic: Option<&str>,
        partition: Option<i32>,
        node: Option<i32>,
    ) {
        self.image.push_event(ClusterEvent {
            index: self.index,
            time_ms: self.time_ms,
            kind: kind.to_string(),
            text,
            topic: topic.map(str::to_string),
            partition,
            node,
        });
    }

    fn init_cluster(&mut self, cluster_id: &str) -> CommandResult {
        if self.image.cluster_id.is_empty() && !cluster_id.is_empty() {
            self.image.cluster_id = cluster_id.to_string();
            self.event(
                "cluster_initialized",
                format!("cluster {cluster_id} created"),
                None,
                None,
                None,
            );
        }
        Ok(CommandOutput::Done)
    }

    fn register_broker(&mut self, registration: BrokerRegistration) -> CommandResult {
        let id = registration.id;
        let previous = self.image.brokers.get(&id).cloned();
        if let Some(previous) = &previous
            && previous.incarnation == registration.incarnation
        {
            // The same process again (e.g. a new controller re-proposing):
            // refresh the endpoints, keep the state.
            let broker = self.image.brokers.entry(id).or_insert(registration.clone());
            broker.host = registration.host;
            broker.port = registration.port;
            broker.controller_address = registration.controller_address;
            return Ok(CommandOutput::Done);
        }
        if previous.as_ref().is_some_and(BrokerRegistration::is_live) {
            // A restarted process may have lost data it had acknowledged:
            // take it out of leadership and ISRs as if it had been fenced.
            self.fence_broker(id, &format!("node {id} restarted"))?;
        }
        let text = format!(
            "node {id} registered at {}:{} (controller address {})",
            registration.host, registration.port, registration.controller_address
        );
        self.image.brokers.insert(id, registration);
        self.image.unregistered_brokers.remove(&id);
        self.event("broker_registered", text, None, None, Some(id));
        Ok(CommandOutput::Done)
    }

    fn known_broker(&self, id: i32) -> Result<&BrokerRegistration, CommandError> {
        self.image.brokers.get(&id).ok_or_else(|| {
            CommandError::new(
                ErrorCode::BrokerNotAvailable,
                format!("node {id} is not registered"),
            )
        })
    }

    fn fence_broker(&mut self, id: i32, reason: &str) -> CommandResult {
        if !self.known_broker(id)?.is_live() {
            return Ok(CommandOutput::Done);
        }
        if let Some(broker) = self.image.brokers.get_mut(&id) {
            broker.fenced = true;
        }
        self.event("broker_fenced", reason.to_string(), None, None, Some(id));
        self.move_leadership_away(id, Departure::Fenced);
        self.complete_reassignments();
        Ok(CommandOutput::Done)
    }

    fn controlled_shutdown(&mut self, id: i32) -> CommandResult {
        let broker = self.known_broker(id)?;
        if broker.fenced || broker.in_controlled_shutdown {
            return Ok(CommandOutput::Done);
        }
        if let Some(broker) = self.image.brokers.get_mut(&id) {
            broker.in_controlled_shutdown = true;
        }
        self.event(
            "controlled_shutdown",
            format!("node {id} is shutting down; moving its partition leaders away"),
            None,
            None,
            Some(id),
        );
        self.move_leadership_away(id, Departure::ControlledShutdown);
        self.complete_reassignments();
        Ok(CommandOutput::Done)
    }

    /// Whether `id` may lead a partition or stay in an ISR on its own.
    fn is_eligible(&self, id: i32) -> bool {
        self.image
            .brokers
            .get(&id)
            .is_some_and(|broker| broker.is_live() && !broker.in_controlled_shutdown)
    }

    /// The topic's `unclean.leader.election.enable`, else the cluster-wide
    /// dynamic default, else the static broker default. (A per-node dynamic
    /// value is not used here: every node must apply the same result.)
    fn unclean_allowed(&self, topic: &TopicImage) -> bool {
        let cluster_default = self
            .image
            .broker_configs
            .get("")
            .and_then(|configs| configs.get(UNCLEAN_LEADER_ELECTION_CONFIG));
        match topic
            .configs
            .get(UNCLEAN_LEADER_ELECTION_CONFIG)
            .or(cluster_default)
        {
            Some(value) => value.trim().eq_ignore_ascii_case("true"),
            None => self.unclean_default,
        }
    }

    /// Elects new leaders for the partitions `id` leads and removes it from
    /// the ISRs that have other members.
    fn move_leadership_away(&mut self, id: i32, departure: Departure) {
        let names: Vec<String> = self.image.topics.keys().cloned().collect();
        for name in names {
            let Some(topic) = self.image.topics.get(&name) else {
                continue;
            };
            let unclean = self.unclean_allowed(topic);
            let mut partitions = topic.partitions.clone();
            for (index, partition) in partitions.iter_mut().enumerate() {
                if !partition.replicas.contains(&id) {
                    continue;
                }
                let index = index as i32;
                self.remove_replica_from_lead(&name, index, partition, id, departure, unclean);
            }
            if let Some(topic) = self.image.topics.get_mut(&name) {
                topic.partitions = partitions;
            }
        }
    }

    fn remove_replica_from_lead(
        &mut self,
        topic: &str,
        index: i32,
        partition: &mut PartitionState,
        id: i32,
        departure: Departure,
        unclean: bool,
    ) {
        let has_other_isr_members = partition.isr.iter().any(|&member| member != id);
        if partition.leader != id {
            if partition.isr.contains(&id) && has_other_isr_members {
                partition.isr.retain(|&member| member != id);
                partition.partition_epoch += 1;
            }
            return;
        }
        let in_sync = partition.replicas.iter().copied().find(|&replica| {
            replica != id && partition.isr.contains(&replica) && self.is_eligible(replica)
        });
        if let Some(new_leader) = in_sync {
            partition.isr.retain(|&member| member != id);
            self.change_leader(topic, index, partition, new_leader, "it was in sync");
            return;
        }
        if departure == Departure::ControlledShutdown {
            // Nobody else can take over: it keeps leading until it is gone.
            return;
        }
        let out_of_sync = partition
            .replicas
            .iter()
            .copied()
            .find(|&replica| replica != id && self.is_eligible(replica));
        if unclean && let Some(new_leader) = out_of_sync {
            partition.isr = vec![new_leader];
            self.change_leader(
                topic,
                index,
                partition,
                new_leader,
                "it was not in sync (unclean election, records may be lost)",
            );
            return;
        }
        if has_other_isr_members {
            partition.isr.retain(|&member| member != id);
        }
        partition.leader = NO_LEADER;
        partition.leader_epoch += 1;
        partition.partition_epoch += 1;
        let isr = partition.isr.clone();
        self.event(
            "partition_offline",
            format!("{topic}-{index}: offline; no in-sync replica is available (ISR {isr:?})"),
            Some(topic),
            Some(index),
            Some(id),
        );
    }

    fn change_leader(
        &mut self,
        topic: &str,
        index: i32,
        partition: &mut PartitionState,
        new_leader: i32,
        why: &str,
    ) {
        partition.partition_epoch += 1;
        self.set_leader(topic, index, partition, new_leader, why);
    }

    /// Makes `new_leader` lead with a new leader epoch; the caller bumps the
    /// partition epoch (once per change).
    fn set_leader(
        &mut self,
        topic: &str,
        index: i32,
        partition: &mut PartitionState,
        new_leader: i32,
        why: &str,
    ) {
        partition.leader = new_leader;
        partition.leader_epoch += 1;
        let epoch = partition.leader_epoch;
        self.event(
            "leader_elected",
            format!("{topic}-{index}: node {new_leader} is leader (epoch {epoch}), {why}"),
            Some(topic),
            Some(index),
            Some(new_leader),
        );
    }

    fn unfence_broker(&mut self, id: i32) -> CommandResult {
        let broker = self.known_broker(id)?;
        if broker.is_live() && !broker.in_controlled_shutdown {
            return Ok(CommandOutput::Done);
        }
        if let Some(broker) = self.image.brokers.get_mut(&id) {
            broker.fenced = false;
            broker.in_controlled_shutdown = false;
        }
        self.event(
            "broker_unfenced",
            format!("node {id} is heartbeating and may lead partitions"),
            None,
            None,
            Some(id),
        );
        let names: Vec<String> = self.image.topics.keys().cloned().collect();
        for name in names {
            let Some(topic) = self.image.topics.get(&name) else {
                continue;
            };
            let unclean = self.unclean_allowed(topic);
            let mut partitions = topic.partitions.clone();
            for (index, partition) in partitions.iter_mut().enumerate() {
                if !partition.is_offline() {
                    continue;
                }
                let index = index as i32;
                if partition.isr.contains(&id) {
                    self.change_leader(&name, index, partition, id, "it was in sync");
                } else if unclean && partition.replicas.contains(&id) {
                    partition.isr = vec![id];
                    self.change_leader(
                        &name,
                        index,
                        partition,
                        id,
                        "it was not in sync (unclean election, records may be lost)",
                    );
                }
            }
            if let Some(topic) = self.image.topics.get_mut(&name) {
                topic.partitions = partitions;
            }
        }
        self.complete_reassignments();
        Ok(CommandOutput::Done)
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: u128,
        partitions: i32,
        replication_factor: i16,
        assignments: Option<&[Vec<i32>]>,
        configs: &BTreeMap<String, String>,
    ) -> CommandResult {
        if self.image.topics.contains_key(name) {
            return Err(CommandError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        let replicas = match assignments {
            Some(assignments) => {
                if assignments.is_empty() {
                    return Err(CommandError::new(
                        ErrorCode::InvalidPartitions,
                        "the replica assignment has no partitions",
                    ));
                }
                self.check_assignments(assignments, None)?;
                assignments.to_vec()
            }
            None => {
                if partitions < 1 {
                    return Err(CommandError::new(
                        ErrorCode::InvalidPartitions,
                        format!("number of partitions must be at least 1, got {partitions}"),
                    ));
                }
                self.place(name, 0, partitions, replication_factor)?
            }
        };
        let states: Vec<PartitionState> = replicas
            .into_iter()
            .map(|replicas| self.new_partition(replicas))
            .collect();
        let count = states.len();
        self.image.topics.insert(
            name.to_string(),
            TopicImage {
                name: name.to_string(),
                id,
                configs: configs.clone(),
                partitions: states.clone(),
            },
        );
        let factor = states.first().map_or(0, |state| state.replicas.len());
        self.event(
            "topic_created",
            format!("topic {name} created with {count} partitions, replication factor {factor}"),
            Some(name),
            None,
            None,
        );
        Ok(CommandOutput::TopicCreated {
            id,
            partitions: states,
        })
    }

    /// ISR = the live replicas; leader = the first of them.
    fn new_partition(&self, replicas: Vec<i32>) -> PartitionState {
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|&replica| self.image.is_live(replica))
            .collect();
        let leader = isr.first().copied().unwrap_or(NO_LEADER);
        PartitionState {
            isr,
            leader,
            replicas,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// Round-robin over the sorted live brokers, starting at an offset
    /// derived from the topic name so that different topics' leaders spread.
    fn place(
        &self,
        name: &str,
        first_partition: i32,
        count: i32,
        replication_factor: i16,
    ) -> Result<Vec<Vec<i32>>, CommandError> {
        let live: Vec<i32> = self.image.live_brokers().map(|broker| broker.id).collect();
        if replication_factor < 1 || replication_factor as usize > live.len() {
            return Err(CommandError::new(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "replication factor {replication_factor} cannot be reached: {} broker(s) alive",
                    live.len()
                ),
            ));
        }
        let start = name_hash(name) as usize % live.len();
        let placed = (first_partition..first_partition + count)
            .map(|partition| {
                (0..replication_factor as usize)
                    .map(|replica| live[(start + partition as usize + replica) % live.len()])
                    .collect()
            })
            .collect();
        Ok(placed)
    }

    /// Same size per partition (`factor` when given), distinct registered
    /// brokers, at least one of them alive.
    fn check_assignments(
        &self,
        assignments: &[Vec<i32>],
        factor: Option<usize>,
    ) -> Result<(), CommandError> {
        let invalid = |message: String| {
            Err(CommandError::new(
                ErrorCode::InvalidReplicaAssignment,
                message,
            ))
        };
        let expected = factor.unwrap_or_else(|| assignments.first().map_or(0, Vec::len));
        for (partition, replicas) in assignments.iter().enumerate() {
            if replicas.is_empty() {
                return invalid(format!("partition {partition} has no replicas"));
            }
            if replicas.len() != expected {
                return invalid(format!(
                    "partition {partition} has {} replicas; the others have {expected}",
                    replicas.len()
                ));
            }
            for (position, replica) in replicas.iter().enumerate() {
                if replicas[..position].contains(replica) {
                    return invalid(format!("partition {partition} lists node {replica} twice"));
                }
                if self.image.broker(*replica).is_none() {
                    return invalid(format!(
                        "partition {partition}: node {replica} is not registered"
                    ));
                }
            }
            if !replicas.iter().any(|&replica| self.image.is_live(replica)) {
                return invalid(format!(
                    "all nodes assigned to partition {partition} are fenced"
                ));
            }
        }
        Ok(())
    }

    fn delete_topic(&mut self, name: &str) -> CommandResult {
        let topic = self
            .image
            .topics
            .remove(name)
            .ok_or_else(|| unknown_topic(name))?;
        self.event(
            "topic_deleted",
            format!("topic {name} deleted"),
            Some(name),
            None,
            None,
        );
        Ok(CommandOutput::TopicDeleted { id: topic.id })
    }

    fn create_partitions(
        &mut self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
    ) -> CommandResult {
        let topic = self
            .image
            .topics
            .get(name)
            .ok_or_else(|| unknown_topic(name))?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(CommandError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name} has {current} partitions; the new count must be larger, got {count}"
                ),
            ));
        }
        let factor = topic
            .partitions
            .first()
            .map_or(1, |state| state.replicas.len());
        let added = count - current;
        let replicas = match assignments {
            Some(assignments) => {
                if assignments.len() != added as usize {
                    return Err(CommandError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "{} assignments given for {added} new partitions",
                            assignments.len()
                        ),
                    ));
                }
                self.check_assignments(assignments, Some(factor))?;
                assignments.to_vec()
            }
            None => self.place(name, current, added, factor as i16)?,
        };
        let states: Vec<PartitionState> = replicas
            .into_iter()
            .map(|replicas| self.new_partition(replicas))
            .collect();
        if let Some(topic) = self.image.topics.get_mut(name) {
            topic.partitions.extend(states);
        }
        self.event(
            "partitions_created",
            format!("topic {name} now has {count} partitions (was {current})"),
            Some(name),
            None,
            None,
        );
        Ok(CommandOutput::Done)
    }

    fn alter_topic_configs(
        &mut self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
        replace_all: bool,
    ) -> CommandResult {
        let topic = self
            .image
            .topics
            .get_mut(name)
            .ok_or_else(|| unknown_topic(name))?;
        if replace_all {
            topic.configs = set.clone();
        } else {
            topic
                .configs
                .extend(set.iter().map(|(key, value)| (key.clone(), value.clone())));
            for key in delete {
                topic.configs.remove(key);
            }
        }
        let keys: Vec<&String> = set.keys().chain(delete.iter()).collect();
        let text = format!("topic {name}: configs changed ({keys:?})");
        self.event("topic_configs_altered", text, Some(name), None, None);
        Ok(CommandOutput::Done)
    }

    fn allocate_producer_ids(&mut self, broker_id: i32, count: i64) -> CommandResult {
        let first = self.image.next_producer_id;
        let next = first.checked_add(count).filter(|_| count >= 1);
        let Some(next) = next else {
            return Err(CommandError::new(
                ErrorCode::InvalidRequest,
                format!("node {broker_id} asked for {count} producer ids after {first}"),
            ));
        };
        self.image.next_producer_id = next;
        Ok(CommandOutput::ProducerIds { first, count })
    }

    #[allow(clippy::too_many_arguments)]
    fn alter_partition(
        &mut self,
        topic: &str,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[i32],
    ) -> CommandResult {
        let unknown = || {
            CommandError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{partition} does not exist"),
            )
        };
        let state = self
            .image
            .partition(topic, partition)
            .ok_or_else(unknown)?
            .clone();
        if leader != state.leader {
            return Err(CommandError::new(
                ErrorCode::NotLeaderOrFollower,
                format!(
                    "{topic}-{partition}: node {leader} is not the leader (the leader is {})",
                    state.leader
                ),
            ));
        }
        if leader_epoch != state.leader_epoch {
            return Err(CommandError::new(
                ErrorCode::FencedLeaderEpoch,
                format!(
                    "{topic}-{partition}: leader epoch {leader_epoch} is not the current {}",
                    state.leader_epoch
                ),
            ));
        }
        if partition_epoch != state.partition_epoch {
            return Err(CommandError::new(
                ErrorCode::InvalidUpdateVersion,
                format!(
                    "{topic}-{partition}: partition epoch {partition_epoch} is not the current {}",
                    state.partition_epoch
                ),
            ));
        }
        if !isr.contains(&leader) {
            return Err(CommandError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{topic}-{partition}: the new ISR {isr:?} does not contain the leader {leader}"
                ),
            ));
        }
        for (position, member) in isr.iter().enumerate() {
            if isr[..position].contains(member) {
                return Err(CommandError::new(
                    ErrorCode::InvalidRequest,
                    format!("{topic}-{partition}: the new ISR {isr:?} lists node {member} twice"),
                ));
            }
            let added = !state.isr.contains(member);
            if added && (!state.replicas.contains(member) || !self.is_eligible(*member)) {
                return Err(CommandError::new(
                    ErrorCode::IneligibleReplica,
                    format!(
                        "{topic}-{partition}: node {member} cannot join the ISR (not a live replica)"
                    ),
                ));
            }
        }
        let removed: Vec<i32> = state
            .isr
            .iter()
            .copied()
            .filter(|member| !isr.contains(member))
            .collect();
        let added: Vec<i32> = isr
            .iter()
            .copied()
            .filter(|member| !state.isr.contains(member))
            .collect();
        let mut updated = state;
        updated.isr = isr.to_vec();
        updated.partition_epoch += 1;
        for node in removed {
            let throttle = self.throttle_note(topic, partition, node);
            self.event(
                "isr_shrunk",
                format!(
                    "{topic}-{partition}: node {node} fell out of sync; ISR is now {isr:?}{throttle}"
                ),
                Some(topic),
                Some(partition),
                Some(node),
            );
        }
        for node in added {
            self.event(
                "isr_expanded",
                format!("{topic}-{partition}: node {node} caught up; ISR is now {isr:?}"),
                Some(topic),
                Some(partition),
                Some(node),
            );
        }
        self.complete_reassignment(topic, partition, &mut updated);
        self.store_partition(topic, partition, updated.clone());
        Ok(CommandOutput::Partition(updated))
    }
}

/// Operations: dynamic broker configs, leader elections, reassignments and
/// unregistering nodes.
impl Applier<'_> {
    fn partition_state(&self, topic: &str, index: i32) -> Result<PartitionState, CommandError> {
        self.image.partition(topic, index).cloned().ok_or_else(|| {
            CommandError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("{topic}-{index} does not exist"),
            )
        })
    }

    fn store_partition(&mut self, topic: &str, index: i32, state: PartitionState) {
        if let Some(slot) = self
            .image
            .topics
            .get_mut(topic)
            .and_then(|image| image.partitions.get_mut(index as usize))
        {
            *slot = state;
        }
    }

    fn alter_broker_configs(
        &mut self,
        broker: Option<i32>,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> CommandResult {
        if let Some(id) = broker
            && id < 0
        {
            return Err(CommandError::new(
                ErrorCode::InvalidRequest,
                format!("node id {id} is negative"),
            ));
        }
        let key = broker.map_or_else(String::new, |id| id.to_string());
        let configs = self.image.broker_configs.entry(key.clone()).or_default();
        for (name, value) in set {
            configs.insert(name.clone(), value.clone());
        }
        for name in delete {
            configs.remove(name);
        }
        if configs.is_empty() {
            self.image.broker_configs.remove(&key);
        }
        let mut changes: Vec<String> = set
            .iter()
            .map(|(name, value)| {
                if name.contains("password") || name.contains("secret") {
                    format!("{name} set")
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        changes.extend(
            delete
                .iter()
                .map(|name| format!("{name} back to its default")),
        );
        let scope = match broker {
            None => "cluster-wide broker defaults".to_string(),
            Some(id) => format!("node {id}'s broker configs"),
        };
        let text = format!("{scope} changed: {}", changes.join(", "));
        self.event("broker_configs_altered", text, None, None, broker);
        Ok(CommandOutput::Done)
    }

    fn elect_leaders(
        &mut self,
        partitions: Option<&[(String, i32)]>,
        unclean: bool,
        automatic: bool,
    ) -> CommandOutput {
        let every = partitions.is_none();
        let targets: Vec<(String, i32)> = match partitions {
            Some(partitions) => partitions.to_vec(),
            None => self
                .image
                .topics
                .values()
                .flat_map(|topic| {
                    (0..topic.partitions.len() as i32).map(|index| (topic.name.clone(), index))
                })
                .collect(),
        };
        let mut results = Vec::new();
        for (topic, index) in targets {
            let outcome = self.elect_leader(&topic, index, unclean, automatic);
            // Asked for every partition, Kafka leaves out the ones that
            // already have the leader they should.
            if every
                && outcome
                    .as_ref()
                    .is_err_and(|error| error.code == ErrorCode::ElectionNotNeeded)
            {
                continue;
            }
            results.push((topic, index, outcome.err()));
        }
        CommandOutput::PerPartition(results)
    }

    fn elect_leader(
        &mut self,
        topic: &str,
        index: i32,
        unclean: bool,
        automatic: bool,
    ) -> Result<(), CommandError> {
        let mut partition = self.partition_state(topic, index)?;
        if unclean {
            if !partition.is_offline() {
                return Err(CommandError::new(
                    ErrorCode::ElectionNotNeeded,
                    format!("{topic}-{index}: node {} leads it", partition.leader),
                ));
            }
            let in_sync = partition
                .replicas
                .iter()
                .copied()
                .find(|&replica| partition.isr.contains(&replica) && self.is_eligible(replica));
            let any_live = partition
                .replicas
                .iter()
                .copied()
                .find(|&replica| self.is_eligible(replica));
            if let Some(leader) = in_sync {
                self.change_leader(
                    topic,
                    index,
                    &mut partition,
                    leader,
                    "it was in sync (election requested)",
                );
            } else if let Some(leader) = any_live {
                partition.isr = vec![leader];
                self.change_leader(
                    topic,
                    index,
                    &mut partition,
                    leader,
                    "it was not in sync (unclean election requested, records may be lost)",
                );
            } else {
                return Err(CommandError::new(
                    ErrorCode::EligibleLeadersNotAvailable,
                    format!(
                        "{topic}-{index}: none of its replicas {:?} is alive",
                        partition.replicas
                    ),
                ));
            }
        } else {
            let Some(&preferred) = partition.replicas.first() else {
                return Err(CommandError::new(
                    ErrorCode::PreferredLeaderNotAvailable,
                    format!("{topic}-{index} has no replicas"),
                ));
            };
            if partition.leader == preferred {
                return Err(CommandError::new(
                    ErrorCode::ElectionNotNeeded,
                    format!("{topic}-{index}: node {preferred}, the preferred replica, leads it"),
                ));
            }
            if !partition.isr.contains(&preferred) || !self.is_eligible(preferred) {
                let why = if self.is_eligible(preferred) {
                    "is not in sync"
                } else {
                    "is not alive"
                };
                return Err(CommandError::new(
                    ErrorCode::PreferredLeaderNotAvailable,
                    format!("{topic}-{index}: node {preferred}, the preferred replica, {why}"),
                ));
            }
            partition.leader = preferred;
            partition.leader_epoch += 1;
            partition.partition_epoch += 1;
            let epoch = partition.leader_epoch;
            let how = if automatic {
                "automatic rebalance"
            } else {
                "requested election"
            };
            self.event(
                "preferred_leader_elected",
                format!(
                    "{topic}-{index}: node {preferred} is leader again (epoch {epoch}), it is the preferred replica ({how})"
                ),
                Some(topic),
                Some(index),
                Some(preferred),
            );
        }
        self.store_partition(topic, index, partition);
        Ok(())
    }

    fn alter_reassignments(
        &mut self,
        changes: &[(String, i32, Option<Vec<i32>>)],
    ) -> CommandOutput {
        let results = changes
            .iter()
            .map(|(topic, index, target)| {
                let outcome = match target {
                    Some(target) => self.start_reassignment(topic, *index, target),
                    None => self.cancel_reassignment(topic, *index),
                };
                (topic.clone(), *index, outcome.err())
            })
            .collect();
        CommandOutput::PerPartition(results)
    }

    fn start_reassignment(
        &mut self,
        topic: &str,
        index: i32,
        target: &[i32],
    ) -> Result<(), CommandError> {
        let mut partition = self.partition_state(topic, index)?;
        let invalid = |message: String| {
            Err(CommandError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!("{topic}-{index}: {message}"),
            ))
        };
        if target.is_empty() {
            return invalid("the new replica list is empty".to_string());
        }
        for (position, replica) in target.iter().enumerate() {
            if target[..position].contains(replica) {
                return invalid(format!(
                    "the new replicas {target:?} list node {replica} twice"
                ));
            }
            if self.image.broker(*replica).is_none() {
                return invalid(format!("node {replica} is not registered"));
            }
        }
        // Kafka computes a reassignment from the replicas before any move in
        // flight: replacing a move does not keep the replicas it was adding.
        let original = without(&partition.replicas, &partition.adding_replicas);
        let removing = without(&original, target);
        let adding = without(target, &original);
        // Replicas the move in flight was adding and the new target drops.
        let dropped = without(&partition.adding_replicas, target);
        let replaced = partition
            .is_reassigning()
            .then(|| without(&partition.replicas, &partition.removing_replicas));
        // The original replicas, maybe in a new order: nothing to copy or
        // remove, so the change completes at once.
        let completes_at_once = adding.is_empty() && removing.is_empty();
        if completes_at_once && replaced.is_none() && partition.replicas == target {
            return Ok(());
        }
        // The new replicas first, then those leaving (until they have left).
        let mut replicas = target.to_vec();
        replicas.extend(&removing);
        partition.replicas = replicas;
        partition.adding_replicas = adding.clone();
        partition.removing_replicas = removing.clone();
        partition.partition_epoch += 1;
        if !dropped.is_empty() {
            self.drop_adding_replicas(
                topic,
                index,
                &mut partition,
                &original,
                &dropped,
                "replace the reassignment",
            )?;
        }
        if completes_at_once {
            let order = if original == target {
                String::new()
            } else {
                format!(
                    "replica order is now {target:?}; node {} is the preferred leader",
                    target[0]
                )
            };
            let text = if replaced.is_some() {
                let leader = match partition.leader {
                    NO_LEADER => "no leader".to_string(),
                    leader => format!("leader node {leader}"),
                };
                let left = if dropped.is_empty() {
                    String::new()
                } else {
                    format!(" ({} left)", nodes(&dropped))
                };
                let order = if order.is_empty() {
                    order
                } else {
                    format!("; {order}")
                };
                format!(
                    "{topic}-{index}: reassignment complete; replicas {target:?}, {leader}{left}{order}"
                )
            } else {
                format!("{topic}-{index}: {order}")
            };
            self.event(
                "reassignment_completed",
                text,
                Some(topic),
                Some(index),
                None,
            );
            self.store_partition(topic, index, partition);
            return Ok(());
        }
        let plan = match (adding.is_empty(), removing.is_empty()) {
            (false, false) => format!(
                "{} will copy the log before {} {}",
                nodes(&adding),
                nodes(&removing),
                if removing.len() == 1 {
                    "leaves"
                } else {
                    "leave"
                }
            ),
            (false, true) => format!("{} will copy the log and join the ISR", nodes(&adding)),
            _ => format!(
                "{} will leave once every new replica is in sync",
                nodes(&removing)
            ),
        };
        let replacing = replaced
            .map(|old| {
                let stopped = if dropped.is_empty() {
                    String::new()
                } else {
                    let verb = if dropped.len() == 1 { "stops" } else { "stop" };
                    format!("; {} {verb} copying", nodes(&dropped))
                };
                format!(" (replacing the reassignment to {old:?}{stopped})")
            })
            .unwrap_or_default();
        self.event(
            "reassignment_started",
            format!("{topic}-{index}: reassignment to {target:?} started{replacing}; {plan}"),
            Some(topic),
            Some(index),
            None,
        );
        self.complete_reassignment(topic, index, &mut partition);
        self.store_partition(topic, index, partition);
        Ok(())
    }

    fn cancel_reassignment(&mut self, topic: &str, index: i32) -> Result<(), CommandError> {
        let mut partition = self.partition_state(topic, index)?;
        if !partition.is_reassigning() {
            return Err(CommandError::new(
                ErrorCode::NoReassignmentInProgress,
                format!("{topic}-{index}: no reassignment is in progress"),
            ));
        }
        let target = without(&partition.replicas, &partition.removing_replicas);
        let adding = partition.adding_replicas.clone();
        let original = without(&partition.replicas, &adding);
        partition.replicas = original.clone();
        partition.adding_replicas.clear();
        partition.removing_replicas.clear();
        partition.partition_epoch += 1;
        self.drop_adding_replicas(topic, index, &mut partition, &original, &adding, "cancel")?;
        let stopped = if adding.is_empty() {
            String::new()
        } else {
            format!("; {} stop copying and delete their copies", nodes(&adding))
        };
        self.event(
            "reassignment_cancelled",
            format!(
                "{topic}-{index}: reassignment to {target:?} cancelled; replicas are back to {original:?}{stopped}"
            ),
            Some(topic),
            Some(index),
            None,
        );
        self.store_partition(topic, index, partition);
        Ok(())
    }

    /// Takes `dropped`, replicas a cancelled or replaced reassignment was
    /// adding, out of the ISR of `partition` (whose replicas are already the
    /// new ones, without them). With no replica left in sync, a live one of
    /// the `original` replicas (those before the reassignment) is elected
    /// uncleanly where the topic allows it, else `action` fails; a leader no
    /// longer in sync hands over to the first in-sync replica. The caller
    /// has bumped the partition epoch.
    fn drop_adding_replicas(
        &mut self,
        topic: &str,
        index: i32,
        partition: &mut PartitionState,
        original: &[i32],
        dropped: &[i32],
        action: &str,
    ) -> Result<(), CommandError> {
        let mut isr = without(&partition.isr, dropped);
        let mut unclean = false;
        if isr.is_empty() {
            let allowed = self
                .image
                .topics
                .get(topic)
                .is_some_and(|image| self.unclean_allowed(image));
            let live = original
                .iter()
                .copied()
                .find(|&replica| self.is_eligible(replica));
            match live.filter(|_| allowed) {
                Some(replica) => {
                    isr = vec![replica];
                    unclean = true;
                }
                None => {
                    return Err(CommandError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "{topic}-{index}: cannot {action}: none of the original replicas {original:?} is in sync, and going back would need an unclean leader election"
                        ),
                    ));
                }
            }
        }
        partition.isr = isr.clone();
        let leader = partition.leader;
        if leader == NO_LEADER || !isr.contains(&leader) {
            let next = partition
                .replicas
                .iter()
                .copied()
                .find(|&replica| isr.contains(&replica) && self.is_eligible(replica));
            let past = if action == "cancel" {
                "cancelled"
            } else {
                "replaced"
            };
            match next {
                Some(next) => {
                    let why = if unclean {
                        format!(
                            "it was not in sync (the {past} reassignment left no original replica in sync; records may be lost)"
                        )
                    } else if leader == NO_LEADER {
                        "it was in sync".to_string()
                    } else {
                        format!("it was in sync (the {past} reassignment removed node {leader})")
                    };
                    self.set_leader(topic, index, partition, next, &why);
                }
                None if leader != NO_LEADER => {
                    partition.leader = NO_LEADER;
                    partition.leader_epoch += 1;
                    self.event(
                        "partition_offline",
                        format!(
                            "{topic}-{index}: offline; no in-sync replica is available (ISR {isr:?})"
                        ),
                        Some(topic),
                        Some(index),
                        Some(leader),
                    );
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Completes the reassignment of `partition` once every target replica
    /// is in the ISR: the replicas being removed leave, and if the leader
    /// was one of them the first live in-sync target replica takes over.
    /// Returns whether it completed.
    fn complete_reassignment(
        &mut self,
        topic: &str,
        index: i32,
        partition: &mut PartitionState,
    ) -> bool {
        if !partition.is_reassigning() {
            return false;
        }
        let target = without(&partition.replicas, &partition.removing_replicas);
        if target.is_empty() || !target.iter().all(|replica| partition.isr.contains(replica)) {
            return false;
        }
        let isr: Vec<i32> = partition
            .isr
            .iter()
            .copied()
            .filter(|member| target.contains(member))
            .collect();
        let leader = partition.leader;
        let new_leader = if target.contains(&leader) || leader == NO_LEADER {
            None
        } else {
            let next = target
                .iter()
                .copied()
                .find(|&replica| isr.contains(&replica) && self.is_eligible(replica));
            match next {
                // Wait until a target replica can lead.
                None => return false,
                next => next,
            }
        };
        let removed = partition.removing_replicas.clone();
        partition.replicas = target.clone();
        partition.isr = isr;
        partition.adding_replicas.clear();
        partition.removing_replicas.clear();
        partition.partition_epoch += 1;
        if let Some(next) = new_leader {
            let why = format!("it was in sync (the reassignment removed node {leader})");
            self.set_leader(topic, index, partition, next, &why);
        }
        let leader = partition.leader;
        let leader = if leader == NO_LEADER {
            "no leader".to_string()
        } else {
            format!("leader node {leader}")
        };
        let left = if removed.is_empty() {
            String::new()
        } else {
            format!(" ({} left)", nodes(&removed))
        };
        self.event(
            "reassignment_completed",
            format!("{topic}-{index}: reassignment complete; replicas {target:?}, {leader}{left}"),
            Some(topic),
            Some(index),
            None,
        );
        true
    }

    /// Completes every reassignment that can complete (after the set of
    /// live brokers changed).
    fn complete_reassignments(&mut self) {
        let reassigning: Vec<(String, i32)> = self
            .image
            .topics
            .values()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, partition)| partition.is_reassigning())
                    .map(|(index, _)| (topic.name.clone(), index as i32))
            })
            .collect();
        for (topic, index) in reassigning {
            let Ok(mut partition) = self.partition_state(&topic, index) else {
                continue;
            };
            if self.complete_reassignment(&topic, index, &mut partition) {
                self.store_partition(&topic, index, partition);
            }
        }
    }

    fn unregister_broker(&mut self, id: i32) -> CommandResult {
        if !self.image.brokers.contains_key(&id) {
            return Err(CommandError::new(
                ErrorCode::BrokerIdNotRegistered,
                format!("node {id} is not registered"),
            ));
        }
        let hosted: Vec<String> = self
            .image
            .topics
            .values()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, partition)| partition.replicas.contains(&id))
                    .map(|(index, _)| format!("{}-{index}", topic.name))
            })
            .collect();
        if !hosted.is_empty() {
            const LISTED: usize = 5;
            let mut list = hosted
                .iter()
                .take(LISTED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if hosted.len() > LISTED {
                list.push_str(&format!(" and {} more", hosted.len() - LISTED));
            }
            return Err(CommandError::new(
                ErrorCode::InvalidRequest,
                format!("node {id} still hosts replicas of {list}; reassign them first"),
            ));
        }
        self.fence_broker(id, &format!("node {id} is being unregistered; fenced"))?;
        self.image.brokers.remove(&id);
        self.image.unregistered_brokers.insert(id);
        self.event(
            "broker_unregistered",
            format!("node {id} unregistered; it is no longer part of the cluster"),
            None,
            None,
            Some(id),
        );
        Ok(CommandOutput::Done)
    }

    /// "; its replication is throttled to R B/s" when `node`'s follower
    /// fetches for `topic`-`partition` are throttled.
    fn throttle_note(&self, topic: &str, partition: i32, node: i32) -> String {
        let listed = self
            .image
            .topics
            .get(topic)
            .and_then(|image| image.configs.get(FOLLOWER_THROTTLED_REPLICAS_CONFIG))
            .is_some_and(|list| throttled_replica(list, partition, node));
        if !listed {
            return String::new();
        }
        let rate = [node.to_string(), String::new()]
            .iter()
            .find_map(|key| {
                self.image
                    .broker_configs
                    .get(key)
                    .and_then(|configs| configs.get(FOLLOWER_THROTTLED_RATE_CONFIG))
            })
            .and_then(|rate| rate.trim().parse::<i64>().ok())
            .filter(|rate| (0..UNTHROTTLED).contains(rate));
        match rate {
            Some(rate) => format!("; its replication is throttled to {rate} B/s"),
            None => String::new(),
        }
    }
}

fn unknown_topic(name: &str) -> CommandError {
    CommandError::new(
        ErrorCode::UnknownTopicOrPartition,
        format!("topic '{name}' does not exist"),
    )
}

/// FNV-1a: stable across processes and versions, unlike std's hasher.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Kafka's `Long.MAX_VALUE` throttle rate: no throttle.
const UNTHROTTLED: i64 = i64::MAX;
/// The broker config that throttles a follower's replication fetches.
pub const FOLLOWER_THROTTLED_RATE_CONFIG: &str = "follower.replication.throttled.rate";
/// The topic config listing the throttled follower replicas.
pub const FOLLOWER_THROTTLED_REPLICAS_CONFIG: &str = "follower.replication.throttled.replicas";

/// Whether a `*.replication.throttled.replicas` value lists `partition` on
/// `node` (`PARTITION:NODE` entries, or `*` for every replica).
fn throttled_replica(list: &str, partition: i32, node: i32) -> bool {
    list.split(',').map(str::trim).any(|entry| {
        entry == "*"
            || entry.split_once(':').is_some_and(|(p, n)| {
                p.trim().parse() == Ok(partition) && n.trim().parse() == Ok(node)
            })
    })
}

/// "node 3", "nodes 3 and 4", "nodes 3, 4 and 5".
fn nodes(ids: &[i32]) -> String {
    match ids {
        [] => "no nodes".to_string(),
        [one] => format!("node {one}"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(i32::to_string).collect();
            format!("nodes {} and {last}", init.join(", "))
        }
    }
}

fn without(list: &[i32], removed: &[i32]) -> Vec<i32> {
    list.iter()
        .copied()
        .filter(|id| !removed.contains(id))
        .collect()
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
