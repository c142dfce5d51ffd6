#!/usr/bin/env bash
# Builds the log4j2 purchase-server program that crates/topsellers/tests/agent_log4j2.rs runs against the agent
# (Maven, quiet; log4j2 and Jackson from Maven Central) and prints the jar's path, for
# TOPSELLERS_TEST_LOG4J2_JAR. Needs Java 17+ and Maven (Debian: apt-get install maven).
#
#   export TOPSELLERS_TEST_LOG4J2_JAR=$(crates/topsellers-agent/tests/log4j2/build.sh)
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v mvn >/dev/null && command -v apt-get >/dev/null; then
  # Maven from Debian, as the other test tools are (quiet; needs root or sudo, as scripts/test.sh has).
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq maven >/dev/null 2>&1 ||
    { "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" apt-get install -y -qq maven >/dev/null; }
fi
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is not installed: the log4j2 test needs Java 17+ and Maven (apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 1
  fi
done
# Quiet: Maven's output is shown only when the build fails.
log="$(mktemp)"
if ! mvn -q -B -Dstyle.color=never package >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
echo "$PWD/target/log4j2-shop.jar"
