//! eddy-store: Eddy's application database, one SQLite file.
//!
//! It keeps what the console remembers between runs:
//!
//! - connection profiles ([`Profile`]): the clusters the user can connect to,
//!   with a JSON options document for client settings such as SASL and TLS;
//! - metric history: consumer-group lag per partition ([`LagSample`]) and topic
//!   throughput ([`ThroughputSample`]), queried by time window for charts and
//!   pruned by age ([`Store::prune_older_than`]).
//!
//! [`Store::open`] creates the file (the caller chooses the path, normally under
//! the platform data directory), applies the embedded migrations in
//! `migrations/`, and uses WAL so charts read while samples are written. A file
//! that is not an SQLite database, is damaged, or belongs to another
//! application is reported as a [`StoreError`] naming the file, never a panic.
//!
//! It is not for: cluster data (topics, records, offsets live in the cluster
//! and are read through `eddy-client`), the local cluster's configuration (a
//! TOML file owned by `eddy-cluster`), or secrets in plain text: the options
//! document is stored as given, so passwords belong in the platform keychain.
//! Nothing here polls a cluster; callers record the samples they measure.

mod error;
mod metrics;
mod profiles;
mod store;

pub use error::StoreError;
pub use metrics::{
    HISTORY_MAX_POINTS, LagPoint, LagSample, PartitionLagPoint, PartitionLagSeries, PruneReport,
    ThroughputPoint, ThroughputSample,
};
pub use profiles::{
    BOOTSTRAP_SERVERS_MAX_BYTES, PROFILE_NAME_MAX_CHARS, PROFILE_OPTIONS_MAX_BYTES, Profile,
    ProfileKind,
};
pub use store::Store;
