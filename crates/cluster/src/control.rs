//! Control from another terminal: the supervisor listens on 127.0.0.1 (an
//! ephemeral port, published with a per-run token in `DATA/cluster.json`)
//! for one-line JSON commands and answers each with one JSON line.
//!
//! ```text
//! → {"token": "...", "command": "kill", "node": 2}
//! ← {"ok": true, "error": null, "bootstrap_servers": "...", "nodes": [...]}
//! ```
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
}

impl ControlCommand {
    pub fn needs_node(self) -> bool {
        !matches!(self, ControlCommand::Status | ControlCommand::Down)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub token: String,
    pub command: ControlCommand,
    #[serde(default)]
    pub node: Option<u16>,
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
    tokio::pin!(shutdown);
    let end = loop {
        tokio::select! {
            () = &mut shutdown => {
                supervisor.down(DEFAULT_DOWN_TIMEOUT).await;
                break ServeEnd::Shutdown;
            }
            Some(Incoming { request, mut stream }) = incoming.recv() => {
                let down = request.command == ControlCommand::Down;
                let reply = apply(supervisor, &request).await;
                write_reply(&mut stream, &reply).await;
                if down && reply.ok {
                    break ServeEnd::DownCommand;
                }
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

async fn apply(supervisor: &mut Supervisor, request: &ControlRequest) -> ControlReply {
    let outcome = match (request.command, request.node) {
        (ControlCommand::Status, _) => Ok(()),
        (ControlCommand::Down, _) => {
            supervisor.down(DEFAULT_DOWN_TIMEOUT).await;
            Ok(())
        }
        (command, None) => Err(format!("{command:?} needs a node").to_lowercase()),
        (ControlCommand::Kill, Some(node)) => supervisor.kill(node).map_err(|e| e.to_string()),
        (ControlCommand::Pause, Some(node)) => supervisor.pause(node).map_err(|e| e.to_string()),
        (ControlCommand::Resume, Some(node)) => supervisor.resume(node).map_err(|e| e.to_string()),
        (ControlCommand::Start, Some(node)) => {
            supervisor.start_node(node).map_err(|e| e.to_string())
        }
        (ControlCommand::Stop, Some(node)) => supervisor
            .stop(node, DEFAULT_STOP_TIMEOUT)
            .await
            .map_err(|e| e.to_string()),
        (ControlCommand::Restart, Some(node)) => supervisor
            .restart(node, DEFAULT_STOP_TIMEOUT)
            .await
            .map_err(|e| e.to_string()),
    };
    ControlReply {
        ok: outcome.is_ok(),
        error: outcome.err(),
        bootstrap_servers: supervisor.spec().bootstrap_servers(),
        nodes: supervisor.nodes(),
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
        let address = SocketAddr::from(([127, 0, 0, 1], self.state.control_port));
        let mut stream =
            StdTcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|_| {
                ClusterError::NotRunning {
                    data_dir: self.data_dir.clone(),
                }
            })?;
        let control_error = |error: std::io::Error| ClusterError::Control(error.to_string());
        stream
            .set_read_timeout(Some(Self::COMMAND_TIMEOUT))
            .map_err(control_error)?;
        let request = ControlRequest {
            token: self.state.token.clone(),
            command,
            node,
        };
        let mut line = serde_json::to_vec(&request)
            .map_err(|error| ClusterError::Control(error.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(control_error)?;
        let mut reply = String::new();
        BufReader::new(stream)
            .take(1024 * 1024)
            .read_line(&mut reply)
            .map_err(control_error)?;
        if reply.is_empty() {
            return Err(ClusterError::Control(
                "the supervisor closed the connection without answering".to_string(),
            ));
        }
        let reply: ControlReply = serde_json::from_str(reply.trim())
            .map_err(|error| ClusterError::Control(format!("malformed reply: {error}")))?;
        match (&reply.ok, &reply.error) {
            (true, _) => Ok(reply),
            (false, error) => Err(ClusterError::Refused(
                error
                    .clone()
                    .unwrap_or_else(|| "no reason given".to_string()),
            )),
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
