#!/usr/bin/env bash
# Serving benchmark, side by side in one run: topsellers answering GET /v1/top from memory vs nginx serving the
# very same JSON body as a static file (and Redis ZREVRANGE when redis-server is installed), with identical
# load settings. Prints requests/s, p50, p99 and the ratios. Bounded: about 40 s.
#
# Usage: bench/serving.sh [DURATION_SECS]      (installs nginx-light and wrk from Debian if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null; redis-cli -p 16379 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$W"; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "installing $2 (Debian)"; apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2 >/dev/null; }; }
need wrk wrk
need nginx nginx-light

cargo build --release -q -p topsellers
BIN=target/release/topsellers
TS_PORT=18080; NGINX_PORT=18081

"$BIN" demo --listen 127.0.0.1:$TS_PORT --data-dir "$W/demo" --backfill-minutes 60 --log warn >"$W/ts.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$TS_PORT/readyz" >/dev/null && break; sleep 0.2; done
CAT=$(curl -sf "http://127.0.0.1:$TS_PORT/v1/categories" | python3 -c 'import json,sys; c=[x["path"] for x in json.load(sys.stdin)["categories"] if x["depth"]==2]; print(c[0])')
Q="/v1/top?category=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$CAT")&window=24h&n=10"
mkdir -p "$W/www"; curl -sf "http://127.0.0.1:$TS_PORT$Q" > "$W/www/top.json"
cat > "$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$NGINX_PORT; root $W/www; location / { default_type application/json; } } }
CONF
nginx -c "$W/nginx.conf"; sleep 0.5

# CPU ticks (user+system) used by the given processes: wrk on one core is often the bottleneck for both servers,
# so server CPU time per request is the figure that tells them apart.
ticks() { local t=0; for p in "$@"; do s=($(cut -d' ' -f14,15 "/proc/$p/stat")); t=$((t + s[0] + s[1])); done; echo $t; }
run_wrk() { # url, server pids...
  local url=$1; shift
  local before; before=$(ticks "$@")
  wrk -t1 -c32 -d"${DUR}s" --latency "$url" > "$W/wrk.out"
  local after; after=$(ticks "$@")
  local reqs; reqs=$(grep -oE '[0-9]+ requests in' "$W/wrk.out" | awk '{print $1}')
  local us; us=$(python3 -c "print(f'{($after-$before)*1e6/$(getconf CLK_TCK)/$reqs:.1f}')")
  awk -v us="$us" '/Requests\/sec/{r=$2} / 50%/{p50=$2} / 99%/{p99=$2} END{print r, p50, p99, us}' "$W/wrk.out"
}
echo "body: $(wc -c < "$W/www/top.json") bytes, $Q"
NGINX_PIDS="$(cat "$W/nginx.pid") $(pgrep -P "$(cat "$W/nginx.pid")" | tr '\n' ' ')"
read -r NG_RPS NG_P50 NG_P99 NG_US < <(run_wrk "http://127.0.0.1:$NGINX_PORT/top.json" $NGINX_PIDS)
read -r TS_RPS TS_P50 TS_P99 TS_US < <(run_wrk "http://127.0.0.1:$TS_PORT$Q" "${PIDS[0]}")
printf '%-36s %12s %9s %9s %14s\n' "server (wrk -t1 -c32 -d${DUR}s)" "req/s" "p50" "p99" "CPU us/req"
printf '%-36s %12s %9s %9s %14s\n' "nginx 1 worker, static file" "$NG_RPS" "$NG_P50" "$NG_P99" "$NG_US"
printf '%-36s %12s %9s %9s %14s\n' "topsellers GET /v1/top (live demo)" "$TS_RPS" "$TS_P50" "$TS_P99" "$TS_US"
python3 -c "print(f'ratio topsellers/nginx: {float(\"$TS_RPS\")/float(\"$NG_RPS\"):.2f}x req/s, {float(\"$NG_US\")/float(\"$TS_US\"):.2f}x less CPU per request (topsellers CPU includes the demo traffic and aggregation)')"
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  redis-server --port 16379 --save "" --appendonly no --daemonize yes --logfile "$W/redis.log"; sleep 0.5
  for i in $(seq 1 10); do redis-cli -p 16379 zadd top:bench $((10000-i*37)) "SKU-$((1000+i))" >/dev/null; done
  R=$(redis-benchmark -p 16379 -c 32 -n 300000 -q zrevrange top:bench 0 9 withscores 2>&1 | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | awk '{print $1}')
  echo "redis ZREVRANGE 0 9 WITHSCORES (redis-benchmark -c 32): $R req/s"
  python3 -c "print(f'ratio topsellers/redis: {float(\"$TS_RPS\")/float(\"$R\"):.2f}x')"
fi
