//! The desktop app, really started: under Xvfb, driven through WebDriver
//! (tauri-driver running WebKitWebDriver), with its own local cluster of
//! real node processes. The cluster view must show the cluster's nodes;
//! screenshots of the main views are saved under the target directory.
//!
//! Needs Xvfb, WebKitWebDriver (Debian's webkit2gtk-driver), tauri-driver
//! (`cargo install tauri-driver`) and the built UI (`npm run build -w ui`);
//! `.ci/run` installs them.

mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::cluster::free_base_port;

/// How long the WebDriver scenario may take, app start included.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the cluster's ports may take to be released after the app quits.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
}

/// The first of `candidates` that exists, or the test fails naming what
/// to install.
fn tool(candidates: &[PathBuf], install: &str) -> PathBuf {
    candidates
        .iter()
        .find(|candidate| candidate.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("{} is missing: {install}", candidates[0].display()))
}

/// `eddy-app`, built beside the `eddy` binary it runs nodes with.
fn app_binary() -> PathBuf {
    let eddy = support::eddy_binary();
    let profile_dir = eddy.parent().expect("the eddy binary's directory");
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected profile directory {}", profile_dir.display()),
    };
    let target = profile_dir.parent().expect("the target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--quiet", "-p", "eddy-app", "--profile", profile])
        .output()
        .expect("running cargo build -p eddy-app");
    assert!(
        output.status.success(),
        "cargo build -p eddy-app failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    profile_dir.join("eddy-app")
}

/// A display number no X server holds.
fn free_display() -> u32 {
    (90..400)
        .find(|display| {
            !Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
                && !Path::new(&format!("/tmp/.X{display}-lock")).exists()
        })
        .expect("a free X display number")
}

fn answers(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_desktop_app_shows_the_real_cluster_in_its_window() {
    let ui = workspace().join("ui/dist/index.html");
    assert!(
        ui.is_file(),
        "the UI is not built ({}): run `npm run build -w ui`",
        ui.display()
    );
    let xvfb = tool(&[PathBuf::from("/usr/bin/Xvfb")], "apt-get install xvfb");
    tool(
        &[PathBuf::from("/usr/bin/WebKitWebDriver")],
        "apt-get install webkit2gtk-driver",
    );
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cargo"));
    let tauri_driver = tool(
        &[
            cargo_home.join("bin/tauri-driver"),
            PathBuf::from("/usr/local/bin/tauri-driver"),
        ],
        "cargo install tauri-driver --version '^2' --locked",
    );
    let app = app_binary();

    let display = free_display();
    let _xvfb = Running(
        Command::new(xvfb)
            .args([
                &format!(":{display}"),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb"),
    );
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
        }),
        "Xvfb did not start on :{display}"
    );

    let data = tempfile::tempdir().expect("a data directory for the app's cluster");
    let base_port = free_base_port(3);
    let driver_port = support::free_port();
    let native_port = support::free_port();
    let driver_log = data.path().join("tauri-driver.log");
    let _driver = Running(
        Command::new(tauri_driver)
            .args([
                "--port",
                &driver_port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("DISPLAY", format!(":{display}"))
            .env("EDDY_DATA_DIR", data.path().join("cluster"))
            .env("EDDY_BASE_PORT", base_port.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&driver_log).expect("driver log"))
            .spawn()
            .expect("starting tauri-driver"),
    );
    assert!(
        support::wait_until(Duration::from_secs(15), || answers(driver_port)),
        "tauri-driver did not listen on {driver_port}"
    );

    let shots = support::eddy_binary()
        .parent()
        .expect("target profile dir")
        .join("screenshots/desktop");
    let started = Instant::now();
    let outcome = support::run(
        Command::new("node")
            .current_dir(workspace())
            .arg("tests/desktop/app.mjs")
            .arg(format!("http://127.0.0.1:{driver_port}"))
            .arg(&app)
            .arg(&shots),
        SCENARIO_TIMEOUT,
    );
    eprintln!("{}", outcome.stdout);
    assert!(
        outcome.status.success(),
        "the desktop scenario failed after {:?}:\n{}\n{}\ntauri-driver:\n{}",
        started.elapsed(),
        outcome.stdout,
        outcome.stderr,
        std::fs::read_to_string(&driver_log).unwrap_or_default()
    );
    assert!(shots.join("desktop-cluster.png").is_file());
    eprintln!("desktop screenshots in {}", shots.display());

    // Closing the app stopped its cluster: no node holds its port.
    let released = support::wait_until(RELEASE_TIMEOUT, || {
        (0..3).all(|node| !answers(base_port + node))
    });
    assert!(released, "the app's cluster outlived the app");
}
