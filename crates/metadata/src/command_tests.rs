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
