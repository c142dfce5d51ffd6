#!/usr/bin/env bash
# Installs, starts and stops the real services that the cluster-mode tests run against, on this machine, without
# Docker: Kafka and Cassandra from Maven Central jars (run with Java 17), Redis and PostgreSQL from Debian
# packages. Everything downloaded or generated goes under .services/ (ignored by git); each `start` wipes and
# re-creates its service's folder under .services/run/.
#
#   scripts/services.sh install kafka|cassandra|redis|postgres|kcat|all
#   scripts/services.sh start kafka          one KRaft node: 127.0.0.1:9092 (controller 9093)
#   scripts/services.sh start kafka3         3 KRaft nodes: 127.0.0.1:19092,29092,39092 (controllers 19093,...),
#                                            replication 3, min.insync.replicas 2
#   scripts/services.sh stop-broker N [--kill] / start-broker N    one node of kafka3 (N = 1..3), data kept
#   scripts/services.sh resume kafka         start the single node again on the data `stop kafka` left
#   scripts/services.sh start cassandra      one node: 127.0.0.1:9042
#   scripts/services.sh start cassandra3     3 nodes: 127.0.0.2, 127.0.0.3, 127.0.0.4 port 9042 (beside the single
#                                            node: own addresses, JMX ports 7299-7499 and cluster name)
#   scripts/services.sh stop-node N [--kill] / start-node N        node N of cassandra3 (N = 1..3, on 127.0.0.N+1),
#                                            data kept
#   scripts/services.sh cql [-h HOST] [-p PORT] [-c CONSISTENCY] "STATEMENT"...
#                                            run CQL (there is no cqlsh here) and print the rows
#   scripts/services.sh start redis          127.0.0.1:6379
#   scripts/services.sh start redis-cluster  3 masters: 127.0.0.1:7001-7003
#   scripts/services.sh start postgres       127.0.0.1:5432, user/password/database topsellers
#   scripts/services.sh stop NAME|all
#   scripts/services.sh status
#   scripts/services.sh env                  export lines for the services that run:
#                                            eval "$(scripts/services.sh env)"
#       TOPSELLERS_TEST_KAFKA=127.0.0.1:9092
#       TOPSELLERS_TEST_KAFKA3=127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092
#       TOPSELLERS_TEST_CASSANDRA=127.0.0.1:9042
#       TOPSELLERS_TEST_CASSANDRA3=127.0.0.2:9042,127.0.0.3:9042,127.0.0.4:9042
#       TOPSELLERS_TEST_REDIS=127.0.0.1:6379
#       TOPSELLERS_TEST_REDIS_CLUSTER=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
#       TOPSELLERS_TEST_POSTGRES=postgres://topsellers:topsellers@127.0.0.1:5432/topsellers
#
# Each `start` waits until the service answers (Kafka: kcat lists the brokers; Cassandra: a CQL OPTIONS request is
# answered and the log says it listens; Redis: PING, cluster_state:ok; PostgreSQL: pg_isready), at most
# START_TIMEOUT seconds (default 120; START_TIMEOUT_CASSANDRA, default 180, for Cassandra), then shows the end of
# the log and fails. Logs: .services/run/<name>/node-N/server.log.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=services/common.sh
source "$here/services/common.sh"
for f in kafka cassandra redis postgres; do
  # shellcheck disable=SC1090
  [[ -f "$here/services/$f.sh" ]] && source "$here/services/$f.sh"
done

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

have() { declare -F "$1" >/dev/null; }

# call FUNCTION ARGS...: run a service function, or say that the service is not available in this script yet.
call() {
  have "$1" || die "not supported (yet): ${1//_/ }"
  "$@"
}

SERVICES=(kafka kafka3 cassandra cassandra3 redis redis_cluster postgres)

cmd="${1:-}"
what="${2:-}"
[[ -n "$cmd" ]] || usage
shift || true
shift || true

case "$cmd" in
  install)
    case "$what" in
      kafka | cassandra | redis | postgres | kcat) call "${what}_install" ;;
      all)
        for s in kafka kcat cassandra redis postgres; do if have "${s}_install"; then "${s}_install"; fi; done
        ;;
      *) usage ;;
    esac
    ;;
  start)
    case "$what" in
      kafka | kafka3 | cassandra | cassandra3 | redis | redis-cluster | postgres)
        t0=$SECONDS
        call "${what//-/_}_start"
        step "$what started in $((SECONDS - t0))s"
        ;;
      *) usage ;;
    esac
    ;;
  stop)
    case "$what" in
      kafka | kafka3 | cassandra | cassandra3 | redis | redis-cluster | postgres) call "${what//-/_}_stop" ;;
      all)
        for s in "${SERVICES[@]}"; do if have "${s}_stop"; then "${s}_stop"; fi; done
        ;;
      *) usage ;;
    esac
    ;;
  stop-broker) call kafka3_stop_broker "$what" "$@" ;;
  start-broker) call kafka3_start_broker "$what" ;;
  resume)
    case "$what" in
      kafka) call kafka_resume ;;
      *) usage ;;
    esac
    ;;
  stop-node) call cassandra3_stop_node "$what" "$@" ;;
  start-node) call cassandra3_start_node "$what" ;;
  cql) call cassandra_cql ${what:+"$what"} "$@" ;;
  status)
    for s in kafka cassandra redis postgres; do if have "${s}_status"; then "${s}_status"; fi; done
    ;;
  env)
    for s in kafka cassandra redis postgres; do if have "${s}_env"; then "${s}_env"; fi; done
    ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
exit 0
