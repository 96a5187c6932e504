#!/usr/bin/env bash
# Builds and opens the Eddy desktop app with its default local cluster
# (3 nodes on 127.0.0.1:19092-19094, data under the platform data dir, kept
# between runs). The app's nodes run the `eddy` binary built beside it.
#
# Without a display (a server, a container), it serves the same console to
# a browser instead (`eddy serve`) and prints the URL to open.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building the UI"
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build -w ui

echo "==> building eddy and the app (release; the first build takes a few minutes)"
cargo build --quiet --release -p eddy-cli -p eddy-app

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" = "Linux" ]; then
  echo "==> no display: serving the console to a browser instead"
  exec target/release/eddy serve "$@"
fi
echo "==> opening Eddy (quitting it stops the local cluster)"
exec target/release/eddy-app
