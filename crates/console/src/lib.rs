//! eddy-console: the application core the desktop app and `eddy serve`
//! share. It owns sessions (the embedded local cluster through
//! `eddy-cluster`, with process control, or any remote Kafka cluster),
//! polls them through `eddy-client` into snapshots, turns changes into
//! events with plain explanations, and carries out the user's actions.
//!
//! It knows nothing of windows or HTTP: a shell hands it [`model::Request`]s
//! and forwards its [`model::Update`]s. Every type that crosses to the UI is
//! in [`model`] and derives `ts_rs::TS`.

mod actions;
mod charts;
mod demo;
mod detail;
pub mod diff;
mod events;
pub mod model;
mod operations;
mod payload;
mod session;
pub mod snapshot;

pub use actions::client_failure;
pub use session::{Console, Options};

#[cfg(test)]
mod bindings_tests;
