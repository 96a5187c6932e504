//! `eddy cluster ...`: the local cluster from the command line. `up` runs the
//! supervisor (eddy-cluster) in the foreground; the other subcommands talk
//! to it through the control port recorded in `DATA/cluster.json`, and
//! `status` also reads the cluster through the Kafka protocol, as any client
//! would.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use eddy_client::{Client, ClusterMetadata, QuorumInfo};
use eddy_cluster::{
    ClusterFile, ClusterSpec, ControlClient, ControlCommand, ControlReply, ControlServer,
    NodeState, NodeStatus, Supervisor,
};
use serde_json::json;

/// How long `up` waits for every node to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `status` gives each node per request: a paused node must not
/// hold the answer up for long.
const STATUS_NODE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start the local cluster in the foreground and print its bootstrap servers.
    #[command(
        long_about = "Start the local cluster in the foreground and print its bootstrap servers.

Each node is a separate `eddy broker` process in its own process group, with its data in \
DIR/node-N and its log in DIR/node-N/eddy.log. Node N's Kafka port is BASE_PORT + N - 1 and its \
controller port BASE_PORT + 100 + N - 1. The command returns once every node answers Kafka \
Metadata, then keeps running and accepts `eddy cluster status|kill|stop|start|pause|resume|\
restart|add|remove|slow|isolate|heal|down` from other terminals.

The cluster file DIR/eddy.toml is written on the first start (nodes, base_port and a [defaults] \
table of cluster-wide broker configs by Kafka name) and is watched while the cluster runs: raising \
`nodes` starts the new nodes, and [defaults] changes apply to every node at once. An edit with \
any error (TOML syntax, an unknown key, `nodes` lowered, `base_port` changed, a config value the \
cluster refuses) changes nothing: it is reported here and by `eddy cluster status`. Later starts \
follow the file and keep the nodes added or removed since (DIR/nodes.json). On an existing \
cluster, --nodes may only raise the node count (it starts the extra nodes and updates eddy.toml); \
to remove a node use `eddy cluster remove N`. --base-port must match the file.

Ctrl-C or SIGTERM stops the whole cluster cleanly (SIGINT to every node, SIGKILL to any still \
running after 5 s) and exits 0. If the supervisor itself is killed, the nodes die with it (Linux). \
Running `up` again on the same data directory keeps every topic and record."
    )]
    Up(UpArgs),
    /// Show each node's process state and ports, the active controller,
    /// quorum health and partition leaders.
    #[command(
        long_about = "Show each node's process state (running, paused, stopped, exited), pid and \
ports, and what the cluster says about itself through the Kafka protocol: the active controller \
(Metadata and DescribeCluster, and the metadata quorum's leader from DescribeQuorum when the nodes \
support it), quorum health (voters and how far each lags), and how many partitions each node leads."
    )]
    Status(StatusArgs),
    /// Crash node N (SIGKILL): no hand-off; its partitions need new leaders.
    #[command(
        long_about = "Crash node N with SIGKILL. The node gets no chance to hand anything off: \
the controller notices it is gone and elects new leaders from the in-sync replicas of the \
partitions it led. Its data stays; `eddy cluster restart N` or `start N` brings it back."
    )]
    Kill(NodeArgs),
    /// Stop node N cleanly (SIGTERM): it hands its leaderships to in-sync
    /// followers first.
    #[command(
        long_about = "Stop node N with a controlled shutdown (SIGTERM): the node hands the \
leadership of each partition it leads to an in-sync follower, then exits. If it has not exited \
within 10 s it is killed (SIGKILL). Its data stays; `eddy cluster start N` brings it back."
    )]
    Stop(NodeArgs),
    /// Start node N again after kill or stop, with its data.
    Start(NodeArgs),
    /// Hang node N (SIGSTOP): alive but silent, as a stuck process.
    #[command(
        long_about = "Hang node N with SIGSTOP: the process stays alive, holds its ports and \
answers nothing, like a stuck machine. Clients time out on it and, once its session times out, \
the controller moves its leaderships to in-sync followers. `eddy cluster resume N` lets it carry on."
    )]
    Pause(NodeArgs),
    /// Let a paused node N carry on (SIGCONT).
    Resume(NodeArgs),
    /// Stop node N cleanly (SIGTERM, leadership handed off) if it runs, then
    /// start it again with the same data.
    Restart(NodeArgs),
    /// Start a new node (the next id) and wait until it has joined.
    #[command(
        long_about = "Start a new node with the next id (one past the highest), wait until it \
has joined and print its ports. Node N listens on BASE_PORT + N - 1 (controller BASE_PORT + 100 + \
N - 1). It joins the metadata quorum as a learner; the controller promotes it to voter while the \
quorum has fewer than 5 voters. It holds no partitions until topics are created or partitions \
are reassigned to it. DIR/eddy.toml's `nodes` is raised to match."
    )]
    Add(DataArgs),
    /// Move every replica off node N, then stop it and remove it from the cluster.
    #[command(
        long_about = "Remove node N for good. First every partition with a replica on N is \
reassigned (AlterPartitionReassignments) to a live node that holds no replica of it yet, the \
least loaded first; new replicas catch up before the old ones leave, so clients see no gap. \
Progress is printed as the replicas move. If some partition has nowhere to go (every other live \
node already holds a replica of it), nothing moves and the command says which. Once N holds no \
replicas it is stopped (SIGTERM), unregistered from the cluster (UnregisterBroker, which also \
takes it out of the metadata quorum), and its data directory is deleted. DIR/eddy.toml's `nodes` \
is lowered to match."
    )]
    Remove(NodeArgs),
    /// Throttle node N's replication to BYTES/S, so it falls out of the ISR.
    #[command(
        long_about = "Throttle node N's replication with Kafka's replication throttles: \
follower.replication.throttled.rate and leader.replication.throttled.rate are set to BYTES/S on \
node N, and every partition with a replica on N is listed in its topic's \
follower.replication.throttled.replicas (as PARTITION:N). As a follower, N then fetches at most \
BYTES/S; under load it falls behind, and once it has lagged for replica.lag.time.max.ms the \
leader drops it from the ISR. The node stays up and reachable: this is the lag path that killing \
or pausing a node never shows. `eddy cluster heal N` lifts the throttle and N rejoins the ISR \
when it catches up. BYTES/S takes k, m and g suffixes (1024-based), e.g. 100k or 1m."
    )]
    Slow(SlowArgs),
    /// Cut node N off from the other nodes while clients still reach it.
    #[command(
        long_about = "Cut node N off from the other nodes: its replication links (the fetches \
it sends as a follower and serves as a leader) and its controller links (metadata quorum and \
heartbeats), both ways, while Kafka clients can still connect to it. Works without root: the \
node itself drops those links when DIR/node-N/faults.json says so. An isolated leader cannot \
acknowledge acks=all writes; the controller fences it and elects new leaders among the in-sync \
replicas. `eddy cluster heal N` reconnects it: it truncates what it wrote alone and rejoins. A \
restart of the node also clears the fault."
    )]
    Isolate(NodeArgs),
    /// Undo `isolate` and `slow` on node N.
    #[command(
        long_about = "Reconnect an isolated node N and lift the replication throttle set by \
`eddy cluster slow` (both rates on node N and its PARTITION:N entries in the topics' \
follower.replication.throttled.replicas). The node catches up and rejoins the ISR."
    )]
    Heal(NodeArgs),
    /// Stop the whole cluster (SIGINT to every node at once) and its supervisor.
    #[command(
        long_about = "Stop the whole cluster: SIGINT to every node at once (a clean shutdown \
without leadership hand-offs, since everything stops), SIGKILL to any node still running after \
5 s; then the supervisor (`eddy cluster up`) exits. The data stays for the next `up`."
    )]
    Down(DataArgs),
}

#[derive(Args)]
pub(crate) struct UpArgs {
    /// Number of nodes for a new cluster [default: 3]; on an existing
    /// cluster it may only raise the count (see eddy.toml).
    #[arg(long)]
    nodes: Option<u16>,
    #[command(flatten)]
    data: DataArgs,
    /// First client port; node N listens on base-port + N - 1 and its
    /// controller on base-port + 100 + N - 1 [default: 19092, or eddy.toml's].
    #[arg(long)]
    base_port: Option<u16>,
    /// Log filter for the supervisor and every node, e.g. info or debug (or RUST_LOG).
    #[arg(long, default_value = "info")]
    log: String,
}

#[derive(Args)]
pub(crate) struct DataArgs {
    /// The cluster's data directory [default: the platform data dir, e.g. ~/.local/share/eddy/cluster].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct NodeArgs {
    /// The node's id, from 1.
    node: u16,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
pub(crate) struct SlowArgs {
    /// The node's id.
    node: u16,
    /// Replication rate in bytes per second, e.g. 65536, 100k or 1m.
    #[arg(long, value_name = "BYTES/S", value_parser = parse_rate)]
    rate: u64,
    #[command(flatten)]
    data: DataArgs,
}

fn parse_rate(text: &str) -> Result<u64, String> {
    eddy_cluster::ops::parse_rate(text)
}

#[derive(Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Up(args) => up(args),
        ClusterCommand::Status(args) => status(args),
        ClusterCommand::Kill(args) => node_command(ControlCommand::Kill, args),
        ClusterCommand::Stop(args) => node_command(ControlCommand::Stop, args),
        ClusterCommand::Start(args) => node_command(ControlCommand::Start, args),
        ClusterCommand::Pause(args) => node_command(ControlCommand::Pause, args),
        ClusterCommand::Resume(args) => node_command(ControlCommand::Resume, args),
        ClusterCommand::Restart(args) => node_command(ControlCommand::Restart, args),
        ClusterCommand::Add(args) => add(args),
        ClusterCommand::Remove(args) => remove(args),
        ClusterCommand::Slow(args) => slow(args),
        ClusterCommand::Isolate(args) => {
            let node = args.node;
            node_command(ControlCommand::Isolate, args)?;
            println!(
                "node {node} is cut off from the other nodes (clients still reach it); \
                 `eddy cluster heal {node}` reconnects it"
            );
            Ok(())
        }
        ClusterCommand::Heal(args) => {
            let node = args.node;
            node_command(ControlCommand::Heal, args)?;
            println!("node {node} is healed: connected to the others, replication not throttled");
            Ok(())
        }
        ClusterCommand::Down(args) => {
            let data = args.resolve()?;
            ControlClient::open(&data)?.send(ControlCommand::Down, None)?;
            println!("eddy cluster in {} is down", data.display());
            Ok(())
        }
    }
}

impl DataArgs {
    fn resolve(self) -> anyhow::Result<PathBuf> {
        data_dir(self.data)
    }
}

/// The local cluster's data directory: `data`, or the platform data dir's
/// `cluster` folder (the same one the app uses).
pub(crate) fn data_dir(data: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match data {
        Some(data) => Ok(data),
        None => Ok(directories::ProjectDirs::from("dev", "eddy", "eddy")
            .context("no home directory to keep the cluster's data in; pass --data DIR")?
            .data_dir()
            .join("cluster")),
    }
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    crate::init_logging(&args.log);
    let data = args.data.resolve()?;
    let eddy_binary =
        std::env::current_exe().context("finding the eddy binary to run nodes with")?;
    let mut spec = ClusterSpec::new(&data, eddy_binary);
    spec.set_node_count(args.nodes.unwrap_or(ClusterSpec::DEFAULT_NODES));
    spec.base_port = args.base_port.unwrap_or(ClusterSpec::DEFAULT_BASE_PORT);
    spec.log_filter = args.log;
    if let Ok(control) = ControlClient::open(&data)
        && control.send(ControlCommand::Status, None).is_ok()
    {
        return Err(eddy_cluster::ClusterError::DataDirInUse {
            data_dir: data,
            supervisor_pid: Some(control.state().supervisor_pid),
        }
        .into());
    }
    if let Some((_, Ok(file))) = ClusterFile::read(&data)? {
        let path = ClusterFile::path(&data);
        if let Some(base_port) = args.base_port
            && base_port != file.base_port
        {
            anyhow::bail!(
                "{} says base_port = {}; to move the cluster to other ports, edit it (the \
                 cluster keeps its data) or leave out --base-port",
                path.display(),
                file.base_port
            );
        }
        match args.nodes {
            Some(nodes) if nodes < file.nodes => anyhow::bail!(
                "the cluster in {} has {} nodes ({} says nodes = {}); --nodes can only add \
                 nodes. To remove one, run `eddy cluster remove N` while the cluster runs",
                data.display(),
                file.nodes,
                path.display(),
                file.nodes
            ),
            Some(nodes) if nodes > file.nodes => ClusterFile::set_nodes(&data, nodes)?,
            _ => {}
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let shutdown = crate::shutdown_signal();
        tokio::pin!(shutdown);
        let mut supervisor = Supervisor::start(spec)?;
        let ready = tokio::select! {
            ready = supervisor.wait_ready(READY_TIMEOUT) => ready?,
            () = &mut shutdown => {
                supervisor.down(eddy_cluster::DEFAULT_DOWN_TIMEOUT).await;
                return Ok(());
            }
        };
        let server = ControlServer::bind(&mut supervisor).await?;
        let spec = supervisor.spec().clone();
        println!(
            "eddy cluster ready: bootstrap servers {} ({} nodes, data in {})",
            spec.bootstrap_servers(),
            spec.node_count(),
            data.display()
        );
        for node in supervisor.nodes() {
            println!(
                "  node {}: 127.0.0.1:{} (controller 127.0.0.1:{}), pid {}, log {}",
                node.id,
                node.port,
                node.controller_port,
                node.pid
                    .map(|pid| pid.to_string())
                    .unwrap_or_else(|| "-".into()),
                node.log_path.display()
            );
        }
        tracing::info!(ready_ms = ready.as_millis() as u64, "cluster ready");
        eddy_cluster::control::serve(&mut supervisor, server, shutdown).await?;
        println!("eddy cluster down");
        Ok(())
    })
}

fn node_command(command: ControlCommand, args: NodeArgs) -> anyhow::Result<()> {
    let data = args.data.resolve()?;
    let reply = ControlClient::open(&data)?.send(command, Some(args.node))?;
    let node = reply
        .nodes
        .iter()
        .find(|node| node.id == args.node)
        .with_context(|| format!("the supervisor's reply has no node {}", args.node))?;
    println!("node {}: {}{}", node.id, node.state, pid_suffix(node));
    Ok(())
}

/// How long `add` may take: the supervisor waits up to a minute for the node.
const ADD_COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `remove` may go without a progress line.
const REMOVE_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

fn add(args: DataArgs) -> anyhow::Result<()> {
    let data = args.resolve()?;
    let reply = ControlClient::open(&data)?.send_with_progress(
        ControlCommand::Add,
        None,
        None,
        ADD_COMMAND_TIMEOUT,
        &mut |_| {},
    )?;
    let id = reply
        .node
        .context("the supervisor did not say which node it added")?;
    let node = reply
        .nodes
        .iter()
        .find(|node| node.id == id)
        .with_context(|| format!("the supervisor's reply has no node {id}"))?;
    println!(
        "node {id} added: 127.0.0.1:{} (controller 127.0.0.1:{}), {}{}, log {}",
        node.port,
        node.controller_port,
        node.state,
        pid_suffix(node),
        node.log_path.display()
    );
    println!("bootstrap servers: {}", reply.bootstrap_servers);
    Ok(())
}

fn remove(args: NodeArgs) -> anyhow::Result<()> {
    let data = args.data.resolve()?;
    let reply = ControlClient::open(&data)?.send_with_progress(
        ControlCommand::Remove,
        Some(args.node),
        None,
        REMOVE_COMMAND_TIMEOUT,
        &mut |line| println!("{line}"),
    )?;
    let remaining: Vec<String> = reply.nodes.iter().map(|node| node.id.to_string()).collect();
    println!(
        "node {} removed; the cluster has nodes {}",
        args.node,
        remaining.join(", ")
    );
    Ok(())
}

fn slow(args: SlowArgs) -> anyhow::Result<()> {
    let data = args.data.resolve()?;
    ControlClient::open(&data)?.send_with_progress(
        ControlCommand::Slow,
        Some(args.node),
        Some(args.rate),
        ControlClient::COMMAND_TIMEOUT,
        &mut |_| {},
    )?;
    println!(
        "node {node}: replication throttled to {rate} B/s (follower.replication.throttled.rate \
         and leader.replication.throttled.rate); under load it falls behind and leaves the ISR \
         after replica.lag.time.max.ms. `eddy cluster heal {node}` lifts the throttle",
        node = args.node,
        rate = args.rate
    );
    Ok(())
}

fn pid_suffix(node: &NodeStatus) -> String {
    node.pid
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default()
}

/// What the nodes say about the cluster over the Kafka protocol.
struct KafkaView {
    /// Each running node's own Metadata, by node id.
    metadata: Vec<(u16, Result<ClusterMetadata, String>)>,
    /// Controller ids from DescribeCluster, by the node that answered.
    described_controllers: Vec<(u16, Option<i32>)>,
    /// `None` when no node offers DescribeQuorum.
    quorum: Option<QuorumInfo>,
}

async fn read_kafka_view(nodes: &[NodeStatus]) -> KafkaView {
    let addresses: Vec<(u16, String)> = nodes
        .iter()
        .filter(|node| node.state == NodeState::Running)
        .map(|node| (node.id, format!("127.0.0.1:{}", node.port)))
        .collect();
    let mut client = Client::new(addresses.iter().map(|(_, address)| address.clone()))
        .with_node_timeout(STATUS_NODE_TIMEOUT);
    let mut view = KafkaView {
        metadata: Vec::new(),
        described_controllers: Vec::new(),
        quorum: None,
    };
    for (id, address) in &addresses {
        let metadata = client.metadata_from(address).await;
        let answered = metadata.is_ok();
        view.metadata
            .push((*id, metadata.map_err(|error| error.to_string())));
        if !answered {
            continue;
        }
        if let Ok(description) = client.describe_cluster_from(address).await {
            view.described_controllers
                .push((*id, description.controller_id));
        }
        if view.quorum.is_none()
            && let Ok(Some(quorum)) = client.describe_quorum_from(address).await
        {
            view.quorum = Some(quorum);
        }
    }
    // The quorum leader knows every voter's progress; ask it when another
    // node answered.
    let leader_address = view.quorum.as_ref().and_then(|quorum| {
        let leader = u16::try_from(quorum.leader_id?).ok()?;
        let (_, address) = addresses.iter().find(|(id, _)| *id == leader)?;
        (*address != quorum.answered_by).then(|| address.clone())
    });
    if let Some(address) = leader_address
        && let Ok(Some(quorum)) = client.describe_quorum_from(&address).await
    {
        view.quorum = Some(quorum);
    }
    view
}

/// How recently the quorum leader must have heard from a voter for it to
/// count as in contact (several election timeouts).
const QUORUM_CONTACT_MS: i64 = 3000;

/// Whether a majority of the metadata quorum's voters work together.
#[derive(Debug)]
struct QuorumHealth {
    healthy: bool,
    voters: usize,
    in_contact: Vec<i32>,
}

impl QuorumHealth {
    /// A voter is in contact when its process runs and the leader heard
    /// from it lately (the leader itself counts when it runs).
    fn judge(quorum: &QuorumInfo, nodes: &[NodeStatus]) -> QuorumHealth {
        let running: BTreeSet<i32> = nodes
            .iter()
            .filter(|node| node.state == NodeState::Running)
            .map(|node| i32::from(node.id))
            .collect();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        let in_contact: Vec<i32> = quorum
            .voters
            .iter()
            .filter(|voter| running.contains(&voter.id))
            .filter(|voter| {
                quorum.leader_id == Some(voter.id)
                    || voter
                        .last_fetch_timestamp_ms
                        .is_some_and(|at| now_ms - at <= QUORUM_CONTACT_MS)
            })
            .map(|voter| voter.id)
            .collect();
        let leader_runs = quorum.leader_id.is_some_and(|id| running.contains(&id));
        QuorumHealth {
            healthy: leader_runs && in_contact.len() > quorum.voters.len() / 2,
            voters: quorum.voters.len(),
            in_contact,
        }
    }

    fn describe(&self) -> String {
        let needed = self.voters / 2 + 1;
        if self.healthy {
            format!(
                "healthy: {} of {} voters in contact",
                self.in_contact.len(),
                self.voters
            )
        } else {
            format!(
                "LOST: {} of {} voters in contact, {needed} needed; creating topics, \
                 electing leaders and changing ISRs wait until a majority is back, \
                 and acks=all writes time out",
                self.in_contact.len(),
                self.voters
            )
        }
    }
}

impl KafkaView {
    /// The controller ids the nodes report (Metadata), deduplicated.
    fn controllers(&self) -> BTreeSet<i32> {
        self.metadata
            .iter()
            .filter_map(|(_, metadata)| metadata.as_ref().ok()?.controller_id)
            .chain(self.described_controllers.iter().filter_map(|(_, id)| *id))
            .collect()
    }

    /// Partitions node `id` leads, as node `id` itself reports.
    fn leader_count(&self, id: u16) -> Option<usize> {
        let (_, metadata) = self.metadata.iter().find(|(node, _)| *node == id)?;
        let metadata = metadata.as_ref().ok()?;
        metadata.leader_counts().get(&i32::from(id)).copied()
    }
}

fn status(args: StatusArgs) -> anyhow::Result<()> {
    let data = args.data.resolve()?;
    let control = ControlClient::open(&data)?;
    let reply = control.send(ControlCommand::Status, None)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let view = runtime.block_on(read_kafka_view(&reply.nodes));
    if args.json {
        print_status_json(&data, control.state().supervisor_pid, &reply, &view)
    } else {
        print_status_text(&data, control.state().supervisor_pid, &reply, &view);
        Ok(())
    }
}

fn print_status_json(
    data: &Path,
    supervisor_pid: u32,
    reply: &ControlReply,
    view: &KafkaView,
) -> anyhow::Result<()> {
    let nodes: Vec<serde_json::Value> = reply
        .nodes
        .iter()
        .map(|node| {
            let mut value = serde_json::to_value(node).unwrap_or_default();
            let metadata = view.metadata.iter().find(|(id, _)| *id == node.id);
            value["answers_metadata"] = json!(matches!(metadata, Some((_, Ok(_)))));
            value["metadata_error"] = json!(metadata.and_then(|(_, result)| result.as_ref().err()));
            value["controller_id"] =
                json!(metadata.and_then(|(_, result)| result.as_ref().ok()?.controller_id));
            value["partition_leaders"] = json!(view.leader_count(node.id));
            value
        })
        .collect();
    let quorum_leader = view.quorum.as_ref().and_then(|quorum| quorum.leader_id);
    let report = json!({
        "data_dir": data,
        "supervisor_pid": supervisor_pid,
        "bootstrap_servers": reply.bootstrap_servers,
        "config_file": ClusterFile::path(data),
        "config_error": reply.config_error,
        "nodes": nodes,
        "controller": {
            "ids_reported": view.controllers(),
            "quorum_leader": quorum_leader,
        },
        "quorum": view.quorum,
        "quorum_health": view
            .quorum
            .as_ref()
            .map(|quorum| {
                let health = QuorumHealth::judge(quorum, &reply.nodes);
                json!({
                    "healthy": health.healthy,
                    "voters": health.voters,
                    "in_contact": health.in_contact,
                })
            }),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn print_status_text(data: &Path, supervisor_pid: u32, reply: &ControlReply, view: &KafkaView) {
    println!(
        "eddy cluster in {} (supervisor pid {supervisor_pid}): bootstrap servers {}",
        data.display(),
        reply.bootstrap_servers
    );
    if let Some(error) = &reply.config_error {
        println!("{error}");
    }
    println!(
        "node  pid      state                  port    controller  leaders  faults          kafka"
    );
    for node in &reply.nodes {
        let kafka = match view.metadata.iter().find(|(id, _)| *id == node.id) {
            Some((_, Ok(metadata))) => {
                format!("answers ({} brokers listed)", metadata.brokers.len())
            }
            Some((_, Err(error))) => format!("no answer: {error}"),
            None => "-".to_string(),
        };
        let mut faults = Vec::new();
        if node.isolated {
            faults.push("isolated".to_string());
        }
        if let Some(rate) = node.throttle_rate {
            faults.push(format!("slow {rate}B/s"));
        }
        let faults = if faults.is_empty() {
            "-".to_string()
        } else {
            faults.join(",")
        };
        println!(
            "{:<5} {:<8} {:<22} {:<7} {:<11} {:<8} {:<15} {}",
            node.id,
            node.pid
                .map(|pid| pid.to_string())
                .unwrap_or_else(|| "-".into()),
            node.state.to_string(),
            node.port,
            node.controller_port,
            view.leader_count(node.id)
                .map(|count| count.to_string())
                .unwrap_or_else(|| "-".into()),
            faults,
            kafka
        );
    }
    let controllers = view.controllers();
    let controller = match controllers.len() {
        0 => "unknown (no node names one)".to_string(),
        1 => format!(
            "node {}",
            controllers.iter().next().copied().unwrap_or_default()
        ),
        _ => {
            format!("the nodes disagree: {controllers:?} (each node may still be its own cluster)")
        }
    };
    println!("active controller: {controller}");
    match &view.quorum {
        None => println!("metadata quorum: unknown (the nodes do not offer DescribeQuorum)"),
        Some(quorum) => {
            let leader = quorum
                .leader_id
                .map(|id| format!("node {id}"))
                .unwrap_or_else(|| "none (election in progress)".into());
            println!(
                "metadata quorum: {}",
                QuorumHealth::judge(quorum, &reply.nodes).describe()
            );
            println!(
                "  leader {leader}, epoch {}, high watermark {}",
                quorum.leader_epoch, quorum.high_watermark
            );
            for voter in &quorum.voters {
                let lag = voter
                    .lag
                    .map(|lag| format!("lag {lag}"))
                    .unwrap_or_else(|| "lag unknown".into());
                println!("  voter {}: {lag}", voter.id);
            }
            for observer in &quorum.observers {
                let lag = observer
                    .lag
                    .map(|lag| format!("lag {lag}"))
                    .unwrap_or_else(|| "lag unknown".into());
                println!("  observer {}: {lag}", observer.id);
            }
        }
    }
}
