#!/usr/bin/env bash
# End to end, side by side in one run: a purchases CSV to top-10 per category, topsellers `replay` (durable log,
# checkpoint, exact windows) vs DuckDB (2 threads, in memory: ../shared/bench/duckdb_top.py, or the same query
# inline when that runner is absent). Usage: bench/vs_duckdb.sh [ROWS]   (default 10000000; ~1 GB of disk for 10 M)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
VENV=.bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import duckdb' 2>/dev/null || "$VENV/bin/pip" install -q duckdb
cargo build --release -q -p topsellers
BIN=target/release/topsellers
"$BIN" generate --events "$N" --start 2026-11-01T00:00:00Z --out "$W/events.csv" 2>/dev/null
echo "input: $N rows, $(du -h "$W/events.csv" | cut -f1)"
PEER=../shared/bench/duckdb_top.py
if [ ! -f "$PEER" ]; then
  PEER="$W/duckdb_top.py"
  cat > "$PEER" <<'PY'
import duckdb, sys, time
f = sys.argv[1]; t = time.time(); con = duckdb.connect(); con.execute("SET threads=2")
r = con.execute(f"""WITH t AS (SELECT category, item_id, SUM(quantity) AS units, SUM(CAST(round(quantity*unit_price*100) AS BIGINT)) AS rev
FROM read_csv('{f}', header=true) GROUP BY 1, 2)
SELECT count(*) FROM (SELECT *, row_number() OVER (PARTITION BY category ORDER BY units DESC, rev DESC, item_id) rk FROM t WHERE units > 0) WHERE rk <= 10""").fetchone()
print(r, f"{time.time()-t:.2f}s")
PY
fi
DUCK=$("$VENV/bin/python" "$PEER" "$W/events.csv" | grep -oE '[0-9.]+s$' | tr -d s)
START=$(date +%s.%N)
"$BIN" replay --no-progress --data-dir "$W/d" "$W/events.csv" > "$W/replay.out"
END=$(date +%s.%N)
TS=$(python3 -c "print(f'{$END-$START:.2f}')")
echo "duckdb (2 threads, top-10 per category, all time): ${DUCK} s"
echo "topsellers replay (durable, 4 windows, roll-ups):    ${TS} s"
python3 -c "print(f'ratio duckdb/topsellers: {$DUCK/$TS:.2f}x (above 1 means topsellers is faster)')"
