#!/usr/bin/env python3
"""Freshness through Kafka: time from a purchase acknowledged by Kafka (a `kcat -P` that has exited: its message is
flushed and acknowledged) to the purchase being visible in GET /v1/top of a `topsellers api` server, under a steady
background load produced to the same topic. (One kcat per probe and per background batch: kcat reads a pipe in
large blocks, so a long-running kcat fed line by line would hold messages back for seconds.)

The path measured: kcat -> Kafka -> `topsellers aggregate` (results written every cluster.results_interval_ms)
-> results store -> `topsellers api` (refreshes every cluster.refresh_interval_ms) -> HTTP.

Usage: bench/kafka_freshness.py CONFIG API_PORT [SAMPLES] [BACKGROUND_EVENTS_PER_SEC]   (defaults 100, 1000)
CONFIG is the cluster config the aggregator and API server run with (bench/kafka.sh writes and starts them).
Bounded: about SAMPLES * 0.4 s plus 10 s at most per lost probe.
"""
import json, os, random, subprocess, sys, threading, time, tomllib, urllib.request
from datetime import datetime, timezone

CONFIG = sys.argv[1]
PORT = int(sys.argv[2])
SAMPLES = int(sys.argv[3]) if len(sys.argv) > 3 else 100
RATE = float(sys.argv[4]) if len(sys.argv) > 4 else 1000.0
with open(CONFIG, "rb") as f:
    KAFKA = tomllib.load(f)["kafka"]
BASE = f"http://127.0.0.1:{PORT}"


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def line(item, category, qty=1):
    # Letters only after the prefix: a random run of digits can look like a card number, which ingest refuses
    # in ids (as it should).
    rid = "".join(random.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(12))
    event = {"event_id": f"kf-{rid}", "time": now_iso(), "item_id": item,
             "category": category, "quantity": qty, "unit_price": "1.00", "currency": "USD"}
    # Keyed by item id with Kafka's own partitioner, as the topic expects (no forwarding hop).
    return f"{item}|{json.dumps(event)}\n"


def produce(lines):
    """Produces `lines` and returns once kcat has flushed them (acknowledged by the broker)."""
    subprocess.run(["kcat", "-b", KAFKA["bootstrap_servers"], "-t", KAFKA["topic"], "-P", "-K", "|",
                    "-X", "partitioner=murmur2_random", "-X", "linger.ms=1"],
                   input="".join(lines), text=True, check=True)


def get(path):
    with urllib.request.urlopen(f"{BASE}{path}", timeout=10) as r:
        return json.load(r)


def background(stop):
    period = 100 / RATE
    while not stop.is_set():
        t = time.time()
        produce([line(f"bg-{random.randint(1, 5000)}", f"bg/c{random.randint(1, 50)}") for _ in range(100)])
        time.sleep(max(0.0, period - (time.time() - t)))


def main():
    for _ in range(300):
        try:
            get("/healthz"); break
        except Exception:
            time.sleep(0.1)
    stop = threading.Event()
    bg = threading.Thread(target=background, args=(stop,), daemon=True); bg.start()
    time.sleep(2)
    lat = []
    for i in range(SAMPLES):
        # A random pause, so probes are not phase-locked to the aggregator's and server's refresh clocks.
        time.sleep(random.uniform(0, 0.3))
        cat = f"probe/p{i}"
        produce([line(f"probe-{i}", cat, qty=3)])
        t0 = time.time()
        while True:
            top = get(f"/v1/top?category={cat}&window=1h&n=1")
            if top["items"]:
                lat.append((time.time() - t0) * 1000); break
            if time.time() - t0 > 10:
                lat.append(10000.0); break
            time.sleep(0.005)
    stop.set(); bg.join(timeout=30)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    print(f"freshness acknowledged by Kafka -> aggregator -> store -> api: {len(lat)} probes under {RATE:.0f} events/s: "
          f"p50 {pct(50):.0f} ms, p90 {pct(90):.0f} ms, p99 {pct(99):.0f} ms, max {lat[-1]:.0f} ms")


if __name__ == "__main__":
    main()
