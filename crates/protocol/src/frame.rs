//! Whole frames: a request or response header followed by its body.
//!
//! Frames here exclude Kafka's 4-byte length prefix on the way in (the
//! connection reads it to know how much to buffer) and include it on the way
//! out, ready for one vectored write. The header version follows from the API
//! key and version, with ApiVersions' response header always at v0.

use bytes::Bytes;

use crate::codec::{DecodeError, DecodeErrorKind, Decoder, EncodeError, EncodedBytes, Encoder};
use crate::messages::{RequestHeader, ResponseHeader};
use crate::{ApiKey, Encodable, RequestBody, ResponseBody};

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFrame {
    pub header: RequestHeader,
    pub body: RequestBody,
}

impl RequestFrame {
    /// Reads only the header, so that a caller can still answer (or log) a
    /// request whose body it cannot decode. Returns the API and the offset
    /// where the body starts.
    pub fn decode_header(frame: &Bytes) -> Result<(ApiKey, RequestHeader, usize), DecodeError> {
        let mut decoder = Decoder::new(frame);
        let raw_key = decoder.i16("RequestHeader.RequestApiKey")?;
        let version = decoder.i16("RequestHeader.RequestApiVersion")?;
        let key = ApiKey::from_i16(raw_key).ok_or_else(|| {
            DecodeError::new(
                "RequestHeader.RequestApiKey",
                DecodeErrorKind::UnknownApiKey(raw_key),
            )
        })?;
        let mut decoder = Decoder::new(frame);
        let header = RequestHeader::decode(&mut decoder, key.request_header_version(version))?;
        Ok((key, header, decoder.position()))
    }

    /// Decodes a request frame (without its length prefix).
    pub fn decode(frame: &Bytes) -> Result<RequestFrame, DecodeError> {
        let (key, header, body_offset) = Self::decode_header(frame)?;
        let body = Self::decode_body(frame, key, header.request_api_version, body_offset)?;
        Ok(RequestFrame { header, body })
    }

    /// Decodes the body that [`Self::decode_header`] found at `body_offset`,
    /// so a caller that already read the header does not read it again.
    pub fn decode_body(
        frame: &Bytes,
        key: ApiKey,
        version: i16,
        body_offset: usize,
    ) -> Result<RequestBody, DecodeError> {
        let body_bytes = frame.slice(body_offset.min(frame.len())..);
        RequestBody::decode(key, &mut Decoder::new(&body_bytes), version)
    }

    /// Encodes the frame with its length prefix. The header's API key is
    /// taken from the body.
    pub fn encode(&self) -> Result<EncodedBytes, EncodeError> {
        let key = self.body.api_key();
        let version = self.header.request_api_version;
        let mut header = self.header.clone();
        header.request_api_key = key as i16;
        let mut encoder = Encoder::framed();
        header.encode(&mut encoder, key.request_header_version(version))?;
        self.body.encode(&mut encoder, version)?;
        Ok(encoder.finish())
    }
}

/// A decoded response. Its API and version are not on the wire: the client
/// knows them from the request with the same correlation id.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFrame {
    pub header: ResponseHeader,
    pub body: ResponseBody,
}

impl ResponseFrame {
    /// Encodes a response to the request with `correlation_id`, at `version`,
    /// with its length prefix. Large record payloads stay separate chunks.
    pub fn encode(
        correlation_id: i32,
        version: i16,
        body: &ResponseBody,
    ) -> Result<EncodedBytes, EncodeError> {
        let header = ResponseHeader {
            correlation_id,
            ..ResponseHeader::default()
        };
        let mut encoder = Encoder::framed();
        header.encode(
            &mut encoder,
            body.api_key().response_header_version(version),
        )?;
        body.encode(&mut encoder, version)?;
        Ok(encoder.finish())
    }

    /// Decodes a response frame (without its length prefix) to a request of
    /// API `key` at `version`.
    pub fn decode(frame: &Bytes, key: ApiKey, version: i16) -> Result<ResponseFrame, DecodeError> {
        let mut decoder = Decoder::new(frame);
        let header = ResponseHeader::decode(&mut decoder, key.response_header_version(version))?;
        let body = ResponseBody::decode(key, &mut decoder, version)?;
        Ok(ResponseFrame { header, body })
    }
}
