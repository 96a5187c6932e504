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
fn seed_requests_in_the_corpus_decode() {
    // The seeds named after their API (e.g. `Produce-v9`) are valid frames:
    // they must decode, which shows the corpus exercises the happy path too.
    let mut decoded = 0;
    for (path, bytes) in corpus("decode_request") {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if name.contains("-v") {
            let frame = bytes::Bytes::from(bytes);
            eddy_protocol::RequestFrame::decode(&frame)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            decoded += 1;
        }
    }
    assert!(decoded >= 300, "only {decoded} seed requests");
}
