use std::path::PathBuf;
use std::time::Duration;

use crate::process::ExitInfo;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid cluster: {0}")]
    InvalidSpec(String),
    #[error("a cluster is already running in {}{}", data_dir.display(), supervisor_pid.map(|pid| format!(" (supervisor pid {pid})")).unwrap_or_default())]
    DataDirInUse {
        data_dir: PathBuf,
        supervisor_pid: Option<u32>,
    },
    #[error(
        "port {port} (node {node}'s {listener} port) is already in use; stop whatever holds it or choose another --base-port"
    )]
    PortInUse {
        port: u16,
        node: u16,
        listener: &'static str,
    },
    #[error("no node {node} (the cluster has nodes {})", nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    NoSuchNode { node: u16, nodes: Vec<u16> },
    #[error("{0}")]
    Operation(String),
    /// A rejected edit of `DATA/eddy.toml`.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Client(#[from] eddy_client::ClientError),
    #[error("node {node} is not running")]
    NodeNotRunning { node: u16 },
    #[error("node {node} exited ({exit}) before it was ready; the end of {}:\n{log_tail}", log_path.display())]
    NodeExited {
        node: u16,
        exit: ExitInfo,
        log_path: PathBuf,
        log_tail: String,
    },
    #[error("the cluster was not ready within {timeout:?}: {waiting}")]
    NotReady { timeout: Duration, waiting: String },
    #[error("no cluster is running in {} (start one with `eddy cluster up`)", data_dir.display())]
    NotRunning { data_dir: PathBuf },
    #[error("the supervisor refused the command: {0}")]
    Refused(String),
    #[error("talking to the supervisor: {0}")]
    Control(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClusterError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
        let what = what.into();
        move |source| ClusterError::Io { what, source }
    }
}
