//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same entry points the fuzz targets call, so every input the fuzzer kept,
//! and every crash it once found, is checked on each `cargo test`.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .map(|path| {
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn request_corpus_decodes_without_panicking() {
    let inputs = corpus("decode_request");
    assert!(
        inputs.len() >= 300,
        "the request corpus has only {} inputs",
        inputs.len()
    );
    for (path, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| eddy_protocol::fuzzing::decode_request(bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn record_batch_corpus_decodes_without_panicking() {
    let inputs = corpus("decode_record_batch");
    assert!(
        inputs.len() >= 5,
        "the record batch corpus has only {} inputs",
        inputs.len()
    );
    for (path, bytes) in &inputs {
        let outcome =
            std::panic::catch_unwind(|| eddy_protocol::fuzzing::decode_record_batches(bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn many_corpus_requests_are_valid_frames() {
    // The corpus grew from one valid request per API and version; a good share
    // must still decode, so the fuzzer keeps exercising the happy path.
    let decoded = corpus("decode_request")
        .into_iter()
        .filter(|(_, bytes)| {
            eddy_protocol::RequestFrame::decode(&bytes::Bytes::from(bytes.clone())).is_ok()
        })
        .count();
    assert!(
        decoded >= 300,
        "only {decoded} corpus inputs are valid requests"
    );
}
