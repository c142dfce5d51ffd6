#!/usr/bin/env bash
# The agent: lines per CPU-second through parse + scrub (+ the canonical JSON it sends), then end to end through
# `topsellers agent` to a node and to Kafka, then its memory under a sustained stream; beside `jq` doing the
# allow-list projection alone (no scrubbing) on the same JSON lines.
#
# Usage: bench/agent.sh [LINES] [SUSTAIN_SECS] [RATE]     defaults: 300000 lines of each format, 60 s at 20000
# lines/s. Kafka only when TOPSELLERS_TEST_KAFKA is set (eval "$(scripts/services.sh env)"); it starts no service.
# Bounded: about 2-3 minutes at the defaults. Results go in docs/BENCHMARKS.md, with `uptime` beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
SECS=${2:-60}
RATE=${3:-20000}
W=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

cargo build --release -q -p topsellers
cargo build --release -q -p topsellers-agent --example parse_throughput
# Copies, so that another build in a shared target directory cannot swap the binaries during the run.
T=${CARGO_TARGET_DIR:-target}
cp "$T/release/topsellers" "$W/topsellers"
cp "$T/release/examples/parse_throughput" "$W/parse_throughput"
BIN=$W/topsellers
PARSE=$W/parse_throughput
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# Purchase log lines with personal data: a customer block, a card and a note in every line (dropped unread), and
# an e-mail, card, phone or IP inside every 10th item name (redacted). Times within the last hour.
GEN=$(cat <<'PY'
import json, random, sys, time
kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
now = time.time()
pii = ["for jane.doe@example.com", "card 4111 1111 1111 1111", "call +44 20 7946 0958", "from 203.0.113.77"]
cats = ["home/kitchen", "home/garden", "books/children", "toys/lego", "electronics/phones"]
def name(i):
    base = f"Red mug {i % 997}"
    return base + " " + pii[(i // 10) % 4] if i % 10 == 0 else base
with open(out, "w") as f:
    for i in range(n):
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 + 3000 * i / n))
        sku, qty, price, cat = f"SKU-{rng.randrange(50000)}", 1 + i % 3, f"{1 + i % 50}.99", cats[i % 5]
        if kind == "json":
            f.write(json.dumps({"ts": ts, "sku": sku, "qty": qty, "price": price,
                "product": {"name": name(i), "category": cat},
                "customer_id": f"C-{i % 40000}",
                "customer": {"name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+1 555 0100", "ip": "198.51.100.7"},
                "shipping": {"country": "United Kingdom", "street": "1 Main Street"},
                "payment": {"card": "4111 1111 1111 1111"}}, separators=(",", ":")) + "\n")
        else:
            f.write(f'2026-12-04 10:00:01,123 INFO [http-7] PurchaseLog - sale customer_id=C-{i % 40000} '
                    f'customer="Jane Doe" email=jane.doe@example.com card="4111 1111 1111 1111" ip=198.51.100.7 '
                    f'sku={sku} name="{name(i)}" cat={cat} qty={qty} price={price} ts={ts}\n')
PY
)
python3 -c "$GEN" json "$N" "$W/purchases.jsonl"
python3 -c "$GEN" kv "$N" "$W/app.log"
echo "inputs: $N JSON lines ($(du -h "$W/purchases.jsonl" | cut -f1)), $N log4j key=value lines ($(du -h "$W/app.log" | cut -f1))"

echo
echo "== 1. parse + scrub + canonical JSON, one thread (CPU time of that thread)"
"$PARSE" "$W/purchases.jsonl" json --repeat 2
"$PARSE" "$W/purchases.jsonl" json --customer-key --repeat 2
"$PARSE" "$W/app.log" log4j_kv --repeat 2
"$PARSE" "$W/app.log" log4j_kv --customer-key --repeat 2

echo
echo "== peer: jq projecting the same JSON lines onto the allow-listed fields (no scrubbing), one process"
JQ='{item_id: .sku, item_name: .product.name, category: .product.category, quantity: .qty, unit_price: .price, time: .ts, country: .shipping.country}'
/usr/bin/time -f "%U %S %e" -o "$W/jq.time" jq -c "$JQ" "$W/purchases.jsonl" >/dev/null
read -r U S E <"$W/jq.time"
python3 -c "n=$N; c=$U+$S; print(f'$(jq --version): {n} lines in $E s wall, {c:.2f} s CPU: {n/max(c,0.01):,.0f} lines/s per core')"

# CPU seconds (user + system) of a process so far.
cpu_of() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
hwm_of() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
rss_of() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
acked() { [ -f "$1/positions.json" ] && jq '[.files[].offset] | add // 0' "$1/positions.json" || echo 0; }

TOKEN=bench-agent-token-0123456789abcdef
PORT=18190
node_up() {
  TOPSELLERS_SERVER__AUTH_TOKEN=$TOKEN TOPSELLERS_NODE__IDLE_ADVANCE=false TOPSELLERS_ENGINE__ALLOWED_LATENESS_SECS=86400 \
    "$BIN" serve --data-dir "$W/node-$1" --listen 127.0.0.1:$PORT >"$W/node-$1.log" 2>&1 &
  NODE=$!
  PIDS+=("$NODE")
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "the node did not start"; cat "$W/node-$1.log"; exit 1
}

# agent_config NAME DOWNSTREAM_TOML FILES...: a config tailing FILES (JSON if .jsonl, else key=value).
agent_config() {
  local name=$1 downstream=$2; shift 2
  {
    echo "$KAFKA_TOML"
    echo "[agent]"
    echo "state_dir = \"$W/state-$name\""
    echo "poll_interval_ms = 50"
    echo "$downstream"
    echo "[agent.customer_key]"
    echo "field = \"customer_id\""
    echo "secret_env = \"BENCH_CUSTOMER_KEY_SECRET\""
    for f in "$@"; do
      if [[ $f == *.jsonl* ]]; then
        printf '[[agent.files]]\npath = "%s"\nformat = "json"\n[agent.files.fields]\nitem_id = "sku"\nitem_name = "product.name"\ncategory = "product.category"\nquantity = "qty"\nunit_price = "price"\ntime = "ts"\ncountry = "shipping.country"\n' "$f"
      else
        printf '[[agent.files]]\npath = "%s"\nformat = "log4j_kv"\n[agent.files.fields]\nitem_id = "sku"\nitem_name = "name"\ncategory = "cat"\nquantity = "qty"\nunit_price = "price"\ntime = "ts"\n' "$f"
      fi
    done
  } >"$W/$name.toml"
}
export BENCH_CUSTOMER_KEY_SECRET=bench-secret-0123456789abcdef
KAFKA_TOML=""
NODE_DOWN="[agent.downstream]
type = \"node\"
url = \"http://127.0.0.1:$PORT/v1/purchases\"
auth_token = \"$TOKEN\""

# catch_up NAME FILE...: the agent reads FILES (already written) to their end; wall and CPU of the agent.
catch_up() {
  local name=$1; shift
  local total=0 f
  for f in "$@"; do total=$((total + $(stat -c %s "$f"))); done
  local lines=$(($# * N))
  local t0 t1 pid
  t0=$(date +%s.%N)
  "$BIN" agent --config "$W/$name.toml" >"$W/agent-$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  until [ "$(acked "$W/state-$name")" -ge "$total" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "the agent exited"; cat "$W/agent-$name.log"; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  local cpu hwm
  cpu=$(cpu_of "$pid")
  hwm=$(hwm_of "$pid")
  local downstream_cpu=""
  [ -n "${NODE:-}" ] && kill -0 "$NODE" 2>/dev/null && downstream_cpu=", node $(cpu_of "$NODE") s CPU"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 -c "l=$lines; w=$t1-$t0; c=$cpu; print(f'agent -> $name: {l} lines in {w:.2f} s wall = {l/w:,.0f} lines/s; agent {c:.2f} s CPU = {l/max(c,0.01):,.0f} lines per CPU-second; peak RSS {$hwm/1024:.0f} MiB$downstream_cpu')"
}

echo
echo "== 2. end to end, catching up on the files already written (both formats, $((2 * N)) lines), customer key on"
node_up catchup
agent_config node "$NODE_DOWN" "$W/purchases.jsonl" "$W/app.log"
catch_up node "$W/purchases.jsonl" "$W/app.log"
echo "node's memory: $(($(hwm_of "$NODE") / 1024)) MiB peak RSS"
kill "$NODE"; wait "$NODE" 2>/dev/null || true; NODE=""

if [ -n "${TOPSELLERS_TEST_KAFKA:-}" ]; then
  TOPIC="bench-agent-$(date +%s)"
  KAFKA_TOML="[kafka]
bootstrap_servers = \"$TOPSELLERS_TEST_KAFKA\"
topic = \"$TOPIC\"
dead_letter_topic = \"$TOPIC.dead-letters\"
partitions = 6"
  agent_config kafka "[agent.downstream]
type = \"kafka\"" "$W/purchases.jsonl" "$W/app.log"
  catch_up kafka "$W/purchases.jsonl" "$W/app.log"
  KAFKA_TOML=""
else
  echo "agent -> kafka: skipped (TOPSELLERS_TEST_KAFKA is not set)"
fi

echo
echo "== 3. memory under a sustained stream: $RATE JSON lines/s appended for $SECS s, agent -> node"
node_up sustained
LIVE="$W/live/purchases.jsonl"
mkdir -p "$W/live"
: >"$LIVE"
agent_config sustained "$NODE_DOWN" "$W/live/purchases.jsonl*"
"$BIN" agent --config "$W/sustained.toml" >"$W/agent-sustained.log" 2>&1 &
AGENT=$!
PIDS+=("$AGENT")
# The writer replays the generated lines at RATE per second (10 writes a second), restamped to now.
python3 - "$W/purchases.jsonl" "$LIVE" "$RATE" "$SECS" <<'PY' &
import sys, time
src, dst, rate, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = open(src).read().splitlines()
per_tick, i, start = rate // 10, 0, time.time()
with open(dst, "a") as f:
    tick = 0
    while time.time() - start < secs:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        chunk = []
        for _ in range(per_tick):
            line = lines[i % len(lines)]
            chunk.append(line[:7] + stamp + line[27:])  # {"ts":"<20 chars>"...
            i += 1
        f.write("\n".join(chunk) + "\n")
        f.flush()
        tick += 1
        time.sleep(max(0, start + tick / 10 - time.time()))
PY
WRITER=$!
PIDS+=("$WRITER")
SAMPLES=()
for _ in $(seq 1 "$SECS"); do
  sleep 1
  SAMPLES+=("$(rss_of "$AGENT")")
done
wait "$WRITER" || true
TOTAL=$(stat -c %s "$LIVE")
for _ in $(seq 1 300); do [ "$(acked "$W/state-sustained")" -ge "$TOTAL" ] && break; sleep 0.1; done
LAG=$((TOTAL - $(acked "$W/state-sustained")))
CPU=$(cpu_of "$AGENT")
HWM=$(hwm_of "$AGENT")
python3 -c "
s=[int(x) for x in '${SAMPLES[*]}'.split()]
n=$RATE*$SECS
print(f'agent RSS over {len(s)} s: first {s[0]/1024:.1f} MiB, min {min(s)/1024:.1f}, max {max(s)/1024:.1f}, last {s[-1]/1024:.1f}; peak (VmHWM) {$HWM/1024:.1f} MiB')
print(f'agent CPU {$CPU:.2f} s for ~{n:,} lines = {$CPU/$SECS*100:.1f} % of a core at {$RATE:,} lines/s; bytes not yet acknowledged after the writer stopped (+ up to 30 s): $LAG')
"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
