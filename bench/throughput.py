"""End-to-end throughput of the whole stack on embedded brokers (Apache Kafka or Tansu, + amqtt).

    .venv/bin/python bench/throughput.py --readings 100000 --runs 3 [--via http|mqtt]
        [--broker kafka|tansu|both]

``--broker both`` (the default) runs the same benchmark on Apache Kafka (``kafka.embedded:
kafka``, the jars of ``make kafka``) and then on Tansu, and prints the ratio kafka / tansu of
each median: the baseline is measured in the same invocation. Per broker, one stack
(``Supervisor.start``) serves every run. Per run, N ``rain_mm``
readings of fresh stations (``r<run>-S0000`` ...) go through the gateway, and
three figures are measured:

* ``ingest_readings_per_s``: first publish until a watcher (plain aiokafka
  consumer on ``yujing.readings``, partitions assigned by hand) has seen all N
  readings in Kafka.
* ``end_to_end_readings_per_s``: first publish until the worker has evaluated
  all N. After the last reading is acknowledged, one marker reading per
  partition (100 mm at a fresh station, so the rain rule raises red) is
  published; a partition is done when the worker's warning for its marker
  appears on ``yujing.warnings`` (Kafka keeps partition order, and the worker
  processes a partition in order). The worker's own 5 s heartbeat count in
  ``worker.log`` is then checked to cover every reading sent.
* ``decode_ceiling_readings_per_s``: after the run, a raw aiokafka consumer
  (no group, partitions assigned, from the earliest offset) reads every
  envelope of ``yujing.readings`` so far and decodes each with
  ``yujing.envelope.decode``: what one consumer could do with no Faust and no rules.

Figures are printed per run and as the median over ``--runs``, with the ratio
end-to-end / decode ceiling, plus the CPU seconds each child process used
during the end-to-end part (which process is the bottleneck).
Everything listens on 127.0.0.1; every wait has a timeout; the stack is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from yujing.config import load_config
from yujing.connectors.embedded import free_port
from yujing.envelope import decode

try:
    from yujing.envelope import partition_for
except ImportError:  # older layout
    from yujing.connectors.kafka import partition_for
from yujing.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"Worker\]: Ready|worker: \d+ readings")
HEARTBEAT = re.compile(r"worker: (\d+) readings, (\d+) late")
MINUTE_MS = 60_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- stack & logs

def write_config(tmp: Path, partitions: int, broker: str = "tansu") -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        "kafka:\n"
        f"  embedded: {broker}\n"
        f"  partitions: {partitions}\n"
        "http:\n"
        "  host: 127.0.0.1\n"
        f"  port: {free_port()}\n"
        "worker:\n"
        f"  rules_dir: {ROOT / 'rules'}\n"
        f"  data_dir: {tmp / 'worker'}\n"
        "notify:\n"
        "  default: []\n"
        "log_level: info\n", encoding="utf-8")
    return path


def wait_log(path: Path, pattern: re.Pattern[str], timeout_s: float, sup: Supervisor) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sup.failed() is not None:
            return False
        if path.exists() and pattern.search(path.read_text("utf-8", "replace")):
            return True
        time.sleep(0.2)
    return False


def last_heartbeat(path: Path) -> tuple[int, int] | None:
    hits = HEARTBEAT.findall(path.read_text("utf-8", "replace")) if path.exists() else []
    return (int(hits[-1][0]), int(hits[-1][1])) if hits else None


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_snapshot(sup: Supervisor) -> dict[str, float]:
    return {c.name: cpu_seconds(c.proc.pid) for c in sup.children}


# ---------------------------------------------------------------- readings

def marker_stations(tag: str, partitions: int) -> list[str]:
    """One fresh station name per partition (the gateway's own station hash)."""
    found: dict[int, str] = {}
    for i in range(100_000):
        name = f"{tag}-MARK{i}"
        found.setdefault(partition_for(name, partitions), name)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise RuntimeError("no marker station found for every partition")


def make_batches(run: int, n: int, stations: int, batch: int) -> list[list[dict]]:
    """N readings round-robin over fresh stations, one per station-minute, ending now.

    Values are 0-0.04 mm so the rain rule (>= 50 mm in 12 h) stays quiet.
    """
    per_station = -(-n // stations)
    base = int(time.time() * 1000) - per_station * MINUTE_MS
    names = [f"r{run}-S{i:04d}" for i in range(stations)]
    items = [{"station": names[j % stations], "metric": "rain_mm",
              "ts": base + (j // stations) * MINUTE_MS, "value": (j * 7 % 5) / 100}
             for j in range(n)]
    return [items[i:i + batch] for i in range(0, n, batch)]


def markers(stations: list[str]) -> list[dict]:
    now = int(time.time() * 1000)
    return [{"station": s, "metric": "rain_mm", "ts": now, "value": 100.0} for s in stations]


# ---------------------------------------------------------------- Kafka side

class Watcher:
    """Counts readings per run prefix on yujing.readings and collects warnings.

    Plain aiokafka consumers with hand-assigned partitions: no group join, so
    no wait for Tansu's rebalance timeout, and nothing committed.
    """

    def __init__(self, bootstrap: str, readings_topic: str, warnings_topic: str,
                 partitions: int) -> None:
        self.bootstrap = bootstrap
        self.readings_topic, self.warnings_topic = readings_topic, warnings_topic
        self.partitions = partitions
        self.counts: dict[str, int] = {}
        self.envelopes: dict[str, int] = {}
        self.warned: dict[str, float] = {}  # station -> monotonic time its warning was seen
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        self.consumers = []
        for topic, handler in ((self.readings_topic, self._on_reading),
                               (self.warnings_topic, self._on_warning)):
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 request_timeout_ms=10_000, fetch_max_wait_ms=20,
                                 max_partition_fetch_bytes=8 * 1024 * 1024)
            await asyncio.wait_for(c.start(), 30)
            c.assign([TopicPartition(topic, p) for p in range(self.partitions)])
            await c.seek_to_beginning()
            self.consumers.append(c)
            self.tasks.append(asyncio.create_task(self._loop(c, handler)))

    async def _loop(self, c, handler) -> None:
        while True:
            batches = await c.getmany(timeout_ms=100, max_records=2000)
            for tp, msgs in batches.items():
                for m in msgs:
                    handler(tp.partition, m.offset, m.value)
            if batches:
                self.changed.set()

    def _on_reading(self, partition: int, offset: int, value: bytes) -> None:
        cols = decode(value)
        if not cols.stations:
            return
        prefix = cols.stations[0].split("-", 1)[0]
        self.counts[prefix] = self.counts.get(prefix, 0) + len(cols)
        self.envelopes[prefix] = self.envelopes.get(prefix, 0) + 1

    def _on_warning(self, partition: int, offset: int, value: bytes) -> None:
        station = orjson.loads(value).get("station", "")
        self.warned.setdefault(station, time.monotonic())

    async def wait(self, cond, timeout_s: float, what: str) -> float:
        """Wait until cond() holds; returns the monotonic time it was first seen true."""
        deadline = time.monotonic() + timeout_s
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass
        return time.monotonic()

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for c in self.consumers:
            await asyncio.wait_for(c.stop(), 10)


async def decode_ceiling(bootstrap: str, topic: str, partitions: int, expected: int,
                         timeout_s: float) -> tuple[float, int, int]:
    """Read every envelope of the topic from the earliest offset and decode each one.

    Returns (seconds, envelopes, readings); stops once ``expected`` readings are decoded.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=10_000,
                         fetch_max_wait_ms=20, max_partition_fetch_bytes=8 * 1024 * 1024)
    await asyncio.wait_for(c.start(), 30)
    try:
        c.assign([TopicPartition(topic, p) for p in range(partitions)])
        await c.seek_to_beginning()
        got = envelopes = 0
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while got < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"decode ceiling: {got} of {expected} readings in {timeout_s:.0f} s")
            batches = await c.getmany(timeout_ms=200, max_records=5000)
            for msgs in batches.values():
                for m in msgs:
                    got += len(decode(m.value))
                    envelopes += 1
        return time.perf_counter() - t0, envelopes, got
    finally:
        await asyncio.wait_for(c.stop(), 10)


# ---------------------------------------------------------------- publishers

async def publish_http(url: str, bodies: list[bytes], concurrency: int, timeout_s: float) -> None:
    import aiohttp
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    timeout = aiohttp.ClientTimeout(total=30)
    conn = aiohttp.TCPConnector(limit=concurrency)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            for attempt in range(5):
                async with session.post(url, data=body,
                                        headers={"Content-Type": "application/json"}) as r:
                    reply = await r.read()
                    if r.status == 200:
                        break
                    if r.status == 503 and attempt < 4:
                        await asyncio.sleep(0.5)
                        continue
                    raise RuntimeError(f"gateway answered {r.status}: {reply[:300]!r}")

    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
        await asyncio.wait_for(asyncio.gather(*(worker(session) for _ in range(concurrency))),
                               timeout_s)


def publish_mqtt_blocking(mqtt_url: str, bodies: list[tuple[str, bytes]], timeout_s: float) -> None:
    """QoS-1 publish of every body; returns when every PUBACK has arrived."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from yujing.connectors.mqtt import parse_url
    addr = parse_url(mqtt_url)
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}-{time.time_ns()}",
                    protocol=paho.MQTTv311)
    c.max_inflight_messages_set(50)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect(addr.host, addr.port, keepalive=30)
    c.loop_start()
    try:
        if not connected.wait(10):
            raise TimeoutError("MQTT connect timed out")
        infos = [c.publish(topic, body, qos=1) for topic, body in bodies]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("MQTT publish not acknowledged in time")
    finally:
        c.disconnect()
        c.loop_stop()


# ---------------------------------------------------------------- one run

@dataclass
class RunResult:
    ingest_s: float
    e2e_s: float
    decode_per_s: float
    decode_envelopes: int  # whole topic, decoded by the ceiling consumer
    envelopes: int  # this run's envelopes
    cpu: dict[str, float] = field(default_factory=dict)


async def one_run(run: int, args: argparse.Namespace, ep, cfg, sup: Supervisor,
                  watcher: Watcher, worker_log: Path, sent_before: int) -> RunResult:
    prefix = f"r{run}"
    parts = cfg.kafka.partitions
    batches = make_batches(run, args.readings, args.stations, args.batch)
    marks = marker_stations(prefix, parts)
    # Bodies are serialised before the clock starts: the client's JSON work is not the system's.
    if args.via == "http":
        bodies = [orjson.dumps(b) for b in batches]
        mark_bodies = [orjson.dumps(markers(marks))]
    else:
        bodies = [("yujing/bench/_/rain_mm", orjson.dumps(b)) for b in batches]  # many stations
        mark_bodies = [(f"yujing/bench/{m['station']}/rain_mm", orjson.dumps([m]))
                       for m in markers(marks)]
    url = ep.http + "/v1/readings"
    n = args.readings
    timeout = args.timeout

    cpu0 = cpu_snapshot(sup)
    t0 = time.monotonic()
    if args.via == "http":
        await publish_http(url, bodies, args.concurrency, timeout)
        await publish_http(url, mark_bodies, 1, 30)
    else:
        await asyncio.to_thread(publish_mqtt_blocking, ep.mqtt, bodies + mark_bodies, timeout)
    t_pub = time.monotonic()
    t_ingest = await watcher.wait(lambda: watcher.counts.get(prefix, 0) >= n, timeout,
                                  f"{n} readings of run {run} in Kafka")
    t_e2e = await watcher.wait(lambda: all(s in watcher.warned for s in marks), timeout,
                               f"the worker's warnings for the markers of run {run}")
    cpu1 = cpu_snapshot(sup)
    if watcher.counts.get(prefix, 0) != n + len(marks):
        log(f"run {run}: Kafka holds {watcher.counts.get(prefix, 0)} readings of this run, "
            f"sent {n + len(marks)} (duplicates or loss)")
    log(f"run {run}: published in {t_pub - t0:.2f} s, in Kafka after {t_ingest - t0:.2f} s, "
        f"evaluated after {t_e2e - t0:.2f} s")

    # The heartbeat (every 5 s) must eventually count every reading sent so far.
    expected_total = sent_before + n + len(marks)
    deadline = time.monotonic() + 12
    hb = last_heartbeat(worker_log)
    while (hb is None or hb[0] < expected_total) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        hb = last_heartbeat(worker_log)
    if hb is None or hb[0] != expected_total:
        log(f"run {run}: worker heartbeat shows {hb} readings, expected {expected_total}")
    elif hb[1]:
        log(f"run {run}: worker counted {hb[1]} late readings")

    in_topic = sum(watcher.counts.values())
    dec_s, dec_env, dec_n = await decode_ceiling(ep.kafka, cfg.kafka.topics.readings, parts,
                                                 in_topic, 60)
    run_env = watcher.envelopes.get(prefix, 0)
    cpu = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
    return RunResult(t_ingest - t0, t_e2e - t0, dec_n / dec_s, dec_env, run_env, cpu)


def report(label: str, n: int, r: RunResult) -> None:
    e2e, ingest, dec = n / r.e2e_s, n / r.ingest_s, r.decode_per_s
    print(f"[{label}] end_to_end_readings_per_s: {e2e:.0f}")
    print(f"[{label}] ingest_readings_per_s: {ingest:.0f}")
    print(f"[{label}] decode_ceiling_readings_per_s: {dec:.0f}")
    print(f"[{label}] ratio_end_to_end_to_decode_ceiling: {e2e / dec:.3f}")
    print(f"[{label}] envelopes: {r.envelopes} ({n / max(r.envelopes, 1):.0f} readings/envelope); "
          f"decode ceiling read {r.decode_envelopes} (the whole topic)")
    wall = r.e2e_s
    print(f"[{label}] cpu_s_during_end_to_end: " + " ".join(
        f"{k}={v:.2f}({100 * v / wall:.0f}%)" for k, v in r.cpu.items()) + f" wall={wall:.2f}")


async def bench(args: argparse.Namespace, ep, cfg, sup: Supervisor, worker_log: Path,
                broker: str) -> RunResult:
    k = cfg.kafka
    watcher = Watcher(ep.kafka, k.topics.readings, k.topics.warnings, k.partitions)
    await watcher.start()
    try:
        # Warm-up: the worker has joined its group and owns every partition when
        # each partition's marker has produced a warning.
        warm = marker_stations("warm", k.partitions)
        t = time.monotonic()
        if args.via == "http":
            await publish_http(ep.http + "/v1/readings", [orjson.dumps(markers(warm))], 1, 30)
        else:
            await asyncio.to_thread(publish_mqtt_blocking, ep.mqtt,
                                    [(f"yujing/bench/{m['station']}/rain_mm", orjson.dumps([m]))
                                     for m in markers(warm)], 30)
        await watcher.wait(lambda: all(s in watcher.warned for s in warm), 90,
                           "the worker to process the warm-up markers")
        log(f"warm-up processed after {time.monotonic() - t:.1f} s")
        sent = len(warm)
        results = []
        for run in range(1, args.runs + 1):
            r = await one_run(run, args, ep, cfg, sup, watcher, worker_log, sent)
            sent += args.readings + k.partitions
            report(f"{broker} run {run}", args.readings, r)
            results.append(r)
        med = RunResult(statistics.median(r.ingest_s for r in results),
                        statistics.median(r.e2e_s for r in results),
                        statistics.median(r.decode_per_s for r in results),
                        int(statistics.median(r.decode_envelopes for r in results)),
                        int(statistics.median(r.envelopes for r in results)),
                        {name: statistics.median(r.cpu[name] for r in results)
                         for name in results[0].cpu})
        report(f"{broker} median of {len(results)}", args.readings, med)
        return med
    finally:
        await watcher.stop()


def run_broker(args: argparse.Namespace, broker: str) -> RunResult:
    """One stack on ``broker`` for every run; stopped (and its temp dir removed) after."""
    tmp = Path(tempfile.mkdtemp(prefix=f"yujing-bench-{broker}-"))
    cfg_path = write_config(tmp, args.partitions, broker)
    cfg = load_config(cfg_path)
    worker_log = cfg.worker.data_dir / "worker.log"
    sup = Supervisor(cfg, cfg_path)
    name = "Apache Kafka (kafka.embedded: kafka)" if broker == "kafka" else "Tansu"
    print(f"via: {args.via} broker: embedded {name} + amqtt (MQTT); readings: "
          f"{args.readings} stations: {args.stations} batch: {args.batch} runs: {args.runs} "
          f"partitions: {args.partitions} cpus: {os.cpu_count()} load: {os.getloadavg()[0]:.1f}",
          flush=True)
    try:
        t = time.monotonic()
        ep = sup.start(quiet_children=True)
        if not wait_log(worker_log, READY, 120, sup):
            raise RuntimeError(f"the worker did not get ready in 120 s; see {worker_log}")
        log(f"stack on {broker} ready after {time.monotonic() - t:.1f} s; logs in "
            f"{cfg.worker.data_dir}")
        return asyncio.run(bench(args, ep, cfg, sup, worker_log, broker))
    finally:
        sup.stop()
        if args.keep:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report_ratio(n: int, kafka: RunResult, tansu: RunResult) -> None:
    """Each median figure on Kafka divided by the same figure on Tansu (this invocation)."""
    pairs = {"end_to_end_readings_per_s": (n / kafka.e2e_s, n / tansu.e2e_s),
             "ingest_readings_per_s": (n / kafka.ingest_s, n / tansu.ingest_s),
             "decode_ceiling_readings_per_s": (kafka.decode_per_s, tansu.decode_per_s)}
    for name, (k, t) in pairs.items():
        print(f"[kafka/tansu] {name}: {k:.0f} / {t:.0f} = {k / t:.2f}")
    for proc in sorted(set(kafka.cpu) & set(tansu.cpu)):
        print(f"[kafka/tansu] cpu_s_during_end_to_end {proc}: {kafka.cpu[proc]:.2f} / "
              f"{tansu.cpu[proc]:.2f}")
    print(f"[kafka/tansu] broker cpu_s_during_end_to_end: kafka={kafka.cpu.get('kafka', 0):.2f} "
          f"tansu={tansu.cpu.get('tansu', 0):.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=500, help="readings per HTTP request / MQTT message")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--via", choices=("http", "mqtt"), default="http")
    ap.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=120, help="seconds per phase of a run")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    ap.add_argument("--broker", choices=("kafka", "tansu", "both"), default="both",
                    help="embedded broker; both: Kafka then Tansu, with the ratio kafka/tansu")
    args = ap.parse_args()
    if min(args.readings, args.stations, args.batch, args.runs) < 1:
        ap.error("--readings, --stations, --batch and --runs must be >= 1")

    brokers = ("kafka", "tansu") if args.broker == "both" else (args.broker,)
    results = {b: run_broker(args, b) for b in brokers}
    if len(results) == 2:
        report_ratio(args.readings, results["kafka"], results["tansu"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
