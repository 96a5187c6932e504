//! Fault injection from the node's fault file, `<data dir>/faults.json`.
//!
//! The file is JSON, `{"isolated": true}` cuts this node off from the other
//! nodes: its replication links (fetches it sends to leaders, replica fetches
//! it serves) and its controller links (raft, heartbeats, forwarded
//! proposals, both ways). Kafka clients still reach it. A missing file or
//! `{"isolated": false}` is no fault. Writers replace the file atomically (a
//! temporary file renamed over it); the node looks at it about every 100 ms.
//! A file that cannot be read or parsed is reported and ignored: the current
//! setting stays.
//!
//! The setting itself is process-wide ([`eddy_metadata::fault`]): one process
//! is one node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

/// The fault file's name in the node's data directory.
pub const FAULT_FILE: &str = "faults.json";
/// How often the fault file is read.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Whether this node is isolated from the other nodes now.
pub fn isolated() -> bool {
    eddy_metadata::fault::isolated()
}

/// The fault file of the node whose data directory is `data_dir`.
pub fn fault_file(data_dir: &Path) -> PathBuf {
    data_dir.join(FAULT_FILE)
}

/// What a fault file asks for: `Ok(isolated)`, or why it cannot be used.
pub fn parse(text: &str) -> Result<bool, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    match object.get("isolated") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(isolated)) => Ok(*isolated),
        Some(other) => Err(format!("\"isolated\" must be true or false, not {other}")),
    }
}

/// Reads the fault file: `Ok(false)` when there is none.
fn read(path: &Path) -> Result<bool, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error.to_string()),
    }
}

/// Applies the fault file of `data_dir` until `stopped` changes.
pub async fn watch_file(data_dir: PathBuf, mut stopped: watch::Receiver<bool>) {
    let path = fault_file(&data_dir);
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => break,
        }
        match read(&path) {
            Ok(isolated) => {
                last_problem = None;
                apply(isolated);
            }
            Err(problem) => {
                if last_problem.as_deref() != Some(problem.as_str()) {
                    tracing::warn!(path = %path.display(), %problem, "ignoring an unusable fault file; the current fault setting stays");
                }
                last_problem = Some(problem);
            }
        }
    }
    // A stopping node leaves nothing behind in the process.
    apply(false);
}

fn apply(isolated: bool) {
    if eddy_metadata::fault::set_isolated(isolated) {
        if isolated {
            tracing::info!(
                "isolated from the other nodes by fault injection: replication and controller links are cut, Kafka clients are still served"
            );
        } else {
            tracing::info!("healed: links to the other nodes are restored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_files_parse_or_say_why_not() {
        assert_eq!(parse(r#"{"isolated": true}"#), Ok(true));
        assert_eq!(parse(r#"{"isolated": false}"#), Ok(false));
        assert_eq!(parse("{}"), Ok(false));
        assert!(parse(r#"{"isolated": "yes"}"#).is_err());
        assert!(parse("[true]").is_err());
        assert!(parse("{\"isolated\": tr").is_err());
    }
}
