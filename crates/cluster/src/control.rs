//! Control from another terminal: the supervisor listens on 127.0.0.1 (an
//! ephemeral port, published with a per-run token in `DATA/cluster.json`)
//! for one-line JSON commands and answers each with one JSON line.
//!
//! ```text
//! → {"token": "...", "command": "kill", "node": 2}
//! ← {"ok": true, "error": null, "bootstrap_servers": "...", "nodes": [...]}
//! ```
//!
//! `slow` carries `"rate"` (bytes per second). `remove` answers with
//! progress lines (`{"progress": "moving 12 replicas off node 3: 5 left"}`)
//! before its reply, and other commands are served while its replicas move.
//! Replies carry `config_error`, the last rejected edit of `DATA/eddy.toml`.
//!
//! [`serve`] owns the supervisor while it runs: connection tasks only parse
//! and check the token, then hand the command to the one loop that applies
//! commands in order.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::error::ClusterError;
use crate::state::ClusterState;
use crate::supervisor::{DEFAULT_DOWN_TIMEOUT, DEFAULT_STOP_TIMEOUT, NodeStatus, Supervisor};

/// The longest command line accepted.
pub const MAX_LINE_BYTES: u64 = 4096;
/// Control connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its command line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the reply may take to write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Commands queued for the supervisor loop.
const QUEUE_LENGTH: usize = 16;
/// How often node exits are noticed (and `cluster.json` refreshed) between commands.
const REAP_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlCommand {
    Status,
    Kill,
    Stop,
    Pause,
    Resume,
    Restart,
    Start,
    Down,
    /// Start a new node (the next id).
    Add,
    /// Move every replica off a node, then stop, unregister and forget it.
    Remove,
    /// Throttle a node's replication (`rate` bytes per second).
    Slow,
    /// Cut a node off from the others.
    Isolate,
    /// Undo `isolate` and `slow`.
    Heal,
}

impl ControlCommand {
    pub fn needs_node(self) -> bool {
        !matches!(
            self,
            ControlCommand::Status | ControlCommand::Down | ControlCommand::Add
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub token: String,
    pub command: ControlCommand,
    #[serde(default)]
    pub node: Option<u16>,
    /// For `slow`: bytes per second.
    #[serde(default)]
    pub rate: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub bootstrap_servers: String,
    #[serde(default)]
    pub nodes: Vec<NodeStatus>,
    /// The node the command acted on (for `add`, the new node's id).
    #[serde(default)]
    pub node: Option<u16>,
    /// The last rejected edit of `DATA/eddy.toml`, if any.
    #[serde(default)]
    pub config_error: Option<String>,
}

/// A line sent before the reply while a long command (`remove`) runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlProgress {
    pub progress: String,
}

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeEnd {
    /// A `down` command stopped the cluster.
    DownCommand,
    /// The shutdown future completed and the cluster was brought down.
    Shutdown,
}

/// A bound control listener and its token.
pub struct ControlServer {
    listener: TcpListener,
    port: u16,
    token: String,
}

impl ControlServer {
    /// Binds 127.0.0.1 on an ephemeral port with a fresh token, and
    /// publishes both in `supervisor`'s `DATA/cluster.json`. Commands sent
    /// before [`serve`] runs wait in the listen queue.
    pub async fn bind(supervisor: &mut Supervisor) -> Result<ControlServer, ClusterError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ClusterError::io("binding the control port"))?;
        let port = listener
            .local_addr()
            .map_err(ClusterError::io("reading the control port"))?
            .port();
        let token = new_token();
        supervisor.set_control(port, token.clone())?;
        Ok(ControlServer {
            listener,
            port,
            token,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

struct Incoming {
    request: ControlRequest,
    stream: TcpStream,
}

/// Serves control commands against `supervisor` until a `down` command or
/// until `shutdown` completes; either way the cluster is brought down
/// (SIGINT, then SIGKILL after [`DEFAULT_DOWN_TIMEOUT`]) before returning.
///
/// It also applies `DATA/eddy.toml` once at the start and again whenever
/// the file changes, printing what changed or why an edit was ignored to
/// stderr. While `remove` moves replicas off a node, other commands are
/// served.
pub async fn serve(
    supervisor: &mut Supervisor,
    server: ControlServer,
    shutdown: impl Future<Output = ()>,
) -> Result<ServeEnd, ClusterError> {
    let ControlServer {
        listener, token, ..
    } = server;
    let (commands, mut incoming) = mpsc::channel::<Incoming>(QUEUE_LENGTH);
    let acceptor = tokio::spawn(accept(listener, Arc::new(token), commands));
    let mut reap = tokio::time::interval(REAP_INTERVAL);
    let mut config_changes = match crate::config::watch_config(&supervisor.config_path()) {
        Ok(changes) => Some(changes),
        Err(error) => {
            eprintln!(
                "cannot watch {} ({error}); edits apply at the next start",
                supervisor.config_path().display()
            );
            None
        }
    };
    reload_config(supervisor).await;
    let mut removal: Option<Removal> = None;
    tokio::pin!(shutdown);
    let end = loop {
        tokio::select! {
            () = &mut shutdown => {
                supervisor.down(DEFAULT_DOWN_TIMEOUT).await;
                break ServeEnd::Shutdown;
            }
            Some(Incoming { request, stream }) = incoming.recv() => {
                let down = request.command == ControlCommand::Down;
                let (replies, written) = ReplyWriter::start(stream);
                if request.command == ControlCommand::Remove {
                    match start_removal(supervisor, &request, &removal, replies.clone()) {
                        Ok(started) => removal = Some(started),
                        Err(error) => replies.finish(reply(supervisor, Err(error), request.node)),
                    }
                    continue;
                }
                let outcome = apply(supervisor, &request).await;
                let ok = outcome.is_ok();
                replies.finish(reply(supervisor, outcome, request.node));
                if down && ok {
                    // The answer goes out before the runtime ends.
                    let _ = written.await;
                    break ServeEnd::DownCommand;
                }
            }
            outcome = async { (&mut removal.as_mut().expect("guarded").drain).await }, if removal.is_some() => {
                let Removal { node, replies, .. } = removal.take().expect("guarded");
                let outcome = match outcome {
                    Ok(()) => {
                        let mut progress = replies.progress();
                        supervisor
                            .finish_removal(node, &mut progress)
                            .await
                            .map(|()| Some(node))
                            .map_err(|error| error.to_string())
                    }
                    Err(error) => Err(error.to_string()),
                };
                if let Err(error) = &outcome {
                    eprintln!("removing node {node}: {error}");
                }
                replies.finish(reply(supervisor, outcome, Some(node)));
            }
            Some(()) = async { config_changes.as_mut()?.recv().await }, if config_changes.is_some() => {
                reload_config(supervisor).await;
            }
            _ = reap.tick() => {
                if supervisor.reap()
                    && let Err(error) = supervisor.write_state()
                {
                    tracing::warn!(%error, "cannot update the cluster state file");
                }
            }
        }
    };
    acceptor.abort();
    Ok(end)
}

/// Applies `DATA/eddy.toml`, saying on stderr what changed or why nothing did.
async fn reload_config(supervisor: &mut Supervisor) {
    match supervisor.reload_config().await {
        Ok(reload) if reload.is_empty() => {}
        Ok(reload) => {
            let mut changes = Vec::new();
            for node in &reload.started {
                changes.push(format!("started node {node}"));
            }
            for (key, value) in &reload.defaults_set {
                changes.push(format!("set {key}={value}"));
            }
            for key in &reload.defaults_deleted {
                changes.push(format!("removed {key}"));
            }
            eprintln!("{}: {}", crate::config::CONFIG_FILE, changes.join(", "));
        }
        Err(error) => eprintln!("{error}"),
    }
}

/// A `remove` whose replicas are moving.
struct Removal {
    node: u16,
    drain: std::pin::Pin<Box<dyn Future<Output = Result<(), ClusterError>> + Send>>,
    replies: ReplyWriter,
}

fn start_removal(
    supervisor: &mut Supervisor,
    request: &ControlRequest,
    current: &Option<Removal>,
    replies: ReplyWriter,
) -> Result<Removal, String> {
    let node = request.node.ok_or("remove needs a node")?;
    if let Some(current) = current {
        return Err(format!(
            "node {} is being removed; wait until that finishes",
            current.node
        ));
    }
    let drain = supervisor
        .prepare_removal(node)
        .map_err(|error| error.to_string())?;
    let mut progress = replies.progress();
    Ok(Removal {
        node,
        drain: Box::pin(async move { drain.run(&mut progress).await }),
        replies,
    })
}

/// Writes progress lines and then the reply to one control connection,
/// in order, without holding up the supervisor loop.
#[derive(Clone)]
struct ReplyWriter {
    lines: mpsc::UnboundedSender<Vec<u8>>,
}

impl ReplyWriter {
    /// The task ends once every line is written and every copy of the
    /// writer is gone.
    fn start(mut stream: TcpStream) -> (ReplyWriter, tokio::task::JoinHandle<()>) {
        let (lines, mut pending) = mpsc::unbounded_channel::<Vec<u8>>();
        let written = tokio::spawn(async move {
            while let Some(line) = pending.recv().await {
                if tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&line))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.flush()).await;
        });
        (ReplyWriter { lines }, written)
    }

    fn progress(&self) -> impl FnMut(String) + Send + 'static {
        let lines = self.lines.clone();
        move |message: String| {
            tracing::info!("{message}");
            if let Ok(mut line) = serde_json::to_vec(&ControlProgress { progress: message }) {
                line.push(b'\n');
                let _ = lines.send(line);
            }
        }
    }

    fn finish(self, reply: ControlReply) {
        if let Ok(mut line) = serde_json::to_vec(&reply) {
            line.push(b'\n');
            let _ = self.lines.send(line);
        }
    }
}

fn reply(
    supervisor: &mut Supervisor,
    outcome: Result<Option<u16>, String>,
    node: Option<u16>,
) -> ControlReply {
    let (ok, error, node) = match outcome {
        Ok(acted_on) => (true, None, acted_on.or(node)),
        Err(error) => (false, Some(error), node),
    };
    ControlReply {
        ok,
        error,
        bootstrap_servers: supervisor.spec().bootstrap_servers(),
        nodes: supervisor.nodes(),
        node,
        config_error: supervisor.config_error(),
    }
}

/// Applies one command (other than `remove`); `Ok` carries the node it
/// acted on when that is news (`add`).
async fn apply(
    supervisor: &mut Supervisor,
    request: &ControlRequest,
) -> Result<Option<u16>, String> {
    let done = |result: Result<(), ClusterError>| result.map(|()| None).map_err(|e| e.to_string());
    match (request.command, request.node) {
        (ControlCommand::Status, _) => Ok(None),
        (ControlCommand::Down, _) => {
            supervisor.down(DEFAULT_DOWN_TIMEOUT).await;
            Ok(None)
        }
        (ControlCommand::Add, _) => supervisor
            .add_node()
            .await
            .map(Some)
            .map_err(|error| error.to_string()),
        (command, None) => Err(format!("{command:?} needs a node").to_lowercase()),
        (ControlCommand::Kill, Some(node)) => done(supervisor.kill(node)),
        (ControlCommand::Pause, Some(node)) => done(supervisor.pause(node)),
        (ControlCommand::Resume, Some(node)) => done(supervisor.resume(node)),
        (ControlCommand::Start, Some(node)) => done(supervisor.start_node(node)),
        (ControlCommand::Stop, Some(node)) => {
            done(supervisor.stop(node, DEFAULT_STOP_TIMEOUT).await)
        }
        (ControlCommand::Restart, Some(node)) => {
            done(supervisor.restart(node, DEFAULT_STOP_TIMEOUT).await)
        }
        (ControlCommand::Isolate, Some(node)) => done(supervisor.isolate(node)),
        (ControlCommand::Heal, Some(node)) => done(supervisor.heal(node).await),
        (ControlCommand::Slow, Some(node)) => match request.rate {
            Some(rate) if rate > 0 => done(supervisor.slow(node, rate).await),
            _ => Err("slow needs a rate in bytes per second".to_string()),
        },
        (ControlCommand::Remove, Some(_)) => Err("remove is served on its own".to_string()),
    }
}

async fn accept(listener: TcpListener, token: Arc<String>, commands: mpsc::Sender<Incoming>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let token = token.clone();
        let commands = commands.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(READ_TIMEOUT, read_request(stream, &token)).await {
                Ok(Ok(incoming)) => {
                    let _ = commands.send(incoming).await;
                }
                Ok(Err((mut stream, error))) => {
                    let reply = ControlReply {
                        ok: false,
                        error: Some(error),
                        bootstrap_servers: String::new(),
                        nodes: Vec::new(),
                        node: None,
                        config_error: None,
                    };
                    write_reply(&mut stream, &reply).await;
                }
                Err(_) => {}
            }
        });
    }
}

/// Reads one command line and checks its token.
async fn read_request(stream: TcpStream, token: &str) -> Result<Incoming, (TcpStream, String)> {
    let mut reader = tokio::io::BufReader::new(stream).take(MAX_LINE_BYTES + 1);
    let mut line = String::new();
    let read = reader.read_line(&mut line).await;
    let stream = reader.into_inner().into_inner();
    match read {
        Ok(_) if line.len() as u64 > MAX_LINE_BYTES => {
            return Err((
                stream,
                format!("command longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        Ok(_) => {}
        Err(error) => return Err((stream, format!("reading the command: {error}"))),
    }
    let request: ControlRequest = match serde_json::from_str(line.trim()) {
        Ok(request) => request,
        Err(error) => return Err((stream, format!("malformed command: {error}"))),
    };
    if !same_token(&request.token, token) {
        return Err((stream, "wrong token".to_string()));
    }
    Ok(Incoming { request, stream })
}

async fn write_reply(stream: &mut TcpStream, reply: &ControlReply) {
    let Ok(mut line) = serde_json::to_vec(reply) else {
        return;
    };
    line.push(b'\n');
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&line).await?;
        stream.flush().await
    })
    .await;
}

/// Compares tokens in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// 128 random bits as hex, from the standard library's randomly seeded hasher.
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut token = String::with_capacity(32);
    for part in 0..2u64 {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u64(part);
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or_default(),
        );
        hasher.write_u32(std::process::id());
        token.push_str(&format!("{:016x}", hasher.finish()));
    }
    token
}

/// Talks to the supervisor running in a data directory, for `eddy cluster
/// status`, `kill`, `stop` and the rest.
pub struct ControlClient {
    data_dir: PathBuf,
    state: ClusterState,
}

impl ControlClient {
    /// How long a command may take; `stop` and `restart` wait for a
    /// controlled shutdown, which the supervisor bounds by 10 s.
    pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

    /// Finds the supervisor through `DATA/cluster.json`.
    pub fn open(data_dir: &Path) -> Result<ControlClient, ClusterError> {
        let not_running = || ClusterError::NotRunning {
            data_dir: data_dir.to_path_buf(),
        };
        let state = ClusterState::read(data_dir)?.ok_or_else(not_running)?;
        if state.control_port == 0 {
            return Err(not_running());
        }
        Ok(ControlClient {
            data_dir: data_dir.to_path_buf(),
            state,
        })
    }

    /// What `cluster.json` said when this client was opened.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// Sends one command and returns the supervisor's reply; a reply with
    /// `ok: false` becomes [`ClusterError::Refused`].
    pub fn send(
        &self,
        command: ControlCommand,
        node: Option<u16>,
    ) -> Result<ControlReply, ClusterError> {
        self.send_with_progress(command, node, None, Self::COMMAND_TIMEOUT, &mut |_| {})
    }

    /// Sends one command with its rate (for `slow`), hands each progress
    /// line to `progress` as it comes, and returns the reply. `timeout`
    /// bounds the wait for each line.
    pub fn send_with_progress(
        &self,
        command: ControlCommand,
        node: Option<u16>,
        rate: Option<u64>,
        timeout: Duration,
        progress: &mut dyn FnMut(&str),
    ) -> Result<ControlReply, ClusterError> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.state.control_port));
        let mut stream =
            StdTcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|_| {
                ClusterError::NotRunning {
                    data_dir: self.data_dir.clone(),
                }
            })?;
        let control_error = |error: std::io::Error| ClusterError::Control(error.to_string());
        stream
            .set_read_timeout(Some(timeout))
            .map_err(control_error)?;
        let request = ControlRequest {
            token: self.state.token.clone(),
            command,
            node,
            rate,
        };
        let mut line = serde_json::to_vec(&request)
            .map_err(|error| ClusterError::Control(error.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(control_error)?;
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            (&mut reader)
                .take(1024 * 1024)
                .read_line(&mut line)
                .map_err(control_error)?;
            if line.is_empty() {
                return Err(ClusterError::Control(
                    "the supervisor closed the connection without answering".to_string(),
                ));
            }
            if let Ok(update) = serde_json::from_str::<ControlProgress>(line.trim()) {
                progress(&update.progress);
                continue;
            }
            let reply: ControlReply = serde_json::from_str(line.trim())
                .map_err(|error| ClusterError::Control(format!("malformed reply: {error}")))?;
            return match (&reply.ok, &reply.error) {
                (true, _) => Ok(reply),
                (false, error) => Err(ClusterError::Refused(
                    error
                        .clone()
                        .unwrap_or_else(|| "no reason given".to_string()),
                )),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_differ() {
        let first = new_token();
        assert_eq!(first.len(), 32);
        assert_ne!(first, new_token());
        assert!(same_token(&first, &first.clone()));
        assert!(!same_token(&first, &new_token()));
        assert!(!same_token(&first, ""));
    }

    #[test]
    fn requests_read_as_documented() {
        let request: ControlRequest =
            serde_json::from_str(r#"{"token": "t", "command": "kill", "node": 2}"#)
                .expect("parses");
        assert_eq!(request.command, ControlCommand::Kill);
        assert_eq!(request.node, Some(2));
        let status: ControlRequest =
            serde_json::from_str(r#"{"token": "t", "command": "status"}"#).expect("parses");
        assert_eq!(status.node, None);
    }
}
