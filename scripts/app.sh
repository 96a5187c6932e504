#!/usr/bin/env bash
# Launches Eddy. Until the desktop app exists, this starts the default local
# cluster with the `eddy` command (Ctrl-C stops it cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p eddy-cli -- cluster up "$@"
