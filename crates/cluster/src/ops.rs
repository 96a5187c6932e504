//! Operations on a running cluster that go through the Kafka protocol, for
//! the supervisor, the command line and the app alike: slowing a node with
//! Kafka's replication throttles and lifting them, and planning how to move
//! every replica off a node.

use std::collections::{BTreeMap, BTreeSet};

use eddy_client::{Client, ClientError, ClusterMetadata, PartitionReassignment};

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Slows node `node` to `bytes_per_second` of replication: sets both
/// replication throttle rates on the node and adds `P:node` to each topic's
/// `follower.replication.throttled.replicas` for every partition with a
/// replica on it (keeping the entries already there). As a follower it then
/// fetches at most that fast, falls behind and leaves the ISR after
/// `replica.lag.time.max.ms`.
pub async fn slow(
    client: &mut Client,
    node: i32,
    bytes_per_second: u64,
) -> Result<(), ClientError> {
    let rate = bytes_per_second.to_string();
    let set = BTreeMap::from([
        (FOLLOWER_RATE.to_string(), rate.clone()),
        (LEADER_RATE.to_string(), rate),
    ]);
    client
        .alter_broker_configs(Some(node), &set, &[], false)
        .await?;
    let metadata = client.metadata().await?;
    for (topic, partitions) in partitions_on(&metadata, node) {
        let current = topic_value(client, &topic, FOLLOWER_REPLICAS).await?;
        if current.as_deref().map(str::trim) == Some("*") {
            continue;
        }
        let mut entries = parse_entries(current.as_deref().unwrap_or_default());
        for partition in partitions {
            entries.insert((partition, node));
        }
        let value = format_entries(&entries);
        if current.as_deref() != Some(value.as_str()) {
            client
                .alter_topic_configs(
                    &topic,
                    BTreeMap::from([(FOLLOWER_REPLICAS.to_string(), value)]),
                    Vec::new(),
                )
                .await?;
        }
    }
    Ok(())
}

/// Lifts what [`slow`] set: removes both rates from node `node` and every
/// `*:node` entry from each topic's `follower.replication.throttled.replicas`
/// (deleting the config when nothing is left in it).
pub async fn clear_throttle(client: &mut Client, node: i32) -> Result<(), ClientError> {
    client
        .alter_broker_configs(
            Some(node),
            &BTreeMap::new(),
            &[FOLLOWER_RATE.to_string(), LEADER_RATE.to_string()],
            false,
        )
        .await?;
    let metadata = client.metadata().await?;
    for topic in &metadata.topics {
        let Some(current) = topic_value(client, &topic.name, FOLLOWER_REPLICAS).await? else {
            continue;
        };
        if current.trim() == "*" {
            continue;
        }
        let mut entries = parse_entries(&current);
        let before = entries.len();
        entries.retain(|&(_, replica)| replica != node);
        if entries.len() == before {
            continue;
        }
        let (set, delete) = if entries.is_empty() {
            (BTreeMap::new(), vec![FOLLOWER_REPLICAS.to_string()])
        } else {
            (
                BTreeMap::from([(FOLLOWER_REPLICAS.to_string(), format_entries(&entries))]),
                Vec::new(),
            )
        };
        client.alter_topic_configs(&topic.name, set, delete).await?;
    }
    Ok(())
}

/// The partitions of each topic with a replica on `node`.
pub fn partitions_on(metadata: &ClusterMetadata, node: i32) -> BTreeMap<String, Vec<i32>> {
    let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for topic in &metadata.topics {
        for partition in &topic.partitions {
            if partition.replicas.contains(&node) {
                partitions
                    .entry(topic.name.clone())
                    .or_default()
                    .push(partition.partition);
            }
        }
    }
    partitions
}

/// A topic config's value when it is set on the topic itself.
async fn topic_value(
    client: &mut Client,
    topic: &str,
    name: &str,
) -> Result<Option<String>, ClientError> {
    let configs = client.describe_topic_configs(topic).await?;
    Ok(configs
        .into_iter()
        .find(|entry| entry.name == name && entry.source == "topic")
        .and_then(|entry| entry.value)
        .filter(|value| !value.trim().is_empty()))
}

/// `"0:1,2:3"` as (partition, node) pairs; malformed entries are dropped.
fn parse_entries(value: &str) -> BTreeSet<(i32, i32)> {
    value
        .split(',')
        .filter_map(|entry| {
            let (partition, node) = entry.trim().split_once(':')?;
            Some((partition.trim().parse().ok()?, node.trim().parse().ok()?))
        })
        .collect()
}

fn format_entries(entries: &BTreeSet<(i32, i32)>) -> String {
    entries
        .iter()
        .map(|(partition, node)| format!("{partition}:{node}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Plans moving every replica off `node`: each partition with a replica on
/// it gets the same replica list with `node` replaced (in place, so the
/// preferred leader order is kept) by one of `live` that holds no replica
/// of it yet, the least loaded first. Fails, naming the partitions, when
/// some partition has no such node: nothing should move then.
pub fn plan_drain(
    metadata: &ClusterMetadata,
    node: i32,
    live: &BTreeSet<i32>,
) -> Result<Vec<PartitionReassignment>, String> {
    plan_drain_of(metadata, node, live, None)
}

/// [`plan_drain`] for the partitions in `only` (all when `None`); the load
/// of every partition still counts.
pub fn plan_drain_of(
    metadata: &ClusterMetadata,
    node: i32,
    live: &BTreeSet<i32>,
    only: Option<&BTreeSet<(String, i32)>>,
) -> Result<Vec<PartitionReassignment>, String> {
    let mut load: BTreeMap<i32, usize> = live.iter().map(|&id| (id, 0)).collect();
    for topic in &metadata.topics {
        for partition in &topic.partitions {
            for replica in &partition.replicas {
                if let Some(count) = load.get_mut(replica) {
                    *count += 1;
                }
            }
        }
    }
    let mut plan = Vec::new();
    let mut stuck = Vec::new();
    for topic in &metadata.topics {
        for partition in &topic.partitions {
            if !partition.replicas.contains(&node) {
                continue;
            }
            if only.is_some_and(|only| !only.contains(&(topic.name.clone(), partition.partition))) {
                continue;
            }
            let chosen = load
                .iter()
                .filter(|(id, _)| **id != node && !partition.replicas.contains(id))
                .min_by_key(|(id, count)| (**count, **id))
                .map(|(id, _)| *id);
            let Some(chosen) = chosen else {
                stuck.push(format!(
                    "{}-{} (replicas {:?})",
                    topic.name, partition.partition, partition.replicas
                ));
                continue;
            };
            *load.entry(chosen).or_default() += 1;
            plan.push(PartitionReassignment {
                topic: topic.name.clone(),
                partition: partition.partition,
                replicas: Some(
                    partition
                        .replicas
                        .iter()
                        .map(|&replica| if replica == node { chosen } else { replica })
                        .collect(),
                ),
            });
        }
    }
    if !stuck.is_empty() {
        return Err(format!(
            "cannot move every replica off node {node}: no other live node is free to take {} \
             (every live node already holds a replica of it); add a node first \
             (`eddy cluster add`) or lower those partitions' replication factor",
            stuck.join(", ")
        ));
    }
    Ok(plan)
}

/// Parses a rate such as `1048576`, `100k`, `1m`, `2MiB` or `512KB/s` into
/// bytes per second (k = 1024, m = 1024², g = 1024³).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix("/s").unwrap_or(&lower);
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a rate in bytes per second (e.g. 100k, 1m, 65536)")
    })?;
    let multiplier: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use k, m or g)"
            ));
        }
    };
    let rate = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if rate == 0 {
        return Err("the rate must be at least 1 byte per second".to_string());
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_client::{BrokerInfo, PartitionInfo, TopicInfo};

    fn metadata(partitions: &[&[i32]]) -> ClusterMetadata {
        ClusterMetadata {
            answered_by: String::new(),
            cluster_id: None,
            controller_id: None,
            brokers: Vec::<BrokerInfo>::new(),
            topics: vec![TopicInfo {
                name: "orders".into(),
                topic_id: String::new(),
                internal: false,
                error: None,
                partitions: partitions
                    .iter()
                    .enumerate()
                    .map(|(index, replicas)| PartitionInfo {
                        partition: index as i32,
                        leader: replicas.first().copied(),
                        leader_epoch: 0,
                        replicas: replicas.to_vec(),
                        isr: replicas.to_vec(),
                        offline_replicas: Vec::new(),
                        error: None,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn draining_replaces_the_node_in_place_and_spreads_the_load() {
        let live = BTreeSet::from([1, 2, 3, 4]);
        let plan = plan_drain(&metadata(&[&[2, 1], &[3, 2], &[1, 3]]), 2, &live).expect("plan");
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].replicas, Some(vec![4, 1]));
        assert_eq!(plan[1].replicas, Some(vec![3, 4]));
    }

    #[test]
    fn draining_refuses_when_no_node_is_free() {
        let live = BTreeSet::from([1, 2, 3]);
        let error = plan_drain(&metadata(&[&[1, 2, 3]]), 2, &live).expect_err("nowhere to go");
        assert!(error.contains("orders-0"), "{error}");
    }

    #[test]
    fn rates_take_suffixes() {
        assert_eq!(parse_rate("100k"), Ok(102_400));
        assert_eq!(parse_rate("1m"), Ok(1_048_576));
        assert_eq!(parse_rate("65536"), Ok(65_536));
        assert_eq!(parse_rate("2MiB/s"), Ok(2 * 1_048_576));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn throttled_replica_lists_round_trip() {
        let entries = parse_entries("0:1, 2:3,bad");
        assert_eq!(format_entries(&entries), "0:1,2:3");
    }
}
