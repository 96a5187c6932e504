//! `DATA/cluster.json`: how other processes find a running supervisor (its
//! control port and token) and the last node table it wrote. Written
//! atomically (temp file, then rename) and readable by the owner only,
//! since the token grants control of the cluster.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{read_json, write_atomically};
use crate::error::ClusterError;
use crate::supervisor::NodeStatus;

pub const STATE_FILE: &str = "cluster.json";
pub const LOCK_FILE: &str = "supervisor.lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub supervisor_pid: u32,
    /// The control port on 127.0.0.1; 0 while there is none.
    pub control_port: u16,
    pub token: String,
    pub data_dir: PathBuf,
    pub bootstrap_servers: String,
    pub nodes: Vec<NodeStatus>,
}

impl ClusterState {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(STATE_FILE)
    }

    /// Reads `DATA/cluster.json`; `Ok(None)` when there is none.
    pub fn read(data_dir: &Path) -> Result<Option<ClusterState>, ClusterError> {
        read_json(&Self::path(data_dir), ClusterError::Control)
    }

    /// Writes `DATA/cluster.json`, readable by its owner only (it holds the
    /// control token).
    pub fn write(&self) -> Result<(), ClusterError> {
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|error| ClusterError::Control(format!("encoding cluster state: {error}")))?;
        text.push(b'\n');
        write_atomically(&Self::path(&self.data_dir), &text, true)
    }

    /// Removes `DATA/cluster.json` if it is still this supervisor's.
    pub fn remove_if_owned(data_dir: &Path, supervisor_pid: u32) {
        if let Ok(Some(state)) = Self::read(data_dir)
            && state.supervisor_pid == supervisor_pid
        {
            let _ = std::fs::remove_file(Self::path(data_dir));
        }
    }
}

/// Takes `DATA/supervisor.lock`, held for the supervisor's life, so that two
/// supervisors never share a data directory.
pub(crate) fn lock_data_dir(data_dir: &Path) -> Result<File, ClusterError> {
    let path = data_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(ClusterError::io(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ClusterError::DataDirInUse {
            data_dir: data_dir.to_path_buf(),
            supervisor_pid: ClusterState::read(data_dir)
                .ok()
                .flatten()
                .map(|state| state.supervisor_pid),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ClusterError::Io {
            what: format!("locking {}", path.display()),
            source,
        }),
    }
}
