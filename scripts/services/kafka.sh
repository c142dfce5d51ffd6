# shellcheck shell=bash
# Apache Kafka (KRaft) from Maven Central jars: one node on 127.0.0.1:9092, or three on 19092/29092/39092.
# Sourced by scripts/services.sh after common.sh.

KAFKA_POM="$SERVICES_SRC/kafka/pom.xml"
KAFKA_LIB="$SERVICES_HOME/kafka/lib"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")"
KAFKA_RUN="$RUN_HOME/kafka"
KAFKA3_RUN="$RUN_HOME/kafka3"
KAFKA_ADDR="127.0.0.1:9092"
KAFKA3_ADDRS="127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
KAFKA3_VOTERS="1@127.0.0.1:19093,2@127.0.0.1:29093,3@127.0.0.1:39093"

kafka_install() {
  maven_fetch "$KAFKA_POM" "$KAFKA_LIB" "Kafka $KAFKA_VERSION"
}

kcat_install() {
  if command -v kcat >/dev/null; then
    step "kcat already installed ($(command -v kcat))"
  else
    apt_install kcat
  fi
}

# kafka_java ARGS...: java with the Kafka jars. slf4j-simple settings: timestamps in the log, INFO by default.
kafka_java() {
  "$(java17_bin)" -cp "$KAFKA_LIB/*" \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd'T'HH:mm:ss.SSS" \
    "$@"
}

# The admin tools of the jars, quiet, e.g. `kafka_tool org.apache.kafka.tools.TopicCommand --list ...`.
kafka_tool() {
  kafka_java -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn "$@"
}

# kafka_start_node DIR: start the node whose server.properties is in DIR (already formatted).
kafka_start_node() {
  local dir="$1"
  # -Xmx512m: small heap, up to 3 brokers on a 2-core, 24 GiB machine. The broker itself is kafka.Kafka;
  # kafka-server-start.sh adds nothing else that a test needs.
  start_daemon "$dir" "$(java17_bin)" -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -cp "$KAFKA_LIB/*" \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd'T'HH:mm:ss.SSS" \
    kafka.Kafka "$dir/server.properties"
}

# kafka_prepare_node DIR NODE_ID PORT CONTROLLER_PORT RF MIN_ISR QUORUM_LINE: a fresh folder with its config.
kafka_prepare_node() {
  local dir="$1"
  rm -rf "$dir"
  mkdir -p "$dir/data"
  render "$SERVICES_SRC/kafka/server.properties.in" "$dir/server.properties" \
    NODE_ID="$2" PORT="$3" CONTROLLER_PORT="$4" RF="$5" MIN_ISR="$6" QUORUM="$7" DATA_DIR="$dir/data"
}

# A cluster id: 16 random bytes, URL-safe base64 without padding (what `kafka-storage.sh random-uuid` prints),
# made here to save a JVM start.
kafka_cluster_id() {
  head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# kafka_brokers_listed ADDR N: true when the cluster at ADDR answers a metadata request listing N brokers.
kafka_brokers_listed() {
  local out
  out="$(kcat -b "$1" -L -m 3 2>/dev/null)" || return 1
  grep -q "^ *$2 brokers:" <<<"$out"
}

kafka_start() {
  kafka_install
  command -v kcat >/dev/null || kcat_install
  kafka_stop
  port_free_or_die 127.0.0.1 9092 "kafka"
  port_free_or_die 127.0.0.1 9093 "kafka controller"
  local dir="$KAFKA_RUN/node-1" id
  id="$(kafka_cluster_id)"
  step "formatting Kafka $KAFKA_VERSION storage in ${dir#"$ROOT"/} (cluster id $id)"
  kafka_prepare_node "$dir" 1 9092 9093 1 1 "controller.quorum.bootstrap.servers=127.0.0.1:9093"
  # --standalone: this node alone is the initial controller quorum (dynamic quorum, KIP-853).
  run_logged "$dir/format.log" kafka_tool kafka.tools.StorageTool format --standalone -t "$id" \
    -c "$dir/server.properties"
  step "starting Kafka on $KAFKA_ADDR (log: ${dir#"$ROOT"/}/server.log)"
  kafka_start_node "$dir"
  wait_ready "Kafka $KAFKA_ADDR" "$dir" kafka_brokers_listed "$KAFKA_ADDR" 1
}

kafka_stop() {
  stop_instance "$KAFKA_RUN/node-1" "Kafka $KAFKA_ADDR"
}

# kafka_resume: start the single node again on the data a `stop kafka` left (no re-format): a broker outage
# and its recovery, for failure tests.
kafka_resume() {
  local dir="$KAFKA_RUN/node-1"
  [[ -f "$dir/server.properties" ]] || die "no single-node Kafka here: run 'scripts/services.sh start kafka' first"
  if pid_alive "$dir"; then
    step "Kafka $KAFKA_ADDR is already running (pid $(cat "$dir/pid"))"
    return 0
  fi
  port_free_or_die 127.0.0.1 9092 "kafka"
  step "starting Kafka on $KAFKA_ADDR on its existing data (log: ${dir#"$ROOT"/}/server.log)"
  kafka_start_node "$dir"
  wait_ready "Kafka $KAFKA_ADDR" "$dir" kafka_brokers_listed "$KAFKA_ADDR" 1
}

kafka3_node_dir() { echo "$KAFKA3_RUN/node-$1"; }

kafka3_start() {
  kafka_install
  command -v kcat >/dev/null || kcat_install
  kafka3_stop
  local n id dirs=""
  for n in 1 2 3; do
    port_free_or_die 127.0.0.1 "${n}9092" "kafka3 broker $n"
    port_free_or_die 127.0.0.1 "${n}9093" "kafka3 controller $n"
  done
  id="$(kafka_cluster_id)"
  step "formatting 3 Kafka $KAFKA_VERSION nodes in ${KAFKA3_RUN#"$ROOT"/} (cluster id $id)"
  rm -rf "$KAFKA3_RUN"
  for n in 1 2 3; do
    # Static quorum (controller.quorum.voters): every node knows the 3 voters from its config, so the format
    # takes no --standalone / --initial-controllers. Replication 3, min.insync.replicas 2.
    kafka_prepare_node "$(kafka3_node_dir $n)" "$n" "${n}9092" "${n}9093" 3 2 "controller.quorum.voters=$KAFKA3_VOTERS"
    dirs+=" $(kafka3_node_dir $n)"
  done
  # The three formats are independent JVM starts: run them side by side.
  local pids=()
  for n in 1 2 3; do
    (run_logged "$(kafka3_node_dir $n)/format.log" kafka_tool kafka.tools.StorageTool format -t "$id" \
      -c "$(kafka3_node_dir $n)/server.properties") &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || exit 1; done
  # All three at once: a controller quorum needs 2 of 3 voters before any broker can register.
  step "starting 3 Kafka nodes on $KAFKA3_ADDRS (logs: ${KAFKA3_RUN#"$ROOT"/}/node-N/server.log)"
  for n in 1 2 3; do kafka_start_node "$(kafka3_node_dir $n)"; done
  wait_ready "Kafka 3-node cluster" "$dirs" kafka_brokers_listed "$KAFKA3_ADDRS" 3
}

kafka3_stop() {
  local n dir alive=() i
  for n in 1 2 3; do
    dir="$(kafka3_node_dir $n)"
    if pid_alive "$dir"; then
      alive+=("$n")
      step "stopping kafka3 node $n (pid $(cat "$dir/pid"), SIGTERM)"
      kill -TERM "$(cat "$dir/pid")" 2>/dev/null || true
    fi
  done
  ((${#alive[@]})) || return 0
  # All three at once, and at most 15 s: whichever node is left last waits forever in its controlled shutdown
  # for a controller quorum that is already gone. The cluster is thrown away (the next start re-formats it), so
  # a SIGKILL then loses nothing.
  for ((i = 0; i < 150; i++)); do
    alive=()
    for n in 1 2 3; do pid_alive "$(kafka3_node_dir $n)" && alive+=("$n"); done
    ((${#alive[@]})) || break
    sleep 0.1
  done
  for n in "${alive[@]}"; do
    note "kafka3 node $n still waiting for a quorum after 15s (expected for the last one): SIGKILL"
    stop_instance "$(kafka3_node_dir "$n")" "kafka3 node $n" 0 KILL >/dev/null
  done
  for n in 1 2 3; do rm -f "$(kafka3_node_dir $n)/pid"; done
}

kafka3_check_n() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "broker number must be 1, 2 or 3, not '${1:-}'"
}

# kafka3_stop_broker N [--kill]: stop one node of the 3-node cluster, gracefully (controlled shutdown) or, with
# --kill, with SIGKILL like a crash. Its data stays for start-broker N.
kafka3_stop_broker() {
  kafka3_check_n "${1:-}"
  local dir sig=TERM
  dir="$(kafka3_node_dir "$1")"
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  [[ -f "$dir/server.properties" ]] || die "no 3-node Kafka cluster here: run 'scripts/services.sh start kafka3' first"
  pid_alive "$dir" || { step "kafka3 node $1 is not running"; return 0; }
  stop_instance "$dir" "kafka3 node $1 (127.0.0.1:${1}9092)" 60 "$sig"
}

# kafka3_start_broker N: start a stopped node again on its existing data (no re-format) and wait until the
# cluster lists all 3 brokers.
kafka3_start_broker() {
  kafka3_check_n "${1:-}"
  local dir
  dir="$(kafka3_node_dir "$1")"
  [[ -f "$dir/server.properties" ]] || die "no 3-node Kafka cluster here: run 'scripts/services.sh start kafka3' first"
  local n others=0
  for n in 1 2 3; do
    if [[ $n != "$1" ]] && pid_alive "$(kafka3_node_dir "$n")"; then others=$((others + 1)); fi
  done
  # Alone, a node finds no controller quorum (2 of 3 voters) and shuts itself down.
  ((others > 0)) || die "the 3-node Kafka cluster is not running: use 'scripts/services.sh start kafka3'"
  if pid_alive "$dir"; then
    step "kafka3 node $1 is already running (pid $(cat "$dir/pid"))"
  else
    port_free_or_die 127.0.0.1 "${1}9092" "kafka3 broker $1"
    step "starting kafka3 node $1 on 127.0.0.1:${1}9092 on its existing data (log: ${dir#"$ROOT"/}/server.log)"
    printf '\n==== restarted by services.sh start-broker %s at %s ====\n' "$1" "$(date -Is)" >>"$dir/server.log"
    kafka_start_node "$dir"
  fi
  wait_ready "kafka3 node $1 back in the cluster" "$dir" kafka_brokers_listed "127.0.0.1:${1}9092" 3
  # A failure test usually wants the cluster whole again, not only the broker registered: wait until every
  # partition has all its replicas in sync (the restarted broker has caught up).
  wait_ready "kafka3: all partitions with every replica in sync" "$dir" kafka_all_in_sync "$KAFKA3_ADDRS"
}

# kafka_all_in_sync ADDRS: true when, in the metadata, every partition's ISR is its whole replica set.
kafka_all_in_sync() {
  local out
  out="$(kcat -b "$1" -L -m 3 2>/dev/null)" || return 1
  # Lines look like: "partition 0, leader 1, replicas: 1,2,3, isrs: 1,3".
  awk '/ partition [0-9]+, leader/ {
         match($0, /replicas: [0-9,]+/); r = substr($0, RSTART + 10, RLENGTH - 10); sub(/,$/, "", r)
         match($0, /isrs: [0-9,]+/);     i = substr($0, RSTART + 6, RLENGTH - 6);   sub(/,$/, "", i)
         if (split(r, a, ",") != split(i, b, ",")) bad = 1
       }
       END { exit bad }' <<<"$out"
}

kafka_status() {
  local n
  if pid_alive "$KAFKA_RUN/node-1"; then
    echo "kafka      running  $KAFKA_ADDR (pid $(cat "$KAFKA_RUN/node-1/pid"))"
  else
    echo "kafka      stopped"
  fi
  if [[ -d "$KAFKA3_RUN" ]]; then
    for n in 1 2 3; do
      if pid_alive "$(kafka3_node_dir $n)"; then
        echo "kafka3 #$n  running  127.0.0.1:${n}9092 (pid $(cat "$(kafka3_node_dir $n)/pid"))"
      else
        echo "kafka3 #$n  stopped"
      fi
    done
  else
    echo "kafka3     stopped"
  fi
}

kafka_env() {
  if pid_alive "$KAFKA_RUN/node-1"; then echo "export TOPSELLERS_TEST_KAFKA=$KAFKA_ADDR"; fi
  local n
  for n in 1 2 3; do
    # Exported while any node runs: a failure test may have one stopped on purpose.
    if pid_alive "$(kafka3_node_dir $n)"; then
      echo "export TOPSELLERS_TEST_KAFKA3=$KAFKA3_ADDRS"
      break
    fi
  done
}
