//! The cluster's own files: `DATA/eddy.toml`, which people edit (how many
//! nodes, the base port, cluster-wide broker config defaults) and which is
//! watched while the cluster runs, and `DATA/nodes.json`, the supervisor's
//! record of which node ids exist (so a restart keeps the same nodes after
//! some were added or removed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::ClusterError;

pub const CONFIG_FILE: &str = "eddy.toml";
pub const MEMBERSHIP_FILE: &str = "nodes.json";
/// Bursts of file events closer together than this count as one edit.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// The text of `DATA/eddy.toml` and what it parses to.
pub type ReadFile = (String, Result<ClusterFile, FileError>);

/// What `DATA/eddy.toml` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFile {
    pub nodes: u16,
    pub base_port: u16,
    /// Cluster-wide broker configs by Kafka name, applied live.
    pub defaults: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    nodes: u16,
    base_port: u16,
    #[serde(default)]
    defaults: BTreeMap<String, toml::Value>,
}

/// A rejected cluster file, located when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{CONFIG_FILE}: line {line}: {}", self.message),
            None => write!(f, "{CONFIG_FILE}: {}", self.message),
        }
    }
}

impl FileError {
    pub(crate) fn at_key(text: &str, key: &str, message: impl Into<String>) -> FileError {
        FileError {
            line: line_of_key(text, key),
            message: message.into(),
        }
    }
}

impl ClusterFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONFIG_FILE)
    }

    /// Parses the file's text; every problem is an error (nothing is half
    /// taken).
    pub fn parse(text: &str) -> Result<ClusterFile, FileError> {
        let raw: RawFile = toml::from_str(text).map_err(|error| FileError {
            line: error
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1)),
            message: error.message().trim().to_string(),
        })?;
        if raw.nodes == 0 {
            return Err(FileError::at_key(text, "nodes", "nodes must be at least 1"));
        }
        let mut defaults = BTreeMap::new();
        flatten_defaults(text, "", raw.defaults, &mut defaults)?;
        Ok(ClusterFile {
            nodes: raw.nodes,
            base_port: raw.base_port,
            defaults,
        })
    }

    /// Reads `DATA/eddy.toml`; `Ok(None)` when there is none.
    pub fn read(data_dir: &Path) -> Result<Option<ReadFile>, ClusterError> {
        let path = Self::path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let parsed = Self::parse(&text);
                Ok(Some((text, parsed)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ClusterError::Io {
                what: format!("reading {}", path.display()),
                source,
            }),
        }
    }

    /// The file written on a cluster's first start.
    pub fn render(nodes: u16, base_port: u16) -> String {
        format!(
            "# Eddy local cluster. Edits apply while the cluster runs.\n\
             # nodes: raise it to start more nodes; to remove one, use `eddy cluster remove N`.\n\
             # base_port: node N listens on base_port + N - 1 (changing it needs a restart).\n\
             nodes = {nodes}\n\
             base_port = {base_port}\n\
             \n\
             [defaults]            # cluster-wide broker configs (Kafka names), applied live\n\
             # \"log.retention.ms\" = \"604800000\"\n"
        )
    }

    /// Writes the default file if there is none.
    pub fn create_if_missing(
        data_dir: &Path,
        nodes: u16,
        base_port: u16,
    ) -> Result<bool, ClusterError> {
        let path = Self::path(data_dir);
        if path.exists() {
            return Ok(false);
        }
        write_atomically(&path, Self::render(nodes, base_port).as_bytes(), false)?;
        Ok(true)
    }

    /// Rewrites the `nodes = N` line of the file, keeping everything else
    /// (comments included) as it is.
    pub fn set_nodes(data_dir: &Path, nodes: u16) -> Result<(), ClusterError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(ClusterError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        let rewritten = replace_top_level_value(&text, "nodes", &nodes.to_string());
        if rewritten != text {
            write_atomically(&path, rewritten.as_bytes(), false)?;
        }
        Ok(())
    }
}

/// Turns `[defaults]` into Kafka config names: a bare dotted key such as
/// `log.retention.ms = 1000` is a nested table in TOML, read back as the
/// dotted name.
fn flatten_defaults(
    text: &str,
    prefix: &str,
    table: BTreeMap<String, toml::Value>,
    defaults: &mut BTreeMap<String, String>,
) -> Result<(), FileError> {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            toml::Value::Table(inner) => {
                flatten_defaults(text, &name, inner.into_iter().collect(), defaults)?;
                continue;
            }
            other => {
                let last = name.rsplit('.').next().unwrap_or_default().to_string();
                return Err(FileError {
                    line: line_of_key(text, &name).or_else(|| line_of_key(text, &last)),
                    message: format!(
                        "[defaults] {name}: expected a string, number or boolean, found {}",
                        other.type_str()
                    ),
                });
            }
        };
        defaults.insert(name, value);
    }
    Ok(())
}

/// The 1-based line where top-level `key` (or a `[defaults]` key) is set.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let name = line.split('=').next().unwrap_or_default().trim();
            line.contains('=') && (name == key || name.trim_matches('"') == key)
        })
        .map(|index| index + 1)
}

/// `text` with the value of top-level `key` replaced (appended before the
/// first table when missing).
fn replace_top_level_value(text: &str, key: &str, value: &str) -> String {
    let mut out = Vec::new();
    let mut replaced = false;
    let mut in_table = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if !replaced {
                out.push(format!("{key} = {value}"));
                replaced = true;
            }
            in_table = true;
        }
        let name = trimmed.split('=').next().unwrap_or_default().trim();
        if !in_table && !replaced && trimmed.contains('=') && name == key {
            let comment = trimmed
                .find('#')
                .map(|at| format!("  {}", &trimmed[at..]))
                .unwrap_or_default();
            out.push(format!("{key} = {value}{comment}"));
            replaced = true;
            continue;
        }
        out.push(line.to_string());
    }
    if !replaced {
        out.push(format!("{key} = {value}"));
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        joined.push('\n');
    }
    joined
}

/// `DATA/nodes.json`: the node ids and the initial voters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub nodes: BTreeSet<u16>,
    pub voters: Vec<u16>,
    /// Replication throttles set by `eddy cluster slow`, by node: they
    /// live in the cluster's configs, so they outlast a restart.
    #[serde(default)]
    pub throttles: BTreeMap<u16, u64>,
    /// The `[defaults]` of `eddy.toml` last applied to the cluster (which
    /// keeps them), so that a key removed while the cluster was down is
    /// removed from the cluster at the next start.
    #[serde(default)]
    pub applied_defaults: BTreeMap<String, String>,
    /// The highest node id ever used, so that no id is given out twice
    /// (0 in files written before it was kept).
    #[serde(default)]
    pub highest_id: u16,
}

impl Membership {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(MEMBERSHIP_FILE)
    }

    pub fn read(data_dir: &Path) -> Result<Option<Membership>, ClusterError> {
        read_json(&Self::path(data_dir), ClusterError::InvalidSpec)
    }

    pub fn write(&self, data_dir: &Path) -> Result<(), ClusterError> {
        let text = serde_json::to_vec_pretty(self).map_err(|error| {
            ClusterError::Control(format!("encoding {MEMBERSHIP_FILE}: {error}"))
        })?;
        write_atomically(&Self::path(data_dir), &text, false)
    }
}

/// Writes `path` through a temporary file in the same directory and a
/// rename, so readers see the old or the new content, never a mix. A
/// `private` file is readable by its owner only (it holds a token).
pub(crate) fn write_atomically(
    path: &Path,
    contents: &[u8],
    private: bool,
) -> Result<(), ClusterError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    let what = || format!("writing {}", temporary.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&temporary).map_err(ClusterError::io(what()))?;
    file.write_all(contents).map_err(ClusterError::io(what()))?;
    file.sync_all().map_err(ClusterError::io(what()))?;
    drop(file);
    std::fs::rename(&temporary, path)
        .map_err(ClusterError::io(format!("replacing {}", path.display())))
}

/// Reads a JSON file: `Ok(None)` when there is none, `damaged` names the
/// error for one that does not parse.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    damaged: impl FnOnce(String) -> ClusterError,
) -> Result<Option<T>, ClusterError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ClusterError::Io {
                what: format!("reading {}", path.display()),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| damaged(format!("{} is damaged: {error}", path.display())))
}

/// Watches `path` (through its directory, since editors replace files
/// rather than write them in place) and sends one `()` per burst of changes,
/// [`WATCH_DEBOUNCE`] after the last event. Watching stops when the
/// receiver is dropped.
pub fn watch_config(path: &Path) -> Result<mpsc::Receiver<()>, ClusterError> {
    use notify::Watcher;
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let file_name = path.file_name().map(|name| name.to_os_string());
    let (events, mut raw) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event
            .paths
            .iter()
            .any(|changed| changed.file_name().map(|name| name.to_os_string()) == file_name)
        {
            let _ = events.send(());
        }
    })
    .map_err(|error| ClusterError::Control(format!("watching {}: {error}", path.display())))?;
    watcher
        .watch(&directory, notify::RecursiveMode::NonRecursive)
        .map_err(|error| {
            ClusterError::Control(format!("watching {}: {error}", directory.display()))
        })?;
    let (changes, received) = mpsc::channel(1);
    tokio::spawn(async move {
        let _watcher = watcher;
        while raw.recv().await.is_some() {
            // Debounce: wait until the events stop for a moment.
            loop {
                match tokio::time::timeout(WATCH_DEBOUNCE, raw.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if changes.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_written_for_its_owner_only_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"{\"a\": 1}", true).expect("write");
        write_atomically(&path, b"{\"a\": 2}", true).expect("rewrite");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let read: Option<serde_json::Value> =
            read_json(&path, ClusterError::Control).expect("read");
        assert_eq!(read, Some(serde_json::json!({"a": 2})));
        let missing: Option<serde_json::Value> =
            read_json(&dir.path().join("none.json"), ClusterError::Control).expect("read");
        assert_eq!(missing, None);
        std::fs::write(&path, "{").expect("damage");
        let damaged = read_json::<serde_json::Value>(&path, ClusterError::Control);
        assert!(damaged.is_err_and(|error| error.to_string().contains("is damaged")));
    }

    #[test]
    fn the_default_file_parses_to_its_settings() {
        let file = ClusterFile::parse(&ClusterFile::render(3, 19092)).expect("parses");
        assert_eq!(file.nodes, 3);
        assert_eq!(file.base_port, 19092);
        assert!(file.defaults.is_empty());
    }

    #[test]
    fn defaults_take_strings_numbers_and_booleans() {
        let text = "nodes = 2\nbase_port = 20000\n[defaults]\n\"log.retention.ms\" = 1000\nauto.leader.rebalance.enable = false\n";
        let file = ClusterFile::parse(text).expect("parses");
        assert_eq!(file.defaults["log.retention.ms"], "1000");
        assert_eq!(file.defaults["auto.leader.rebalance.enable"], "false");
        let error = ClusterFile::parse("nodes = 2\nbase_port = 20000\n[defaults]\n\"a.b\" = [1]\n")
            .expect_err("an array");
        assert_eq!(error.line, Some(4), "{error}");
    }

    #[test]
    fn errors_name_their_line() {
        let error = ClusterFile::parse("nodes = \"x\"\nbase_port = 1\n").expect_err("a string");
        assert_eq!(error.line, Some(1), "{error}");
        let error =
            ClusterFile::parse("nodes = 3\nbase_port = 1\nflavour = 2\n").expect_err("unknown key");
        assert!(error.to_string().contains("flavour"), "{error}");
    }

    #[test]
    fn set_nodes_keeps_the_rest_of_the_file() {
        let text = ClusterFile::render(3, 19092) + "\"log.retention.ms\" = \"5\"\n";
        let rewritten = replace_top_level_value(&text, "nodes", "4");
        let file = ClusterFile::parse(&rewritten).expect("parses");
        assert_eq!(file.nodes, 4);
        assert_eq!(file.defaults["log.retention.ms"], "5");
        assert!(rewritten.starts_with("# Eddy local cluster"));
    }
}
