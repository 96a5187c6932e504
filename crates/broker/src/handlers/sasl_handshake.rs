//! SaslHandshake on a plaintext listener: Kafka answers ILLEGAL_SASL_STATE
//! with no mechanisms, so a client configured for SASL fails fast instead of
//! waiting.

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::SaslHandshakeResponse;

pub fn handle() -> SaslHandshakeResponse {
    SaslHandshakeResponse {
        error_code: ErrorCode::IllegalSaslState.code(),
        mechanisms: Vec::new(),
        ..Default::default()
    }
}
