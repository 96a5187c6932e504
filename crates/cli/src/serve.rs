//! `eddy serve`: the console in a browser. The same core as the desktop
//! app (eddy-console) and the same UI, over HTTP and a WebSocket on
//! 127.0.0.1, with the local cluster started as the app starts it (or a
//! remote cluster with `--bootstrap`).
//!
//! Only this machine's own pages may drive it: it binds loopback only,
//! answers only requests whose Host is its own address (so a DNS-rebinding
//! page cannot reach it), refuses API requests whose Origin is another
//! site's, and requires a token made at start and printed in the URL it
//! shows (so another local user cannot guess their way in).

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use eddy_cluster::ClusterSpec;
use eddy_console::model::{Failure, Update};
use eddy_console::{Console, Options};
use serde_json::json;

/// How long `serve` waits for the first snapshot before saying the URL.
const FIRST_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// Recent events a new WebSocket subscriber gets first.
const BACKLOG_EVENTS: usize = 500;
/// The largest request body the API accepts.
const MAX_REQUEST_BYTES: usize = 1 << 20;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Port to serve the console on, on 127.0.0.1 only (0: any free port).
    #[arg(long, default_value_t = 8420)]
    port: u16,
    /// The local cluster's data directory [default: the platform data dir,
    /// e.g. ~/.local/share/eddy/cluster, as `eddy cluster up` and the app].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Nodes of the local cluster.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// The local cluster's first client port; node N listens on
    /// base-port + N - 1.
    #[arg(long, default_value_t = 19092)]
    base_port: u16,
    /// Watch a remote Kafka cluster at these bootstrap servers instead of
    /// starting the local one (read-only unless --allow-changes).
    #[arg(long, value_name = "HOST:PORT,...")]
    bootstrap: Option<String>,
    /// Allow creating topics, producing and resetting offsets on a remote cluster.
    #[arg(long)]
    allow_changes: bool,
    /// The built UI to serve [default: ui/dist of this source tree].
    #[arg(long, value_name = "DIR")]
    ui: Option<PathBuf>,
    /// Log filter, e.g. info or debug (or RUST_LOG).
    #[arg(long, default_value = "info")]
    log: String,
}

#[derive(Clone)]
struct AppState {
    console: Console,
    token: Arc<str>,
    /// The Host values this server answers to.
    hosts: Arc<[String]>,
    /// The Origins allowed to call the API.
    origins: Arc<[String]>,
    ui: Arc<Path>,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::init_logging(&args.log);
    let ui = match args.ui.clone() {
        Some(ui) => ui,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/dist"),
    };
    if !ui.join("index.html").is_file() {
        bail!(
            "the UI is not built at {} (run `npm run build -w ui`, or pass --ui DIR)",
            ui.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(args, ui))
}

async fn serve(args: ServeArgs, ui: PathBuf) -> anyhow::Result<()> {
    // Bind first: a port in use is the most likely failure.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let address = listener.local_addr().context("the bound address")?;
    let data = crate::cluster::data_dir(args.data.clone())?;
    let options = Options {
        store_path: Some(data.join("console.sqlite")),
        ..Options::default()
    };
    let console = match &args.bootstrap {
        Some(bootstrap) => {
            Console::remote(bootstrap, bootstrap, !args.allow_changes, options).await
        }
        None => {
            let eddy_binary =
                std::env::current_exe().context("finding the eddy binary to run nodes with")?;
            let mut spec = ClusterSpec::new(&data, eddy_binary);
            spec.set_node_count(args.nodes);
            spec.base_port = args.base_port;
            Console::local("local cluster", spec, options)
                .await
                .map_err(|failure| anyhow::anyhow!(failure.message))?
        }
    };
    if console
        .first_snapshot(FIRST_SNAPSHOT_TIMEOUT)
        .await
        .is_none()
    {
        tracing::warn!("no node answered yet; the console shows what it can");
    }
    let token: Arc<str> = crate::random_token().into();
    let port = address.port();
    let state = AppState {
        console: console.clone(),
        token: token.clone(),
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")].into(),
        origins: [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ]
        .into(),
        ui: ui.into(),
    };
    let app = Router::new()
        .route("/api/call", post(call))
        .route("/api/updates", get(updates))
        .fallback(static_file)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state);
    println!(
        "eddy console: http://127.0.0.1:{port}/?token={token} ({}: {})",
        console.info().name,
        console.info().bootstrap_servers
    );
    let shutdown = crate::shutdown_signal();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the console")?;
    console.shutdown().await;
    println!("eddy console stopped");
    Ok(())
}

/// Host on every request; Origin and the token on API requests.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !state.hosts.iter().any(|allowed| allowed == host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this server answers only to its own address",
        );
    }
    if request.uri().path().starts_with("/api/") {
        if let Some(origin) = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok())
            && !state.origins.iter().any(|allowed| allowed == origin)
        {
            return refuse(
                StatusCode::FORBIDDEN,
                "requests from other sites are refused",
            );
        }
        let from_header = request
            .headers()
            .get("x-eddy-token")
            .and_then(|value| value.to_str().ok());
        let from_query = request.uri().query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("token="))
        });
        let given = from_header.or(from_query).unwrap_or_default();
        if !same(given.as_bytes(), state.token.as_bytes()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "a valid token is needed: open the URL `eddy serve` printed",
            );
        }
    }
    next.run(request).await
}

/// Compares without leaking where the first difference is.
fn same(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "message": message } })),
    )
        .into_response()
}

async fn call(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let request: eddy_console::model::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            let failure = Failure {
                kafka_error: None,
                message: format!("not a request: {error}"),
                hint: None,
            };
            return axum::Json(json!({ "error": failure })).into_response();
        }
    };
    match state.console.handle(request).await {
        Ok(response) => axum::Json(json!({ "ok": response })).into_response(),
        Err(failure) => axum::Json(json!({ "error": failure })).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct UpdatesQuery {
    #[allow(dead_code)]
    token: Option<String>,
}

async fn updates(
    State(state): State<AppState>,
    Query(_query): Query<UpdatesQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| stream_updates(state.console, socket))
}

/// The current snapshot and recent events first, then every update.
async fn stream_updates(console: Console, mut socket: WebSocket) {
    let mut updates = console.subscribe();
    let mut backlog = console.events_after(0);
    let excess = backlog.len().saturating_sub(BACKLOG_EVENTS);
    backlog.drain(..excess);
    let first = [
        Update::Snapshot((*console.snapshot()).clone()),
        Update::Events(backlog),
    ];
    for update in first {
        if send(&mut socket, &update).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            received = updates.recv() => match received {
                Ok(update) => {
                    if send(&mut socket, &update).await.is_err() {
                        return;
                    }
                }
                // A slow page skipped some: the latest snapshot catches it up.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let update = Update::Snapshot((*console.snapshot()).clone());
                    if send(&mut socket, &update).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send(socket: &mut WebSocket, update: &Update) -> Result<(), axum::Error> {
    let text = serde_json::to_string(update).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}

/// The built UI: a file under the UI directory, or `index.html` for the
/// app's own paths.
async fn static_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let _ = headers;
    let path = request.uri().path().trim_start_matches('/');
    let relative = Path::new(path);
    if relative
        .components()
        .any(|component| !matches!(component, Component::Normal(_)))
        && !path.is_empty()
    {
        return refuse(StatusCode::BAD_REQUEST, "bad path");
    }
    let mut file = state.ui.join(relative);
    if path.is_empty() || !file.is_file() {
        file = state.ui.join("index.html");
    }
    match tokio::fs::read(&file).await {
        Ok(bytes) => Response::builder()
            .header(header::CONTENT_TYPE, content_type(&file))
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|extension| extension.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}
