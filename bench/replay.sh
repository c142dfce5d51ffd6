#!/usr/bin/env bash
# Replay throughput, peak memory and restart time, on the real Online Retail files and on a generated file.
# Usage: bench/replay.sh [GENERATED_EVENTS]   (default 1000000). Bounded: about a minute for the default.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
W=$(mktemp -d); trap 'kill $(cat "$W/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
cargo build --release -q -p topsellers
BIN=target/release/topsellers
measure() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "%e s wall, %M KiB peak RSS" "$@" > "$W/out" 2> "$W/err" || { cat "$W/err"; exit 1; }
  printf '%-38s %s | %s\n' "$label" "$(grep -m1 'replay finished' "$W/out" | sed 's/replay finished in //')" "$(tail -1 "$W/err")"
}
DATA=../shared/data/online-retail/by-day
if [ -d "$DATA" ]; then
  measure "online retail (105,335 rows, 68 files)" "$BIN" replay --no-progress --config examples/online-retail.toml --data-dir "$W/or" "$DATA"
else
  echo "online-retail data not found at $DATA; skipping it"
fi
# Spread the events over one day of event time, so the state is "a day of purchases". Idle advance off (for the
# replay and the restart below: a data directory is bound to it), so the wall clock does not age last month's
# events out of the windows while we measure.
export TOPSELLERS_NODE__IDLE_ADVANCE=false
RATE=$(python3 -c "print(max(0.01, $N / 86400))")
TOPSELLERS_DEMO__RATE_PER_SEC=$RATE "$BIN" generate --events "$N" --start 2026-11-01T00:00:00Z --out "$W/gen.csv" 2>/dev/null
measure "generated ($N rows over 24 h, $(du -h "$W/gen.csv" | cut -f1))" "$BIN" replay --no-progress --data-dir "$W/gen" "$W/gen.csv"
echo "data directory after replay: $(du -sh "$W/gen" | cut -f1)"

# Restart after kill -9: time from start until /readyz answers, with the state above.
PORT=18090
"$BIN" serve --data-dir "$W/gen" --listen 127.0.0.1:$PORT >/dev/null 2>&1 & echo $! > "$W/pid"
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
kill -9 "$(cat "$W/pid")"; wait "$(cat "$W/pid")" 2>/dev/null || true
START=$(date +%s.%N)
"$BIN" serve --data-dir "$W/gen" --listen 127.0.0.1:$PORT >/dev/null 2>&1 & echo $! > "$W/pid"
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.05; done
END=$(date +%s.%N)
STATS=$(curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^topsellers_engine_(series|bucket_entries|approx_state_bytes) ' | tr '\n' ' ')
echo "restart after kill -9 to ready: $(python3 -c "print(f'{$END-$START:.2f}')") s  ($STATS)"
