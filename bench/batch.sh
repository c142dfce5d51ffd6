#!/usr/bin/env bash
# `topsellers batch` over the Online Retail rows in PostgreSQL, beside DuckDB (and Apache Spark when pyspark is
# installed) computing the top-100 per country from the same rows exported as Parquet, in the same run.
# Usage: bench/batch.sh   (needs ./scripts/services.sh start postgres, python3 with duckdb, and pyspark for Spark;
# ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./scripts/services.sh env)"
URL=${TOPSELLERS_TEST_POSTGRES:?start postgres: ./scripts/services.sh start postgres}
DATA=${DATA:-../shared/data/online-retail/by-day}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"; psql -q "$URL" -c "DROP SCHEMA IF EXISTS bench_batch CASCADE" >/dev/null 2>&1 || true' EXIT
cargo build --release -q -p topsellers
BIN=target/release/topsellers

echo "==> loading $DATA into PostgreSQL (schema bench_batch, without CustomerID)"
psql -q "$URL" -c "DROP SCHEMA IF EXISTS bench_batch CASCADE; CREATE SCHEMA bench_batch; CREATE TABLE bench_batch.raw (invoice text, stock text, descr text, qty integer, invoice_date timestamp, price numeric(12,3), country text)"
python3 - "$DATA" <<'PY' | psql -q "$URL" -c "\copy bench_batch.raw FROM STDIN WITH (FORMAT csv)"
import csv, glob, sys
w = csv.writer(sys.stdout)
for f in sorted(glob.glob(sys.argv[1] + "/*.csv")):
    for r in csv.DictReader(open(f, newline="")):
        w.writerow([r["InvoiceNo"], r["StockCode"], r["Description"], r["Quantity"], r["InvoiceDate"], r["UnitPrice"], r["Country"]])
PY
psql -q "$URL" -c "CREATE TABLE bench_batch.purchases AS SELECT upper(trim(stock)) AS item, lower(trim(country)) AS country, descr, qty, invoice_date, price FROM bench_batch.raw WHERE upper(trim(stock)) NOT IN ('POST','DOT','M','S','C2','D','AMAZONFEE','BANK CHARGES') AND upper(trim(stock)) NOT LIKE 'GIFT\_0001\_%' AND upper(trim(stock)) NOT LIKE 'DCGS%' AND (qty > 0 OR invoice LIKE 'C%'); ANALYZE bench_batch.purchases"
ROWS=$(psql -qtA "$URL" -c "SELECT count(*) FROM bench_batch.purchases")
echo "    $ROWS purchase rows"

cat > "$WORK/batch.toml" <<TOML
[engine]
bucket_secs = 60
windows = ["1h", "24h", "7d", "all"]
allowed_lateness_secs = 3600
[limits]
currency = "GBP"
price_decimals = 2
[cluster]
results_store = "sqlite:$WORK/results.db"
[batch]
url = "$URL?options=-csearch_path%3Dbench_batch"
table = "purchases"
[batch.columns]
item_id = "item"
item_name = "descr"
category = "country"
quantity = "qty"
unit_price = "price"
time = "invoice_date"
TOML

echo "==> topsellers batch (first run: every row; 4 windows, top 100 per country and site-wide)"
for i in 1 2 3; do
  rm -f "$WORK"/results.db*
  /usr/bin/time -f "    wall %e s, max RSS %M KB" $BIN batch --no-progress --config "$WORK/batch.toml" | grep "counted"
done
echo "==> topsellers batch again with no new rows"
$BIN batch --no-progress --config "$WORK/batch.toml"

echo "==> export the same rows as Parquet (DuckDB), then the peers"
psql -q "$URL" -c "\copy (SELECT item, country, qty, price, invoice_date FROM bench_batch.purchases) TO '$WORK/rows.csv' WITH (FORMAT csv, HEADER)"
python3 - "$WORK" <<'PY'
import duckdb, sys, time
w = sys.argv[1]
con = duckdb.connect(); con.execute("SET threads=2")
con.execute(f"COPY (SELECT * FROM read_csv('{w}/rows.csv', header=true)) TO '{w}/rows.parquet' (FORMAT parquet)")
for i in range(3):
    t = time.time()
    n = con.execute(f"""
    WITH t AS (SELECT country, item, SUM(qty) AS units, SUM(CAST(round(qty*price*100) AS BIGINT)) AS rev
               FROM read_parquet('{w}/rows.parquet') GROUP BY ALL)
    SELECT count(*) FROM (SELECT *, row_number() OVER (PARTITION BY country ORDER BY units DESC, rev DESC, item) rk
                          FROM t WHERE units > 0) WHERE rk <= 100""").fetchone()[0]
    s = time.time() - t
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{w}/rows.parquet')").fetchone()[0]
    print(f"    duckdb (2 threads, all-time top 100 per country from Parquet): {s:.3f} s, {rows/s:.0f} rows/s, {n} ranked rows")
PY
if python3 -c "import pyspark" 2>/dev/null; then
  echo "==> Spark local[2] on the same Parquet (its log: $WORK/spark.log, shown on failure)"
  SPARK_LOCAL_IP=127.0.0.1 python3 bench/spark_batch_top.py "$WORK/rows.parquet" 2>"$WORK/spark.log" \
    || { cat "$WORK/spark.log"; exit 1; }
else
  echo "==> Spark: pyspark is not installed (pip install pyspark; Java 17); skipped"
fi
