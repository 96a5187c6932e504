//! ApiVersions: the APIs and versions this node serves, exactly as
//! [`super::SUPPORTED`] lists them.

use eddy_protocol::ErrorCode;
use eddy_protocol::messages::{ApiVersionsResponse, api_versions_response::ApiVersion};

use super::{SUPPORTED, advertised_versions};

pub fn handle(_version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: advertised(),
        ..Default::default()
    }
}

/// KIP-511: the answer to an ApiVersions version this node does not know,
/// sent as v0 so that any client can read it.
pub fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: advertised(),
        ..Default::default()
    }
}

fn advertised() -> Vec<ApiVersion> {
    let mut keys: Vec<ApiVersion> = SUPPORTED
        .iter()
        .filter_map(|(key, _, _)| {
            let (min, max) = advertised_versions(*key)?;
            Some(ApiVersion {
                api_key: *key as i16,
                min_version: min,
                max_version: max,
                ..Default::default()
            })
        })
        .collect();
    keys.sort_by_key(|key| key.api_key);
    keys
}
