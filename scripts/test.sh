#!/usr/bin/env bash
# Every check the project has, in order; stops at the first failing step
# (cargo test still runs every test binary, so the summary counts them all).
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { printf '\n==> %s\n' "$*"; }

# Adds the counts of every "test result:" line in $log (one per test binary and doc-test run).
count_cargo_tests() {
  local p f i
  read -r p f i < <(awk '/^test result:/ {
      for (n = 2; n <= NF; n++) {
        if ($n == "passed;") p += $(n - 1)
        if ($n == "failed;") f += $(n - 1)
        if ($n == "ignored;") i += $(n - 1)
      }
    } END { print p + 0, f + 0, i + 0 }' "$log")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + i))
}

summary() { echo "tests: $passed passed, $failed failed, $skipped skipped"; }

# The UI first: ui/dist is what `eddy serve`, the desktop app and the browser tests load.
if [ ! -d node_modules ]; then
  step "npm ci (a fresh checkout)"
  npm ci --no-audit --no-fund
fi

step "npm run build -w ui"
npm run build -w ui

step "npm run check -w ui"
npm run check -w ui

step "npm run lint -w ui"
npm run lint -w ui

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
count_cargo_tests
if ((status != 0)); then
  echo "cargo test failed (exit $status)"
  summary
  exit "$status"
fi

echo
summary
