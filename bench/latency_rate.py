"""Latency at a given load: publish → warning event, and → notification handed to apprise.

    .venv/bin/python bench/latency_rate.py [--rates 50,5000] [--seconds 20] [--probes-per-s 10]
        [--modes fixed,adaptive] [--broker kafka|tansu]

For each gateway batching mode (``gateway.batching``: ``fixed``, the old 50 ms linger, is the
baseline measured in the same invocation; ``adaptive`` sends at once when a partition is idle)
one whole stack is started with ``Supervisor`` on an embedded broker (Apache Kafka from
``make kafka`` when installed, else Tansu) and, per rate, after ``--warmup`` seconds of the
background load alone (its stations' first readings are new series, each partition's first
envelope is checkpointed at once: a start-up transient, not the steady state measured):

* background load: quiet ``rain_mm`` readings (0 mm, one per station and request slot) posted
  over HTTP at ``rate`` readings per second, paced on the clock (requests of rate/200
  readings, at least one), so the gateway, broker and worker all carry the load;
* probes: ``--probes-per-s`` times a second one lone reading of 100 mm at a fresh station
  (the rain rule raises red) is posted on its own request. Each probe's time runs from just
  before its POST until (a) its red warning event is seen on ``yujing.warnings`` by a plain
  aiokafka consumer, and (b) its notification arrives at a real HTTP server of this process
  that apprise posts to (``json://``: a notification handed to apprise, plus one local POST).

The probes, the watcher and the webhook run on an event loop of their own (``Meter``), apart
from the load's requests. Each probe's way is split into hops at wall-clock marks
(``HOPS``): POST → in Kafka (the broker's append time) → the worker's pipeline took it
(the event's ``emitted_ms``) → its event in Kafka → the watcher saw it.

Prints, per mode and rate, ``warning_p50_ms``/``warning_p99_ms``, ``notify_p50_ms``/
``notify_p99_ms``, ``hop_<name>_p50_ms``/``p99``, probes answered, the readings per
envelope the gateway built (its /healthz counters), the load actually sent, and the ratio
fixed / adaptive of each percentile. The group wait is the book's setting (alerts.grouping);
a red warning's notice skips it. Everything listens on 127.0.0.1; every wait has a deadline;
the stack is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import yaml
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import cpu_seconds  # noqa: E402
from yujing.config import load_config  # noqa: E402
from yujing.connectors.embedded import free_port  # noqa: E402
from yujing.connectors.kafka_broker import KafkaNotInstalled, check_installed, kafka_home  # noqa: E402
from yujing.domain import WarningEvent  # noqa: E402
from yujing.envelope import decode  # noqa: E402
from yujing.supervisor import Supervisor  # noqa: E402

PROBE = re.compile(r"LP[a-z]\d+-\d+")
Cpu = Callable[[], dict[str, float]]  # CPU seconds so far of each child process, by name
COMPARED = ("in_kafka_p50_ms", "in_kafka_p99_ms", "warning_p50_ms", "warning_p99_ms",
            "notify_p50_ms", "notify_p99_ms", "readings_per_envelope")


def kafka_installed() -> bool:
    try:
        check_installed(kafka_home())
    except KafkaNotInstalled:
        return False
    return True


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


@dataclass
class Probes:
    """Start, warning-event and notification times (perf_counter) of each probe station, and
    the wall-clock marks (ms) its hops are split at."""

    sent: dict[str, float] = field(default_factory=dict)
    stored: dict[str, float] = field(default_factory=dict)
    warned: dict[str, float] = field(default_factory=dict)
    notified: dict[str, float] = field(default_factory=dict)
    marks: dict[str, dict[str, float]] = field(default_factory=dict)
    append_time: bool = True  # every record seen had the broker's append time

    def lat_ms(self, seen: dict[str, float], names: list[str]) -> list[float]:
        return sorted((seen[s] - self.sent[s]) * 1000 for s in names if s in seen)

    def mark(self, station: str, name: str, wall_ms: float) -> None:
        self.marks.setdefault(station, {}).setdefault(name, wall_ms)

    def hop_ms(self, start: str, end: str, names: list[str]) -> list[float]:
        """Per probe, wall ms from mark ``start`` to mark ``end`` (probes with both)."""
        out = []
        for s in names:
            m = self.marks.get(s, {})
            if start in m and end in m:
                out.append(m[end] - m[start])
        return sorted(out)


# A probe's hops, between wall-clock marks taken by different processes of this one machine
# (so one clock): the bench's POST; the envelope's Kafka timestamp, which is the broker's append
# time (the bench sets message.timestamp.type=LogAppendTime on both topics); the event's
# emitted_ms (the worker's clock when its pipeline took the envelope); the event's append time;
# the watcher's receipt. Kafka and emitted_ms times are whole ms: each hop is within ±1 ms.
HOPS = (("gateway", "post", "in_kafka"),           # HTTP, batching, producer linger, append
        ("to_worker", "in_kafka", "emitted"),      # worker's fetch, its loop's queue
        ("evaluate", "emitted", "event_in_kafka"),  # pipeline, producer linger, append
        ("watcher", "event_in_kafka", "warned"),   # the measurement's own hop (warnings)
        ("watcher_readings", "in_kafka", "stored"))  # the measurement's own hop (readings)
APPEND_TIME = 1  # aiokafka ConsumerRecord.timestamp_type of LogAppendTime


def pct(xs: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank rule (q=0.99 of 100 values: the 99th). The rank is
    ceil(q·n), rounded first: 0.07·100 is 7.000000000000001 in floats, and the rank is 7."""
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, math.ceil(round(q * len(xs), 9)) - 1))]


def write_config(tmp: Path, mode: str, broker: str, hook_port: int, partitions: int,
                 metrics_port: int, linger_ms: int = 20) -> Path:
    cfg = {"kafka": {"embedded": broker, "partitions": partitions},
           "http": {"host": "127.0.0.1", "port": free_port()},
           "gateway": {"batching": mode, "linger_ms": linger_ms},
           "notify": {"default": [f"json://127.0.0.1:{hook_port}/notify"]},
           "worker": {"rules_dir": str(ROOT / "rules"), "data_dir": str(tmp / "w"),
                      "metrics_port": metrics_port},
           "log_level": "info"}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


async def hook_server(port: int, probes: Probes) -> web.AppRunner:
    """The webhook apprise posts to: records when each probe station's notification arrived."""
    async def notify(request: web.Request) -> web.Response:
        got = time.perf_counter()
        msg = await request.json()
        for station in PROBE.findall(f"{msg.get('title', '')}\n{msg.get('message', '')}"):
            probes.notified.setdefault(station, got)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/notify", notify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def watch(bootstrap: str, topics: tuple[str, str], partitions: int,
                probes: Probes) -> None:
    """Records when each probe's reading is in Kafka (in an envelope on the readings topic)
    and when its red warning event is (on the warnings topic)."""
    readings, warnings = topics
    dec = msgspec.json.Decoder(WarningEvent)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         fetch_max_wait_ms=10, max_partition_fetch_bytes=8 * 1024 * 1024)
    await asyncio.wait_for(c.start(), 30)
    c.assign([TopicPartition(t, p) for t in topics for p in range(partitions)])
    await c.seek_to_end()
    try:
        while True:
            for tp, recs in (await c.getmany(timeout_ms=50)).items():
                got, wall = time.perf_counter(), time.time() * 1000
                for rec in recs:
                    probes.append_time &= rec.timestamp_type == APPEND_TIME
                    if tp.topic == readings:
                        if b"LP" not in rec.value:
                            continue  # no probe in it: not worth decoding
                        for st in decode(rec.value).stations:
                            if st in probes.sent:
                                probes.stored.setdefault(st, got)
                                probes.mark(st, "in_kafka", rec.timestamp)
                                probes.mark(st, "stored", wall)
                    elif tp.topic == warnings:
                        ev = dec.decode(rec.value)
                        if ev.grade >= 4 and ev.station in probes.sent:
                            probes.warned.setdefault(ev.station, got)
                            probes.mark(ev.station, "emitted", ev.emitted_ms)
                            probes.mark(ev.station, "event_in_kafka", rec.timestamp)
                            probes.mark(ev.station, "warned", wall)
    finally:
        await c.stop()


async def stamp_on_append(bootstrap: str, topics: tuple[str, ...]) -> None:
    """Kafka timestamps of ``topics`` become the broker's append time, so a hop can end at
    "in Kafka" rather than at the producer's send (a bench setting; the stack reads none)."""
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        await client.alter_configs([
            ConfigResource(ConfigResourceType.TOPIC, t,
                           configs={"message.timestamp.type": "LogAppendTime"})
            for t in topics])
    finally:
        await client.close()


class Meter:
    """The measuring side, on an event loop and thread of its own: the probes' POSTs, the
    watcher consumer and the webhook apprise posts to.

    The load (hundreds of requests a second) runs on the main loop. When the probes and the
    watcher shared that loop, each probe's POST and each receipt waited for the load's turns,
    which the bench then counted as latency of the stack."""

    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="meter", daemon=True)
        self.thread.start()
        self.session: aiohttp.ClientSession | None = None
        self.hook: web.AppRunner | None = None
        self.watcher: asyncio.Task | None = None

    def run(self, coro) -> asyncio.Future:
        """Run ``coro`` on the meter's loop; await the result on the caller's."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def _start(self, bootstrap: str, topics: tuple[str, str], partitions: int,
                     hook_port: int) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        self.hook = await hook_server(hook_port, self.probes)
        self.watcher = asyncio.create_task(watch(bootstrap, topics, partitions, self.probes))

    async def _stop(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
        if self.hook is not None:
            await self.hook.cleanup()
        if self.session is not None:
            await self.session.close()

    async def start(self, bootstrap: str, topics: tuple[str, str], partitions: int,
                    hook_port: int) -> None:
        await self.run(self._start(bootstrap, topics, partitions, hook_port))

    async def stop(self) -> None:
        try:
            await self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self.thread.join, 10)

    async def _probe(self, url: str, station: str, failures: list[int]) -> None:
        assert self.session is not None
        await probe(self.session, url, station, self.probes, failures)

    async def _series(self, url: str, tag: str, seconds: float, per_s: float,
                      names: list[str], failures: list[int]) -> None:
        t0 = time.perf_counter()
        tasks = []
        while (now := time.perf_counter()) < t0 + seconds:
            due = t0 + len(names) / per_s
            if now < due:
                await asyncio.sleep(due - now)
                continue
            names.append(f"LP{tag}-{len(names)}")
            tasks.append(asyncio.create_task(self._probe(url, names[-1], failures)))
        await asyncio.gather(*tasks)

    def one(self, url: str, station: str, failures: list[int]) -> asyncio.Future:
        """Post one probe (from the meter's loop)."""
        return self.run(self._probe(url, station, failures))

    def series(self, url: str, tag: str, seconds: float, per_s: float, names: list[str],
               failures: list[int]) -> asyncio.Future:
        """Post a probe every 1/per_s s for ``seconds``; their names are appended to ``names``."""
        return self.run(self._series(url, tag, seconds, per_s, names, failures))


async def post(s: aiohttp.ClientSession, url: str, items: list[dict], failures: list[int]) -> None:
    try:
        async with s.post(url, json=items) as r:
            if r.status != 200:
                failures[0] += 1
            await r.read()
    except aiohttp.ClientError:
        failures[0] += 1


async def probe(s: aiohttp.ClientSession, url: str, station: str, probes: Probes,
                failures: list[int]) -> None:
    item = [{"station": station, "metric": "rain_mm", "ts": int(time.time() * 1000),
             "value": 100.0}]
    probes.sent[station] = time.perf_counter()
    probes.mark(station, "post", time.time() * 1000)
    await post(s, url, item, failures)


async def until(cond, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(step_s)
    return cond()


async def worker_eval(s: aiohttp.ClientSession, url: str) -> list[float]:
    """The worker's evaluation time per engine pass and gateway-receive → evaluated time (sums
    and counts of its two Prometheus histograms), to split the latency between worker and hops;
    then its envelopes and engine passes (envelopes waiting together are one pass)."""
    async with s.get(url) as r:
        text = await r.text()
    got = dict.fromkeys(("yujing_worker_eval_seconds_sum", "yujing_worker_eval_seconds_count",
                         "yujing_worker_ingest_to_eval_seconds_sum",
                         "yujing_worker_ingest_to_eval_seconds_count",
                         "yujing_worker_envelopes_total", "yujing_worker_passes_total"), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in got:
                got[sample.name] += sample.value
    return list(got.values())


async def health(s: aiohttp.ClientSession, http: str) -> dict:
    async with s.get(f"{http}/healthz") as r:
        return await r.json()


async def run_rate(s: aiohttp.ClientSession, meter: Meter, http: str, metrics_url: str,
                   tag: str, rate: int, seconds: float, probes_per_s: float, probes: Probes,
                   cpu: Cpu, warmup_s: float = 5.0) -> dict[str, float]:
    """Load at ``rate`` for ``warmup_s`` (not measured: the background stations' first
    readings, each a new series, the partitions' first checkpoints), then for ``seconds``
    with probes interleaved; figures of those ``seconds``."""
    url = f"{http}/v1/readings"
    batch = max(1, rate // 200)
    dt = batch / rate
    failures = [0]
    tasks: set[asyncio.Task] = set()
    names: list[str] = []

    async def pace(span_s: float) -> int:
        """Post the background load for ``span_s``, paced on the clock; readings sent."""
        start = time.perf_counter()
        k = 0
        while (now := time.perf_counter()) < start + span_s:
            due = start + k * dt
            if now >= due:
                ms = int(time.time() * 1000)
                items = [{"station": f"BG{(k * batch + i) % 1000:04d}", "metric": "rain_mm",
                          "ts": ms, "value": 0.0} for i in range(batch)]
                t = asyncio.create_task(post(s, url, items, failures))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                k += 1
                continue
            await asyncio.sleep(due - now)
        return k * batch

    await pace(warmup_s)
    before = await health(s, http)
    cpu0, own0 = cpu(), time.process_time()
    eval0 = await worker_eval(s, metrics_url)
    t0 = time.perf_counter()
    probing = meter.series(url, tag, seconds, probes_per_s, names, failures)
    sent = await pace(seconds)
    elapsed = time.perf_counter() - t0
    cpu1, own1 = cpu(), time.process_time()
    await asyncio.wait_for(probing, 30)
    if tasks:
        await asyncio.wait(list(tasks), timeout=30)
    await until(lambda: all(n in probes.warned and n in probes.notified for n in names), 15)
    after = await health(s, http)
    eval1 = await worker_eval(s, metrics_url)
    ingest_eval = [(eval1[k] - eval0[k]) for k in range(6)]
    stored = probes.lat_ms(probes.stored, names)
    warn, note = probes.lat_ms(probes.warned, names), probes.lat_ms(probes.notified, names)
    envs = after["envelopes"] - before["envelopes"]
    return {"load_readings_per_s": sent / elapsed, "probes": len(names),
            "warning_answered": len(warn), "notify_answered": len(note),
            "in_kafka_p50_ms": pct(stored, 0.5), "in_kafka_p99_ms": pct(stored, 0.99),
            "warning_p50_ms": pct(warn, 0.5), "warning_p99_ms": pct(warn, 0.99),
            "notify_p50_ms": pct(note, 0.5), "notify_p99_ms": pct(note, 0.99),
            **{f"hop_{hop}_{q}_ms": pct(probes.hop_ms(a, b, names), v)
               for hop, a, b in HOPS for q, v in (("p50", 0.5), ("p99", 0.99))},
            "append_time": probes.append_time,
            "readings_per_envelope": (after["accepted"] - before["accepted"]) / max(envs, 1),
            "failed_requests": failures[0],
            "worker_eval_ms_per_pass": 1000 * ingest_eval[0] / max(ingest_eval[1], 1),
            "worker_envelopes_per_pass": ingest_eval[4] / max(ingest_eval[5], 1),
            "worker_ingest_to_eval_mean_ms": 1000 * ingest_eval[2] / max(ingest_eval[3], 1),
            **{f"cpu_cores_{name}": (cpu1[name] - cpu0[name]) / elapsed for name in cpu0},
            "cpu_cores_bench_client": (own1 - own0) / elapsed}


async def session(http: str, metrics_url: str, bootstrap: str, topics: tuple[str, str],
                  partitions: int, hook_port: int, mode: str, rates: list[int],
                  args: argparse.Namespace, cpu: Cpu) -> dict[int, dict]:
    probes = Probes()
    meter = Meter(probes)
    out: dict[int, dict] = {}
    try:
        await stamp_on_append(bootstrap, topics)
        await meter.start(bootstrap, topics, partitions, hook_port)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
            # warm up: the worker has joined and the book delivers once a first probe is notified
            warm = f"LP{mode[0]}0-{int(time.time())}"
            fails = [0]
            ready = False
            for _ in range(int(args.ready_timeout / 5)):
                await meter.one(f"{http}/v1/readings", warm, fails)
                if await until(lambda: warm in probes.notified, 5):
                    ready = True
                    break
            if not ready:
                raise RuntimeError(f"no warning notified within {args.ready_timeout:.0f} s")
            for i, rate in enumerate(rates, 1):
                log(f"{mode}: {rate} readings/s for {args.seconds:.0f} s")
                out[rate] = await run_rate(s, meter, http, metrics_url, f"{mode[0]}{i}", rate,
                                           args.seconds, args.probes_per_s, probes, cpu,
                                           args.warmup)
    finally:
        await meter.stop()
    if args.dump is not None:   # every probe's wall-clock marks, to trace a slow one
        with args.dump.open("a", encoding="utf-8") as f:
            for station, marks in probes.marks.items():
                f.write(json.dumps({"mode": mode, "probe": station, **marks}) + "\n")
    return out


def run_mode(mode: str, broker: str, rates: list[int], args: argparse.Namespace) -> dict[int, dict]:
    tmp = Path(tempfile.mkdtemp(prefix=f"yujing-latrate-{mode}-"))
    hook_port = free_port()
    metrics_port = free_port()
    path = write_config(tmp, mode, broker, hook_port, args.partitions, metrics_port,
                        args.linger_ms)
    cfg = load_config(path)
    sup = Supervisor(cfg, path, log_dir=tmp / "logs")
    ends = sup.start(quiet_children=True)
    try:
        topics = (cfg.kafka.topics.readings, cfg.kafka.topics.warnings)
        return asyncio.run(session(ends.http, f"http://127.0.0.1:{metrics_port}/metrics",
                                   ends.kafka, topics,
                                   cfg.kafka.partitions, hook_port, mode, rates, args,
                                   lambda: {c.name: cpu_seconds(c.proc.pid) for c in sup.children}))
    finally:
        sup.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="50,5000", help="readings per second, comma-separated")
    ap.add_argument("--seconds", type=float, default=20, help="load time per rate")
    ap.add_argument("--probes-per-s", type=float, default=10)
    ap.add_argument("--modes", default="fixed,adaptive", help="gateway.batching, in this order")
    ap.add_argument("--broker", choices=("kafka", "tansu"), default=None,
                    help="default: kafka when `make kafka` installed it, else tansu")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--linger-ms", type=int, default=20, help="gateway.linger_ms")
    ap.add_argument("--ready-timeout", type=float, default=120)
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds of load at each rate before the probes and figures start")
    ap.add_argument("--dump", type=Path, default=None, metavar="FILE",
                    help="append each probe's wall-clock marks (ms) to FILE as JSON lines")
    args = ap.parse_args()
    broker = args.broker or ("kafka" if kafka_installed() else "tansu")
    rates = [int(r) for r in args.rates.split(",")]
    modes = args.modes.split(",")
    results = {mode: run_mode(mode, broker, rates, args) for mode in modes}
    print(f"broker: embedded {broker}; partitions: {args.partitions}; {args.seconds:.0f} s per "
          f"rate; {args.probes_per_s:g} probes/s")
    stamps = all(s.pop("append_time") for by_rate in results.values() for s in by_rate.values())
    print("hop marks: Kafka append time" if stamps else
          "hop marks: some records had the producer's time, not the append time: in_kafka is "
          "when the producer took the record")
    for mode, by_rate in results.items():
        for rate, f in by_rate.items():
            for name, v in f.items():
                print(f"[{mode} {rate}/s] {name}: {v:.1f}" if isinstance(v, float)
                      else f"[{mode} {rate}/s] {name}: {v}")
    if "fixed" in results and "adaptive" in results:
        for rate in rates:
            for name in COMPARED:
                a, b = results["fixed"][rate][name], results["adaptive"][rate][name]
                print(f"[fixed/adaptive {rate}/s] {name}: {a:.1f} / {b:.1f} = "
                      f"{a / b if b else float('nan'):.2f}")


if __name__ == "__main__":
    main()
