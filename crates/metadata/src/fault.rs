//! Fault injection: whether this node is cut off from the other nodes.
//!
//! One process is one node, so the setting is process-wide. While it is on,
//! every call to another node's controller listener fails at once (raft
//! RPCs, heartbeats, forwarded proposals) and connections other nodes open to
//! this one are closed; the broker stops its replication links the same way.
//! Kafka clients are not affected. The broker flips it from the node's fault
//! file.

use std::sync::OnceLock;

use tokio::sync::watch;

fn state() -> &'static watch::Sender<bool> {
    static STATE: OnceLock<watch::Sender<bool>> = OnceLock::new();
    STATE.get_or_init(|| watch::channel(false).0)
}

/// Whether this node is isolated from the other nodes.
pub fn isolated() -> bool {
    *state().borrow()
}

/// Cuts this node off from the other nodes (`true`) or heals it. Returns
/// whether the setting changed.
pub fn set_isolated(isolated: bool) -> bool {
    state().send_if_modified(|current| {
        let changed = *current != isolated;
        *current = isolated;
        changed
    })
}

/// Follows the setting: the receiver sees every change.
pub fn subscribe() -> watch::Receiver<bool> {
    state().subscribe()
}

/// Resolves once this node is isolated (at once if it already is).
pub async fn until_isolated(receiver: &mut watch::Receiver<bool>) {
    // The sender lives in a static, so this never ends in an error.
    let _ = receiver.wait_for(|isolated| *isolated).await;
}
