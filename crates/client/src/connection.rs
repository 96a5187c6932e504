//! One connection to one node: ApiVersions negotiation, then requests and
//! responses in lockstep (one request in flight at a time).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use eddy_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use eddy_protocol::{
    ApiKey, Decoder, Encodable, ErrorCode, Request, RequestBody, RequestFrame, VersionRange,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ClientError, error_code};

/// The largest response frame accepted; a length beyond it means a
/// confused or hostile peer, not a response worth buffering.
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;
/// The ApiVersions version asked first; a node that does not know it answers
/// UNSUPPORTED_VERSION in a v0 body and is asked again at v0.
const API_VERSIONS_VERSION: i16 = 3;
const CLIENT_ID: &str = "eddy-client";

/// A negotiated connection to one node.
pub struct Connection {
    address: String,
    stream: TcpStream,
    correlation_id: i32,
    /// The node's supported versions, by API key.
    versions: BTreeMap<i16, VersionRange>,
    request_timeout: Duration,
}

impl Connection {
    /// Connects to `address` (`host:port`) and negotiates API versions; both
    /// steps, and later every request, are bounded by `timeout`.
    pub async fn connect(address: &str, timeout: Duration) -> Result<Connection, ClientError> {
        let connecting = TcpStream::connect(address);
        let stream = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    address: address.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    address: address.to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {timeout:?}"),
                    ),
                });
            }
        };
        // Requests are small and answered one at a time: send them at once.
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            address: address.to_string(),
            stream,
            correlation_id: 0,
            versions: BTreeMap::new(),
            request_timeout: timeout,
        };
        connection.negotiate().await?;
        Ok(connection)
    }

    /// The `host:port` this connection was opened to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The versions of `key` the node advertised, if it supports it at all.
    pub fn supported_versions(&self, key: ApiKey) -> Option<VersionRange> {
        self.versions.get(&(key as i16)).copied()
    }

    /// Whether the node advertises `key` at a version this client speaks.
    pub fn supports(&self, key: ApiKey) -> bool {
        self.version_for(key).is_some()
    }

    /// Whether the node closed this connection, or sent something nobody
    /// asked for, while it sat idle; either way it cannot be used. Checked
    /// before reusing a connection, so that a request to a node that died
    /// meanwhile is never sent into a dead socket (where a write could not
    /// tell whether it was applied).
    pub fn is_broken(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
            // End of stream, or bytes between requests and responses.
            Ok(_) => true,
        }
    }

    /// Changes the bound on each later request.
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
    }

    /// Sends `request` at the highest version both sides support and
    /// returns the node's response.
    pub async fn send<R>(&mut self, request: R) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let version = self
            .version_for(R::KEY)
            .ok_or_else(|| ClientError::Unsupported {
                address: self.address.clone(),
                api: R::KEY.name(),
            })?;
        self.send_at(request, version).await
    }

    /// Sends `request` at exactly `version`.
    pub async fn send_at<R>(&mut self, request: R, version: i16) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let timeout = self.request_timeout;
        self.send_at_within(request, version, timeout).await
    }

    /// Sends `request` at the highest version both sides support that is
    /// at most `max_version` (when given), allowing `timeout` for the
    /// answer: a request the node may hold (a Fetch waiting for data, a
    /// JoinGroup waiting for a rebalance) needs more than the usual bound.
    pub async fn send_with<R>(
        &mut self,
        request: R,
        max_version: Option<i16>,
        timeout: Duration,
    ) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let version = self
            .version_at_most(R::KEY, max_version.unwrap_or(i16::MAX))
            .ok_or_else(|| ClientError::Unsupported {
                address: self.address.clone(),
                api: R::KEY.name(),
            })?;
        self.send_at_within(request, version, timeout).await
    }

    /// Sends `request` at the highest common version and does not wait for
    /// an answer: for requests the node never answers (Produce with acks=0).
    pub async fn send_unanswered<R>(&mut self, request: R) -> Result<(), ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let version = self
            .version_for(R::KEY)
            .ok_or_else(|| ClientError::Unsupported {
                address: self.address.clone(),
                api: R::KEY.name(),
            })?;
        let key = R::KEY;
        let (bytes, _) = self.frame(request.into(), version)?;
        let timeout = self.request_timeout;
        let address = self.address.clone();
        match tokio::time::timeout(timeout, self.stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ClientError::Io {
                address,
                api: key.name(),
                source,
            }),
            Err(_) => Err(ClientError::Timeout {
                address,
                api: key.name(),
                timeout,
            }),
        }
    }

    async fn send_at_within<R>(
        &mut self,
        request: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError>
    where
        R: Request + Into<RequestBody>,
    {
        let body = self.exchange(request.into(), version, timeout).await?;
        let mut decoder = Decoder::new(&body);
        R::Response::decode(&mut decoder, version)
            .map_err(|source| self.decode_error(R::KEY, source))
    }

    /// The highest version of `key` that both this client (eddy-protocol's
    /// stable versions) and the node support.
    fn version_for(&self, key: ApiKey) -> Option<i16> {
        self.version_at_most(key, i16::MAX)
    }

    /// The highest version of `key` both sides support, capped at `cap`.
    fn version_at_most(&self, key: ApiKey, cap: i16) -> Option<i16> {
        let ours = key.info();
        let theirs = self.supported_versions(key)?;
        let highest = ours.max_stable_version.min(theirs.max).min(cap);
        let lowest = ours.min_version.max(theirs.min);
        (highest >= lowest).then_some(highest)
    }

    async fn negotiate(&mut self) -> Result<(), ClientError> {
        let request = ApiVersionsRequest {
            client_software_name: "eddy-client".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..ApiVersionsRequest::default()
        };
        let mut response = self
            .api_versions(request.clone(), API_VERSIONS_VERSION)
            .await?;
        if response.error_code == ErrorCode::UnsupportedVersion.code() {
            response = self.api_versions(request, 0).await?;
        }
        if response.error_code != ErrorCode::None.code() {
            return Err(ClientError::Kafka {
                address: self.address.clone(),
                api: ApiKey::ApiVersions.name(),
                code: error_code(response.error_code),
                message: None,
            });
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|api| {
                let range = VersionRange {
                    min: api.min_version,
                    max: api.max_version,
                };
                (api.api_key, range)
            })
            .collect();
        Ok(())
    }

    /// One ApiVersions exchange. A node that does not know `version` answers
    /// with a v0 body carrying UNSUPPORTED_VERSION, so the error code (the
    /// first field at every version) is read before the rest.
    async fn api_versions(
        &mut self,
        request: ApiVersionsRequest,
        version: i16,
    ) -> Result<ApiVersionsResponse, ClientError> {
        let timeout = self.request_timeout;
        let body = self.exchange(request.into(), version, timeout).await?;
        let mut decoder = Decoder::new(&body);
        let code = decoder
            .i16("ApiVersionsResponse.ErrorCode")
            .map_err(|source| self.decode_error(ApiKey::ApiVersions, source))?;
        if code == ErrorCode::UnsupportedVersion.code() {
            return Ok(ApiVersionsResponse {
                error_code: code,
                ..ApiVersionsResponse::default()
            });
        }
        let mut decoder = Decoder::new(&body);
        ApiVersionsResponse::decode(&mut decoder, version)
            .map_err(|source| self.decode_error(ApiKey::ApiVersions, source))
    }

    /// Writes one request and reads its response, returning the response
    /// body (after the header), all within `timeout`.
    async fn exchange(
        &mut self,
        body: RequestBody,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let key = body.api_key();
        let (bytes, correlation_id) = self.frame(body, version)?;
        let frame = match tokio::time::timeout(timeout, self.write_then_read(&bytes, key)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    address: self.address.clone(),
                    api: key.name(),
                    timeout,
                });
            }
        };
        let mut decoder = Decoder::new(&frame);
        let header = ResponseHeader::decode(&mut decoder, key.response_header_version(version))
            .map_err(|source| self.decode_error(key, source))?;
        if header.correlation_id != correlation_id {
            return Err(ClientError::Protocol {
                address: self.address.clone(),
                api: key.name(),
                reason: format!(
                    "response has correlation id {}, expected {correlation_id}",
                    header.correlation_id
                ),
            });
        }
        Ok(frame.slice(decoder.position().min(frame.len())..))
    }

    /// Encodes `body` at `version` as a whole request frame under the next
    /// correlation id, which it returns too.
    fn frame(&mut self, body: RequestBody, version: i16) -> Result<(Bytes, i32), ClientError> {
        let key = body.api_key();
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let frame = RequestFrame {
            header: RequestHeader {
                request_api_key: key as i16,
                request_api_version: version,
                correlation_id,
                client_id: Some(CLIENT_ID.into()),
                ..RequestHeader::default()
            },
            body,
        };
        let bytes = frame
            .encode()
            .map_err(|source| ClientError::Encode {
                address: self.address.clone(),
                api: key.name(),
                source,
            })?
            .into_contiguous();
        Ok((bytes, correlation_id))
    }

    async fn write_then_read(&mut self, request: &[u8], key: ApiKey) -> Result<Bytes, ClientError> {
        let address = self.address.clone();
        let io_error = |source| ClientError::Io {
            address: address.clone(),
            api: key.name(),
            source,
        };
        self.stream.write_all(request).await.map_err(io_error)?;
        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .await
            .map_err(io_error)?;
        let length = i32::from_be_bytes(length);
        let Some(length) = usize::try_from(length)
            .ok()
            .filter(|length| *length <= MAX_RESPONSE_BYTES)
        else {
            return Err(ClientError::Protocol {
                address,
                api: key.name(),
                reason: format!("response claims {length} bytes (limit {MAX_RESPONSE_BYTES})"),
            });
        };
        let mut frame = vec![0u8; length];
        self.stream.read_exact(&mut frame).await.map_err(io_error)?;
        Ok(Bytes::from(frame))
    }

    fn decode_error(&self, key: ApiKey, source: eddy_protocol::DecodeError) -> ClientError {
        ClientError::Decode {
            address: self.address.clone(),
            api: key.name(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_protocol::messages::api_versions_response::ApiVersion;
    use eddy_protocol::messages::{MetadataRequest, MetadataResponse};
    use eddy_protocol::{ResponseBody, ResponseFrame};
    use tokio::net::TcpListener;

    /// Reads one request frame and returns it decoded.
    async fn read_request(stream: &mut TcpStream) -> RequestFrame {
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).await.expect("length");
        let mut frame = vec![0u8; i32::from_be_bytes(length) as usize];
        stream.read_exact(&mut frame).await.expect("frame");
        RequestFrame::decode(&Bytes::from(frame)).expect("a valid request")
    }

    async fn respond(stream: &mut TcpStream, request: &RequestFrame, body: ResponseBody) {
        let bytes = ResponseFrame::encode(
            request.header.correlation_id,
            request.header.request_api_version,
            &body,
        )
        .expect("encoding")
        .into_contiguous();
        stream.write_all(&bytes).await.expect("writing");
    }

    /// A node from before ApiVersions v3: it answers v3 with
    /// UNSUPPORTED_VERSION in a v0 body, then serves v0 and Metadata v0-1.
    async fn old_node(listener: TcpListener) {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let first = read_request(&mut stream).await;
        assert_eq!(first.header.request_api_version, 3);
        let refusal = ResponseFrame::encode(
            first.header.correlation_id,
            0,
            &ResponseBody::ApiVersions(ApiVersionsResponse {
                error_code: ErrorCode::UnsupportedVersion.code(),
                api_keys: vec![ApiVersion {
                    api_key: ApiKey::ApiVersions as i16,
                    min_version: 0,
                    max_version: 0,
                    ..ApiVersion::default()
                }],
                ..ApiVersionsResponse::default()
            }),
        )
        .expect("encoding")
        .into_contiguous();
        stream.write_all(&refusal).await.expect("writing");
        let second = read_request(&mut stream).await;
        assert_eq!(second.header.request_api_version, 0);
        let versions = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: ApiKey::ApiVersions as i16,
                    min_version: 0,
                    max_version: 0,
                    ..ApiVersion::default()
                },
                ApiVersion {
                    api_key: ApiKey::Metadata as i16,
                    min_version: 0,
                    max_version: 1,
                    ..ApiVersion::default()
                },
            ],
            ..ApiVersionsResponse::default()
        };
        respond(&mut stream, &second, ResponseBody::ApiVersions(versions)).await;
        let metadata = read_request(&mut stream).await;
        assert_eq!(
            metadata.header.request_api_version, 1,
            "the highest common version"
        );
        let response = MetadataResponse {
            controller_id: 7,
            ..MetadataResponse::default()
        };
        respond(&mut stream, &metadata, ResponseBody::Metadata(response)).await;
    }

    #[tokio::test]
    async fn a_node_without_api_versions_v3_is_asked_again_at_v0() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let node = tokio::spawn(old_node(listener));
        let mut connection = Connection::connect(&address, Duration::from_secs(5))
            .await
            .expect("connecting with the v0 fallback");
        assert_eq!(
            connection.supported_versions(ApiKey::Metadata),
            Some(VersionRange { min: 0, max: 1 })
        );
        assert!(!connection.supports(ApiKey::DescribeQuorum));
        let response = connection
            .send(MetadataRequest::default())
            .await
            .expect("metadata at v1");
        assert_eq!(response.controller_id, 7);
        node.await.expect("the fake node saw what it expected");
    }

    #[tokio::test]
    async fn a_silent_node_times_out_with_its_address_and_the_api() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        // Accepts and never answers.
        let _node = tokio::spawn(async move {
            let (_stream, _) = listener.accept().await.expect("accept");
            std::future::pending::<()>().await;
        });
        let error = Connection::connect(&address, Duration::from_millis(100))
            .await
            .err()
            .expect("no answer");
        assert!(
            matches!(
                error,
                ClientError::Timeout {
                    api: "ApiVersions",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains(&address), "{error}");
    }
}
