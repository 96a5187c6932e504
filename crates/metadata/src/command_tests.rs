use super::*;

const UNCLEAN_OFF: bool = false;

struct Cluster {
    image: MetadataImage,
    index: u64,
}

impl Cluster {
    /// Brokers `ids`, registered and unfenced.
    fn with_brokers(ids: &[i32]) -> Self {
        let mut cluster = Cluster {
            image: MetadataImage::default(),
            index: 0,
        };
        for &id in ids {
            cluster.register(id, 1);
            cluster.ok(Command::UnfenceBroker { id });
        }
        cluster
    }

    fn run(&mut self, command: Command) -> CommandResult {
        self.run_with(command, UNCLEAN_OFF)
    }

    fn run_with(&mut self, command: Command, unclean_default: bool) -> CommandResult {
        self.index += 1;
        let index = self.index;
        apply(
            &mut self.image,
            index,
            1_000 + index as i64,
            &command,
            unclean_default,
        )
    }

    fn ok(&mut self, command: Command) -> CommandOutput {
        self.run(command).expect("command succeeds")
    }

    fn register(&mut self, id: i32, incarnation: u64) {
        self.ok(Command::RegisterBroker {
            id,
            host: "127.0.0.1".into(),
            port: 19092 + id as u16,
            controller_address: format!("127.0.0.1:{}", 19192 + id),
            incarnation,
        });
    }

    fn create(&mut self, name: &str, partitions: i32, factor: i16) -> CommandResult {
        self.run(Command::CreateTopic {
            name: name.into(),
            id: 7,
            partitions,
            replication_factor: factor,
            assignments: None,
            configs: BTreeMap::new(),
        })
    }

    fn create_assigned(&mut self, name: &str, assignments: Vec<Vec<i32>>) -> CommandResult {
        self.run(Command::CreateTopic {
            name: name.into(),
            id: 8,
            partitions: -1,
            replication_factor: -1,
            assignments: Some(assignments),
            configs: BTreeMap::new(),
        })
    }

    fn fence(&mut self, id: i32) {
        self.ok(Command::FenceBroker {
            id,
            reason: format!("node {id} stopped heartbeating; fenced after 2000 ms"),
        });
    }

    fn partition(&self, topic: &str, index: i32) -> PartitionState {
        self.image
            .partition(topic, index)
            .expect("partition exists")
            .clone()
    }

    fn event_kinds(&self) -> Vec<&str> {
        self.image
            .events
            .iter()
            .map(|event| event.kind.as_str())
            .collect()
    }
}

fn error_code(result: CommandResult) -> ErrorCode {
    result.expect_err("command is refused").code
}

#[test]
fn create_topic_places_replicas_round_robin_over_live_brokers() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    let CommandOutput::TopicCreated { partitions, .. } = cluster.create("orders", 6, 2).unwrap()
    else {
        panic!("expected TopicCreated");
    };
    assert_eq!(partitions.len(), 6);
    for partition in &partitions {
        assert_eq!(partition.replicas.len(), 2);
        assert_ne!(partition.replicas[0], partition.replicas[1]);
        assert_eq!(partition.isr, partition.replicas);
        assert_eq!(partition.leader, partition.replicas[0]);
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
    }
    let mut leaders: Vec<i32> = partitions
        .iter()
        .map(|partition| partition.leader)
        .collect();
    leaders.sort();
    assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3], "leaders spread evenly");
    assert_eq!(cluster.image.topic("orders").unwrap().id, 7);
    assert!(cluster.image.topic_by_id(7).is_some());
    assert_eq!(cluster.event_kinds().last(), Some(&"topic_created"));
}

#[test]
fn placement_is_deterministic_and_skips_fenced_brokers() {
    let mut first = Cluster::with_brokers(&[1, 2, 3, 4]);
    let mut second = Cluster::with_brokers(&[1, 2, 3, 4]);
    first.fence(4);
    second.fence(4);
    first.create("a", 3, 3).unwrap();
    second.create("a", 3, 3).unwrap();
    assert_eq!(first.image, second.image);
    for partition in &first.image.topic("a").unwrap().partitions {
        assert!(!partition.replicas.contains(&4));
    }
}

#[test]
fn create_topic_validates_its_arguments() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    assert_eq!(
        error_code(cluster.create("t", 0, 1)),
        ErrorCode::InvalidPartitions
    );
    let refused = cluster.create("t", 1, 3).unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidReplicationFactor);
    assert!(
        refused.message.contains("2 broker(s) alive"),
        "{}",
        refused.message
    );
    assert_eq!(
        error_code(cluster.create("t", 1, 0)),
        ErrorCode::InvalidReplicationFactor
    );
    cluster.create("t", 1, 1).unwrap();
    assert_eq!(
        error_code(cluster.create("t", 1, 1)),
        ErrorCode::TopicAlreadyExists
    );

    let invalid = ErrorCode::InvalidReplicaAssignment;
    assert_eq!(
        error_code(cluster.create_assigned("u", vec![vec![1, 2], vec![1]])),
        invalid
    );
    assert_eq!(
        error_code(cluster.create_assigned("u", vec![vec![1, 1]])),
        invalid
    );
    assert_eq!(
        error_code(cluster.create_assigned("u", vec![vec![1, 9]])),
        invalid
    );
    cluster
        .create_assigned("u", vec![vec![2, 1], vec![1, 2]])
        .unwrap();
    assert_eq!(cluster.partition("u", 0).leader, 2);
    assert_eq!(cluster.partition("u", 1).leader, 1);
}

#[test]
fn fencing_the_leader_elects_the_next_in_sync_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster
        .create_assigned("orders", vec![vec![1, 2, 3], vec![2, 3, 1]])
        .unwrap();
    cluster.fence(1);

    let moved = cluster.partition("orders", 0);
    assert_eq!(moved.leader, 2);
    assert_eq!(moved.isr, vec![2, 3]);
    assert_eq!((moved.leader_epoch, moved.partition_epoch), (1, 1));

    let follower_only = cluster.partition("orders", 1);
    assert_eq!(follower_only.leader, 2);
    assert_eq!(follower_only.isr, vec![2, 3]);
    assert_eq!(
        (follower_only.leader_epoch, follower_only.partition_epoch),
        (0, 1)
    );

    assert!(cluster.image.broker(1).unwrap().fenced);
    assert_eq!(cluster.image.live_brokers().count(), 2);
    let fenced = cluster
        .image
        .events
        .iter()
        .find(|event| event.kind == "broker_fenced")
        .unwrap();
    assert_eq!(
        fenced.text,
        "node 1 stopped heartbeating; fenced after 2000 ms"
    );
    let elected = cluster
        .image
        .events
        .iter()
        .find(|event| event.kind == "leader_elected")
        .unwrap();
    assert_eq!(
        elected.text,
        "orders-0: node 2 is leader (epoch 1), it was in sync"
    );
    assert_eq!(elected.partition, Some(0));
}

#[test]
fn fencing_the_last_in_sync_replica_takes_the_partition_offline() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    shrink_isr_to_leader(&mut cluster);
    cluster.fence(1);

    let offline = cluster.partition("t", 0);
    assert_eq!(offline.leader, -1);
    assert_eq!(offline.isr, vec![1], "the ISR never becomes empty");
    assert_eq!(offline.leader_epoch, 1);
    assert!(cluster.event_kinds().contains(&"partition_offline"));

    // The in-sync replica comes back and leads again.
    cluster.ok(Command::UnfenceBroker { id: 1 });
    let restored = cluster.partition("t", 0);
    assert_eq!(restored.leader, 1);
    assert_eq!(restored.isr, vec![1]);
    assert_eq!(restored.leader_epoch, 2);
}

/// Leader 1 drops follower 2 from the ISR of `t-0`.
fn shrink_isr_to_leader(cluster: &mut Cluster) {
    cluster.ok(Command::AlterPartition {
        topic: "t".into(),
        partition: 0,
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![1],
    });
}

#[test]
fn unclean_election_picks_a_live_out_of_sync_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    shrink_isr_to_leader(&mut cluster);
    cluster
        .run_with(
            Command::FenceBroker {
                id: 1,
                reason: "gone".into(),
            },
            true,
        )
        .unwrap();
    let partition = cluster.partition("t", 0);
    assert_eq!(partition.leader, 2);
    assert_eq!(partition.isr, vec![2]);
    assert_eq!(partition.leader_epoch, 1);
}

#[test]
fn a_cluster_wide_dynamic_default_allows_unclean_election() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.ok(Command::AlterBrokerConfigs {
        broker: None,
        set: BTreeMap::from([(
            UNCLEAN_LEADER_ELECTION_CONFIG.to_string(),
            "true".to_string(),
        )]),
        delete: vec![],
    });
    shrink_isr_to_leader(&mut cluster);
    cluster.fence(1);
    let partition = cluster.partition("t", 0);
    assert_eq!(partition.leader, 2, "the dynamic default allows it");
    assert_eq!(partition.isr, vec![2]);
}

#[test]
fn topic_config_overrides_the_unclean_default() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.ok(Command::AlterTopicConfigs {
        name: "t".into(),
        set: BTreeMap::from([(
            UNCLEAN_LEADER_ELECTION_CONFIG.to_string(),
            "true".to_string(),
        )]),
        delete: vec![],
        replace_all: false,
    });
    shrink_isr_to_leader(&mut cluster);
    cluster.fence(2);
    cluster.fence(1);
    assert_eq!(
        cluster.partition("t", 0).leader,
        -1,
        "no live replica at all"
    );
    cluster.ok(Command::UnfenceBroker { id: 2 });
    let partition = cluster.partition("t", 0);
    assert_eq!(
        partition.leader, 2,
        "out-of-sync replica elected because the topic allows it"
    );
    assert_eq!(partition.isr, vec![2]);
}

#[test]
fn unfencing_without_unclean_election_leaves_out_of_sync_replicas_waiting() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    shrink_isr_to_leader(&mut cluster);
    cluster.fence(2);
    cluster.fence(1);
    cluster.ok(Command::UnfenceBroker { id: 2 });
    assert_eq!(cluster.partition("t", 0).leader, -1);
}

#[test]
fn controlled_shutdown_moves_leadership_but_keeps_sole_replicas() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.create_assigned("solo", vec![vec![1]]).unwrap();
    cluster.ok(Command::ControlledShutdown { id: 1 });
    let moved = cluster.partition("t", 0);
    assert_eq!(
        (moved.leader, moved.isr.clone(), moved.leader_epoch),
        (2, vec![2], 1)
    );
    let kept = cluster.partition("solo", 0);
    assert_eq!((kept.leader, kept.leader_epoch), (1, 0));
    assert!(cluster.image.broker(1).unwrap().in_controlled_shutdown);
    assert!(!cluster.image.broker(1).unwrap().fenced);
}

#[test]
fn re_registration_with_a_new_incarnation_fences_until_unfenced() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.register(1, 2);
    assert!(cluster.image.broker(1).unwrap().fenced);
    assert_eq!(cluster.image.broker(1).unwrap().incarnation, 2);
    assert_eq!(cluster.partition("t", 0).leader, 2);
    // The same incarnation again changes nothing.
    cluster.register(1, 2);
    assert!(cluster.image.broker(1).unwrap().fenced);
}

#[test]
fn alter_partition_checks_leader_and_epochs() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2, 3]]).unwrap();
    let alter = |leader, leader_epoch, partition_epoch, isr: Vec<i32>| Command::AlterPartition {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
        partition_epoch,
        isr,
    };
    assert_eq!(
        error_code(cluster.run(alter(2, 0, 0, vec![2]))),
        ErrorCode::NotLeaderOrFollower
    );
    assert_eq!(
        error_code(cluster.run(alter(1, 1, 0, vec![1]))),
        ErrorCode::FencedLeaderEpoch
    );
    assert_eq!(
        error_code(cluster.run(alter(1, 0, 5, vec![1]))),
        ErrorCode::InvalidUpdateVersion
    );
    assert_eq!(
        error_code(cluster.run(alter(1, 0, 0, vec![2]))),
        ErrorCode::InvalidRequest
    );
    let missing = Command::AlterPartition {
        topic: "t".into(),
        partition: 9,
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![1],
    };
    assert_eq!(
        error_code(cluster.run(missing)),
        ErrorCode::UnknownTopicOrPartition
    );

    let CommandOutput::Partition(shrunk) = cluster.ok(alter(1, 0, 0, vec![1, 2])) else {
        panic!("expected Partition");
    };
    assert_eq!(
        (shrunk.isr.clone(), shrunk.partition_epoch),
        (vec![1, 2], 1)
    );
    assert_eq!(cluster.event_kinds().last(), Some(&"isr_shrunk"));

    cluster.fence(3);
    let state = cluster.partition("t", 0);
    assert_eq!(
        error_code(cluster.run(alter(
            1,
            state.leader_epoch,
            state.partition_epoch,
            vec![1, 2, 3]
        ))),
        ErrorCode::IneligibleReplica
    );
    cluster.ok(Command::UnfenceBroker { id: 3 });
    let state = cluster.partition("t", 0);
    cluster.ok(alter(
        1,
        state.leader_epoch,
        state.partition_epoch,
        vec![1, 2, 3],
    ));
    assert_eq!(cluster.partition("t", 0).isr, vec![1, 2, 3]);
    assert_eq!(cluster.event_kinds().last(), Some(&"isr_expanded"));
}

#[test]
fn create_partitions_delete_and_configs() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create("t", 2, 2).unwrap();
    let grow = |count| Command::CreatePartitions {
        name: "t".into(),
        count,
        assignments: None,
    };
    assert_eq!(
        error_code(cluster.run(grow(2))),
        ErrorCode::InvalidPartitions
    );
    cluster.ok(grow(5));
    let topic = cluster.image.topic("t").unwrap();
    assert_eq!(topic.partitions.len(), 5);
    assert!(
        topic
            .partitions
            .iter()
            .all(|partition| partition.replicas.len() == 2)
    );

    cluster.ok(Command::AlterTopicConfigs {
        name: "t".into(),
        set: BTreeMap::from([
            ("retention.ms".into(), "1".into()),
            ("a".into(), "b".into()),
        ]),
        delete: vec![],
        replace_all: false,
    });
    cluster.ok(Command::AlterTopicConfigs {
        name: "t".into(),
        set: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
        delete: vec![],
        replace_all: true,
    });
    let configs = &cluster.image.topic("t").unwrap().configs;
    assert_eq!(configs.len(), 1);
    assert_eq!(configs["cleanup.policy"], "compact");

    assert_eq!(
        cluster.ok(Command::DeleteTopic { name: "t".into() }),
        CommandOutput::TopicDeleted { id: 7 }
    );
    assert_eq!(
        error_code(cluster.run(Command::DeleteTopic { name: "t".into() })),
        ErrorCode::UnknownTopicOrPartition
    );
}

#[test]
fn producer_ids_come_in_disjoint_blocks() {
    let mut cluster = Cluster::with_brokers(&[1]);
    let allocate = |count| Command::AllocateProducerIds {
        broker_id: 1,
        count,
    };
    assert_eq!(
        cluster.ok(allocate(1000)),
        CommandOutput::ProducerIds {
            first: 0,
            count: 1000
        }
    );
    assert_eq!(
        cluster.ok(allocate(10)),
        CommandOutput::ProducerIds {
            first: 1000,
            count: 10
        }
    );
    assert_eq!(
        error_code(cluster.run(allocate(0))),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn events_are_bounded_and_cluster_id_is_set_once() {
    let mut cluster = Cluster::with_brokers(&[1]);
    cluster.ok(Command::InitCluster {
        cluster_id: "first".into(),
    });
    cluster.ok(Command::InitCluster {
        cluster_id: "second".into(),
    });
    assert_eq!(cluster.image.cluster_id, "first");
    for round in 0..300 {
        cluster.create(&format!("t{round}"), 1, 1).unwrap();
    }
    assert_eq!(cluster.image.events.len(), crate::image::MAX_EVENTS);
    assert_eq!(
        cluster.image.events.back().unwrap().text.split(' ').nth(1),
        Some("t299")
    );
}

#[test]
fn command_results_survive_json() {
    let refused: CommandResult = Err(CommandError::new(ErrorCode::TopicAlreadyExists, "exists"));
    let json = serde_json::to_string(&refused).unwrap();
    assert!(json.contains("36"), "{json}");
    assert_eq!(
        serde_json::from_str::<CommandResult>(&json).unwrap(),
        refused
    );
    let created: CommandResult = Ok(CommandOutput::TopicCreated {
        id: u128::MAX,
        partitions: vec![],
    });
    let json = serde_json::to_string(&created).unwrap();
    assert_eq!(
        serde_json::from_str::<CommandResult>(&json).unwrap(),
        created
    );
}

fn per_partition(output: CommandOutput) -> Vec<(String, i32, Option<ErrorCode>)> {
    let CommandOutput::PerPartition(results) = output else {
        panic!("expected PerPartition, got {output:?}");
    };
    results
        .into_iter()
        .map(|(topic, index, error)| (topic, index, error.map(|error| error.code)))
        .collect()
}

impl Cluster {
    fn last_event(&self, kind: &str) -> ClusterEvent {
        self.image
            .events
            .iter()
            .rev()
            .find(|event| event.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} event in {:?}", self.event_kinds()))
            .clone()
    }

    fn reassign(&mut self, topic: &str, index: i32, target: Option<Vec<i32>>) -> Option<ErrorCode> {
        let output = self.ok(Command::AlterReassignments {
            changes: vec![(topic.into(), index, target)],
        });
        per_partition(output).remove(0).2
    }

    fn elect(&mut self, partitions: Option<Vec<(&str, i32)>>, unclean: bool) -> CommandOutput {
        self.ok(Command::ElectLeaders {
            partitions: partitions.map(|partitions| {
                partitions
                    .into_iter()
                    .map(|(topic, index)| (topic.to_string(), index))
                    .collect()
            }),
            unclean,
            automatic: false,
        })
    }

    /// The partition leader sets the ISR of `topic`-`index`.
    fn set_isr(&mut self, topic: &str, index: i32, isr: Vec<i32>) -> CommandResult {
        let state = self.partition(topic, index);
        self.run(Command::AlterPartition {
            topic: topic.into(),
            partition: index,
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr,
        })
    }

    fn set_topic_config(&mut self, topic: &str, name: &str, value: &str) {
        self.ok(Command::AlterTopicConfigs {
            name: topic.into(),
            set: BTreeMap::from([(name.to_string(), value.to_string())]),
            delete: vec![],
            replace_all: false,
        });
    }
}

#[test]
fn broker_configs_are_set_per_node_or_cluster_wide_and_deleted() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    };
    cluster.ok(Command::AlterBrokerConfigs {
        broker: Some(2),
        set: set(&[("follower.replication.throttled.rate", "1024")]),
        delete: vec![],
    });
    cluster.ok(Command::AlterBrokerConfigs {
        broker: None,
        set: set(&[("log.retention.ms", "1000"), ("a", "b")]),
        delete: vec![],
    });
    assert_eq!(
        cluster.image.broker_configs["2"]["follower.replication.throttled.rate"],
        "1024"
    );
    assert_eq!(cluster.image.broker_configs[""]["log.retention.ms"], "1000");
    assert_eq!(
        cluster.last_event("broker_configs_altered").text,
        "cluster-wide broker defaults changed: a=b, log.retention.ms=1000"
    );

    cluster.ok(Command::AlterBrokerConfigs {
        broker: Some(2),
        set: BTreeMap::new(),
        delete: vec!["follower.replication.throttled.rate".into()],
    });
    assert!(
        !cluster.image.broker_configs.contains_key("2"),
        "an empty map is dropped"
    );
    assert_eq!(
        cluster.last_event("broker_configs_altered").text,
        "node 2's broker configs changed: follower.replication.throttled.rate back to its default"
    );
    cluster.ok(Command::AlterBrokerConfigs {
        broker: None,
        set: BTreeMap::new(),
        delete: vec!["a".into()],
    });
    assert_eq!(cluster.image.broker_configs[""].len(), 1);
    assert_eq!(
        error_code(cluster.run(Command::AlterBrokerConfigs {
            broker: Some(-1),
            set: set(&[("a", "b")]),
            delete: vec![],
        })),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn preferred_election_moves_leadership_back_to_the_first_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster
        .create_assigned("orders", vec![vec![1, 2, 3], vec![2, 3, 1]])
        .unwrap();
    cluster.fence(1);
    assert_eq!(cluster.partition("orders", 0).leader, 2);

    // Back, but not yet in sync.
    cluster.ok(Command::UnfenceBroker { id: 1 });
    let results = per_partition(cluster.elect(Some(vec![("orders", 0), ("orders", 1)]), false));
    assert_eq!(
        results,
        vec![
            (
                "orders".to_string(),
                0,
                Some(ErrorCode::PreferredLeaderNotAvailable)
            ),
            ("orders".to_string(), 1, Some(ErrorCode::ElectionNotNeeded)),
        ]
    );

    cluster.set_isr("orders", 0, vec![2, 3, 1]).unwrap();
    let before = cluster.partition("orders", 0);
    let results = per_partition(cluster.elect(Some(vec![("orders", 0), ("missing", 0)]), false));
    assert_eq!(results[0].2, None);
    assert_eq!(results[1].2, Some(ErrorCode::UnknownTopicOrPartition));
    let after = cluster.partition("orders", 0);
    assert_eq!(after.leader, 1);
    assert_eq!(after.isr, vec![2, 3, 1], "the ISR is unchanged");
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
    assert_eq!(
        cluster.last_event("preferred_leader_elected").text,
        "orders-0: node 1 is leader again (epoch 2), it is the preferred replica (requested election)"
    );
}

#[test]
fn electing_every_partition_leaves_out_the_ones_already_led_by_their_preferred_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster
        .create_assigned("t", vec![vec![1, 2], vec![2, 1], vec![1, 2]])
        .unwrap();
    cluster.fence(1);
    cluster.ok(Command::UnfenceBroker { id: 1 });
    cluster.set_isr("t", 0, vec![2, 1]).unwrap();
    let results = per_partition(cluster.ok(Command::ElectLeaders {
        partitions: None,
        unclean: false,
        automatic: true,
    }));
    assert_eq!(
        results,
        vec![
            ("t".to_string(), 0, None),
            (
                "t".to_string(),
                2,
                Some(ErrorCode::PreferredLeaderNotAvailable)
            ),
        ]
    );
    assert!(
        cluster
            .last_event("preferred_leader_elected")
            .text
            .ends_with("(automatic rebalance)")
    );
}

#[test]
fn unclean_election_only_for_partitions_without_a_leader() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster
        .create_assigned("t", vec![vec![1, 2], vec![2, 1]])
        .unwrap();
    shrink_isr_to_leader(&mut cluster);
    cluster.fence(1);
    cluster.fence(2);
    cluster.ok(Command::UnfenceBroker { id: 2 });
    // t-1 came back with node 2; t-0 waits for node 1, its only in-sync replica.
    assert_eq!(cluster.partition("t", 0).leader, -1);
    let results = per_partition(cluster.elect(Some(vec![("t", 1)]), true));
    assert_eq!(results[0].2, Some(ErrorCode::ElectionNotNeeded));

    let before = cluster.partition("t", 0);
    let results = per_partition(cluster.elect(Some(vec![("t", 0)]), true));
    assert_eq!(results[0].2, None);
    let after = cluster.partition("t", 0);
    assert_eq!((after.leader, after.isr.clone()), (2, vec![2]));
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(
        cluster.last_event("leader_elected").text,
        "t-0: node 2 is leader (epoch 2), it was not in sync (unclean election requested, records may be lost)"
    );

    // Nobody alive: nothing to elect.
    cluster.fence(2);
    let results = per_partition(cluster.elect(Some(vec![("t", 0)]), true));
    assert_eq!(results[0].2, Some(ErrorCode::EligibleLeadersNotAvailable));
}

#[test]
fn reassignment_adds_replicas_then_removes_the_old_ones_once_the_new_are_in_sync() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4]);
    cluster
        .create_assigned("orders", vec![vec![1, 2], vec![1, 2]])
        .unwrap();
    assert_eq!(cluster.reassign("orders", 1, Some(vec![3, 4])), None);
    let started = cluster.partition("orders", 1);
    assert_eq!(started.replicas, vec![3, 4, 1, 2]);
    assert_eq!(started.adding_replicas, vec![3, 4]);
    assert_eq!(started.removing_replicas, vec![1, 2]);
    assert_eq!(started.isr, vec![1, 2]);
    assert_eq!((started.leader, started.leader_epoch), (1, 0));
    assert_eq!(started.partition_epoch, 1);
    assert!(started.is_reassigning());
    assert_eq!(
        cluster.last_event("reassignment_started").text,
        "orders-1: reassignment to [3, 4] started; nodes 3 and 4 will copy the log before nodes 1 and 2 leave"
    );

    // Node 3 catches up: not complete while node 4 is not in sync.
    cluster.set_isr("orders", 1, vec![1, 2, 3]).unwrap();
    assert!(cluster.partition("orders", 1).is_reassigning());

    // Node 4 catches up: complete, and the leader (node 1) hands over to 3.
    let CommandOutput::Partition(returned) =
        cluster.set_isr("orders", 1, vec![1, 2, 3, 4]).unwrap()
    else {
        panic!("expected Partition");
    };
    let done = cluster.partition("orders", 1);
    assert_eq!(returned, done, "AlterPartition answers the completed state");
    assert_eq!(done.replicas, vec![3, 4]);
    assert_eq!(done.isr, vec![3, 4]);
    assert_eq!(done.leader, 3);
    assert_eq!(done.leader_epoch, 1);
    assert_eq!(done.partition_epoch, 4);
    assert!(!done.is_reassigning());
    assert_eq!(
        cluster.last_event("reassignment_completed").text,
        "orders-1: reassignment complete; replicas [3, 4], leader node 3 (nodes 1 and 2 left)"
    );
    assert_eq!(
        cluster.last_event("leader_elected").text,
        "orders-1: node 3 is leader (epoch 1), it was in sync (the reassignment removed node 1)"
    );
    assert_eq!(cluster.partition("orders", 0).replicas, vec![1, 2]);
}

#[test]
fn raising_and_lowering_the_replication_factor() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    assert_eq!(cluster.reassign("t", 0, Some(vec![1, 2, 3])), None);
    let raising = cluster.partition("t", 0);
    assert_eq!(raising.replicas, vec![1, 2, 3]);
    assert_eq!(raising.adding_replicas, vec![3]);
    assert!(raising.removing_replicas.is_empty());
    assert_eq!(
        cluster.last_event("reassignment_started").text,
        "t-0: reassignment to [1, 2, 3] started; node 3 will copy the log and join the ISR"
    );
    cluster.set_isr("t", 0, vec![1, 2, 3]).unwrap();
    let raised = cluster.partition("t", 0);
    assert!(!raised.is_reassigning());
    assert_eq!((raised.leader, raised.leader_epoch), (1, 0));
    assert_eq!(
        cluster.last_event("reassignment_completed").text,
        "t-0: reassignment complete; replicas [1, 2, 3], leader node 1"
    );

    // Lowering it with every target replica in sync completes at once.
    assert_eq!(cluster.reassign("t", 0, Some(vec![2, 3])), None);
    let lowered = cluster.partition("t", 0);
    assert_eq!(lowered.replicas, vec![2, 3]);
    assert_eq!(lowered.isr, vec![2, 3]);
    assert_eq!(lowered.leader, 2);
    assert!(!lowered.is_reassigning());
    assert_eq!(
        cluster.last_event("reassignment_completed").text,
        "t-0: reassignment complete; replicas [2, 3], leader node 2 (node 1 left)"
    );
}

#[test]
fn reassignments_are_validated_per_partition() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    let results = per_partition(cluster.ok(Command::AlterReassignments {
        changes: vec![
            ("t".into(), 0, Some(vec![])),
            ("t".into(), 0, Some(vec![1, 1])),
            ("t".into(), 0, Some(vec![1, 9])),
            ("t".into(), 5, Some(vec![1])),
            ("nope".into(), 0, Some(vec![1])),
            ("t".into(), 0, None),
            ("t".into(), 0, Some(vec![1, 2])),
        ],
    }));
    let codes: Vec<Option<ErrorCode>> = results.into_iter().map(|(_, _, code)| code).collect();
    assert_eq!(
        codes,
        vec![
            Some(ErrorCode::InvalidReplicaAssignment),
            Some(ErrorCode::InvalidReplicaAssignment),
            Some(ErrorCode::InvalidReplicaAssignment),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::NoReassignmentInProgress),
            None,
        ]
    );
    let unchanged = cluster.partition("t", 0);
    assert_eq!(unchanged.partition_epoch, 0, "a no-op changes nothing");
    assert!(!cluster.event_kinds().contains(&"reassignment_started"));
}

#[test]
fn cancelling_restores_the_original_replicas() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 4]));
    cluster.set_isr("t", 0, vec![1, 2, 3]).unwrap();
    let before = cluster.partition("t", 0);
    assert_eq!(cluster.reassign("t", 0, None), None);
    let cancelled = cluster.partition("t", 0);
    assert_eq!(cancelled.replicas, vec![1, 2]);
    assert_eq!(cancelled.isr, vec![1, 2]);
    assert_eq!(cancelled.leader, 1);
    assert!(!cancelled.is_reassigning());
    assert_eq!(cancelled.partition_epoch, before.partition_epoch + 1);
    assert_eq!(cancelled.leader_epoch, before.leader_epoch);
    assert_eq!(
        cluster.last_event("reassignment_cancelled").text,
        "t-0: reassignment to [3, 4] cancelled; replicas are back to [1, 2]; nodes 3 and 4 stop copying and delete their copies"
    );
    assert_eq!(
        cluster.reassign("t", 0, None),
        Some(ErrorCode::NoReassignmentInProgress)
    );
}

#[test]
fn cancelling_when_a_new_replica_leads_elects_an_original_one() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 1]));
    cluster.set_isr("t", 0, vec![1, 2, 3]).unwrap();
    // Reassignment complete would need node 1 too; it is: so it completed.
    assert!(!cluster.partition("t", 0).is_reassigning());

    cluster.reassign("t", 0, Some(vec![2, 3]));
    // Node 1 (leader) is being removed; fence it: node 3 takes over.
    cluster.set_isr("t", 0, vec![1, 3]).unwrap();
    cluster.fence(1);
    let moved = cluster.partition("t", 0);
    assert_eq!(moved.leader, 3);
    assert!(moved.is_reassigning(), "node 2 is not in sync yet");
    assert_eq!(moved.adding_replicas, vec![2]);
    assert_eq!(cluster.reassign("t", 0, None), None);
    let cancelled = cluster.partition("t", 0);
    assert_eq!(cancelled.replicas, vec![3, 1]);
    assert_eq!(cancelled.leader, 3);
    assert_eq!(cancelled.isr, vec![3]);
}

#[test]
fn cancelling_drops_a_leading_new_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 2]));
    // Node 3 joins the ISR; the reassignment waits for nothing else, so it
    // completes unless node 2 is out of sync: shrink first.
    cluster.set_isr("t", 0, vec![1]).unwrap();
    cluster.set_isr("t", 0, vec![1, 3]).unwrap();
    assert!(cluster.partition("t", 0).is_reassigning());
    // Node 1 is fenced: node 3 (new) leads.
    cluster.fence(1);
    assert_eq!(cluster.partition("t", 0).leader, 3);
    // Cancelling would leave no original replica in sync.
    assert_eq!(
        cluster.reassign("t", 0, None),
        Some(ErrorCode::InvalidReplicaAssignment)
    );
    // With unclean election allowed, node 2 (alive) leads the original set.
    cluster.set_topic_config("t", UNCLEAN_LEADER_ELECTION_CONFIG, "true");
    let before = cluster.partition("t", 0);
    assert_eq!(cluster.reassign("t", 0, None), None);
    let cancelled = cluster.partition("t", 0);
    assert_eq!(
        cancelled.replicas,
        vec![2, 1],
        "Kafka keeps the in-flight order minus the replicas being added"
    );
    assert_eq!((cancelled.leader, cancelled.isr.clone()), (2, vec![2]));
    assert_eq!(cancelled.leader_epoch, before.leader_epoch + 1);
    assert_eq!(cancelled.partition_epoch, before.partition_epoch + 1);
}

#[test]
fn a_new_reassignment_replaces_the_one_in_flight() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 4]));
    cluster.reassign("t", 0, Some(vec![1, 3]));
    let replaced = cluster.partition("t", 0);
    // Computed from the original [1, 2]: node 4 no longer joins.
    assert_eq!(replaced.replicas, vec![1, 3, 2]);
    assert_eq!(replaced.adding_replicas, vec![3]);
    assert_eq!(replaced.removing_replicas, vec![2]);
    assert_eq!(
        cluster.last_event("reassignment_started").text,
        "t-0: reassignment to [1, 3] started (replacing the reassignment to [3, 4]; node 4 stops copying); node 3 will copy the log before node 2 leaves"
    );
    cluster.set_isr("t", 0, vec![1, 2, 3]).unwrap();
    let done = cluster.partition("t", 0);
    assert_eq!(
        (done.replicas.clone(), done.isr.clone(), done.leader),
        (vec![1, 3], vec![1, 3], 1)
    );

    // A target equal to everything in flight raises the replication
    // factor: it completes once the new replicas are in sync.
    cluster.reassign("t", 0, Some(vec![2, 4]));
    let in_flight = cluster.partition("t", 0).replicas;
    assert_eq!(in_flight, vec![2, 4, 1, 3]);
    assert_eq!(cluster.reassign("t", 0, Some(in_flight.clone())), None);
    let kept = cluster.partition("t", 0);
    assert_eq!(kept.replicas, in_flight);
    assert_eq!(kept.adding_replicas, vec![2, 4]);
    assert!(kept.removing_replicas.is_empty());
    cluster.set_isr("t", 0, vec![1, 3, 2, 4]).unwrap();
    let raised = cluster.partition("t", 0);
    assert!(!raised.is_reassigning());
    assert_eq!(raised.replicas, in_flight);
}

#[test]
fn replacing_then_cancelling_restores_the_original_replicas() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4, 5]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 4]));
    // Node 4 catches up before the move is replaced.
    cluster.set_isr("t", 0, vec![1, 2, 4]).unwrap();
    assert_eq!(cluster.reassign("t", 0, Some(vec![3, 5])), None);
    let replaced = cluster.partition("t", 0);
    assert_eq!(replaced.replicas, vec![3, 5, 1, 2]);
    assert_eq!(replaced.adding_replicas, vec![3, 5]);
    assert_eq!(replaced.removing_replicas, vec![1, 2]);
    assert_eq!(replaced.isr, vec![1, 2], "node 4 leaves the ISR too");

    assert_eq!(cluster.reassign("t", 0, None), None);
    let cancelled = cluster.partition("t", 0);
    assert_eq!(cancelled.replicas, vec![1, 2]);
    assert_eq!(cancelled.isr, vec![1, 2]);
    assert_eq!(cancelled.leader, 1);
    assert!(!cancelled.is_reassigning());
    assert_eq!(
        cluster.last_event("reassignment_cancelled").text,
        "t-0: reassignment to [3, 5] cancelled; replicas are back to [1, 2]; nodes 3 and 5 stop copying and delete their copies"
    );
}

#[test]
fn replacing_a_reassignment_moves_leadership_off_a_dropped_replica() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4, 5]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 4]));
    cluster.set_isr("t", 0, vec![1, 2, 3]).unwrap();
    // Node 1 goes: node 3, being added and in sync, takes over.
    cluster.fence(1);
    let moved = cluster.partition("t", 0);
    assert_eq!(moved.leader, 3);
    assert!(moved.is_reassigning());

    // The new target drops node 3: node 2 (in sync) leads.
    assert_eq!(cluster.reassign("t", 0, Some(vec![2, 5])), None);
    let replaced = cluster.partition("t", 0);
    assert_eq!(replaced.replicas, vec![2, 5, 1]);
    assert_eq!(replaced.adding_replicas, vec![5]);
    assert_eq!(replaced.removing_replicas, vec![1]);
    assert_eq!(replaced.isr, vec![2]);
    assert_eq!(replaced.leader, 2);
    assert_eq!(replaced.leader_epoch, moved.leader_epoch + 1);
    assert_eq!(
        cluster.last_event("leader_elected").text,
        format!(
            "t-0: node 2 is leader (epoch {}), it was in sync (the replaced reassignment removed node 3)",
            moved.leader_epoch + 1
        )
    );
}

#[test]
fn replacing_a_reassignment_refuses_to_drop_the_whole_isr() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 2]));
    cluster.set_isr("t", 0, vec![1]).unwrap();
    cluster.set_isr("t", 0, vec![1, 3]).unwrap();
    cluster.fence(1);
    let before = cluster.partition("t", 0);
    assert_eq!((before.leader, before.isr.clone()), (3, vec![3]));
    // Dropping node 3, the only replica in sync, would need an unclean
    // election.
    assert_eq!(
        cluster.reassign("t", 0, Some(vec![4, 2])),
        Some(ErrorCode::InvalidReplicaAssignment)
    );
    assert_eq!(cluster.partition("t", 0), before);
}

#[test]
fn reordering_the_replicas_changes_the_preferred_leader() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster
        .create_assigned("orders", vec![vec![1, 2, 3], vec![1, 2, 3]])
        .unwrap();
    assert_eq!(cluster.reassign("orders", 1, Some(vec![2, 1, 3])), None);
    let reordered = cluster.partition("orders", 1);
    assert_eq!(reordered.replicas, vec![2, 1, 3]);
    assert_eq!(reordered.isr, vec![1, 2, 3]);
    assert_eq!((reordered.leader, reordered.leader_epoch), (1, 0));
    assert_eq!(reordered.partition_epoch, 1);
    assert!(!reordered.is_reassigning());
    assert_eq!(
        cluster.last_event("reassignment_completed").text,
        "orders-1: replica order is now [2, 1, 3]; node 2 is the preferred leader"
    );
    // The same order again changes nothing.
    assert_eq!(cluster.reassign("orders", 1, Some(vec![2, 1, 3])), None);
    assert_eq!(cluster.partition("orders", 1), reordered);
    // A preferred election now moves leadership to node 2.
    cluster.elect(Some(vec![("orders", 1)]), false);
    assert_eq!(cluster.partition("orders", 1).leader, 2);
    assert_eq!(cluster.partition("orders", 0).replicas, vec![1, 2, 3]);
}

#[test]
fn reordering_the_original_replicas_ends_a_move_in_flight() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3, 4]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![3, 4]));
    cluster.set_isr("t", 0, vec![1, 2, 3]).unwrap();
    assert_eq!(cluster.reassign("t", 0, Some(vec![2, 1])), None);
    let done = cluster.partition("t", 0);
    assert_eq!(done.replicas, vec![2, 1]);
    assert_eq!(done.isr, vec![1, 2]);
    assert_eq!(done.leader, 1);
    assert!(!done.is_reassigning());
    assert_eq!(
        cluster.last_event("reassignment_completed").text,
        "t-0: reassignment complete; replicas [2, 1], leader node 1 (nodes 3 and 4 left); replica order is now [2, 1]; node 2 is the preferred leader"
    );
}

#[test]
fn an_unclean_election_on_fencing_can_complete_a_reassignment() {
    let mut cluster = Cluster::with_brokers(&[1, 2]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.set_topic_config("t", UNCLEAN_LEADER_ELECTION_CONFIG, "true");
    shrink_isr_to_leader(&mut cluster);
    cluster.reassign("t", 0, Some(vec![2]));
    assert!(cluster.partition("t", 0).is_reassigning());
    // Node 1 goes; node 2, out of sync, is elected uncleanly and is the
    // whole target.
    cluster.fence(1);
    let done = cluster.partition("t", 0);
    assert!(!done.is_reassigning());
    assert_eq!(
        (done.replicas.clone(), done.isr.clone(), done.leader),
        (vec![2], vec![2], 2)
    );
    assert_eq!(
        cluster.last_event("reassignment_completed").text,
        "t-0: reassignment complete; replicas [2], leader node 2 (node 1 left)"
    );
}

#[test]
fn isr_shrink_names_the_followers_throttle() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2, 3]]).unwrap();
    cluster.ok(Command::AlterBrokerConfigs {
        broker: Some(3),
        set: BTreeMap::from([(
            FOLLOWER_THROTTLED_RATE_CONFIG.to_string(),
            "1024".to_string(),
        )]),
        delete: vec![],
    });
    cluster.set_topic_config("t", FOLLOWER_THROTTLED_REPLICAS_CONFIG, "0:3");
    cluster.set_isr("t", 0, vec![1, 2]).unwrap();
    assert_eq!(
        cluster.last_event("isr_shrunk").text,
        "t-0: node 3 fell out of sync; ISR is now [1, 2]; its replication is throttled to 1024 B/s"
    );
    // Node 2 is not listed as throttled.
    cluster.set_isr("t", 0, vec![1]).unwrap();
    assert_eq!(
        cluster.last_event("isr_shrunk").text,
        "t-0: node 2 fell out of sync; ISR is now [1]"
    );
}

#[test]
fn unregistering_a_node_requires_that_it_hosts_no_replicas() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster
        .create_assigned("t", vec![vec![1, 3], vec![2, 1]])
        .unwrap();
    let refused = cluster
        .run(Command::UnregisterBroker { id: 3 })
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidRequest);
    assert_eq!(
        refused.message,
        "node 3 still hosts replicas of t-0; reassign them first"
    );
    assert_eq!(
        error_code(cluster.run(Command::UnregisterBroker { id: 9 })),
        ErrorCode::BrokerIdNotRegistered
    );

    cluster.reassign("t", 0, Some(vec![1, 2]));
    assert_eq!(
        error_code(cluster.run(Command::UnregisterBroker { id: 3 })),
        ErrorCode::InvalidRequest,
        "still a replica while the reassignment is in flight"
    );
    cluster.set_isr("t", 0, vec![1, 3, 2]).unwrap();
    assert_eq!(cluster.partition("t", 0).replicas, vec![1, 2]);
    cluster.ok(Command::UnregisterBroker { id: 3 });
    assert!(cluster.image.broker(3).is_none());
    assert!(cluster.image.unregistered_brokers.contains(&3));
    let kinds = cluster.event_kinds();
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["broker_fenced", "broker_unregistered"]
    );
    assert_eq!(
        cluster.last_event("broker_unregistered").text,
        "node 3 unregistered; it is no longer part of the cluster"
    );
    // It may come back.
    cluster.register(3, 7);
    assert!(cluster.image.unregistered_brokers.is_empty());
}

#[test]
fn operations_survive_json_and_old_images_load() {
    let mut cluster = Cluster::with_brokers(&[1, 2, 3]);
    cluster.create_assigned("t", vec![vec![1, 2]]).unwrap();
    cluster.reassign("t", 0, Some(vec![2, 3]));
    let json = serde_json::to_string(&cluster.image).unwrap();
    let loaded: MetadataImage = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, cluster.image);
    // An image written before reassignments and broker configs existed.
    let mut old: serde_json::Value =
        serde_json::to_value(&Cluster::with_brokers(&[1]).image).unwrap();
    old.as_object_mut().unwrap().remove("broker_configs");
    let loaded: MetadataImage = serde_json::from_value(old).unwrap();
    assert!(loaded.broker_configs.is_empty());
}
