//! The UI's TypeScript types are generated from [`crate::model`]; this test
//! fails when the files in `ui/src/lib/bindings/` are not what the Rust
//! types generate. `EDDY_UPDATE_BINDINGS=1 cargo test -p eddy-console
//! bindings` rewrites them.

use std::path::{Path, PathBuf};

use ts_rs::{Config, TS};

use crate::model::*;

fn bindings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/bindings")
}

/// (file name, generated text) of every type the UI uses.
fn generated() -> Vec<(String, String)> {
    let config = Config::new();
    let mut files = Vec::new();
    macro_rules! types {
        ($($ty:ty),* $(,)?) => {
            $(
                let name = <$ty as TS>::output_path()
                    .expect("exportable")
                    .to_string_lossy()
                    .into_owned();
                let text = <$ty as TS>::export_to_string(&config).expect("bindings");
                files.push((name, text));
            )*
        };
    }
    types!(
        SessionInfo,
        SessionKind,
        ClusterSnapshot,
        NodeView,
        NodeStatus,
        QuorumView,
        VoterView,
        TopicView,
        PartitionView,
        ReplicaView,
        ReplicaRole,
        Reassigning,
        ReassignmentView,
        GroupSummary,
        GroupDetail,
        MemberView,
        TopicPartitions,
        PartitionLag,
        ClusterEvent,
        ConfigEntryView,
        PartitionOffsets,
        ReplicaSize,
        MessageView,
        Payload,
        HeaderView,
        StartAt,
        ResetTo,
        NodeAction,
        DemoSettings,
        DemoStatus,
        Request,
        Response,
        LagPoint,
        Failure,
        Update,
        Progress,
    );
    files
}

#[test]
fn typescript_bindings_match_the_rust_types() {
    let dir = bindings_dir();
    let update = std::env::var_os("EDDY_UPDATE_BINDINGS").is_some();
    let mut stale = Vec::new();
    for (name, text) in generated() {
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(&dir).expect("bindings directory");
            std::fs::write(&path, &text).expect("writing bindings");
            continue;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "ui/src/lib/bindings is stale for {stale:?}; regenerate with \
         `EDDY_UPDATE_BINDINGS=1 cargo test -p eddy-console bindings`"
    );
}
