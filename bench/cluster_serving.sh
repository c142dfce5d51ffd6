#!/usr/bin/env bash
# The cluster shape, served: two `topsellers api` servers following a Cassandra results store (written by one
# `topsellers aggregate` reading a Kafka topic), against nginx serving the very same JSON body as a static file and
# Redis answering the equivalent range query (ZREVRANGE key 0 9 WITHSCORES on a sorted set of the same items), all
# in one run with identical load settings (wrk -t1 -c32 against each server alone, then one wrk per server against
# both API servers at once, and the same against two nginx servers, 1 worker each). Then, unless FRESH_SAMPLES=0,
# bench/cluster_freshness.py on the same servers: from a purchase acknowledged by Kafka to visible in server 1,
# server 2 and both, and the store-side part of it.
#
# Usage: bench/cluster_serving.sh [DURATION_SECS]     (default 10; env EVENTS=200000, FRESH_SAMPLES=100, RATE=1000,
#                                                      STORE_WATCH=0 for end-to-end freshness only)
# Starts Kafka and a single-node Cassandra through scripts/services.sh when they do not run (and stops them after,
# unless other clients connected to them meanwhile);
# installs wrk, nginx-light and redis-server from Debian and the Python Cassandra driver from PyPI when missing.
# Bounded: about 6 x DURATION_SECS + FRESH_SAMPLES x 0.5 s plus start-ups; stops everything it started, drops its
# keyspace.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
EVENTS=${EVENTS:-200000}
FRESH_SAMPLES=${FRESH_SAMPLES:-100}
RATE=${RATE:-1000}
BIN=target/release/topsellers
TS1_PORT=18091; TS2_PORT=18092; NGINX_PORT=18093; REDIS_PORT=16380   # nginx 2 on NGINX_PORT + 1
KEYSPACE=bench_cluster_$$
TOPIC=bench-cluster-$$

need() { command -v "$1" >/dev/null || { echo "installing $2 (Debian)"; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2 >/dev/null; }; }
need wrk wrk
need nginx nginx-light
need redis-server redis-server
need redis-benchmark redis-tools
python3 -c 'import cassandra' 2>/dev/null || { echo "installing cassandra-driver (PyPI)"; python3 -m pip install -q cassandra-driver >/dev/null 2>&1; }

cargo build --release -q -p topsellers
./scripts/services.sh install kafka >/dev/null
./scripts/services.sh install kcat >/dev/null
./scripts/services.sh install cassandra >/dev/null

W=$(mktemp -d /tmp/ts-cluster-bench.XXXXXX)
PIDS=()
started_kafka=0; started_cassandra=0
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for n in 1 2; do [ -f "$W/nginx$n.pid" ] && kill "$(cat "$W/nginx$n.pid")" 2>/dev/null; done
  redis-cli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1
  timeout 60 python3 -c "from cassandra.cluster import Cluster; c = Cluster(['127.0.0.1'], port=9042); c.connect().execute('DROP KEYSPACE IF EXISTS $KEYSPACE', timeout=50); c.shutdown()" >/dev/null 2>&1
  # The machine is shared: someone may have started using a service this run started. Leave it running then.
  for svc in kafka:9092 cassandra:9042; do
    [[ ${svc%%:*} == kafka && $started_kafka == 1 || ${svc%%:*} == cassandra && $started_cassandra == 1 ]] || continue
    if ss -Htnp state established "( dport = :${svc##*:} )" 2>/dev/null | grep -v '"java"' | grep -q .; then
      echo "leaving ${svc%%:*} (started by this run) running: other clients are connected to it" >&2
    else
      ./scripts/services.sh stop "${svc%%:*}" >/dev/null 2>&1
    fi
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ./scripts/services.sh status | grep -q '^kafka .*running'; then
  echo "starting Kafka (scripts/services.sh)"; ./scripts/services.sh start kafka >/dev/null; started_kafka=1
fi
# A running 3-node cassandra3 (node 1 on 127.0.0.1:9042) is used as it is: starting the single node would stop it.
if ! ./scripts/services.sh status | grep -qE '^cassandra3? .*running'; then
  echo "starting Cassandra (scripts/services.sh)"; ./scripts/services.sh start cassandra >/dev/null; started_cassandra=1
fi

CFG=$W/cluster.toml
cat > "$CFG" <<EOF
[engine]
bucket_secs = 60
windows = ["1h", "24h", "all"]
allowed_lateness_secs = 3600
[node]
idle_advance = false
[kafka]
bootstrap_servers = "127.0.0.1:9092"
topic = "$TOPIC"
dead_letter_topic = "$TOPIC.dead-letters"
group_id = "$TOPIC"
partitions = 6
[cluster]
results_store = "cassandra"
results_interval_ms = 100
refresh_interval_ms = 100
[cassandra]
contact_points = ["127.0.0.1:9042"]
keyspace = "$KEYSPACE"
replication = { strategy = "SimpleStrategy", factor = 1 }
read_consistency = "QUORUM"
write_consistency = "QUORUM"
EOF

counted() { # merged events_counted of the cluster results (0 while none)
  "$BIN" results --cluster --config "$CFG" --n 1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_counted"])' 2>/dev/null || echo 0
}

echo "== publishing $EVENTS generated purchases to Kafka, one aggregator -> Cassandra ($KEYSPACE)"
"$BIN" generate --events "$EVENTS" --out "$W/events.csv" --start 2026-11-01T00:00:00Z 2>/dev/null
"$BIN" replay --no-progress --config "$CFG" --data-dir "$W/embedded" "$W/events.csv" > /dev/null
expected=$("$BIN" results --config "$CFG" --data-dir "$W/embedded" --n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_counted"])')
"$BIN" replay --to kafka --no-progress --config "$CFG" --data-dir "$W/pub" "$W/events.csv" > /dev/null 2> "$W/publish.log"
"$BIN" aggregate --config "$CFG" 2> "$W/aggregator.log" & PIDS+=($!); AGG_PID=$!
deadline=$((SECONDS + 300))
while [[ $(counted) != "$expected" ]]; do
  if (( SECONDS > deadline )); then echo "the aggregator did not store $expected events in 300 s (log: $W/aggregator.log)" >&2; tail -5 "$W/aggregator.log" >&2; exit 1; fi
  sleep 0.5
done
echo "stored: $expected events in Cassandra"

"$BIN" api --config "$CFG" --listen 127.0.0.1:$TS1_PORT 2> "$W/api1.log" & PIDS+=($!); TS1_PID=$!
"$BIN" api --config "$CFG" --listen 127.0.0.1:$TS2_PORT 2> "$W/api2.log" & PIDS+=($!); TS2_PID=$!
for port in $TS1_PORT $TS2_PORT; do
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "API server on $port not ready in 60 s" >&2; exit 1; }
done
CAT=$(curl -sf "http://127.0.0.1:$TS1_PORT/v1/categories" | python3 -c 'import json,sys; c=[x["path"] for x in json.load(sys.stdin)["categories"] if x["depth"]==2]; print(c[0])')
Q="/v1/top?category=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$CAT")&window=24h&n=10"
mkdir -p "$W/www"; curl -sf "http://127.0.0.1:$TS1_PORT$Q" > "$W/www/top.json"
# Both servers must give the same answer (computed_at and version are each server's own).
same=$(curl -sf "http://127.0.0.1:$TS2_PORT$Q" | python3 -c '
import json,sys
a=json.load(open(sys.argv[1])); b=json.load(sys.stdin)
print(a["items"]==b["items"] and len(a["items"])==10)' "$W/www/top.json")
[[ $same == True ]] || { echo "the two API servers disagree or have fewer than 10 items" >&2; exit 1; }

# Two nginx servers (1 worker each) serving that body, the peers of the two API servers.
for n in 1 2; do
  cat > "$W/nginx$n.conf" <<CONF
worker_processes 1;
pid $W/nginx$n.pid;
error_log $W/nginx$n.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$((NGINX_PORT + n - 1)); root $W/www; location / { default_type application/json; } } }
CONF
  nginx -c "$W/nginx$n.conf"
done
sleep 0.5
redis-server --port $REDIS_PORT --save "" --appendonly no --daemonize yes --logfile "$W/redis.log" --dir "$W"; sleep 0.5
# The same ten items, scored by units.
python3 -c '
import json,sys
for it in json.load(open(sys.argv[1]))["items"]: print(it["units"], it["item_id"])' "$W/www/top.json" |
  while read -r score item; do redis-cli -p $REDIS_PORT zadd top:bench "$score" "$item" >/dev/null; done
[[ $(redis-cli -p $REDIS_PORT zcard top:bench) == 10 ]] || { echo "Redis sorted set not loaded" >&2; exit 1; }

# CPU ticks (user+system) of the given processes: with wrk on the same 2 cores, CPU per request tells the servers
# apart better than wall-clock req/s.
HZ=$(getconf CLK_TCK)
ticks() { local t=0; for p in "$@"; do s=($(cut -d' ' -f14,15 "/proc/$p/stat")); t=$((t + s[0] + s[1])); done; echo $t; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; } # ticks the whole machine was busy
parse() { # wrk output file -> "req/s p50 p99 requests"
  awk '/Requests\/sec/{r=$2} / 50%/{p50=$2} / 99%/{p99=$2} /requests in/{n=$1} END{print r, p50, p99, n}' "$1"
}
us_per_req() { python3 -c "print(f'{($2-$1)*1e6/$HZ/max(1,$3):.1f}')"; }
# What the rest of the machine (Cassandra, the aggregator, other people's builds) took during a run, in % of one
# core: machine busy time less the servers' and the load generators' own. Shown per row: it is the noise.
others() { # busy0 busy1 server_ticks load_generator_cpu_seconds...
  local b0=$1 b1=$2 st=$3; shift 3
  python3 -c "import sys; g=sum(map(float, sys.argv[1:])); print(f'{max(0, ($b1-$b0-$st)/$HZ - g)/$DUR*100:.0f}%')" "$@"
}
timed() { /usr/bin/time -f '%U %S' -o "$1" "${@:2}"; } # file cmd... (the command's CPU seconds, user and system)
cpu_of() { awk '{print $1 + $2}' "$1"; }
run_wrk() { # name url pids... -> "req/s p50 p99 CPU_us/req others"
  local name=$1 url=$2; shift 2
  local before after b0 b1; b0=$(busy); before=$(ticks "$@")
  timed "$W/time-$name" wrk -t1 -c32 -d"${DUR}s" --latency "$url" > "$W/wrk-$name.out"
  after=$(ticks "$@"); b1=$(busy)
  read -r rps p50 p99 n < <(parse "$W/wrk-$name.out")
  echo "$rps $p50 $p99 $(us_per_req "$before" "$after" "$n") $(others "$b0" "$b1" $((after - before)) "$(cpu_of "$W/time-$name")")"
}
nginx_pids() { echo "$(cat "$W/nginx$1.pid") $(pgrep -P "$(cat "$W/nginx$1.pid")" | tr '\n' ' ')"; }
two_wrk() { # name url1 url2 pids... -> "sum_req/s p99_1 p99_2 CPU_us/req others"
  local name=$1 u1=$2 u2=$3; shift 3
  local before after b0 b1 w1 w2; b0=$(busy); before=$(ticks "$@")
  timed "$W/time-$name-1" wrk -t1 -c32 -d"${DUR}s" --latency "$u1" > "$W/wrk-$name-1.out" & w1=$!
  timed "$W/time-$name-2" wrk -t1 -c32 -d"${DUR}s" --latency "$u2" > "$W/wrk-$name-2.out" & w2=$!
  wait $w1 $w2
  after=$(ticks "$@"); b1=$(busy)
  local r1 p1 n1 r2 p2 n2
  read -r r1 _ p1 n1 < <(parse "$W/wrk-$name-1.out")
  read -r r2 _ p2 n2 < <(parse "$W/wrk-$name-2.out")
  echo "$(python3 -c "print(f'{$r1+$r2:.2f}')") $p1 $p2 $(us_per_req "$before" "$after" $((n1 + n2))) \
$(others "$b0" "$b1" $((after - before)) "$(cpu_of "$W/time-$name-1")" "$(cpu_of "$W/time-$name-2")")"
}
# A Cassandra just started keeps a core busy for a while (compactions, JIT): wait (60 s at most) until it is quiet.
CASS_PID=$(./scripts/services.sh status | awk '/^cassandra3? .*running/{gsub(/[()]/,""); print $NF; exit}')
[[ $CASS_PID =~ ^[0-9]+$ && -r /proc/$CASS_PID/stat ]] || CASS_PID=$$ # not found: measure this shell instead
for _ in $(seq 1 30); do
  c0=$(ticks "$CASS_PID"); sleep 2; c1=$(ticks "$CASS_PID")
  (( (c1 - c0) * 100 / (2 * HZ) < 15 )) && break
done
echo "body: $(wc -c < "$W/www/top.json") bytes, $Q; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r NG_RPS NG_P50 NG_P99 NG_US NG_O < <(run_wrk nginx "http://127.0.0.1:$NGINX_PORT/top.json" $(nginx_pids 1))
read -r T1_RPS T1_P50 T1_P99 T1_US T1_O < <(run_wrk ts1 "http://127.0.0.1:$TS1_PORT$Q" $TS1_PID)
read -r T2_RPS T2_P50 T2_P99 T2_US T2_O < <(run_wrk ts2 "http://127.0.0.1:$TS2_PORT$Q" $TS2_PID)
# Both at once: one wrk per server, started together; the same for two nginx servers.
read -r NB_RPS NB1_P99 NB2_P99 NB_US NB_O < <(two_wrk nginx-both "http://127.0.0.1:$NGINX_PORT/top.json" \
  "http://127.0.0.1:$((NGINX_PORT + 1))/top.json" $(nginx_pids 1) $(nginx_pids 2))
read -r B_RPS B1_P99 B2_P99 B_US B_O < <(two_wrk ts-both "http://127.0.0.1:$TS1_PORT$Q" "http://127.0.0.1:$TS2_PORT$Q" \
  $TS1_PID $TS2_PID)
R_PID=$(redis-cli -p $REDIS_PORT info server | awk -F: '/^process_id/{print $2}' | tr -d '\r')
b0=$(busy); r0=$(ticks "$R_PID")
R_OUT=$(timed "$W/time-redis" redis-benchmark -p $REDIS_PORT -c 32 -n $((DUR * 30000)) --precision 3 zrevrange top:bench 0 9 withscores 2>&1 | tr '\r' '\n')
r1=$(ticks "$R_PID"); b1=$(busy)
R_RPS=$(echo "$R_OUT" | grep -oE 'throughput summary: [0-9.]+' | awk '{print $3}')
[[ -n $R_RPS ]] || R_RPS=$(echo "$R_OUT" | grep -oE '[0-9.]+ requests per second' | tail -1 | awk '{print $1}')
R_P50=$(echo "$R_OUT" | awk '/latency summary/{getline; getline; print $3 "ms"}')
R_P99=$(echo "$R_OUT" | awk '/latency summary/{getline; getline; print $5 "ms"}')
R_N=$((DUR * 30000))
R_US=$(us_per_req "$r0" "$r1" $R_N)
R_SECS=$(python3 -c "print($R_N / $R_RPS)")
R_O=$(python3 -c "import sys; print(f'{max(0, ($b1-$b0-($r1-$r0))/$HZ - $(cpu_of "$W/time-redis"))/$R_SECS*100:.0f}%')")

F='%-46s %11s %9s %9s %11s %7s\n'
printf "$F" "server (wrk -t1 -c32 -d${DUR}s --latency)" "req/s" "p50" "p99" "CPU us/req" "others"
printf "$F" "nginx 1 worker, static file" "$NG_RPS" "$NG_P50" "$NG_P99" "$NG_US" "$NG_O"
printf "$F" "topsellers api 1 (Cassandra store)" "$T1_RPS" "$T1_P50" "$T1_P99" "$T1_US" "$T1_O"
printf "$F" "topsellers api 2 (Cassandra store)" "$T2_RPS" "$T2_P50" "$T2_P99" "$T2_US" "$T2_O"
printf "$F" "two nginx at once (two wrk): sum; p99 1, 2" "$NB_RPS" "$NB1_P99" "$NB2_P99" "$NB_US" "$NB_O"
printf "$F" "api 1 + api 2 at once (two wrk): sum; p99 1, 2" "$B_RPS" "$B1_P99" "$B2_P99" "$B_US" "$B_O"
printf "$F" "redis ZREVRANGE 0 9 WITHSCORES (redis-benchmark -c 32)" "$R_RPS" "$R_P50" "$R_P99" "$R_US" "$R_O"
echo "(others: CPU the rest of the machine used during that row, % of one core: Cassandra, the aggregator, other builds)"
python3 - "$NG_RPS" "$T1_RPS" "$T2_RPS" "$NB_RPS" "$B_RPS" "$R_RPS" <<'EOF'
import sys
ng, t1, t2, nb, b, r = map(float, sys.argv[1:])
print(f"ratios: topsellers/nginx {t1/ng:.2f}x (api 1), {t2/ng:.2f}x (api 2), two at once {b/nb:.2f}x (vs two nginx); "
      f"topsellers/redis {t1/r:.2f}x (api 1), {t2/r:.2f}x (api 2)")
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if (( FRESH_SAMPLES > 0 )); then
  echo "== freshness: Kafka ack -> aggregator -> Cassandra -> both API servers ($FRESH_SAMPLES probes, $RATE events/s)"
  cpu_pids="$TS1_PID $TS2_PID $AGG_PID $CASS_PID"
  declare -A t0; for p in $cpu_pids; do t0[$p]=$(ticks "$p"); done; s0=$(date +%s.%N)
  python3 bench/cluster_freshness.py "$CFG" $TS1_PORT $TS2_PORT "$FRESH_SAMPLES" "$RATE"
  s1=$(date +%s.%N); hz=$HZ; line="  CPU during the freshness run (% of one core):"
  for name_pid in "api 1:$TS1_PID" "api 2:$TS2_PID" "aggregator:$AGG_PID" "Cassandra:$CASS_PID"; do
    p=${name_pid##*:}; line+=" ${name_pid%%:*} $(python3 -c "print(f'{($(ticks "$p")-${t0[$p]})/$hz/($s1-$s0)*100:.0f}')") %,"
  done
  echo "${line%,}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
fi
