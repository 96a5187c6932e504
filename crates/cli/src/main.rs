//! `eddy`: run one Kafka-compatible node, or Eddy's default local cluster.
//!
//! `eddy broker` runs a node in the foreground until Ctrl-C or SIGTERM;
//! `eddy cluster up` starts the default local cluster with its data under
//! the platform's data directory. The desktop app runs this same binary
//! for each node.

mod cluster;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use eddy_broker::server::Shutdown;
use eddy_broker::{Broker, BrokerConfig};

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "A Kafka-compatible cluster on your laptop",
    long_about = "A Kafka-compatible cluster on your laptop. Point any Kafka client \
                  (librdkafka, kcat, Java, kafka-python, kafkajs, franz-go) at the \
                  address it prints."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node in the foreground (Ctrl-C or SIGTERM stops it cleanly).
    Broker(BrokerArgs),
    /// The local cluster: up, status, kill, stop, start, pause, resume,
    /// restart, add, remove, slow, isolate, heal, down.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// The console in a browser: start the local cluster (or watch a remote
    /// one with --bootstrap) and serve the UI on 127.0.0.1.
    #[command(
        long_about = "The console in a browser: the same views as the desktop app, served on \
127.0.0.1 only. Starts the local cluster in DIR as the app does (3 nodes on 19092-19094 by \
default, reusing its data), or watches a remote Kafka cluster with --bootstrap. Prints a URL \
with a per-run token; only that URL (and only pages served from this address) can drive it. \
Ctrl-C stops the console and the local cluster."
    )]
    Serve(serve::ServeArgs),
}

#[derive(Args)]
struct BrokerArgs {
    /// This node's id (Kafka's node.id).
    #[arg(long, default_value_t = 1)]
    node_id: i32,
    /// Address to accept Kafka clients on. Stays on loopback unless you
    /// choose another interface.
    #[arg(long, default_value = "127.0.0.1:19092")]
    listen: SocketAddr,
    /// Host:port given to clients in Metadata (Kafka's advertised.listeners);
    /// defaults to the listen address.
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Address of this node's controller listener, where the metadata
    /// quorum and broker heartbeats talk [default: the client port + 100].
    #[arg(long, value_name = "HOST:PORT")]
    controller_listen: Option<SocketAddr>,
    /// The metadata quorum's voters as ID@HOST:PORT controller addresses,
    /// comma separated (Kafka's controller.quorum.voters), e.g.
    /// 1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194. At most 5; a
    /// node not listed joins as a learner. Empty: a one-node cluster.
    #[arg(long, value_name = "ID@HOST:PORT,...", value_delimiter = ',')]
    voters: Vec<String>,
    /// Data directory (created if missing; one node per directory).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Broker config file in Kafka's server.properties format.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one broker config, e.g. --set num.partitions=3 (repeatable; wins
    /// over --config).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Log filter, e.g. info, debug, eddy_broker=trace (or RUST_LOG).
    #[arg(long, default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker(args) => run_broker(args),
        Command::Cluster(command) => cluster::run(command),
        Command::Serve(args) => serve::run(args),
    }
}

/// 128 random bits as hex, from the OS (per-run secrets such as the
/// console's token).
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .is_ok();
    if !from_os {
        use std::hash::{BuildHasher, Hasher};
        for (index, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(index);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn init_logging(filter: &str) {
    // The Raft library narrates every election at info; its warnings are
    // what matter to someone reading a node's log.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("openraft=warn,{filter}")));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
}

fn run_broker(args: BrokerArgs) -> anyhow::Result<()> {
    init_logging(&args.log);
    let mut config = BrokerConfig::new(args.node_id, args.listen, args.data.clone());
    if let Some(path) = &args.config {
        config.load_properties(path)?;
    }
    for setting in &args.settings {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--set expects KEY=VALUE, got {setting:?}");
        };
        config
            .set(key.trim(), value)
            .with_context(|| format!("--set {setting}"))?;
    }
    if let Some(advertise) = &args.advertise {
        let (host, port) = advertise
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_string(), port.parse().ok()?)))
            .with_context(|| format!("--advertise expects HOST:PORT, got {advertise:?}"))?;
        config.advertised = Some((host, port));
    }
    config.controller_listen = args.controller_listen;
    for voter in &args.voters {
        let (id, address) = voter
            .split_once('@')
            .and_then(|(id, address)| Some((id.trim().parse::<i32>().ok()?, address.trim())))
            .with_context(|| format!("--voters expects ID@HOST:PORT, got {voter:?}"))?;
        config.voters.insert(id, address.to_string());
    }
    if config.voters.len() > 5 {
        bail!("at most 5 voters, got {}", config.voters.len());
    }
    serve(config)
}

fn serve(mut config: BrokerConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let data = config.data_dir.clone();
        let node_id = config.node_id;
        // Bind first: a port in use is the most common failure, and should be named.
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (another Kafka or eddy there?)"))?;
        let local = listener.local_addr().unwrap_or(listen);
        // Port 0 means "any": register the port the kernel gave.
        config.listen = local;
        let broker = Broker::start(config).await?;
        println!(
            "eddy node {node_id} ready: bootstrap servers {local} (data in {})",
            data.display()
        );
        eddy_broker::server::run(broker, listener, node_shutdown_signal()).await?;
        Ok(())
    })
}

/// Completes on Ctrl-C, SIGINT or SIGTERM.
async fn shutdown_signal() {
    node_shutdown_signal().await;
}

/// Completes on SIGTERM (a controlled shutdown: leaderships are handed
/// over first) or Ctrl-C / SIGINT (stop without hand-offs).
async fn node_shutdown_signal() -> Shutdown {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => Shutdown::Immediate,
                    _ = terminate.recv() => Shutdown::Controlled,
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                Shutdown::Immediate
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Shutdown::Immediate
    }
}
