#!/usr/bin/env bash
# The Kafka path, measured on a real single-node Kafka (scripts/services.sh starts it):
#   1. throughput: events/s of one aggregator reading a topic of EVENTS generated purchases, beside the embedded
#      replay of the same file in the same run (the ratio is the cost of the Kafka path);
#   2. consumer lag under a burst: the same aggregator caught by a burst of BURST events, lag sampled every 0.5 s;
#   3. freshness: kcat -> Kafka -> aggregator -> results store -> API server, p50/p99 under a steady load.
# Usage: bench/kafka.sh [EVENTS] [BURST]     (defaults 1000000, 300000). Bounded; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
BURST=${2:-300000}
BIN=target/release/topsellers
cargo build --release -p topsellers -q
./scripts/services.sh install kafka >/dev/null
./scripts/services.sh install kcat >/dev/null
started_kafka=0
if ! ./scripts/services.sh status | grep -q '^kafka .*running'; then
  ./scripts/services.sh start kafka >/dev/null
  started_kafka=1
fi
work=$(mktemp -d /tmp/ts-kafka-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $started_kafka == 1 ]]; then ./scripts/services.sh stop kafka >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

config() { # $1 = name
  cat > "$work/$1.toml" <<EOF
[engine]
bucket_secs = 60
windows = ["1h", "24h", "all"]
allowed_lateness_secs = 3600
[node]
idle_advance = false
[kafka]
bootstrap_servers = "127.0.0.1:9092"
topic = "bench-$1-$$"
dead_letter_topic = "bench-$1-$$.dead-letters"
group_id = "bench-$1-$$"
partitions = 6
[cluster]
results_store = "sqlite:$work/$1-results.db"
results_interval_ms = 100
refresh_interval_ms = 100
EOF
  echo "$work/$1.toml"
}

counted() { # merged events_counted of the cluster results (0 while none)
  "$BIN" results --cluster --config "$1" --n 1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_counted"])' 2>/dev/null || echo 0
}

echo "== 1. throughput: one aggregator reading $EVENTS events from a 6-partition topic"
cfg=$(config throughput)
"$BIN" generate --events "$EVENTS" --out "$work/events.csv" --start 2026-11-01T00:00:00Z 2>/dev/null
t0=$(date +%s.%N)
"$BIN" replay --no-progress --config "$cfg" --data-dir "$work/embedded" "$work/events.csv" > "$work/embedded.txt"
t1=$(date +%s.%N)
expected=$("$BIN" results --config "$cfg" --data-dir "$work/embedded" --n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_counted"])')
embedded_s=$(python3 -c "print($t1-$t0)")
t0=$(date +%s.%N)
"$BIN" replay --to kafka --no-progress --config "$cfg" --data-dir "$work/pub" "$work/events.csv" > "$work/publish.txt"
t1=$(date +%s.%N)
publish_s=$(python3 -c "print($t1-$t0)")
t0=$(date +%s.%N)
"$BIN" aggregate --config "$cfg" 2> "$work/aggregator-throughput.log" & pids+=($!)
deadline=$((SECONDS + 600))
while [[ $(counted "$cfg") != "$expected" ]]; do
  if (( SECONDS > deadline )); then echo "aggregator did not reach $expected events in 600 s" >&2; exit 1; fi
  sleep 0.2
done
t1=$(date +%s.%N)
kafka_s=$(python3 -c "print($t1-$t0)")
python3 - "$EVENTS" "$embedded_s" "$publish_s" "$kafka_s" <<'EOF'
import sys
n, emb, pub, kaf = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"  embedded replay (file -> engine):           {emb:6.2f} s  {n/emb:10,.0f} events/s")
print(f"  replay --to kafka (file -> Kafka, acks=all): {pub:6.2f} s  {n/pub:10,.0f} events/s")
print(f"  one aggregator (Kafka -> engines -> store):  {kaf:6.2f} s  {n/kaf:10,.0f} events/s  "
      f"({emb/kaf:.2f}x the embedded replay's rate)")
EOF

echo "== 2. consumer lag under a burst of $BURST events (the aggregator above, now caught up, gets a burst)"
# Purchases from the day after, with ids of their own (the generator numbers ids per seed).
"$BIN" generate --events "$BURST" --out "$work/burst.csv" --start 2026-11-02T00:00:00Z 2>/dev/null
sed -i '1!s/^\([^,]*\),/\1-b,/' "$work/burst.csv"
cfg_topic=$(python3 -c "import tomllib;print(tomllib.load(open('$cfg','rb'))['kafka']['topic'])")
end_offsets() {
  python3 - "$cfg_topic" <<'EOF'
import subprocess, sys
topic = sys.argv[1]
total = 0
for p in range(6):
    out = subprocess.run(["kcat", "-b", "127.0.0.1:9092", "-Q", "-t", f"{topic}:{p}:-1"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "offset" in line:
            total += int(line.split("offset")[1].split()[0])
print(total)
EOF
}
results_offsets() {
  "$BIN" results --cluster --config "$cfg" --n 1 2>/dev/null | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["partition_offsets"].values()))'
}
"$BIN" replay --to kafka --no-progress --config "$cfg" --data-dir "$work/pub2" "$work/burst.csv" > /dev/null &
burst_pid=$!
start=$SECONDS
printf '  %6s %12s %12s\n' "t (s)" "produced" "lag"
while true; do
  e=$(end_offsets); r=$(results_offsets); lag=$((e - r))
  printf '  %6s %12s %12s\n' "$((SECONDS - start))" "$e" "$lag"
  if ! kill -0 $burst_pid 2>/dev/null && (( lag <= 0 )); then break; fi
  if (( SECONDS - start > 300 )); then echo "  lag did not reach 0 in 300 s"; break; fi
  sleep 0.5
done

echo "== 3. freshness under a steady load"
cfg=$(config fresh)
"$BIN" aggregate --config "$cfg" 2> "$work/aggregator-fresh.log" & pids+=($!)
"$BIN" api --config "$cfg" --listen 127.0.0.1:18096 2> "$work/api.log" & pids+=($!)
python3 bench/kafka_freshness.py "$cfg" 18096 "${SAMPLES:-100}" "${RATE:-1000}"
