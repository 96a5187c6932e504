//! [`Client`]: bootstrap addresses, a connection per node, short per-node
//! timeouts. A node that does not answer in time is skipped, so one hung
//! node never stalls a whole view.

use std::collections::HashMap;
use std::time::Duration;

use eddy_protocol::{Request, RequestBody};

use crate::connection::Connection;
use crate::error::ClientError;

/// A client for one cluster. Calls take `&mut self`: a client owns its
/// connections and sends one request at a time on each.
pub struct Client {
    bootstrap: Vec<String>,
    node_timeout: Duration,
    /// Open connections, by `host:port`.
    connections: HashMap<String, Connection>,
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

    /// The open connection to `address`, negotiated on first use.
    pub async fn connection(&mut self, address: &str) -> Result<&mut Connection, ClientError> {
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

    /// Runs `call` against each bootstrap address in turn until one answers.
    /// A Kafka error is an answer and is returned as is; a node that cannot
    /// be reached is skipped.
    pub(crate) async fn first_answer<T>(
        &mut self,
        mut call: impl AsyncFnMut(&mut Client, &str) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut attempts = Vec::new();
        for address in self.bootstrap.clone() {
            match call(self, &address).await {
                Ok(answer) => return Ok(answer),
                Err(error @ ClientError::Kafka { .. }) => return Err(error),
                Err(error) => attempts.push(error.to_string()),
            }
        }
        Err(ClientError::NoNodeAvailable { attempts })
    }
}
