//! What can go wrong talking to a node; every error names the node's
//! address and, once a request is involved, the API.

use std::time::Duration;

use eddy_protocol::{DecodeError, EncodeError, ErrorCode};

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
}

impl ClientError {
    /// The Kafka error code, when the node answered with one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
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
}

/// Turns a numeric Kafka error code into an [`ErrorCode`]; codes this
/// build does not know become `UNKNOWN_SERVER_ERROR`.
pub(crate) fn error_code(code: i16) -> ErrorCode {
    ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError)
}
