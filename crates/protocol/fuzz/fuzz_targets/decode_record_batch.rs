//! Any bytes as record batches: every batch, record and decompression path
//! must fail cleanly, never panic or over-allocate.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    eddy_protocol::fuzzing::decode_record_batches(data);
});
