//! Connection profiles: the clusters the console knows how to reach.

use serde::{Deserialize, Serialize};
use sqlx::error::ErrorKind;

use crate::{Store, StoreError};

/// Longest profile name, in characters.
pub const PROFILE_NAME_MAX_CHARS: usize = 200;
/// Longest `bootstrap.servers` list, in bytes.
pub const BOOTSTRAP_SERVERS_MAX_BYTES: usize = 4096;
/// Largest options document, in bytes.
pub const PROFILE_OPTIONS_MAX_BYTES: usize = 64 * 1024;

/// Whether a profile points at a cluster Eddy runs itself or at another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum ProfileKind {
    /// A cluster of local `eddy` processes (with process control).
    Local,
    /// Any other Kafka-compatible cluster.
    Remote,
}

/// A saved connection to a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Profile {
    /// Assigned by [`Store::save_profile`]; `None` for a profile not saved yet.
    pub id: Option<i64>,
    /// Unique among profiles, shown to the user.
    pub name: String,
    /// Kafka's `bootstrap.servers`: comma-separated `host:port` pairs.
    pub bootstrap_servers: String,
    /// Local or remote.
    pub kind: ProfileKind,
    /// Whether the console refuses changes (produce, delete, configs) on this
    /// cluster.
    pub read_only: bool,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Client settings such as SASL and TLS, as a JSON object.
    #[serde(default = "empty_json_object")]
    pub options_json: String,
}

fn empty_json_object() -> String {
    "{}".to_owned()
}

impl Profile {
    /// A profile not saved yet, with no options; remote clusters start
    /// read-only.
    pub fn new(
        name: impl Into<String>,
        bootstrap_servers: impl Into<String>,
        kind: ProfileKind,
        created_ms: i64,
    ) -> Profile {
        Profile {
            id: None,
            name: name.into(),
            bootstrap_servers: bootstrap_servers.into(),
            kind,
            read_only: kind == ProfileKind::Remote,
            created_ms,
            options_json: empty_json_object(),
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        let invalid = |reason: String| Err(StoreError::InvalidProfile { reason });
        if self.name.trim().is_empty() {
            return invalid("the name is empty".to_owned());
        }
        if self.name.chars().count() > PROFILE_NAME_MAX_CHARS {
            return invalid(format!(
                "the name is longer than {PROFILE_NAME_MAX_CHARS} characters"
            ));
        }
        if self.bootstrap_servers.trim().is_empty() {
            return invalid("bootstrap servers are empty".to_owned());
        }
        if self.bootstrap_servers.len() > BOOTSTRAP_SERVERS_MAX_BYTES {
            return invalid(format!(
                "bootstrap servers are longer than {BOOTSTRAP_SERVERS_MAX_BYTES} bytes"
            ));
        }
        if self.options_json.len() > PROFILE_OPTIONS_MAX_BYTES {
            return invalid(format!(
                "options are larger than {PROFILE_OPTIONS_MAX_BYTES} bytes"
            ));
        }
        Ok(())
    }
}

impl Store {
    /// Inserts a profile (`id: None`) or replaces the one with its id, and
    /// returns the id.
    pub async fn save_profile(&self, profile: &Profile) -> Result<i64, StoreError> {
        profile.validate()?;
        let result = match profile.id {
            None => {
                sqlx::query_scalar(
                    "INSERT INTO profiles
                         (name, bootstrap_servers, kind, read_only, created_ms, options)
                     VALUES (?, ?, ?, ?, ?, ?)
                     RETURNING id",
                )
                .bind(&profile.name)
                .bind(&profile.bootstrap_servers)
                .bind(profile.kind)
                .bind(profile.read_only)
                .bind(profile.created_ms)
                .bind(&profile.options_json)
                .fetch_one(&self.pool)
                .await
            }
            Some(id) => sqlx::query_scalar(
                "UPDATE profiles
                     SET name = ?, bootstrap_servers = ?, kind = ?, read_only = ?,
                         created_ms = ?, options = ?
                     WHERE id = ?
                     RETURNING id",
            )
            .bind(&profile.name)
            .bind(&profile.bootstrap_servers)
            .bind(profile.kind)
            .bind(profile.read_only)
            .bind(profile.created_ms)
            .bind(&profile.options_json)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .and_then(|found| found.ok_or(sqlx::Error::RowNotFound)),
        };
        result.map_err(|source| self.profile_error(profile, source))
    }

    /// Every profile, ordered by name (case-insensitive).
    pub async fn profiles(&self) -> Result<Vec<Profile>, StoreError> {
        sqlx::query_as(
            "SELECT id, name, bootstrap_servers, kind, read_only, created_ms,
                    options AS options_json
             FROM profiles
             ORDER BY name COLLATE NOCASE, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|source| self.error(source))
    }

    /// Deletes a profile; returns whether it existed.
    pub async fn delete_profile(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM profiles WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|source| self.error(source))?;
        Ok(result.rows_affected() > 0)
    }

    fn profile_error(&self, profile: &Profile, source: sqlx::Error) -> StoreError {
        if let sqlx::Error::RowNotFound = source
            && let Some(id) = profile.id
        {
            return StoreError::ProfileNotFound { id };
        }
        let kind = match &source {
            sqlx::Error::Database(error) => Some(error.kind()),
            _ => None,
        };
        match kind {
            Some(ErrorKind::UniqueViolation) => StoreError::DuplicateProfileName {
                name: profile.name.clone(),
            },
            // The remaining checks are in the schema: see the migrations.
            Some(ErrorKind::CheckViolation) => StoreError::InvalidProfile {
                reason: "options are not a JSON object".to_owned(),
            },
            _ => self.error(source),
        }
    }
}
