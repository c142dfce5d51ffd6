#!/usr/bin/env bash
# The one test command (README, CI and developers alike): formatting, lints, then every test of the workspace.
# The embedded pipeline needs no outside service; the Kafka, Cassandra and Redis tests run against real servers
# that this script fetches and starts through scripts/services.sh (addresses reach the tests as TOPSELLERS_TEST_*
# variables), and the web page test drives a real headless Chromium.
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

step "services for the integration tests (real Kafka and Cassandra from Maven Central; kcat, Redis and Chromium from Debian)"
# Stopped again however this script ends, so no broker outlives the run.
trap './scripts/services.sh stop all >/dev/null 2>&1 || true' EXIT
./scripts/services.sh install kafka
./scripts/services.sh install kcat
./scripts/services.sh install redis
./scripts/services.sh install cassandra
./scripts/services.sh install postgres
# DuckDB's Python package reads the Parquet archive back in its test (quiet, and a no-op when installed).
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb
# moto's S3 server: the real S3-compatible server the object-store archive test starts itself (and stops).
python3 -c 'import moto.server, boto3' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
# Headless Chromium and chromedriver for the web page test (Debian packages).
crates/topsellers-server/tests/page/install-chromium.sh
./scripts/services.sh start kafka
./scripts/services.sh start kafka3
./scripts/services.sh start redis
./scripts/services.sh start redis-cluster
./scripts/services.sh start cassandra
# Not started here: the three-node Cassandra (cassandra3). Only the store failure test uses it, and that test starts
# it beside the single node (own addresses) and stops it again: 3 JVMs of ~1.25 GB RSS that would otherwise idle
# at ~10% of a core through the whole suite; starting them costs ~40 s on these 2 cores either way.
./scripts/services.sh start postgres
eval "$(./scripts/services.sh env)"
# The agent's log4j2 test runs a small Java purchase server that logs through the real log4j2 appenders; built once
# here (Maven, quiet, a few seconds; log4j2 from Maven Central). Without the jar that test fails under CI.
TOPSELLERS_TEST_LOG4J2_JAR="$(crates/topsellers-agent/tests/log4j2/build.sh)"
export TOPSELLERS_TEST_LOG4J2_JAR

step "cargo test"
# Release mode: the kill -9, real-data and demo tests run the real binary under load; optimised builds keep the
# whole suite to a few minutes on 2 cores.
cargo test --workspace --release --locked
step "all tests passed"
