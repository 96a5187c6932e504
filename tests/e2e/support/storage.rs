//! What a node stored, read straight from its data directory: the segment
//! files of a partition (`DATA/<topic>-<partition>/<base offset>.log`) and the
//! record batch headers in them, parsed with eddy-protocol.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use eddy_protocol::records::{BatchHeader, batches};

/// The partition's segment files, oldest first (names are zero-padded base offsets).
pub fn segment_files(partition_dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(partition_dir)
        .unwrap_or_else(|error| panic!("listing {}: {error}", partition_dir.display()));
    let mut segments: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    segments.sort();
    segments
}

/// The newest segment file of a partition.
pub fn last_segment(partition_dir: &Path) -> PathBuf {
    segment_files(partition_dir)
        .pop()
        .unwrap_or_else(|| panic!("no .log segment in {}", partition_dir.display()))
}

/// Every batch of one segment file with its byte position; fails the test if
/// the file does not hold whole, well-framed batches.
pub fn segment_batches(segment: &Path) -> Vec<(u64, BatchHeader)> {
    let bytes = Bytes::from(
        std::fs::read(segment)
            .unwrap_or_else(|error| panic!("reading {}: {error}", segment.display())),
    );
    let mut position = 0u64;
    let mut found = Vec::new();
    for batch in batches(&bytes) {
        let (header, whole) = batch
            .unwrap_or_else(|error| panic!("{} at byte {position}: {error}", segment.display()));
        found.push((position, header));
        position += whole.len() as u64;
    }
    found
}

/// Every batch header stored for a partition, in offset order.
pub fn stored_batches(partition_dir: &Path) -> Vec<BatchHeader> {
    segment_files(partition_dir)
        .iter()
        .flat_map(|segment| segment_batches(segment))
        .map(|(_, header)| header)
        .collect()
}
