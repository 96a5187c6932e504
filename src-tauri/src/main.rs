//! The Eddy desktop app: a window over eddy-console and nothing more. It
//! starts the local cluster (its nodes run the `eddy` binary that ships
//! beside this one, so a node never loads the GUI libraries), answers the
//! UI's `call` command with the console's answer, and streams the console's
//! updates to the UI over a Tauri channel. Quitting stops the cluster.
//!
//! `EDDY_DATA_DIR`, `EDDY_BASE_PORT` and `EDDY_NODES` choose another data
//! directory, first port and size than the default cluster's (tests use
//! them so as not to touch a user's cluster).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eddy_cluster::ClusterSpec;
use eddy_console::model::{Failure, Request, Response, Update};
use eddy_console::{Console, Options};
use tauri::Manager;
use tauri::ipc::Channel;
use tokio::sync::OnceCell;

/// How long a call waits for the cluster to start.
const START_WAIT: Duration = Duration::from_secs(60);

/// The console, once the cluster has started (or why it did not).
#[derive(Default)]
struct AppState {
    console: Arc<OnceCell<Result<Console, Failure>>>,
}

impl AppState {
    async fn console(&self) -> Result<Console, Failure> {
        let wait = async {
            loop {
                if let Some(result) = self.console.get() {
                    return result.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(START_WAIT, wait)
            .await
            .unwrap_or_else(|_| {
                Err(failure(
                    "the local cluster is still starting",
                    "See the node logs in the data directory.",
                ))
            })
    }
}

fn failure(message: &str, hint: &str) -> Failure {
    Failure {
        kafka_error: None,
        message: message.to_string(),
        hint: Some(hint.to_string()),
    }
}

/// One request from the UI, answered by the console.
#[tauri::command]
async fn call(state: tauri::State<'_, AppState>, request: Request) -> Result<Response, Failure> {
    state.console().await?.handle(request).await
}

/// Streams updates to the UI: the current snapshot and events first.
#[tauri::command]
async fn subscribe(
    state: tauri::State<'_, AppState>,
    channel: Channel<Update>,
) -> Result<(), Failure> {
    let console = state.console().await?;
    let mut updates = console.subscribe();
    let _ = channel.send(Update::Snapshot((*console.snapshot()).clone()));
    let _ = channel.send(Update::Events(console.events_after(0)));
    tauri::async_runtime::spawn(async move {
        loop {
            let update = match updates.recv().await {
                Ok(update) => update,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    Update::Snapshot((*console.snapshot()).clone())
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            // The page went away (reloaded or closed): stop forwarding.
            if channel.send(update).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// The data directory, ports and size of the cluster to start.
fn cluster_spec() -> Result<ClusterSpec, Failure> {
    let data = match std::env::var_os("EDDY_DATA_DIR") {
        Some(data) => PathBuf::from(data),
        None => directories::ProjectDirs::from("dev", "eddy", "eddy")
            .map(|dirs| dirs.data_dir().join("cluster"))
            .ok_or_else(|| {
                failure(
                    "no home directory to keep the cluster's data in",
                    "Set EDDY_DATA_DIR to a directory.",
                )
            })?,
    };
    let here = std::env::current_exe()
        .map_err(|error| failure(&format!("cannot find this program: {error}"), ""))?;
    let eddy = here
        .with_file_name("eddy")
        .with_extension(std::env::consts::EXE_EXTENSION);
    if !eddy.is_file() {
        return Err(failure(
            &format!(
                "the eddy binary is not beside the app at {}",
                eddy.display()
            ),
            "Build it with `cargo build -p eddy-cli` (the app runs every node with it).",
        ));
    }
    let mut spec = ClusterSpec::new(data, eddy);
    if let Some(port) = std::env::var("EDDY_BASE_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
    {
        spec.base_port = port;
    }
    if let Some(nodes) = std::env::var("EDDY_NODES")
        .ok()
        .and_then(|nodes| nodes.parse().ok())
    {
        spec.set_node_count(nodes);
    }
    Ok(spec)
}

async fn start_console() -> Result<Console, Failure> {
    let spec = cluster_spec()?;
    let options = Options {
        store_path: Some(spec.data_dir.join("console.sqlite")),
        ..Options::default()
    };
    Console::local("local cluster", spec, options).await
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let app = tauri::Builder::default()
        .manage(AppState::default())
        .setup(|app| {
            let console = app.state::<AppState>().console.clone();
            tauri::async_runtime::spawn(async move {
                let started = start_console().await;
                if let Err(failure) = &started {
                    tracing::error!(message = failure.message, "the local cluster did not start");
                }
                let _ = console.set(started);
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![call, subscribe])
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            eprintln!("eddy-app: cannot start: {error}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event
            && let Some(Ok(console)) = handle.state::<AppState>().console.get()
        {
            // Quitting the app stops the cluster it started.
            tauri::async_runtime::block_on(console.shutdown());
        }
    });
}
