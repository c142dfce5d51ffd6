#!/usr/bin/env python3
"""Freshness of the cluster shape, to EVERY API server: time from a purchase acknowledged by Kafka (a `kcat -P` that
has exited: its message is flushed and acknowledged) to the purchase being visible in GET /v1/top of server 1, of
server 2, and of both, under a steady background load produced to the same topic. Each probe is a purchase in a
category of its own, so "visible" is simply "the list is not empty".

The path measured: kcat -> Kafka -> `topsellers aggregate` (results saved every cluster.results_interval_ms) ->
Cassandra (`partitions` row flipped by a lightweight transaction) -> each `topsellers api` (asks the store every
cluster.refresh_interval_ms which partitions changed and loads those) -> HTTP.

The store-side part: a thread reads the store's `partitions` rows every 5 ms and keeps each change of
(results_offset, saved_at). `saved_at` is set by the Cassandra coordinator in the save's lightweight transaction,
the moment the new results become readable; after the run one kcat read of the topic gives each probe's partition
and offset, and the first save whose results_offset is past the probe's offset is the save that published it. So
each probe splits into: ack -> saved (Kafka, the aggregator, the write) and saved -> visible in each server, which
the answer's `computed_at` (taken when the server's refresh begins, before it reads the store) splits again into
the wait for the server's next refresh tick and the refresh itself (store reads, merge, publish). All clocks are
this host's.

Usage: bench/cluster_freshness.py CONFIG API_PORT_1 API_PORT_2 [SAMPLES] [BACKGROUND_EVENTS_PER_SEC]
(defaults 100, 1000). CONFIG is the cluster config the aggregator and both API servers run with
(bench/cluster_serving.sh writes and starts them). Needs kcat and the Python `cassandra-driver` (without the
driver, or with STORE_WATCH=0, only the end-to-end figures are given: the store reader adds ~200 small reads/s
to Cassandra). Bounded: about SAMPLES * 0.5 s plus 10 s at most per lost probe.
"""
import http.client, json, os, random, subprocess, sys, threading, time, tomllib
from datetime import datetime, timezone

CONFIG = sys.argv[1]
PORTS = [int(sys.argv[2]), int(sys.argv[3])]
SAMPLES = int(sys.argv[4]) if len(sys.argv) > 4 else 100
RATE = float(sys.argv[5]) if len(sys.argv) > 5 else 1000.0
with open(CONFIG, "rb") as f:
    SETTINGS = tomllib.load(f)
KAFKA = SETTINGS["kafka"]
CASS = SETTINGS.get("cassandra", {})
TIMEOUT_S = 10.0


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def line(item, category, qty=1):
    # Letters only after the prefix: a run of digits can look like a card number, which ingest refuses in ids.
    rid = "".join(random.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(12))
    event = {"event_id": f"cf-{rid}", "time": now_iso(), "item_id": item,
             "category": category, "quantity": qty, "unit_price": "1.00", "currency": "USD"}
    # Keyed by item id with Kafka's own partitioner, as the topic expects.
    return f"{item}|{json.dumps(event)}\n"


def produce(lines):
    """Produces `lines` and returns once kcat has flushed them (acknowledged by the broker)."""
    subprocess.run(["kcat", "-b", KAFKA["bootstrap_servers"], "-t", KAFKA["topic"], "-P", "-K", "|",
                    "-X", "partitioner=murmur2_random", "-X", "linger.ms=1"],
                   input="".join(lines), text=True, check=True)


def background(stop):
    period = 100 / RATE
    while not stop.is_set():
        t = time.time()
        produce([line(f"bg-{random.randint(1, 5000)}", f"bg/c{random.randint(1, 50)}") for _ in range(100)])
        time.sleep(max(0.0, period - (time.time() - t)))


class Server:
    """One API server over a kept-alive connection."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path):
        for attempt in (0, 1):
            try:
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                return json.loads(r.read())
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt:
                    raise


class StoreWatch:
    """Reads the `partitions` rows of the topic's namespace every few ms; keeps every change of each partition's
    (results_offset, saved_at) with the time it was first seen."""

    def __init__(self):
        from cassandra.cluster import Cluster  # optional: only this part needs the driver

        hosts = [p.rsplit(":", 1) for p in CASS.get("contact_points", ["127.0.0.1:9042"])]
        self.cluster = Cluster([h for h, _ in hosts], port=int(hosts[0][1]))
        self.session = self.cluster.connect(CASS.get("keyspace", "topsellers"))
        parts = ",".join(str(p) for p in range(int(KAFKA.get("partitions", 6))))
        self.query = self.session.prepare(
            f"SELECT partition, results_offset, results_len, saved_at FROM partitions WHERE namespace = ? AND partition IN ({parts})")
        self.history = {}  # partition -> [(results_offset, saved_at_s, seen_s)]
        self.polls = 0
        self.sizes = []  # results_len of every save seen
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for row in self.session.execute(self.query, [KAFKA["topic"]]):
                if row.results_offset is None or row.saved_at is None:
                    continue
                h = self.history.setdefault(row.partition, [])
                if not h or h[-1][0] != row.results_offset:
                    saved = row.saved_at.replace(tzinfo=timezone.utc).timestamp()
                    h.append((row.results_offset, saved, time.time()))
                    self.sizes.append(row.results_len or 0)
            self.polls += 1
            time.sleep(0.005)

    def save_of(self, partition, offset):
        """(saved_at, seen) of the first save whose results include `offset`, or None."""
        for results_offset, saved, seen in self.history.get(partition, []):
            if results_offset > offset:
                return saved, seen
        return None

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.cluster.shutdown()


def probe_offsets(n):
    """partition and offset of each probe message, from one read of the whole topic."""
    out = subprocess.run(["kcat", "-b", KAFKA["bootstrap_servers"], "-t", KAFKA["topic"], "-C", "-e", "-q",
                          "-f", "%p %o %k\n"], capture_output=True, text=True, timeout=120).stdout
    found = {}
    for row in out.splitlines():
        p, o, k = row.split(" ", 2)
        if k.startswith("probe-"):
            found[k] = (int(p), int(o))
    return [found.get(f"probe-{i}") for i in range(n)]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def summary(name, values):
    if not values:
        return f"  {name:44s} (no samples)"
    return (f"  {name:44s} p50 {pct(values, 50):6.0f} ms  p90 {pct(values, 90):6.0f} ms  "
            f"p99 {pct(values, 99):6.0f} ms  max {max(values):6.0f} ms")


def main():
    servers = [Server(p) for p in PORTS]
    for s in servers:
        for _ in range(300):
            try:
                s.get("/healthz"); break
            except Exception:
                time.sleep(0.1)
    watch = None
    try:
        if os.environ.get("STORE_WATCH", "1") == "0":
            raise RuntimeError("STORE_WATCH=0")
        watch = StoreWatch()
    except Exception as e:  # no driver, or the store is not Cassandra: end-to-end figures only
        print(f"  (no store-side figures: {type(e).__name__}: {e})")
    stop = threading.Event()
    bg = threading.Thread(target=background, args=(stop,), daemon=True); bg.start()
    time.sleep(2)
    run = f"{random.randint(0, 1 << 30):x}"
    probes = []  # (ack time, [visible time per server])
    lost = 0
    for i in range(SAMPLES):
        # A random pause, so probes are not phase-locked to the aggregator's and servers' refresh clocks.
        time.sleep(random.uniform(0, 0.3))
        cat = f"probe{run}/p{i}"
        produce([line(f"probe-{i}", cat, qty=3)])
        t0 = time.time()
        seen = [None, None]
        computed = [None, None]  # computed_at of the first answer showing the probe: when that refresh began
        while None in seen and time.time() - t0 < TIMEOUT_S:
            for k, s in enumerate(servers):
                if seen[k] is None:
                    top = s.get(f"/v1/top?category={cat}&window=1h&n=1")
                    if top["items"]:
                        seen[k] = time.time()
                        computed[k] = datetime.fromisoformat(top["computed_at"].replace("Z", "+00:00")).timestamp()
            time.sleep(0.002)
        if None in seen:
            lost += 1
            seen = [t if t is not None else t0 + TIMEOUT_S for t in seen]
        probes.append((t0, seen, computed))
    stop.set(); bg.join(timeout=30)
    if watch:
        time.sleep(0.5)
        watch.close()

    ms = lambda a, b: (b - a) * 1000
    print(f"  {len(probes)} probes under {RATE:.0f} background events/s, {lost} not visible within {TIMEOUT_S:.0f} s")
    print(summary("Kafka ack -> visible in server 1", [ms(t0, s[0]) for t0, s, _ in probes]))
    print(summary("Kafka ack -> visible in server 2", [ms(t0, s[1]) for t0, s, _ in probes]))
    print(summary("Kafka ack -> visible in both (all servers)", [ms(t0, max(s)) for t0, s, _ in probes]))
    print(summary("gap between the two servers", [abs(ms(s[0], s[1])) for _, s, _ in probes]))
    # computed_at is taken when a server's refresh begins, before it reads the store: from there to visible is
    # the refresh itself (store reads, merge, publish) plus this script's polling.
    print(summary("refresh began (computed_at) -> visible, both",
                  [ms(c[k], s[k]) for _, s, c in probes for k in (0, 1) if c[k] is not None]))
    if watch:
        where = probe_offsets(len(probes))
        ack_saved, saved_1, saved_2, saved_all, saved_seen, saved_tick = [], [], [], [], [], []
        for (t0, s, c), pos in zip(probes, where):
            save = watch.save_of(*pos) if pos else None
            if not save:
                continue
            saved, seen_in_store = save
            ack_saved.append(ms(t0, saved))
            saved_1.append(ms(saved, s[0])); saved_2.append(ms(saved, s[1])); saved_all.append(ms(saved, max(s)))
            saved_seen.append(ms(saved, seen_in_store))
            saved_tick += [ms(saved, c[k]) for k in (0, 1) if c[k] is not None]
        print(f"  store side ({len(saved_all)} of {len(probes)} probes matched to the save that published them; "
              f"{watch.polls} reads of the partitions rows; {len(watch.sizes)} saves seen, results blob "
              f"{sum(watch.sizes) / max(1, len(watch.sizes)) / 1024:.0f} KiB on average per partition):")
        print(summary("Kafka ack -> saved in Cassandra (saved_at)", ack_saved))
        print(summary("saved -> visible in server 1", saved_1))
        print(summary("saved -> visible in server 2", saved_2))
        print(summary("saved -> visible in both (all servers)", saved_all))
        print(summary("saved -> the refresh that read it began", saved_tick))
        print(summary("(saved -> seen by this script's 5 ms reader)", saved_seen))


if __name__ == "__main__":
    main()
