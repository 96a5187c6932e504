//! Behaviour of `PartitionLog` against real files in temporary directories,
//! with batches built by `eddy_protocol::records::RecordBatch`.

mod append_read;
mod compaction;
mod epochs;
mod producers;
mod recovery;
mod retention;
mod support;
mod truncation;
