//! Raft's view of the network: its RPCs sent over [`Peers`], and a record of
//! when each follower last answered and last caught up, for DescribeQuorum.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftMetrics};
use tokio::sync::watch;

use crate::peers::{CallError, Peers};
use crate::types::{TypeConfig, now_ms};
use crate::wire::{Rpc, RpcReply};

/// How soon raft retries a peer it could not reach.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(100);

/// When a follower last answered the leader, and last had all of its log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplicaTimes {
    pub last_fetch_ms: Option<i64>,
    pub last_caught_up_ms: Option<i64>,
}

pub(crate) type SharedReplicaTimes = Arc<Mutex<BTreeMap<u64, ReplicaTimes>>>;

#[derive(Clone)]
pub(crate) struct Network {
    pub peers: Peers,
    pub replica_times: SharedReplicaTimes,
    pub metrics: watch::Receiver<RaftMetrics<u64, BasicNode>>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            address: node.addr.clone(),
            network: self.clone(),
        }
    }
}

pub(crate) struct PeerClient {
    target: u64,
    address: String,
    network: Network,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl PeerClient {
    async fn call<E: std::error::Error>(
        &self,
        body: Rpc,
        option: &RPCOption,
    ) -> Result<RpcReply, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        let reply = self
            .network
            .peers
            .call(&self.address, body, option.hard_ttl())
            .await;
        // A connection the peer closed counts as unreachable too, so that
        // raft backs off rather than reconnecting at once, again and again
        // (a peer isolated by fault injection closes every connection).
        reply.map_err(|error| match error {
            CallError::Unreachable { .. }
            | CallError::Disconnected(_)
            | CallError::ShuttingDown => RPCError::Unreachable(Unreachable::new(&error)),
            other => RPCError::Network(NetworkError::new(&other)),
        })
    }

    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<u64, E>>,
    ) -> RpcResult<T, E> {
        result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        let error = CallError::Invalid(format!("node {} answered another request", self.target));
        RPCError::Network(NetworkError::new(&error))
    }

    fn record_answer(&self, caught_up_to: Option<u64>) {
        let now = now_ms();
        let leader_last_index = self.network.metrics.borrow().last_log_index;
        let mut times = self
            .network
            .replica_times
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = times.entry(self.target).or_default();
        entry.last_fetch_ms = Some(now);
        if caught_up_to.is_some() && caught_up_to >= leader_last_index {
            entry.last_caught_up_ms = Some(now);
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let sent_up_to = request
            .entries
            .last()
            .map(|entry| entry.log_id.index)
            .or(request.prev_log_id.map(|log_id| log_id.index));
        let RpcReply::AppendEntries(result) =
            self.call(Rpc::AppendEntries(request), &option).await?
        else {
            return Err(self.unexpected());
        };
        let caught_up = matches!(result, Ok(AppendEntriesResponse::Success));
        self.record_answer(if caught_up { sent_up_to } else { None });
        self.remote(result)
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let RpcReply::InstallSnapshot(result) =
            self.call(Rpc::InstallSnapshot(request), &option).await?
        else {
            return Err(self.unexpected());
        };
        self.record_answer(None);
        self.remote(result)
    }

    async fn vote(
        &mut self,
        request: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        let RpcReply::Vote(result) = self.call(Rpc::Vote(request), &option).await? else {
            return Err(self.unexpected());
        };
        self.remote(result)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }
}
