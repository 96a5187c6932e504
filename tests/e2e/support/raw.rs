//! A raw Kafka connection for requests no client would send: frames built
//! with eddy-protocol types (any API, any version, any field values), sent
//! over plain TCP, with the response decoded at the version asked for.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy_protocol::messages::{ApiVersionsRequest, RequestHeader};
use eddy_protocol::{ApiKey, RequestBody, RequestFrame, ResponseBody, ResponseFrame};

/// ApiVersions version the connection asks with (its response header is v0).
const API_VERSIONS_VERSION: i16 = 3;

pub struct RawConnection {
    stream: TcpStream,
    correlation_id: i32,
    /// Bytes of the last response frame, without its length prefix.
    pub last_response_bytes: usize,
}

impl RawConnection {
    /// Connects to `bootstrap`; reads wait at most `read_timeout`.
    pub fn open(bootstrap: &str, read_timeout: Duration) -> RawConnection {
        let stream = TcpStream::connect(bootstrap).expect("connecting to the node");
        stream
            .set_read_timeout(Some(read_timeout))
            .expect("read timeout");
        RawConnection {
            stream,
            correlation_id: 0,
            last_response_bytes: 0,
        }
    }

    /// Writes bytes; the node may already have closed the connection, which
    /// is what most hostile input should get, so write errors are ignored.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Stops sending (half-close), as a client that gave up mid-frame. The
    /// node may have closed the connection already, which is fine.
    pub fn finish_sending(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Fails the test unless the node closes the connection within `timeout`.
    pub fn assert_closed_by_node(mut self, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut buffer = [0u8; 4096];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return,
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return;
                }
                // Whatever the node says first, it must still close.
                Ok(_) => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => panic!("{what}: reading: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the node kept the connection open"
            );
        }
    }

    /// Sends a request and returns the response body.
    pub fn request(&mut self, body: RequestBody, version: i16) -> ResponseBody {
        let key = body.api_key();
        self.send_request(body, version);
        self.read_response(key, version)
    }

    pub fn send_request(&mut self, body: RequestBody, version: i16) {
        self.correlation_id += 1;
        let frame = RequestFrame {
            header: RequestHeader {
                request_api_version: version,
                correlation_id: self.correlation_id,
                client_id: Some("eddy-e2e-raw".into()),
                ..RequestHeader::default()
            },
            body,
        };
        let bytes = frame
            .encode()
            .expect("encoding a request")
            .into_contiguous();
        self.stream.write_all(&bytes).expect("sending a request");
    }

    /// Reads the response to the last request sent, of API `key` at `version`.
    pub fn read_response(&mut self, key: ApiKey, version: i16) -> ResponseBody {
        let (correlation_id, body) = self.read_next_response(key, version);
        assert_eq!(
            correlation_id, self.correlation_id,
            "correlation id of the {key:?} response"
        );
        body
    }

    /// The correlation id of the last request sent (they count from 1).
    pub fn last_correlation_id(&self) -> i32 {
        self.correlation_id
    }

    /// Reads the next response on the connection, of API `key` at
    /// `version`, with its correlation id (for requests sent pipelined).
    pub fn read_next_response(&mut self, key: ApiKey, version: i16) -> (i32, ResponseBody) {
        let mut length = [0u8; 4];
        self.stream
            .read_exact(&mut length)
            .unwrap_or_else(|error| panic!("no {key:?} v{version} response: {error}"));
        let length = i32::from_be_bytes(length);
        let length = usize::try_from(length)
            .unwrap_or_else(|_| panic!("{key:?} response claims {length} bytes"));
        let mut frame = vec![0u8; length];
        self.stream
            .read_exact(&mut frame)
            .unwrap_or_else(|error| panic!("reading a {key:?} response: {error}"));
        self.last_response_bytes = length;
        let response = ResponseFrame::decode(&Bytes::from(frame), key, version)
            .unwrap_or_else(|error| panic!("undecodable {key:?} v{version} response: {error}"));
        (response.header.correlation_id, response.body)
    }

    /// The node's version range for each API key it advertises.
    pub fn supported_versions(&mut self) -> BTreeMap<i16, (i16, i16)> {
        let response = self.request(
            RequestBody::ApiVersions(ApiVersionsRequest {
                client_software_name: "eddy-e2e".into(),
                client_software_version: "0".into(),
                ..ApiVersionsRequest::default()
            }),
            API_VERSIONS_VERSION,
        );
        let ResponseBody::ApiVersions(versions) = response else {
            panic!("not an ApiVersions response: {response:?}");
        };
        assert_eq!(versions.error_code, 0, "ApiVersions error");
        versions
            .api_keys
            .iter()
            .map(|api| (api.api_key, (api.min_version, api.max_version)))
            .collect()
    }

    /// The newest version of `key` both the node and this codec speak, no
    /// newer than `newest`; fails the test if the node does not serve `key`.
    pub fn version_for(&mut self, key: ApiKey, newest: i16) -> i16 {
        let (min, max) = *self
            .supported_versions()
            .get(&(key as i16))
            .unwrap_or_else(|| panic!("the node does not advertise {key:?}"));
        let version = max.min(newest).min(key.info().max_stable_version);
        assert!(
            version >= min,
            "the node serves {key:?} v{min}-v{max}, none at or below v{newest}"
        );
        version
    }
}
