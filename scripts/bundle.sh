#!/usr/bin/env bash
# Builds the installable desktop app (a .deb on Debian/Ubuntu) with the
# `eddy` binary inside it as a Tauri sidecar: the app runs every node of its
# local cluster with that binary, which never loads the GUI libraries.
# The package lands in target/release/bundle/deb/.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build -w ui
cargo build --quiet --release -p eddy-cli
triple=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p src-tauri/binaries
cp target/release/eddy "src-tauri/binaries/eddy-$triple"
cd src-tauri
exec npx --no-install tauri build --config tauri.bundle.json --bundles deb
