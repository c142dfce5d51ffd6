# shellcheck shell=bash
# Redis from the Debian package redis-server: one server on 127.0.0.1:6379, or a Redis Cluster of 3 masters
# on 127.0.0.1:7001-7003. Sourced by scripts/services.sh after common.sh.

REDIS_RUN="$RUN_HOME/redis"
REDIS_CLUSTER_RUN="$RUN_HOME/redis-cluster"
REDIS_CLUSTER_PORTS=(7001 7002 7003)

redis_install() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    step "Redis already installed ($(redis-server --version | grep -o 'v=[0-9.]*'))"
  else
    apt_install redis-server redis-tools
  fi
}

# redis_start_instance DIR PORT CLUSTER_LINES: a fresh folder, its config, and the server started.
redis_start_instance() {
  local dir="$1" port="$2"
  rm -rf "$dir"
  mkdir -p "$dir"
  render "$SERVICES_SRC/redis/redis.conf.in" "$dir/redis.conf" PORT="$port" DIR="$dir" CLUSTER="$3"
  start_daemon "$dir" "$(command -v redis-server)" "$dir/redis.conf"
}

redis_ping() {
  [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

redis_start() {
  command -v redis-server >/dev/null || redis_install
  redis_stop
  port_free_or_die 127.0.0.1 6379 "redis"
  local dir="$REDIS_RUN/node-1"
  step "starting Redis on 127.0.0.1:6379 (log: ${dir#"$ROOT"/}/server.log)"
  redis_start_instance "$dir" 6379 ""
  wait_ready "Redis 127.0.0.1:6379" "$dir" redis_ping 6379
}

redis_stop() {
  stop_instance "$REDIS_RUN/node-1" "Redis 127.0.0.1:6379" 20
}

# redis_cluster_ok: every master reports cluster_state:ok (all 16384 slots assigned and reachable).
redis_cluster_ok() {
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

redis_cluster_start() {
  command -v redis-server >/dev/null || redis_install
  redis_cluster_stop
  local port dirs="" addrs=()
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    port_free_or_die 127.0.0.1 "$port" "redis-cluster"
    # Redis Cluster nodes talk to each other on port + 10000 (the cluster bus).
    port_free_or_die 127.0.0.1 $((port + 10000)) "redis-cluster (cluster bus)"
  done
  rm -rf "$REDIS_CLUSTER_RUN"
  step "starting 3 Redis Cluster masters on 127.0.0.1:7001-7003 (logs: ${REDIS_CLUSTER_RUN#"$ROOT"/}/node-PORT/server.log)"
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    # cluster-node-timeout: a failed master is noticed after 5 s, not 15 s.
    redis_start_instance "$REDIS_CLUSTER_RUN/node-$port" "$port" \
      "$(printf 'cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 5000')"
    dirs+=" $REDIS_CLUSTER_RUN/node-$port"
    addrs+=("127.0.0.1:$port")
  done
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    wait_ready "Redis 127.0.0.1:$port" "$REDIS_CLUSTER_RUN/node-$port" redis_ping "$port"
  done
  step "creating the cluster: 16384 slots over 3 masters, no replicas"
  run_logged "$REDIS_CLUSTER_RUN/create.log" redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes
  wait_ready "Redis Cluster (cluster_state:ok on every master)" "$dirs" redis_cluster_ok
}

redis_cluster_stop() {
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    stop_instance "$REDIS_CLUSTER_RUN/node-$port" "Redis Cluster master 127.0.0.1:$port" 20
  done
}

redis_status() {
  local port
  if pid_alive "$REDIS_RUN/node-1"; then
    echo "redis      running  127.0.0.1:6379 (pid $(cat "$REDIS_RUN/node-1/pid"))"
  else
    echo "redis      stopped"
  fi
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    if pid_alive "$REDIS_CLUSTER_RUN/node-$port"; then
      echo "redis-cluster #$port running  127.0.0.1:$port (pid $(cat "$REDIS_CLUSTER_RUN/node-$port/pid"))"
    elif [[ -d "$REDIS_CLUSTER_RUN" ]]; then
      echo "redis-cluster #$port stopped"
    fi
  done
  [[ -d "$REDIS_CLUSTER_RUN" ]] || echo "redis-cluster stopped"
}

redis_env() {
  if pid_alive "$REDIS_RUN/node-1"; then echo "export TOPSELLERS_TEST_REDIS=127.0.0.1:6379"; fi
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    if pid_alive "$REDIS_CLUSTER_RUN/node-$port"; then
      echo "export TOPSELLERS_TEST_REDIS_CLUSTER=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
      break
    fi
  done
}
