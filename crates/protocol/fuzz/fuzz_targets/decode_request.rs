//! Any bytes as a request frame (without its length prefix): decoding must
//! fail cleanly or yield a request that re-encodes to the same request.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    eddy_protocol::fuzzing::decode_request(data);
});
