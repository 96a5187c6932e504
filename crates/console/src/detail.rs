//! The costly part of a poll, done every few polls: each partition's log
//! start and high watermark (ListOffsets to each leader, by topic), each
//! topic's size on disk (DescribeLogDirs to each node), and every consumer
//! group with its lag (ListGroups, then OffsetFetch per group).

use std::collections::HashMap;

use eddy_client::{Client, ClusterMetadata, OffsetSpec};

use crate::model::GroupSummary;
use crate::snapshot::Gathered;

/// What the last detailed poll found; kept and reused by the polls between.
#[derive(Debug, Default, Clone)]
pub struct Detail {
    pub offsets: HashMap<(String, i32), (i64, i64)>,
    pub sizes: HashMap<String, u64>,
    pub groups: Vec<GroupSummary>,
    /// Committed offset and lag by group, topic and partition.
    pub lag: Vec<GroupLag>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GroupLag {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub end_offset: i64,
}

impl Detail {
    pub fn fill(&self, gathered: &mut Gathered) {
        gathered.offsets = self.offsets.clone();
        gathered.sizes = self.sizes.clone();
        gathered.groups = self.groups.clone();
        gathered.problems.extend(self.problems.iter().cloned());
    }
}

pub async fn gather(client: &mut Client, metadata: &ClusterMetadata) -> Detail {
    let mut detail = Detail::default();
    for topic in &metadata.topics {
        let partitions: Vec<i32> = topic
            .partitions
            .iter()
            .filter(|partition| partition.leader.is_some())
            .map(|partition| partition.partition)
            .collect();
        if partitions.is_empty() {
            continue;
        }
        let starts = client
            .list_offsets(&topic.name, &partitions, OffsetSpec::Earliest)
            .await;
        let ends = client
            .list_offsets(&topic.name, &partitions, OffsetSpec::Latest)
            .await;
        let (Ok(starts), Ok(ends)) = (starts, ends) else {
            detail
                .problems
                .push(format!("offsets of {} could not be read", topic.name));
            continue;
        };
        for partition in &partitions {
            let start = starts
                .get(partition)
                .and_then(|result| result.as_ref().ok())
                .and_then(|listed| listed.offset);
            let end = ends
                .get(partition)
                .and_then(|result| result.as_ref().ok())
                .and_then(|listed| listed.offset);
            if let (Some(start), Some(end)) = (start, end) {
                detail
                    .offsets
                    .insert((topic.name.clone(), *partition), (start, end));
            }
        }
    }
    for broker in &metadata.brokers {
        let address = format!("{}:{}", broker.host, broker.port);
        let Ok(dirs) = client.describe_log_dirs_from(&address).await else {
            continue;
        };
        for replica in dirs.iter().flat_map(|dir| &dir.replicas) {
            *detail.sizes.entry(replica.topic.clone()).or_default() +=
                u64::try_from(replica.size_bytes).unwrap_or(0);
        }
    }
    let listing = match client.list_groups().await {
        Ok(listing) => listing,
        Err(error) => {
            detail
                .problems
                .push(format!("groups could not be listed: {error}"));
            return detail;
        }
    };
    let ids: Vec<String> = listing
        .groups
        .iter()
        .map(|group| group.group_id.clone())
        .collect();
    let descriptions: HashMap<String, usize> = match client.describe_groups(&ids).await {
        Ok(described) => described
            .into_iter()
            .map(|group| (group.group_id, group.members.len()))
            .collect(),
        Err(_) => HashMap::new(),
    };
    for overview in listing.groups {
        let committed = client.group_offsets(&overview.group_id).await.ok();
        let mut total = None;
        if let Some(committed) = &committed {
            for ((topic, partition), offset) in committed {
                let Some((_, end)) = detail.offsets.get(&(topic.clone(), *partition)) else {
                    continue;
                };
                *total.get_or_insert(0) += (end - offset).max(0);
                detail.lag.push(GroupLag {
                    group_id: overview.group_id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    committed: *offset,
                    end_offset: *end,
                });
            }
        }
        detail.groups.push(GroupSummary {
            members: descriptions.get(&overview.group_id).copied().unwrap_or(0),
            group_id: overview.group_id,
            state: overview.state.unwrap_or_default(),
            protocol_type: overview.protocol_type,
            total_lag: total,
        });
    }
    detail
        .groups
        .sort_by(|left, right| left.group_id.cmp(&right.group_id));
    detail
}
