# shellcheck shell=bash
# Apache Cassandra 5.0 from Maven Central jars, run with Java 17: one node on 127.0.0.1:9042, and a cluster of
# three on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (all of 127/8 is loopback), port 9042 each. The two use distinct
# addresses, JMX ports and cluster names, so they run side by side: a failure test can start, stop and restart
# the three nodes while the single node stays up for everything else.
# Sourced by scripts/services.sh after common.sh.

CASSANDRA_POM="$SERVICES_SRC/cassandra/pom.xml"
CASSANDRA_LIB="$SERVICES_HOME/cassandra/lib"
CASSANDRA_VERSION="$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$CASSANDRA_POM")"
CASSANDRA_RUN="$RUN_HOME/cassandra"
CASSANDRA3_RUN="$RUN_HOME/cassandra3"
CASSANDRA3_ADDRS="127.0.0.2:9042,127.0.0.3:9042,127.0.0.4:9042"
# Murmur3 tokens spread evenly over the ring, one per node.
CASSANDRA3_TOKENS=(-9223372036854775808 -3074457345618258603 3074457345618258602)
# Cassandra needs more than Kafka on 2 busy cores.
CASSANDRA_START_TIMEOUT="${START_TIMEOUT_CASSANDRA:-180}"

cassandra_install() {
  maven_fetch "$CASSANDRA_POM" "$CASSANDRA_LIB" "Cassandra $CASSANDRA_VERSION"
}

# cassandra_java_opts: the options of Cassandra's jvm17 file, without comments.
cassandra_java_opts() {
  grep -v '^[[:space:]]*\(#\|$\)' "$SERVICES_SRC/cassandra/jvm17.options"
}

# cassandra_prepare_node DIR ADDRESS SEEDS INITIAL_TOKEN_LINE [CLUSTER_NAME]: a fresh folder with its config.
cassandra_prepare_node() {
  local dir="$1"
  rm -rf "$dir"
  mkdir -p "$dir/storage" "$dir/triggers"
  render "$SERVICES_SRC/cassandra/cassandra.yaml.in" "$dir/cassandra.yaml" \
    CLUSTER_NAME="${5:-topsellers-test}" ADDRESS="$2" SEEDS="$3" INITIAL_TOKEN="$4"
}

# cassandra_start_node DIR JMX_PORT HEAP EXTRA_JAVA_OPTS...: start the node whose cassandra.yaml is in DIR.
cassandra_start_node() {
  local dir="$1" jmx="$2" heap="$3"
  shift 3
  local opts=()
  mapfile -t opts < <(cassandra_java_opts)
  # The jamm agent measures object sizes (memtables); Cassandra refuses to start without it.
  local jamm
  jamm="$(find "$CASSANDRA_LIB" -maxdepth 1 -name 'jamm-*.jar' | head -n1)"
  [[ -n "$jamm" ]] || die "no jamm jar in $CASSANDRA_LIB: run scripts/services.sh install cassandra"
  start_daemon "$dir" "$(java17_bin)" "-Xms$heap" "-Xmx$heap" "${opts[@]}" "-javaagent:$jamm" \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dcassandra.storagedir="$dir/storage" \
    -Dcassandra.logdir="$dir" \
    -Dcassandra.triggers_dir="$dir/triggers" \
    -Dlogback.configurationFile="$SERVICES_SRC/cassandra/logback.xml" \
    -Dcassandra.jmx.local.port="$jmx" \
    "$@" \
    -cp "$CASSANDRA_LIB/*" org.apache.cassandra.service.CassandraDaemon
}

# cql_ping HOST [PORT]: true when a CQL server answers there. Sends a native-protocol v4 OPTIONS frame (version
# 0x04, flags 0, stream 1, opcode 0x05, empty body) and expects a SUPPORTED frame back (response version 0x84,
# opcode 0x06): the server speaks CQL, not only accepts connections.
cql_ping() {
  local host="$1" port="${2:-9042}"
  # shellcheck disable=SC2016 # the inner script gets host and port as $0 and $1
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "\x04\x00\x00\x01\x05\x00\x00\x00\x00" >&3
    header="$(head -c 9 <&3 | od -An -tx1 | tr -d " \n")"
    [[ "$header" == 84000001 06* ]]' "$host" "$port" 2>/dev/null
}

# cassandra_nodetool JMX_PORT ARGS...: Cassandra's nodetool from the jars, through the node's local JMX port.
cassandra_nodetool() {
  local jmx="$1" opts=()
  shift
  # The same module exports/opens as the server (the tool shares its classes); user.home: nodetool keeps a
  # history file in ~/.cassandra, kept under .services here.
  mapfile -t opts < <(cassandra_java_opts | grep '^--add-')
  "$(java17_bin)" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${opts[@]}" \
    -Duser.home="$SERVICES_HOME/cassandra" \
    -Dlogback.configurationFile="$SERVICES_SRC/cassandra/logback-tools.xml" \
    -cp "$CASSANDRA_LIB/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$jmx" "$@"
}

# cassandra_ring_up JMX_PORT N: true when the node behind JMX_PORT sees N nodes Up and Normal.
cassandra_ring_up() {
  local out
  out="$(cassandra_nodetool "$1" status 2>/dev/null)" || return 1
  [[ "$(grep -c '^UN ' <<<"$out")" == "$2" ]]
}

# cassandra_ring_ready JMX_PORT N: N nodes Up and Normal, and all agree on one schema version (a restarted node
# pulls the schema it missed from the others; until then it does not know tables created while it was down).
cassandra_ring_ready() {
  cassandra_ring_up "$1" "$2" || return 1
  local out
  out="$(cassandra_nodetool "$1" describecluster 2>/dev/null)" || return 1
  # "Schema versions:" is followed by one line per version, "<uuid>: [addresses]", then a blank line.
  awk '/Schema versions:/ { in_versions = 1; next }
       in_versions && /^[[:space:]]*$/ { in_versions = 0 }
       in_versions && /: \[/ { versions++ }
       END { exit versions != 1 }' <<<"$out"
}

# cassandra_node_ready ADDRESS DIR: CQL answers and the log says the native transport is listening.
cassandra_node_ready() {
  cql_ping "$1" || return 1
  # Only the log since the last start-node counts (after its marker line).
  awk '/^==== restarted by services.sh/ { found = 0 }
       /Starting listening for CQL clients/ { found = 1 }
       END { exit !found }' "$2/server.log"
}

# cassandra_cql ARGS...: run CQL statements with scripts/services/cassandra/Cql.java (see there).
cassandra_cql() {
  [[ -d "$CASSANDRA_LIB" ]] || die "no Cassandra jars: run scripts/services.sh install cassandra"
  "$(java17_bin)" -Xmx256m -Dlogback.configurationFile="$SERVICES_SRC/cassandra/logback-tools.xml" \
    -cp "$CASSANDRA_LIB/*" "$SERVICES_SRC/cassandra/Cql.java" "$@"
}

cassandra_start() {
  cassandra_install
  cassandra_stop
  port_free_or_die 127.0.0.1 9042 "cassandra"
  port_free_or_die 127.0.0.1 7000 "cassandra (storage port)"
  port_free_or_die 127.0.0.1 7199 "cassandra (JMX)"
  local dir="$CASSANDRA_RUN/node-1"
  step "starting Cassandra $CASSANDRA_VERSION on 127.0.0.1:9042 (log: ${dir#"$ROOT"/}/server.log)"
  cassandra_prepare_node "$dir" 127.0.0.1 127.0.0.1 ""
  # The default superuser is set up at once, not after 10 s (only one node: nothing to wait for).
  cassandra_start_node "$dir" 7199 1g -Dcassandra.superuser_setup_delay_ms=0
  START_TIMEOUT="$CASSANDRA_START_TIMEOUT" wait_ready "Cassandra 127.0.0.1:9042" "$dir" \
    cassandra_node_ready 127.0.0.1 "$dir"
}

cassandra_stop() {
  stop_instance "$CASSANDRA_RUN/node-1" "Cassandra 127.0.0.1:9042" 60
}

cassandra3_node_dir() { echo "$CASSANDRA3_RUN/node-$1"; }
cassandra3_addr() { echo "127.0.0.$(($1 + 1))"; }       # node N listens on 127.0.0.(N+1)
cassandra3_jmx() { echo $((7199 + $1 * 100)); }         # 7299, 7399, 7499: JMX listens on 127.0.0.1 for every node

cassandra3_any_alive() {
  local n
  for n in 1 2 3; do pid_alive "$(cassandra3_node_dir "$n")" && return 0; done
  return 1
}

# cassandra3_launch N: start node N of the 3-node cluster on its existing folder.
cassandra3_launch() {
  local n="$1"
  # ring_delay_ms: how long a joining node watches gossip before taking its place (default 30 s).
  # auto_bootstrap=false (system property): a new cluster has no data to stream, and without bootstrap the
  # nodes can join at the same time.
  # superuser_setup_delay_ms is also the retry interval of that setup while a node is down: at 0 it retries
  # in a busy loop and writes tens of MB of log per minute, so it stays above 0 here.
  cassandra_start_node "$(cassandra3_node_dir "$n")" "$(cassandra3_jmx "$n")" 768m \
    -Dcassandra.ring_delay_ms=5000 -Dcassandra.auto_bootstrap=false -Dcassandra.superuser_setup_delay_ms=2000
}

cassandra3_start() {
  cassandra_install
  cassandra3_stop
  local n dir
  for n in 1 2 3; do
    port_free_or_die "$(cassandra3_addr "$n")" 9042 "cassandra3 node $n"
    port_free_or_die "$(cassandra3_addr "$n")" 7000 "cassandra3 node $n (storage port)"
    port_free_or_die 127.0.0.1 "$(cassandra3_jmx "$n")" "cassandra3 node $n (JMX)"
  done
  rm -rf "$CASSANDRA3_RUN"
  for n in 1 2 3; do
    # Its own cluster name: were the two clusters ever to gossip, each would refuse the other's nodes.
    cassandra_prepare_node "$(cassandra3_node_dir "$n")" "$(cassandra3_addr "$n")" "$(cassandra3_addr 1)" \
      "initial_token: ${CASSANDRA3_TOKENS[$((n - 1))]}" topsellers-test3
  done
  # The seed first: the others learn the ring from it.
  dir="$(cassandra3_node_dir 1)"
  step "starting Cassandra $CASSANDRA_VERSION node 1 (seed) on $(cassandra3_addr 1):9042 (log: ${dir#"$ROOT"/}/server.log)"
  cassandra3_launch 1
  START_TIMEOUT="$CASSANDRA_START_TIMEOUT" wait_ready "cassandra3 node 1" "$dir" \
    cassandra_node_ready "$(cassandra3_addr 1)" "$dir"
  step "starting Cassandra nodes 2 and 3 on $(cassandra3_addr 2):9042 and $(cassandra3_addr 3):9042 (logs: ${CASSANDRA3_RUN#"$ROOT"/}/node-N/server.log)"
  cassandra3_launch 2
  cassandra3_launch 3
  for n in 2 3; do
    dir="$(cassandra3_node_dir "$n")"
    START_TIMEOUT="$CASSANDRA_START_TIMEOUT" wait_ready "cassandra3 node $n" "$dir" \
      cassandra_node_ready "$(cassandra3_addr "$n")" "$dir"
  done
  START_TIMEOUT="$CASSANDRA_START_TIMEOUT" wait_ready "cassandra3: 3 nodes Up and Normal, one schema" \
    "$(cassandra3_node_dir 1) $(cassandra3_node_dir 2) $(cassandra3_node_dir 3)" cassandra_ring_ready "$(cassandra3_jmx 1)" 3
}

cassandra3_stop() {
  local n dir any=""
  for n in 1 2 3; do
    dir="$(cassandra3_node_dir "$n")"
    if pid_alive "$dir"; then
      any=1
      step "stopping cassandra3 node $n (pid $(cat "$dir/pid"), SIGTERM)"
      kill -TERM "$(cat "$dir/pid")" 2>/dev/null || true
    fi
  done
  [[ -n "$any" ]] || return 0
  for n in 1 2 3; do stop_instance "$(cassandra3_node_dir "$n")" "cassandra3 node $n" 60 >/dev/null; done
}

cassandra3_check_n() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "node number must be 1, 2 or 3, not '${1:-}'"
  [[ -f "$(cassandra3_node_dir "$1")/cassandra.yaml" ]] ||
    die "no 3-node Cassandra cluster here: run 'scripts/services.sh start cassandra3' first"
}

# cassandra3_stop_node N [--kill]: stop one node, gracefully or, with --kill, with SIGKILL like a crash. Its
# data stays for start-node N.
cassandra3_stop_node() {
  cassandra3_check_n "${1:-}"
  local dir sig=TERM
  dir="$(cassandra3_node_dir "$1")"
  [[ "${2:-}" == "--kill" ]] && sig=KILL
  pid_alive "$dir" || { step "cassandra3 node $1 is not running"; return 0; }
  stop_instance "$dir" "cassandra3 node $1 ($(cassandra3_addr "$1"):9042)" 60 "$sig"
}

# cassandra3_start_node N: start a stopped node again on its existing data, and wait until it answers CQL and
# sees all 3 nodes Up and Normal with one schema version.
cassandra3_start_node() {
  cassandra3_check_n "${1:-}"
  local dir
  dir="$(cassandra3_node_dir "$1")"
  if pid_alive "$dir"; then
    step "cassandra3 node $1 is already running (pid $(cat "$dir/pid"))"
  else
    port_free_or_die "$(cassandra3_addr "$1")" 9042 "cassandra3 node $1"
    step "starting cassandra3 node $1 on $(cassandra3_addr "$1"):9042 on its existing data (log: ${dir#"$ROOT"/}/server.log)"
    printf '\n==== restarted by services.sh start-node %s at %s ====\n' "$1" "$(date -Is)" >>"$dir/server.log"
    cassandra3_launch "$1"
  fi
  START_TIMEOUT="$CASSANDRA_START_TIMEOUT" wait_ready "cassandra3 node $1" "$dir" \
    cassandra_node_ready "$(cassandra3_addr "$1")" "$dir"
  START_TIMEOUT="$CASSANDRA_START_TIMEOUT" wait_ready "cassandra3 node $1 sees 3 nodes Up and Normal, one schema" \
    "$dir" cassandra_ring_ready "$(cassandra3_jmx "$1")" 3
}

cassandra_status() {
  local n
  if pid_alive "$CASSANDRA_RUN/node-1"; then
    echo "cassandra  running  127.0.0.1:9042 (pid $(cat "$CASSANDRA_RUN/node-1/pid"))"
  else
    echo "cassandra  stopped"
  fi
  if [[ -d "$CASSANDRA3_RUN" ]]; then
    for n in 1 2 3; do
      if pid_alive "$(cassandra3_node_dir "$n")"; then
        echo "cassandra3 #$n running  $(cassandra3_addr "$n"):9042 (pid $(cat "$(cassandra3_node_dir "$n")/pid"))"
      else
        echo "cassandra3 #$n stopped"
      fi
    done
  else
    echo "cassandra3 stopped"
  fi
}

cassandra_env() {
  if pid_alive "$CASSANDRA_RUN/node-1"; then echo "export TOPSELLERS_TEST_CASSANDRA=127.0.0.1:9042"; fi
  # Exported while any node runs: a failure test may have one stopped on purpose.
  if cassandra3_any_alive; then echo "export TOPSELLERS_TEST_CASSANDRA3=$CASSANDRA3_ADDRS"; fi
}
