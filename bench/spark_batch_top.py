#!/usr/bin/env python3
"""Peer for bench/batch.sh: Apache Spark (pyspark, local[2]) computing the all-time top 100 per country from the
rows topsellers batch reads, exported as Parquet: the same query DuckDB runs there (units desc, revenue desc, item
asc; net units above zero). Three timed runs in one session; the first pays for planning and JIT warm-up.
Usage: bench/spark_batch_top.py ROWS.parquet   (pip install pyspark; Java 17)"""
import sys, time
from pyspark.sql import SparkSession, Window, functions as F

path = sys.argv[1]
t0 = time.time()
spark = (SparkSession.builder.master("local[2]").appName("topsellers-batch-peer")
         .config("spark.sql.shuffle.partitions", "4").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.memory", "2g").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
print(f"    spark {spark.version}: session up in {time.time() - t0:.1f} s", flush=True)
rows = spark.read.parquet(path).count()
for run in range(3):
    t = time.time()
    df = spark.read.parquet(path)
    per_item = df.groupBy("country", "item").agg(
        F.sum("qty").alias("units"),
        F.sum(F.round(F.col("qty") * F.col("price") * 100).cast("long")).alias("rev"))
    rank = Window.partitionBy("country").orderBy(F.desc("units"), F.desc("rev"), F.asc("item"))
    n = per_item.where("units > 0").withColumn("rk", F.row_number().over(rank)).where("rk <= 100").count()
    s = time.time() - t
    print(f"    spark local[2] (all-time top 100 per country from Parquet): {s:.3f} s, {rows / s:.0f} rows/s, "
          f"{n} ranked rows", flush=True)
spark.stop()
