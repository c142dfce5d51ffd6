#!/usr/bin/env bash
# The one test command (README, CI and developers alike): formatting, lints, then every test of the workspace.
# The embedded pipeline needs no outside service; issues that add Kafka, Cassandra, Redis or PostgreSQL tests
# start them from here through scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# Release mode: the kill -9, real-data and demo tests run the real binary under load; optimised builds keep the
# whole suite to a few minutes on 2 cores.
cargo test --workspace --release --locked
step "all tests passed"
