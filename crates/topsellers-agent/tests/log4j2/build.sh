#!/usr/bin/env bash
# Builds the log4j2 purchase-server program that crates/topsellers/tests/agent_log4j2.rs runs against the agent
# (Maven, quiet; log4j2 and Jackson from Maven Central) and prints the jar's path, for
# TOPSELLERS_TEST_LOG4J2_JAR. Needs Java 17+ and Maven (Debian: apt-get install maven).
#
#   export TOPSELLERS_TEST_LOG4J2_JAR=$(crates/topsellers-agent/tests/log4j2/build.sh)
set -euo pipefail
cd "$(dirname "$0")"
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is not installed: the log4j2 test needs Java 17+ and Maven (apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 1
  fi
done
mvn -q -B package >&2
echo "$PWD/target/log4j2-shop.jar"
