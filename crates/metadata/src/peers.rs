//! Outgoing connections: one persistent connection per peer address, shared
//! by raft replication, votes, forwarded proposals and heartbeats.
//!
//! Each peer has a task that owns its connection. It connects when the first
//! request arrives (and again after a failure), writes requests as they come
//! and matches replies to callers by request id, so a slow reply does not
//! hold up the others. A caller that gives up just stops waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::wire::{Frame, Rpc, RpcReply, encode_frame, read_frame, write_frame};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// A peer that does not take a frame in this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests waiting for a peer's task.
const QUEUE_LENGTH: usize = 256;
/// Requests sent and not yet answered on one connection.
const MAX_PENDING: usize = 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CallError {
    /// Nothing was sent: the peer could not be reached.
    #[error("cannot connect to {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// The request may or may not have arrived.
    #[error("connection to {0} lost")]
    Disconnected(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("{0}")]
    Invalid(String),
    #[error("shutting down")]
    ShuttingDown,
}

struct Outgoing {
    body: Rpc,
    reply: oneshot::Sender<Result<RpcReply, CallError>>,
}

struct Peer {
    requests: mpsc::Sender<Outgoing>,
    task: JoinHandle<()>,
    status: Arc<Mutex<PeerStatus>>,
}

#[derive(Default)]
struct PeerStatus {
    connected: bool,
    last_reply: Option<Instant>,
}

#[derive(Clone, Default)]
pub(crate) struct Peers {
    inner: Arc<Mutex<PeersState>>,
}

#[derive(Default)]
struct PeersState {
    peers: HashMap<String, Peer>,
    closed: bool,
}

impl Peers {
    /// Sends `body` to `address` and waits at most `timeout` for the reply.
    pub(crate) async fn call(
        &self,
        address: &str,
        body: Rpc,
        timeout: Duration,
    ) -> Result<RpcReply, CallError> {
        if crate::fault::isolated() {
            // Cut off by fault injection: nothing leaves, and the idle
            // connections stay open, as in a network partition.
            return Err(CallError::Unreachable {
                address: address.to_string(),
                reason: "this node is isolated from the other nodes by fault injection".into(),
            });
        }
        let requests = self.sender(address)?;
        let (reply, receiver) = oneshot::channel();
        let exchange = async {
            requests
                .send(Outgoing { body, reply })
                .await
                .map_err(|_| CallError::ShuttingDown)?;
            receiver.await.map_err(|_| CallError::ShuttingDown)?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout(address.to_string()))?
    }

    /// Whether `address` is connected and answered within `window`.
    pub(crate) fn answered_within(&self, address: &str, window: Duration) -> bool {
        let state = self.lock();
        let Some(peer) = state.peers.get(address) else {
            return false;
        };
        let status = peer
            .status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        status.connected && status.last_reply.is_some_and(|at| at.elapsed() <= window)
    }

    /// Closes every connection; later calls fail.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for (_, peer) in state.peers.drain() {
            peer.task.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PeersState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sender(&self, address: &str) -> Result<mpsc::Sender<Outgoing>, CallError> {
        let mut state = self.lock();
        if state.closed {
            return Err(CallError::ShuttingDown);
        }
        let peer = state.peers.entry(address.to_string()).or_insert_with(|| {
            let (requests, receiver) = mpsc::channel(QUEUE_LENGTH);
            let status = Arc::new(Mutex::new(PeerStatus::default()));
            let task = tokio::spawn(run_peer(address.to_string(), receiver, status.clone()));
            Peer {
                requests,
                task,
                status,
            }
        });
        Ok(peer.requests.clone())
    }
}

async fn run_peer(
    address: String,
    mut requests: mpsc::Receiver<Outgoing>,
    status: Arc<Mutex<PeerStatus>>,
) {
    while let Some(first) = requests.recv().await {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await;
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                refuse_queued(&address, first, &mut requests, &error.to_string());
                continue;
            }
            Err(_) => {
                refuse_queued(&address, first, &mut requests, "connect timed out");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(%address, "connected to peer");
        set_connected(&status, true);
        run_connection(&address, stream, first, &mut requests, &status).await;
        set_connected(&status, false);
        tracing::debug!(%address, "connection to peer closed");
    }
}

/// Fails `first` and everything queued behind it: none of it was sent.
fn refuse_queued(
    address: &str,
    first: Outgoing,
    requests: &mut mpsc::Receiver<Outgoing>,
    reason: &str,
) {
    let error = CallError::Unreachable {
        address: address.to_string(),
        reason: reason.to_string(),
    };
    let _ = first.reply.send(Err(error.clone()));
    while let Ok(queued) = requests.try_recv() {
        let _ = queued.reply.send(Err(error.clone()));
    }
}

async fn run_connection(
    address: &str,
    stream: TcpStream,
    first: Outgoing,
    requests: &mut mpsc::Receiver<Outgoing>,
    status: &Mutex<PeerStatus>,
) {
    let (read_half, mut write_half) = stream.into_split();
    let (replies, mut received) = mpsc::channel(64);
    let reader = tokio::spawn(read_replies(read_half, replies));
    let mut pending: HashMap<u64, oneshot::Sender<Result<RpcReply, CallError>>> = HashMap::new();
    let mut next_id = 0u64;
    let mut outgoing = Some(first);
    loop {
        if let Some(request) = outgoing.take() {
            next_id += 1;
            let frame = match encode_frame(&Frame {
                id: next_id,
                body: &request.body,
            }) {
                Ok(frame) => frame,
                Err(error) => {
                    let _ = request
                        .reply
                        .send(Err(CallError::Invalid(error.to_string())));
                    continue;
                }
            };
            if pending.len() >= MAX_PENDING {
                pending.retain(|_, waiter| !waiter.is_closed());
            }
            let written =
                tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut write_half, &frame)).await;
            if !matches!(written, Ok(Ok(()))) {
                let _ = request
                    .reply
                    .send(Err(CallError::Disconnected(address.to_string())));
                break;
            }
            pending.insert(next_id, request.reply);
        }
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => outgoing = Some(request),
                None => break,
            },
            reply = received.recv() => match reply {
                Some(Frame { id, body }) => {
                    status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).last_reply =
                        Some(Instant::now());
                    if let Some(waiter) = pending.remove(&id) {
                        let _ = waiter.send(Ok(body));
                    }
                }
                None => break,
            },
        }
    }
    reader.abort();
    for (_, waiter) in pending {
        let _ = waiter.send(Err(CallError::Disconnected(address.to_string())));
    }
}

fn set_connected(status: &Mutex<PeerStatus>, connected: bool) {
    status
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .connected = connected;
}

async fn read_replies(mut read_half: OwnedReadHalf, replies: mpsc::Sender<Frame<RpcReply>>) {
    loop {
        match read_frame::<Frame<RpcReply>>(&mut read_half).await {
            Ok(frame) => {
                if replies.send(frame).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(%error, "peer connection ended");
                return;
            }
        }
    }
}
