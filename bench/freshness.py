#!/usr/bin/env python3
"""Freshness: time from a POST /v1/purchases returning 200 (durable) to the purchase being visible in GET /v1/top,
under a steady background load. Starts its own `topsellers serve` on a temporary data directory and stops it.

Usage: bench/freshness.py [SAMPLES] [BACKGROUND_EVENTS_PER_SEC]      (defaults 200, 500). Bounded: ~1-2 minutes.
Needs a release build: cargo build --release -p topsellers
"""
import json, os, random, subprocess, sys, tempfile, threading, time, urllib.request
from datetime import datetime, timezone

SAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 200
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 500.0
PORT = 18095
TOKEN = "freshness-bench-token-0123456789"
BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "topsellers")
BASE = f"http://127.0.0.1:{PORT}"


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def post(events):
    body = "\n".join(json.dumps(e) for e in events).encode()
    req = urllib.request.Request(f"{BASE}/v1/purchases", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def get(path):
    with urllib.request.urlopen(f"{BASE}{path}", timeout=10) as r:
        return json.load(r)


def event(item, category, qty=1):
    return {"event_id": f"f-{random.getrandbits(64):x}", "time": now_iso(), "item_id": item, "category": category,
            "quantity": qty, "unit_price": "1.00", "currency": "USD"}


def background(stop):
    # Steady load on other categories, in batches of 50.
    period = 50 / RATE
    while not stop.is_set():
        t = time.time()
        post([event(f"bg-{random.randint(1, 5000)}", f"bg/c{random.randint(1, 50)}") for _ in range(50)])
        time.sleep(max(0.0, period - (time.time() - t)))


def main():
    d = tempfile.mkdtemp(prefix="ts-fresh-")
    env = dict(os.environ, TOPSELLERS_SERVER__AUTH_TOKEN=TOKEN)
    proc = subprocess.Popen([BIN, "serve", "--data-dir", d, "--listen", f"127.0.0.1:{PORT}", "--log", "warn"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                get("/readyz"); break
            except Exception:
                time.sleep(0.1)
        stop = threading.Event()
        bg = threading.Thread(target=background, args=(stop,), daemon=True); bg.start()
        lat = []
        for i in range(SAMPLES):
            # A random pause, so probes are not phase-locked to the node's snapshot clock (each probe would
            # otherwise be sent right after the snapshot that showed the previous one).
            time.sleep(random.uniform(0, 0.5))
            cat = f"probe/p{i}"
            post([event(f"probe-{i}", cat, qty=3)])
            t0 = time.time()
            while True:
                top = get(f"/v1/top?category={cat}&window=1h&n=1")
                if top["items"]:
                    lat.append((time.time() - t0) * 1000); break
                if time.time() - t0 > 10:
                    lat.append(10000.0); break
                time.sleep(0.005)
        stop.set()
        lat.sort()
        pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
        print(f"freshness over {SAMPLES} purchases with ~{RATE:.0f} background events/s: "
              f"p50 {pct(50):.0f} ms, p90 {pct(90):.0f} ms, p99 {pct(99):.0f} ms, max {lat[-1]:.0f} ms "
              f"(from the POST's 200 to visible in /v1/top; target p99 < 1000 ms)")
    finally:
        proc.terminate(); proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
