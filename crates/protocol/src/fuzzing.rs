//! Entry points shared by the `cargo fuzz` targets (`fuzz/`) and the tests
//! that replay their corpora: each runs a decoder on arbitrary bytes and must
//! return, never panic or abort.

use bytes::Bytes;

use crate::frame::RequestFrame;
use crate::{ApiKey, ResponseBody};

/// Decodes `data` as a request frame (without its length prefix); when that
/// succeeds, encodes it again and decodes the result, which must match.
pub fn decode_request(data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let Ok(request) = RequestFrame::decode(&frame) else {
        return;
    };
    let Ok(encoded) = request.encode() else {
        return;
    };
    let encoded = encoded.into_contiguous().slice(4..);
    match RequestFrame::decode(&encoded) {
        Ok(again) => assert_eq!(again, request, "re-encoded request decoded differently"),
        Err(error) => panic!("re-encoded request failed to decode: {error}"),
    }
}

/// Decodes `data` as the body of every response type at every version.
pub fn decode_responses(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    for key in ApiKey::ALL {
        let info = key.info();
        for version in info.min_version..=info.max_version {
            let _ = ResponseBody::decode(*key, &mut crate::Decoder::new(&body), version);
        }
    }
}

/// Runs every record-batch decoder on `data`.
pub fn decode_record_batches(data: &[u8]) {
    crate::records::fuzz_decode_batches(data);
}
