//! Cluster operations and fault injection: preferred-leader elections and
//! partition reassignments (any Kafka cluster, through the Admin API),
//! growing and shrinking the local cluster, and slowing, isolating and
//! healing its nodes (through the supervisor).
//!
//! Each operation adds a timeline event in plain words saying what was done
//! and what to expect; the controller's own events then say what happened.

use eddy_client::{ElectionType, ErrorCode, KafkaFailure, PartitionReassignment};

use crate::actions::{client_failure, done, invalid, kafka_failure};
use crate::diff::Observed;
use crate::model::{Failure, Progress, Response, Update};
use crate::session::{Console, now_ms};

/// Where the timeline says an event came from: the user's own action.
const SOURCE: &str = "you";

fn nodes_list(nodes: &[i32]) -> String {
    let names: Vec<String> = nodes.iter().map(i32::to_string).collect();
    match names.len() {
        0 => "no node".into(),
        1 => format!("node {}", names[0]),
        _ => format!(
            "nodes {} and {}",
            names[..names.len() - 1].join(", "),
            names[names.len() - 1]
        ),
    }
}

/// A rate as people say it: 10 kB/s, 1.5 MB/s.
pub(crate) fn rate_text(bytes_per_second: u64) -> String {
    const UNITS: [&str; 4] = ["B/s", "kB/s", "MB/s", "GB/s"];
    let mut value = bytes_per_second as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn local_only(what: &str) -> Failure {
    Failure {
        kafka_error: None,
        message: format!("{what} needs the local cluster's supervisor"),
        hint: Some("Only the cluster Eddy runs on this machine can do this.".into()),
    }
}

/// Holds the console's one removal slot; frees it when dropped (also when
/// the removal's future is dropped halfway).
struct RemovalSlot<'a>(&'a std::sync::Mutex<Option<u16>>);

impl RemovalSlot<'_> {
    /// Takes the slot for node `node`, unless another removal holds it.
    fn claim(slot: &std::sync::Mutex<Option<u16>>, node: u16) -> Result<RemovalSlot<'_>, Failure> {
        let mut current = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(other) = *current {
            return Err(invalid(format!(
                "node {other} is being removed; wait for it to finish"
            )));
        }
        *current = Some(node);
        Ok(RemovalSlot(slot))
    }
}

impl Drop for RemovalSlot<'_> {
    fn drop(&mut self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

fn node_id(node_id: i32) -> Result<u16, Failure> {
    u16::try_from(node_id).map_err(|_| invalid(format!("no node {node_id}")))
}

impl Console {
    /// Adds one timeline event for something the user did.
    fn explain(
        &self,
        kind: &'static str,
        node: Option<i32>,
        partition: Option<(&str, i32)>,
        text: String,
    ) {
        self.record_events(vec![(
            now_ms(),
            Observed {
                kind,
                text,
                topic: partition.map(|(topic, _)| topic.to_string()),
                partition: partition.map(|(_, partition)| partition),
                node,
            },
            SOURCE,
        )]);
    }

    fn progress(&self, operation: &str, finished: bool, message: String) {
        self.publish(Update::Progress(Progress {
            operation: operation.to_string(),
            done: u64::from(finished),
            total: finished.then_some(1),
            finished,
            message,
        }));
    }

    pub(crate) async fn elect_preferred_leaders(
        &self,
        topic: Option<String>,
        partition: Option<i32>,
    ) -> Result<Response, Failure> {
        let mut client = self.client();
        let partitions = match (&topic, partition) {
            (None, _) => None,
            (Some(topic), Some(partition)) => Some(vec![(topic.clone(), partition)]),
            (Some(topic), None) => {
                let metadata = client.metadata().await.map_err(client_failure)?;
                let info = metadata
                    .topics
                    .iter()
                    .find(|candidate| &candidate.name == topic)
                    .ok_or_else(|| invalid(format!("topic {topic} does not exist")))?;
                Some(
                    info.partitions
                        .iter()
                        .map(|partition| (topic.clone(), partition.partition))
                        .collect(),
                )
            }
        };
        let scope = match (&topic, partition) {
            (None, _) => "every partition".to_string(),
            (Some(topic), Some(partition)) => format!("{topic}-{partition}"),
            (Some(topic), None) => format!("every partition of {topic}"),
        };
        let outcomes = client
            .elect_leaders(ElectionType::Preferred, partitions)
            .await
            .map_err(client_failure)?;
        let mut elected: Vec<String> = Vec::new();
        let mut not_needed = 0usize;
        let mut failed: Vec<((String, i32), KafkaFailure)> = Vec::new();
        for ((topic, partition), outcome) in outcomes {
            match outcome {
                Ok(()) => elected.push(format!("{topic}-{partition}")),
                Err(failure) if failure.code == ErrorCode::ElectionNotNeeded => not_needed += 1,
                Err(failure) => failed.push(((topic, partition), failure)),
            }
        }
        let mut text = format!(
            "You asked for preferred-leader elections on {scope}: the controller makes each partition's \
             first replica its leader again when that replica is alive and in sync. "
        );
        text.push_str(&match elected.len() {
            0 => "No leader changed".to_string(),
            1 => format!("{} changed leader", elected[0]),
            count if count <= 5 => format!("{} changed leader", elected.join(", ")),
            count => format!("{count} partitions changed leader"),
        });
        if not_needed > 0 {
            text.push_str(&format!(
                "; {not_needed} already had their preferred leader"
            ));
        }
        if !failed.is_empty() {
            let reasons: Vec<String> = failed
                .iter()
                .take(3)
                .map(|((topic, partition), failure)| {
                    format!("{topic}-{partition}: {}", failure.code.name())
                })
                .collect();
            text.push_str(&format!(
                "; {} could not change ({}{})",
                failed.len(),
                reasons.join(", "),
                if failed.len() > 3 { ", …" } else { "" }
            ));
        }
        let single = match (&topic, partition) {
            (Some(topic), Some(partition)) => Some((topic.as_str(), partition)),
            _ => None,
        };
        self.explain("preferred_election_requested", None, single, text.clone());
        if elected.is_empty()
            && let Some(((topic, partition), failure)) = failed.into_iter().next()
        {
            return Err(kafka_failure(
                &format!("electing the preferred leader of {topic}-{partition}"),
                failure,
            ));
        }
        Ok(done(text))
    }

    pub(crate) async fn reassign(
        &self,
        topic: &str,
        partition: i32,
        replicas: Option<Vec<i32>>,
    ) -> Result<Response, Failure> {
        if let Some(replicas) = &replicas {
            if replicas.is_empty() {
                return Err(invalid("a partition needs at least one replica"));
            }
            let mut unique = replicas.clone();
            unique.sort_unstable();
            unique.dedup();
            if unique.len() != replicas.len() {
                return Err(invalid(
                    "each node can hold only one replica of a partition",
                ));
            }
        }
        let current: Vec<i32> = self
            .snapshot()
            .topics
            .iter()
            .find(|candidate| candidate.name == topic)
            .and_then(|info| {
                info.partitions
                    .iter()
                    .find(|candidate| candidate.partition == partition)
            })
            .map(|found| {
                found
                    .replicas
                    .iter()
                    .map(|replica| replica.node_id)
                    .collect()
            })
            .unwrap_or_default();
        let outcomes = self
            .client()
            .alter_partition_reassignments(&[PartitionReassignment {
                topic: topic.to_string(),
                partition,
                replicas: replicas.clone(),
            }])
            .await
            .map_err(client_failure)?;
        self.inner
            .reassignments_changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let what = match &replicas {
            Some(_) => format!("reassigning {topic}-{partition}"),
            None => format!("cancelling the reassignment of {topic}-{partition}"),
        };
        if let Some(failure) = outcomes.into_values().find_map(|outcome| outcome.err()) {
            return Err(kafka_failure(&what, failure));
        }
        let text = match &replicas {
            Some(target) => {
                let adding: Vec<i32> = target
                    .iter()
                    .copied()
                    .filter(|node| !current.contains(node))
                    .collect();
                let removing: Vec<i32> = current
                    .iter()
                    .copied()
                    .filter(|node| !target.contains(node))
                    .collect();
                let mut text = format!(
                    "You asked to move {topic}-{partition} to {} (preferred leader node {})",
                    nodes_list(target),
                    target[0]
                );
                if !current.is_empty() && target.len() != current.len() {
                    text.push_str(&format!(
                        ", changing its replication factor from {} to {}",
                        current.len(),
                        target.len()
                    ));
                }
                text.push_str(": ");
                if adding.is_empty() && removing.is_empty() {
                    text.push_str("its replicas stay where they are, only their order changes");
                } else {
                    if !adding.is_empty() {
                        text.push_str(&format!(
                            "{} {} a copy of the log and {} the ISR once caught up",
                            nodes_list(&adding),
                            if adding.len() == 1 {
                                "fetches"
                            } else {
                                "fetch"
                            },
                            if adding.len() == 1 { "joins" } else { "join" },
                        ));
                    }
                    if !removing.is_empty() {
                        if !adding.is_empty() {
                            text.push_str("; then ");
                        }
                        text.push_str(&format!(
                            "{} {} and {} {} copy",
                            nodes_list(&removing),
                            if removing.len() == 1 {
                                "leaves"
                            } else {
                                "leave"
                            },
                            if removing.len() == 1 {
                                "deletes"
                            } else {
                                "delete"
                            },
                            if removing.len() == 1 { "its" } else { "their" },
                        ));
                    }
                }
                text
            }
            None => format!(
                "You cancelled the reassignment of {topic}-{partition}: it keeps the replicas it had \
                 before, and replicas that were being added delete their copy"
            ),
        };
        let kind = if replicas.is_some() {
            "reassignment_requested"
        } else {
            "reassignment_cancel_requested"
        };
        self.explain(kind, None, Some((topic, partition)), text.clone());
        Ok(done(text))
    }

    pub(crate) async fn add_node(&self) -> Result<Response, Failure> {
        let Some(supervisor) = &self.inner.supervisor else {
            return Err(local_only("adding a node"));
        };
        let operation = "add a node";
        self.progress(operation, false, "Starting a new node…".into());
        let outcome = supervisor.lock().await.add_node().await;
        match outcome {
            Ok(id) => {
                let message = format!("Node {id} added");
                self.progress(operation, true, message.clone());
                self.explain(
                    "node_added_by_you",
                    Some(i32::from(id)),
                    None,
                    format!(
                        "You added node {id}: it joins the metadata quorum and registers with the \
                         controller. It hosts no partition until you reassign some to it or create \
                         new topics"
                    ),
                );
                Ok(done(message))
            }
            Err(error) => {
                let message = format!("adding a node failed: {error}");
                self.progress(operation, true, message.clone());
                Err(Failure {
                    kafka_error: None,
                    message,
                    hint: Some("See the new node's log (eddy.log) in its data directory.".into()),
                })
            }
        }
    }

    pub(crate) async fn remove_node(&self, node: i32) -> Result<Response, Failure> {
        let Some(supervisor) = &self.inner.supervisor else {
            return Err(local_only("removing a node"));
        };
        let id = node_id(node)?;
        // One removal at a time: two drains could each count on the other's
        // node to take replicas or to keep the quorum.
        let _slot = RemovalSlot::claim(&self.inner.removing, id)?;
        let operation = format!("remove node {node}");
        self.explain(
            "node_removal_requested",
            Some(node),
            None,
            format!(
                "You asked to remove node {node}: every replica it hosts moves to the other nodes \
                 first (each new copy catches up before node {node}'s copy leaves), then it stops \
                 and is unregistered"
            ),
        );
        self.progress(
            &operation,
            false,
            format!("Moving replicas off node {node}…"),
        );
        let console = self.clone();
        let progress_operation = operation.clone();
        let mut report =
            move |message: String| console.progress(&progress_operation, false, message);
        // The replicas move without holding the supervisor, so other nodes
        // stay controllable meanwhile; stopping and forgetting it needs it.
        let drain = supervisor.lock().await.prepare_removal(id);
        let outcome = match drain {
            Ok(drain) => match drain.run(&mut report).await {
                Ok(()) => {
                    supervisor
                        .lock()
                        .await
                        .finish_removal(id, &mut report)
                        .await
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {
                let message = format!("Node {node} removed");
                self.progress(&operation, true, message.clone());
                self.explain(
                    "node_removed",
                    Some(node),
                    None,
                    format!("Node {node} is removed: its replicas live on other nodes, its process is stopped and the controller forgot it"),
                );
                Ok(done(message))
            }
            Err(error) => {
                let message = format!("removing node {node} failed: {error}");
                self.progress(&operation, true, message.clone());
                Err(Failure {
                    kafka_error: None,
                    message,
                    hint: Some(
                        "Partitions may still be moving; see Reassignments in flight and the timeline."
                            .into(),
                    ),
                })
            }
        }
    }

    pub(crate) async fn slow_node(
        &self,
        node: i32,
        bytes_per_second: u64,
    ) -> Result<Response, Failure> {
        if bytes_per_second == 0 {
            return Err(invalid("the rate must be at least 1 byte per second"));
        }
        match &self.inner.supervisor {
            Some(supervisor) => supervisor
                .lock()
                .await
                .slow(node_id(node)?, bytes_per_second)
                .await
                .map_err(|error| invalid(format!("slowing node {node} failed: {error}")))?,
            // Any Kafka cluster has the replication throttles.
            None => eddy_cluster::ops::slow(&mut self.client(), node, bytes_per_second)
                .await
                .map_err(client_failure)?,
        }
        let rate = rate_text(bytes_per_second);
        self.explain(
            "node_slowed",
            Some(node),
            None,
            format!(
                "You slowed node {node}'s replication to {rate}: it will leave the ISR of partitions \
                 it follows once it lags for replica.lag.time.max.ms, and rejoin once you heal it"
            ),
        );
        Ok(done(format!(
            "Node {node}'s replication throttled to {rate}"
        )))
    }

    pub(crate) async fn isolate_node(&self, node: i32) -> Result<Response, Failure> {
        let Some(supervisor) = &self.inner.supervisor else {
            return Err(local_only("isolating a node"));
        };
        let id = node_id(node)?;
        supervisor
            .lock()
            .await
            .isolate(id)
            .map_err(|error| invalid(format!("isolating node {node} failed: {error}")))?;
        self.explain(
            "node_isolated",
            Some(node),
            None,
            format!(
                "You isolated node {node}: it can no longer reach the other nodes or the controller; \
                 clients still reach it. Expect it to be fenced after broker.session.timeout.ms, and \
                 the partitions it leads to elect another in-sync leader"
            ),
        );
        Ok(done(format!("Node {node} isolated")))
    }

    pub(crate) async fn heal_node(&self, node: i32) -> Result<Response, Failure> {
        match &self.inner.supervisor {
            Some(supervisor) => supervisor
                .lock()
                .await
                .heal(node_id(node)?)
                .await
                .map_err(|error| invalid(format!("healing node {node} failed: {error}")))?,
            // Another cluster's nodes are never isolated by Eddy: only the
            // throttles are lifted.
            None => eddy_cluster::ops::clear_throttle(&mut self.client(), node)
                .await
                .map_err(client_failure)?,
        }
        self.explain(
            "node_healed",
            Some(node),
            None,
            format!(
                "You healed node {node}: it reaches the other nodes and the controller again and its \
                 replication is no longer throttled. It catches up (dropping records only it had) and \
                 rejoins the ISR"
            ),
        );
        Ok(done(format!("Node {node} healed")))
    }
}

#[cfg(test)]
mod tests {
    use super::{RemovalSlot, nodes_list, rate_text};

    #[test]
    fn rates_and_node_lists_read_as_people_say_them() {
        assert_eq!(rate_text(10_000), "10 kB/s");
        assert_eq!(rate_text(1_500_000), "1.5 MB/s");
        assert_eq!(rate_text(512), "512 B/s");
        assert_eq!(nodes_list(&[3]), "node 3");
        assert_eq!(nodes_list(&[1, 2, 3]), "nodes 1, 2 and 3");
    }

    #[test]
    fn one_removal_runs_at_a_time() {
        let slot = std::sync::Mutex::new(None);
        let first = RemovalSlot::claim(&slot, 3).expect("the first removal");
        let refused = RemovalSlot::claim(&slot, 2)
            .err()
            .expect("a second removal is refused");
        assert_eq!(
            refused.message,
            "node 3 is being removed; wait for it to finish"
        );
        drop(first);
        assert!(RemovalSlot::claim(&slot, 2).is_ok(), "free once it ends");
    }
}
