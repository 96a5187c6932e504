//! What nodes say to each other on the controller listener, and how it is
//! framed: a 4-byte big-endian length, then JSON. Every frame carries a
//! request id so that one connection can carry many requests at once.
//!
//! A frame longer than [`MAX_FRAME_SIZE_BYTES`] or that does not parse ends
//! the connection it came on, and nothing else.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::command::CommandResult;
use crate::types::{Request, TypeConfig};

/// Frames bigger than this are refused.
pub const MAX_FRAME_SIZE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Frame<T> {
    pub id: u64,
    pub body: T,
}

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal for the active controller to write to the log.
    Forward {
        request: Request,
        timeout_ms: u64,
    },
    Heartbeat(Heartbeat),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcReply {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Forward(ForwardReply),
    Heartbeat(HeartbeatReply),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ForwardReply {
    /// Written at log `index`; `result` is what applying it gave.
    Applied {
        index: u64,
        result: CommandResult,
    },
    /// Not the controller (any more); `leader_id` is who is, if known.
    NotLeader {
        leader_id: Option<u64>,
    },
    Failed {
        message: String,
    },
}

/// A node telling the controller it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub incarnation: u64,
    pub host: String,
    pub port: u16,
    pub controller_address: String,
    pub wants_shutdown: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub fenced: bool,
    pub controller_id: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes is larger than the limit of {MAX_FRAME_SIZE_BYTES}")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame. Not cancel-safe: a cancelled read loses the connection's
/// framing, so callers drop the connection afterwards.
pub(crate) async fn read_frame<T: DeserializeOwned>(
    reader: &mut (impl AsyncRead + Unpin),
) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Err(error) => return Err(error.into()),
    }
    let length = u32::from_be_bytes(header) as usize;
    if length > MAX_FRAME_SIZE_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    // Grows with the bytes that arrive rather than trusting the header.
    let mut body = Vec::new();
    (&mut *reader)
        .take(length as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < length {
        return Err(FrameError::Closed);
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Encodes a whole frame, header included.
pub(crate) fn encode_frame(value: &impl Serialize) -> Result<Vec<u8>, FrameError> {
    let mut bytes = vec![0u8; 4];
    serde_json::to_writer(&mut bytes, value)?;
    let length = bytes.len() - 4;
    if length > MAX_FRAME_SIZE_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    bytes[..4].copy_from_slice(&(length as u32).to_be_bytes());
    Ok(bytes)
}

pub(crate) async fn write_frame(
    writer: &mut (impl AsyncWrite + Unpin),
    frame: &[u8],
) -> Result<(), FrameError> {
    writer.write_all(frame).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_or_malformed_frames_are_errors() {
        let heartbeat = Frame {
            id: 3,
            body: HeartbeatReply {
                fenced: false,
                controller_id: Some(2),
            },
        };
        let bytes = encode_frame(&heartbeat).unwrap();
        let decoded: Frame<HeartbeatReply> = read_frame(&mut bytes.as_slice()).await.unwrap();
        assert_eq!((decoded.id, decoded.body), (3, heartbeat.body));

        let oversized = (MAX_FRAME_SIZE_BYTES as u32 + 1).to_be_bytes();
        let error = read_frame::<Frame<HeartbeatReply>>(&mut oversized.as_slice()).await;
        assert!(matches!(error, Err(FrameError::TooLarge(_))));

        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(b"{{{{{");
        let error = read_frame::<Frame<HeartbeatReply>>(&mut garbage.as_slice()).await;
        assert!(matches!(error, Err(FrameError::Malformed(_))));

        let truncated = 50u32.to_be_bytes();
        let error = read_frame::<Frame<HeartbeatReply>>(&mut truncated.as_slice()).await;
        assert!(error.is_err());
    }
}
