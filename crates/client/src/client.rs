//! [`Client`]: bootstrap addresses, a connection per node, short per-node
//! timeouts. A node that does not answer in time is skipped, so one hung
//! node never stalls a whole view.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use eddy_protocol::messages::metadata_request::MetadataRequestTopic;
use eddy_protocol::messages::{FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use eddy_protocol::{ApiKey, ErrorCode, Request, RequestBody};

use crate::connection::Connection;
use crate::error::{ClientError, check, failure, is_coordinator_code};

/// Attempts at a call that fails with a retriable error (leadership moved,
/// coordinator moved or loading, node gone) before its error is returned.
pub(crate) const RETRY_ATTEMPTS: u32 = 6;
/// The pause before the first retry; it doubles up to [`MAX_RETRY_BACKOFF`].
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
const MAX_RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// FindCoordinator's key type for a consumer group.
const GROUP_KEY_TYPE: i8 = 0;

/// A client for one cluster. Calls take `&mut self`: a client owns its
/// connections and sends one request at a time on each.
pub struct Client {
    bootstrap: Vec<String>,
    node_timeout: Duration,
    /// Open connections, by `host:port`.
    connections: HashMap<String, Connection>,
    /// `host:port` of each broker, by node id, from the last Metadata.
    brokers: HashMap<i32, String>,
    /// Partition leaders by topic, from the last Metadata that named it.
    routes: HashMap<String, TopicRoute>,
    /// Coordinator addresses by group id.
    coordinators: HashMap<String, String>,
    /// The next partition for a record without a key, by topic.
    pub(crate) round_robin: HashMap<String, u32>,
}

/// Where a topic's partitions live, as Metadata said.
#[derive(Debug, Clone)]
pub(crate) struct TopicRoute {
    /// Leader node id by partition; `None` while a partition has no leader.
    pub(crate) leaders: BTreeMap<i32, Option<i32>>,
}

impl TopicRoute {
    pub(crate) fn partition_count(&self) -> usize {
        self.leaders.len()
    }
}

impl Client {
    /// How long one node gets to connect or to answer one request.
    pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(2);

    /// A client for the cluster reachable at any of `bootstrap` (`host:port`
    /// each). Nothing connects until the first request.
    pub fn new<I, S>(bootstrap: I) -> Client
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client {
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            node_timeout: Self::DEFAULT_NODE_TIMEOUT,
            connections: HashMap::new(),
            brokers: HashMap::new(),
            routes: HashMap::new(),
            coordinators: HashMap::new(),
            round_robin: HashMap::new(),
        }
    }

    /// Bounds each connect and each request to one node by `timeout`.
    pub fn with_node_timeout(mut self, timeout: Duration) -> Client {
        self.node_timeout = timeout;
        for connection in self.connections.values_mut() {
            connection.set_request_timeout(timeout);
        }
        self
    }

    pub fn bootstrap(&self) -> &[String] {
        &self.bootstrap
    }

    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    /// Sends `request` to the node at `address`, connecting first if needed.
    /// A connection that timed out or broke is closed, so the next call to
    /// the same node starts afresh.
    pub async fn send_to<R>(
        &mut self,
        address: &str,
        request: R,
    ) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let connection = self.connection(address).await?;
        let result = connection.send(request).await;
        if let Err(error) = &result
            && !error.leaves_connection_usable()
        {
            self.connections.remove(address);
        }
        result
    }

    /// Sends `request` to `address` at a version no higher than
    /// `max_version` (when given), allowing `timeout` for the answer.
    pub(crate) async fn send_to_with<R>(
        &mut self,
        address: &str,
        request: R,
        max_version: Option<i16>,
        timeout: Duration,
    ) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let connection = self.connection(address).await?;
        let result = connection.send_with(request, max_version, timeout).await;
        if let Err(error) = &result
            && !error.leaves_connection_usable()
        {
            self.connections.remove(address);
        }
        result
    }

    /// Sends `request` to `address` without waiting for an answer.
    pub(crate) async fn send_unanswered_to<R>(
        &mut self,
        address: &str,
        request: R,
    ) -> Result<(), ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let connection = self.connection(address).await?;
        let result = connection.send_unanswered(request).await;
        if result.is_err() {
            self.connections.remove(address);
        }
        result
    }

    /// The open connection to `address`, negotiated on first use.
    pub async fn connection(&mut self, address: &str) -> Result<&mut Connection, ClientError> {
        if self
            .connections
            .get(address)
            .is_some_and(Connection::is_broken)
        {
            self.connections.remove(address);
        }
        if !self.connections.contains_key(address) {
            let connection = Connection::connect(address, self.node_timeout).await?;
            self.connections.insert(address.to_string(), connection);
        }
        self.connections
            .get_mut(address)
            .ok_or_else(|| ClientError::NoNodeAvailable {
                attempts: vec![address.to_string()],
            })
    }

    /// Closes the connection to `address`, if any.
    pub fn disconnect(&mut self, address: &str) {
        self.connections.remove(address);
    }

    /// The bootstrap addresses, to try in turn until one answers.
    pub(crate) fn bootstrap_nodes(&self) -> BootstrapNodes {
        BootstrapNodes {
            addresses: self.bootstrap.clone().into_iter(),
            attempts: Vec::new(),
        }
    }

    /// Sends `request` to each bootstrap address in turn until one answers,
    /// and returns which one did with its answer.
    pub(crate) async fn send_to_any<R>(
        &mut self,
        request: R,
    ) -> Result<(String, R::Response), ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let mut nodes = self.bootstrap_nodes();
        while let Some(address) = nodes.next_address() {
            match self.send_to(&address, request.clone()).await {
                Ok(response) => return Ok((address, response)),
                Err(error) => nodes.failed(error)?,
            }
        }
        Err(nodes.exhausted())
    }

    /// Sends `request` to any node that answers and reads the response
    /// with `answer`, retrying errors of `kind` (after an answer's Kafka
    /// error, `answer` returns it as `Err`).
    pub(crate) async fn call_any<R, T>(
        &mut self,
        kind: RetryKind,
        request: R,
        answer: impl Fn(&str, R::Response) -> Result<T, ClientError>,
    ) -> Result<T, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let mut retry = Retry::new(kind);
        loop {
            let result = match self.send_to_any(request.clone()).await {
                Ok((address, response)) => answer(&address, response),
                Err(error) => Err(error),
            };
            match result {
                Err(error) if retry.again(&error).await => continue,
                result => return result,
            }
        }
    }

    /// Sends `request`, which changes cluster metadata, to the active
    /// controller and reads the response with `answer`. It is a write:
    /// retried only when refused (NOT_CONTROLLER, ...) or never sent.
    pub(crate) async fn call_controller<R, T>(
        &mut self,
        request: R,
        answer: impl Fn(&str, R::Response) -> Result<T, ClientError>,
    ) -> Result<T, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let mut retry = Retry::new(RetryKind::Write);
        loop {
            let result = match self.controller_address().await {
                Ok(address) => match self.send_to(&address, request.clone()).await {
                    Ok(response) => answer(&address, response),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            match result {
                Err(error) if retry.again(&error).await => continue,
                result => return result,
            }
        }
    }

    /// Sends `request` to `group_id`'s coordinator, allowing `timeout` for
    /// the answer (the node timeout when `None`), and reads the response
    /// with `answer`. When the coordinator moved, is loading or cannot be
    /// reached, it is found again and the request sent again, a bounded
    /// number of times.
    pub(crate) async fn call_coordinator<R, T>(
        &mut self,
        group_id: &str,
        request: R,
        timeout: Option<Duration>,
        answer: impl Fn(&str, R::Response) -> Result<T, ClientError>,
    ) -> Result<T, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let timeout = timeout.unwrap_or(self.node_timeout);
        let mut retry = Retry::new(RetryKind::Coordinator);
        loop {
            let result = match self.coordinator(group_id, retry.refresh()).await {
                Ok(address) => {
                    match self
                        .send_to_with(&address, request.clone(), None, timeout)
                        .await
                    {
                        Ok(response) => answer(&address, response),
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error),
            };
            match result {
                Err(error) if retry.again(&error).await => continue,
                result => return result,
            }
        }
    }

    /// Where `topic`'s partitions live: from the cache, or from a fresh
    /// Metadata request when `refresh` or not yet known.
    pub(crate) async fn topic_route(
        &mut self,
        topic: &str,
        refresh: bool,
    ) -> Result<TopicRoute, ClientError> {
        if !refresh && let Some(route) = self.routes.get(topic) {
            return Ok(route.clone());
        }
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..MetadataRequestTopic::default()
            }]),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        let (address, response) = self.send_to_any(request).await?;
        self.remember_brokers(&response);
        let found = response
            .topics
            .iter()
            .find(|candidate| candidate.name.as_deref() == Some(topic))
            .ok_or_else(|| ClientError::Protocol {
                address: address.clone(),
                api: ApiKey::Metadata.name(),
                reason: format!("the response does not mention topic {topic}"),
            })?;
        check(&address, ApiKey::Metadata, found.error_code, None)?;
        let route = TopicRoute {
            leaders: found
                .partitions
                .iter()
                .map(|partition| {
                    let leader = (partition.leader_id >= 0
                        && failure(partition.error_code) != Some(ErrorCode::LeaderNotAvailable))
                    .then_some(partition.leader_id);
                    (partition.partition_index, leader)
                })
                .collect(),
        };
        self.routes.insert(topic.to_string(), route.clone());
        Ok(route)
    }

    /// Forgets where `topic`'s partitions live (after it changed shape).
    pub(crate) fn forget_route(&mut self, topic: &str) {
        self.routes.remove(topic);
    }

    /// The address of the leader of `topic`-`partition`. A partition the
    /// cache does not know is looked up afresh before it is called unknown.
    pub(crate) async fn leader_address(
        &mut self,
        topic: &str,
        partition: i32,
        refresh: bool,
    ) -> Result<String, ClientError> {
        let mut route = self.topic_route(topic, refresh).await?;
        if !refresh && !route.leaders.contains_key(&partition) {
            route = self.topic_route(topic, true).await?;
        }
        let leader =
            route
                .leaders
                .get(&partition)
                .ok_or_else(|| ClientError::UnknownPartition {
                    topic: topic.to_string(),
                    partition,
                })?;
        leader
            .and_then(|id| self.broker_address(id))
            .ok_or_else(|| ClientError::Kafka {
                address: self.bootstrap.join(","),
                api: ApiKey::Metadata.name(),
                code: ErrorCode::LeaderNotAvailable,
                message: Some(format!("{topic}-{partition} has no leader")),
            })
    }

    /// The `host:port` of broker `node_id`, as the last Metadata said.
    pub(crate) fn broker_address(&self, node_id: i32) -> Option<String> {
        self.brokers.get(&node_id).cloned()
    }

    /// Live brokers (id and address) and the active controller, from the
    /// first bootstrap node that answers; no topics are asked for.
    pub(crate) async fn live_brokers(
        &mut self,
    ) -> Result<(BTreeMap<i32, String>, Option<i32>), ClientError> {
        let request = MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        let (_, response) = self.send_to_any(request).await?;
        self.remember_brokers(&response);
        let brokers = response
            .brokers
            .iter()
            .map(|broker| (broker.node_id, format!("{}:{}", broker.host, broker.port)))
            .collect();
        let controller = (response.controller_id >= 0).then_some(response.controller_id);
        Ok((brokers, controller))
    }

    /// Where requests that change cluster metadata go: the active
    /// controller when Metadata names one, else the first bootstrap node.
    pub(crate) async fn controller_address(&mut self) -> Result<String, ClientError> {
        let (brokers, controller) = self.live_brokers().await?;
        let address = controller
            .and_then(|id| brokers.get(&id).cloned())
            .or_else(|| brokers.values().next().cloned())
            .or_else(|| self.bootstrap.first().cloned());
        address.ok_or_else(|| ClientError::NoNodeAvailable {
            attempts: Vec::new(),
        })
    }

    fn remember_brokers(&mut self, response: &MetadataResponse) {
        for broker in &response.brokers {
            self.brokers
                .insert(broker.node_id, format!("{}:{}", broker.host, broker.port));
        }
    }

    /// The address of `group_id`'s coordinator: cached, or found with
    /// FindCoordinator when `refresh` or not yet known.
    pub(crate) async fn coordinator(
        &mut self,
        group_id: &str,
        refresh: bool,
    ) -> Result<String, ClientError> {
        if !refresh && let Some(address) = self.coordinators.get(group_id) {
            return Ok(address.clone());
        }
        let mut nodes = self.bootstrap_nodes();
        let address = loop {
            let Some(address) = nodes.next_address() else {
                return Err(nodes.exhausted());
            };
            match self.find_coordinator_on(&address, group_id).await {
                Ok(coordinator) => break coordinator,
                Err(error) => nodes.failed(error)?,
            }
        };
        self.coordinators
            .insert(group_id.to_string(), address.clone());
        Ok(address)
    }

    /// Forgets `group_id`'s coordinator, so the next call finds it again.
    pub(crate) fn forget_coordinator(&mut self, group_id: &str) {
        self.coordinators.remove(group_id);
    }

    async fn find_coordinator_on(
        &mut self,
        address: &str,
        group_id: &str,
    ) -> Result<String, ClientError> {
        let request = FindCoordinatorRequest {
            key: group_id.into(),
            key_type: GROUP_KEY_TYPE,
            coordinator_keys: vec![group_id.into()],
            ..FindCoordinatorRequest::default()
        };
        let response = self.send_to(address, request).await?;
        // Version 4 and later answer in a list, one entry per key.
        let (code, message, host, port) = match response.coordinators.first() {
            Some(entry) => (
                entry.error_code,
                entry.error_message.clone(),
                entry.host.clone(),
                entry.port,
            ),
            None => (
                response.error_code,
                response.error_message.clone(),
                response.host.clone(),
                response.port,
            ),
        };
        check(address, ApiKey::FindCoordinator, code, message.as_deref())?;
        Ok(format!("{host}:{port}"))
    }
}

/// The bootstrap addresses being tried in turn; see [`Client::bootstrap_nodes`].
pub(crate) struct BootstrapNodes {
    addresses: std::vec::IntoIter<String>,
    /// What went wrong with each address tried.
    attempts: Vec<String>,
}

impl BootstrapNodes {
    pub(crate) fn next_address(&mut self) -> Option<String> {
        self.addresses.next()
    }

    /// Notes that the last address failed with `error`. A Kafka error is an
    /// answer, not a failure to reach the node, and comes back as `Err`.
    pub(crate) fn failed(&mut self, error: ClientError) -> Result<(), ClientError> {
        match error {
            error @ ClientError::Kafka { .. } => Err(error),
            error => {
                self.attempts.push(error.to_string());
                Ok(())
            }
        }
    }

    /// The error once every address failed.
    pub(crate) fn exhausted(self) -> ClientError {
        ClientError::NoNodeAvailable {
            attempts: self.attempts,
        }
    }
}

/// Which failures a call may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryKind {
    /// A read: any retriable error.
    Read,
    /// A write: only errors showing it was refused or never sent, so that
    /// it is never applied twice.
    Write,
    /// A group request: the coordinator moved, is loading, or is gone.
    Coordinator,
}

/// The retries of one call: at most [`RETRY_ATTEMPTS`] attempts, pausing a
/// little longer before each. An attempt refreshes what the client knows
/// when [`Retry::refresh`] says so; after a failure, [`Retry::again`] says
/// whether to make another.
#[derive(Debug)]
pub(crate) struct Retry {
    kind: RetryKind,
    attempt: u32,
}

impl Retry {
    pub(crate) fn new(kind: RetryKind) -> Retry {
        Retry { kind, attempt: 0 }
    }

    /// Whether this attempt should refresh what the client knows (metadata,
    /// the coordinator) first: every attempt after the first does.
    pub(crate) fn refresh(&self) -> bool {
        self.attempt > 0
    }

    /// After an attempt failed with `error`: whether to try again, having
    /// paused before it.
    pub(crate) async fn again(&mut self, error: &ClientError) -> bool {
        self.attempt += 1;
        let retriable = match (self.kind, error) {
            (RetryKind::Coordinator, ClientError::Kafka { code, .. }) => is_coordinator_code(*code),
            (_, ClientError::Kafka { .. }) => error.is_retriable(),
            (RetryKind::Write, _) => error.never_sent(),
            (RetryKind::Read | RetryKind::Coordinator, _) => error.is_retriable(),
        };
        if !retriable || self.attempt >= RETRY_ATTEMPTS {
            return false;
        }
        tokio::time::sleep(retry_backoff(self.attempt)).await;
        true
    }
}

/// The pause before retry number `attempt` (from 1).
pub(crate) fn retry_backoff(attempt: u32) -> Duration {
    RETRY_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(MAX_RETRY_BACKOFF)
}
