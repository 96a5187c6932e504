//! What can go wrong talking to a node; every error names the node's
//! address and, once a request is involved, the API. A Kafka error code is
//! an [`ErrorCode`] value, kept with the broker's message.

use std::time::Duration;

use eddy_protocol::records::RecordsError;
use eddy_protocol::{ApiKey, DecodeError, EncodeError, ErrorCode};
use serde::{Serialize, Serializer};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{address} did not answer {api} within {timeout:?}")]
    Timeout {
        address: String,
        api: &'static str,
        timeout: Duration,
    },
    #[error("{api} to {address}: {source}")]
    Io {
        address: String,
        api: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{api} to {address}: cannot encode the request: {source}")]
    Encode {
        address: String,
        api: &'static str,
        #[source]
        source: EncodeError,
    },
    #[error("{api} from {address}: malformed response: {source}")]
    Decode {
        address: String,
        api: &'static str,
        #[source]
        source: DecodeError,
    },
    #[error("{api} from {address}: {reason}")]
    Protocol {
        address: String,
        api: &'static str,
        reason: String,
    },
    #[error("{address} does not support {api} at any version this client speaks")]
    Unsupported { address: String, api: &'static str },
    #[error("{api} on {address} failed with {code}{}", message.as_deref().map(|message| format!(": {message}")).unwrap_or_default())]
    Kafka {
        address: String,
        api: &'static str,
        code: ErrorCode,
        message: Option<String>,
    },
    #[error("no bootstrap server answered ({})", attempts.join("; "))]
    NoNodeAvailable { attempts: Vec<String> },
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error(
        "offset {offset} is out of range for {topic}-{partition}{}",
        range_text(*log_start_offset, *high_watermark)
    )]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        /// The first offset the partition still holds, when it could be read.
        log_start_offset: Option<i64>,
        /// The offset after the last readable record, when it could be read.
        high_watermark: Option<i64>,
    },
    #[error("records of {topic}-{partition} from {address} cannot be read: {source}")]
    Records {
        address: String,
        topic: String,
        partition: i32,
        #[source]
        source: RecordsError,
    },
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
}

fn range_text(log_start_offset: Option<i64>, high_watermark: Option<i64>) -> String {
    match (log_start_offset, high_watermark) {
        (Some(start), Some(end)) => format!(" (it holds offsets {start} to {end})"),
        _ => String::new(),
    }
}

impl ClientError {
    /// The Kafka error code, when the node answered with one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            ClientError::OffsetOutOfRange { .. } => Some(ErrorCode::OffsetOutOfRange),
            _ => None,
        }
    }

    /// Whether the connection that produced this error can be used again:
    /// after a timeout or an I/O or framing error the stream is out of step.
    pub(crate) fn leaves_connection_usable(&self) -> bool {
        matches!(
            self,
            ClientError::Kafka { .. }
                | ClientError::Unsupported { .. }
                | ClientError::Encode { .. }
        )
    }

    /// Whether the request certainly never reached a node (so a write may
    /// be sent again without risking a duplicate).
    pub(crate) fn never_sent(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::NoNodeAvailable { .. }
        )
    }

    /// Whether the call may succeed after refreshing metadata (or finding
    /// the coordinator again) and trying once more: leadership moved, a
    /// node went away, or the cluster is still settling.
    pub(crate) fn is_retriable(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => is_retriable_code(*code),
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Io { .. }
            | ClientError::NoNodeAvailable { .. } => true,
            _ => false,
        }
    }
}

/// Kafka errors that say "ask again, maybe elsewhere": stale leadership or
/// coordinator information, or a node still loading.
pub(crate) fn is_retriable_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::NotController
            | ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::RequestTimedOut
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::UnknownTopicOrPartition
    )
}

/// Whether `code` says the group's coordinator is elsewhere or not ready.
pub(crate) fn is_coordinator_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
    )
}

/// One Kafka error for one item of a multi-item request (a topic, a group,
/// a partition): the code and the broker's message (empty if it sent none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
pub struct KafkaFailure {
    #[serde(serialize_with = "code_name")]
    pub code: ErrorCode,
    pub message: String,
}

impl KafkaFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> KafkaFailure {
        KafkaFailure {
            code,
            message: message.into(),
        }
    }

    /// `Ok` for a zero code, the failure otherwise.
    pub(crate) fn check(code: i16, message: Option<&str>) -> Result<(), KafkaFailure> {
        match failure(code) {
            None => Ok(()),
            Some(code) => Err(KafkaFailure::new(code, message.unwrap_or_default())),
        }
    }

    /// The failure as a [`ClientError`] from `address` answering `key`.
    pub(crate) fn into_error(self, address: &str, key: ApiKey) -> ClientError {
        ClientError::Kafka {
            address: address.to_string(),
            api: key.name(),
            code: self.code,
            message: (!self.message.is_empty()).then_some(self.message),
        }
    }
}

impl From<&ClientError> for KafkaFailure {
    /// A client error as the failure of one item: a Kafka error keeps its
    /// code; anything else becomes UNKNOWN_SERVER_ERROR with its text.
    fn from(error: &ClientError) -> KafkaFailure {
        match error {
            ClientError::Kafka { code, message, .. } => {
                KafkaFailure::new(*code, message.clone().unwrap_or_default())
            }
            other => KafkaFailure::new(
                other.error_code().unwrap_or(ErrorCode::UnknownServerError),
                other.to_string(),
            ),
        }
    }
}

/// Turns a numeric Kafka error code into an [`ErrorCode`]; codes this
/// build does not know become `UNKNOWN_SERVER_ERROR`.
pub(crate) fn error_code(code: i16) -> ErrorCode {
    ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError)
}

/// `None` for a zero code.
pub(crate) fn failure(code: i16) -> Option<ErrorCode> {
    (code != ErrorCode::None.code()).then(|| error_code(code))
}

/// `Ok` for a zero code; otherwise the Kafka error from `address`.
pub(crate) fn check(
    address: &str,
    key: ApiKey,
    code: i16,
    message: Option<&str>,
) -> Result<(), ClientError> {
    KafkaFailure::check(code, message).map_err(|failure| failure.into_error(address, key))
}

pub(crate) fn code_name<S: Serializer>(code: &ErrorCode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(code.name())
}

pub(crate) fn optional_code_name<S: Serializer>(
    error: &Option<ErrorCode>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match error {
        Some(code) => serializer.serialize_str(code.name()),
        None => serializer.serialize_none(),
    }
}
