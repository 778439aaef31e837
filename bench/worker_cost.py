"""The worker's CPU per reading against the engine's on the same envelopes (issue 17, target 1).

Used by bench/throughput.py, which prints the figures (run it, not this module); its HTTP and
MQTT publishers and its watcher consumer live here too, to keep throughput.py short:

    .venv/bin/python bench/throughput.py --readings 100000 --runs 3 --broker tansu
    .venv/bin/python bench/throughput.py --readings 100000 --runs 3 --broker tansu --profile out/

After each run, :func:`read_back` reads that run's envelopes back from ``yujing.readings``
(a plain aiokafka consumer, partitions assigned, from the earliest offset), grouped by
partition and in offset order: the very records the worker consumed. :func:`engine_replay`
then puts them through the worker's own rule path in this process: one fresh
:class:`~yujing.pipeline.Pipeline` per partition built as ``Pipelines`` builds it (every pack
under the configured rules_dir, the registry, lateness and time zone of the config), one
``decode`` and one ``Pipeline.handle`` per envelope, timed in CPU seconds
(``time.process_time``). That is the engine-only cost the worker's CPU is compared with
(target: worker readings per CPU-second >= 0.5 x engine readings per CPU-second).

``--profile DIR`` makes throughput.py record the worker with py-spy during the runs
(:class:`Profiler`, ``py-spy record --format raw``: collapsed stacks) and cProfile the
engine replay (:func:`engine_profile`), and prints the top frames of both.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from yujing import clock
from yujing.config import Config
from yujing.envelope import decode, partition_for
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import load_registry
from yujing.streams.runner import PartitionRunner

# ---------------------------------------------------------------- the bench's clients (throughput.py)

WORKER_COUNTERS = ("yujing_worker_passes", "yujing_worker_envelopes",
                   "yujing_worker_eval_cpu_seconds")


def worker_counters(url: str) -> dict[str, float]:
    """The worker's own pass, envelope and engine-CPU counters from its /metrics (empty
    when it does not answer: the figures that need them are then left out)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode("utf-8")
    except OSError:
        return {}
    return {fam.name: sum(s.value for s in fam.samples if s.name.endswith("_total"))
            for fam in text_string_to_metric_families(text) if fam.name in WORKER_COUNTERS}


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
        self.next_offset: dict[int, int] = {}  # partition -> offset after the last reading seen
        self.warned: dict[str, float] = {}  # station -> monotonic time its warning was seen
        self.warnings: dict[str, int] = {}  # run prefix -> warning events seen
        self.kinds: dict[tuple, int] = {}  # (rule, kind) -> warning events seen
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
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
        self.next_offset[partition] = max(self.next_offset.get(partition, 0), offset + 1)
        cols = decode(value)
        if not cols.stations:
            return
        prefix = cols.stations[0].split("-", 1)[0]
        self.counts[prefix] = self.counts.get(prefix, 0) + len(cols)
        self.envelopes[prefix] = self.envelopes.get(prefix, 0) + 1

    def _on_warning(self, partition: int, offset: int, value: bytes) -> None:
        ev = orjson.loads(value)
        station = ev.get("station", "")
        self.warned.setdefault(station, time.monotonic())
        prefix = station.split("-", 1)[0]
        self.warnings[prefix] = self.warnings.get(prefix, 0) + 1
        key = (ev.get("rule"), ev.get("kind"))
        self.kinds[key] = self.kinds.get(key, 0) + 1

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
            try:
                await asyncio.wait_for(c.stop(), 10)
            except (asyncio.CancelledError, Exception) as exc:  # a fetch timed out under load
                print(f"# watcher consumer stop: {exc!r}", file=sys.stderr, flush=True)


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


# ---------------------------------------------------------------- engine replay

@dataclass
class EngineCost:
    readings: int
    envelopes: int
    decode_cpu_s: float
    engine_cpu_s: float  # Pipeline.handle only
    events: int = 0  # warning events the replay raised

    @property
    def engine_per_cpu_s(self) -> float:
        return self.readings / self.engine_cpu_s if self.engine_cpu_s > 0 else float("nan")

    @property
    def decode_per_cpu_s(self) -> float:
        return self.readings / self.decode_cpu_s if self.decode_cpu_s > 0 else float("nan")


async def read_back(bootstrap: str, topic: str, partitions: int, prefix: str, expected: int,
                    timeout_s: float) -> dict[int, list[tuple[int, bytes]]]:
    """This run's envelopes (first station named ``<prefix>-...``) as (offset, record), per
    partition in offset order, once they hold ``expected`` readings."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=10_000,
                         fetch_max_wait_ms=20, max_partition_fetch_bytes=8 * 1024 * 1024)
    await asyncio.wait_for(c.start(), 30)
    try:
        c.assign([TopicPartition(topic, p) for p in range(partitions)])
        await c.seek_to_beginning()
        out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        got = 0
        deadline = time.monotonic() + timeout_s
        while got < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read back {got} of {expected} readings in {timeout_s:.0f} s")
            batches = await c.getmany(timeout_ms=200, max_records=5000)
            for tp, msgs in batches.items():
                for m in msgs:
                    cols = decode(m.value)
                    if cols.stations and cols.stations[0].split("-", 1)[0] == prefix:
                        out[tp.partition].append((m.offset, m.value))
                        got += len(cols)
        return out
    finally:
        await asyncio.wait_for(c.stop(), 10)


def pipelines_like_worker(cfg: Config) -> dict[int, Pipeline]:
    """Fresh pipelines as the worker's ``Pipelines._new_pipeline`` makes them, started as a
    partition without a checkpoint starts (``PartitionRunner.start_empty``: the first clear
    of each key is passed on, as the bench's worker does for every fresh station)."""
    w, parts = cfg.worker, cfg.kafka.partitions
    rules, registry = load_rules(w.rules_dir), load_registry(w.registry)
    pipes = {}
    for p in range(parts):
        runner = PartitionRunner(p, Pipeline(rules, registry, w.lateness.ms,
                                             owns=lambda s, p=p: partition_for(s, parts) == p,
                                             tz=cfg.timezone))
        runner.start_empty()
        pipes[p] = runner.pipeline
    return pipes


def engine_replay(cfg: Config, envelopes: dict[int, list[tuple[int, bytes]]],
                  start: dict[int, int] | None = None,
                  prof: cProfile.Profile | None = None) -> EngineCost:
    """Decode every envelope, then handle them partition by partition on fresh pipelines.
    Envelopes before ``start[partition]`` (the untimed ``--introduce`` readings) are handled
    first, untimed, as the worker handled them before its CPU was read. One CPU clock reading
    around each timed phase (a reading costs ~20 µs here: not noise per envelope)."""
    start = start or {}
    pipes = pipelines_like_worker(cfg)
    now = clock.now_ms()
    for p, many in envelopes.items():
        for offset, payload in many:
            if offset < start.get(p, 0):
                pipes[p].handle(decode(payload), now)
    timed = {p: [v for o, v in many if o >= start.get(p, 0)] for p, many in envelopes.items()}
    c0 = time.process_time()
    decoded = {p: [decode(payload) for payload in payloads] for p, payloads in timed.items()}
    c1 = time.process_time()
    if prof is not None:
        prof.enable()
    outs = [pipes[p].handle(cols, now) for p, many in decoded.items() for cols in many]
    c2 = time.process_time()
    if prof is not None:
        prof.disable()
    n = sum(len(cols) for many in decoded.values() for cols in many)
    return EngineCost(n, len(outs), c1 - c0, c2 - c1, sum(len(o.events) for o in outs))


def engine_profile(cfg: Config, envelopes: dict[int, list[tuple[int, bytes]]],
                   start: dict[int, int] | None = None, top: int = 25) -> str:
    """cProfile of one engine replay: the top functions by own time."""
    prof = cProfile.Profile()
    engine_replay(cfg, envelopes, start, prof)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


class Profiler:
    """py-spy recording one process (the worker) until :meth:`stop`; raw collapsed stacks."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        exe = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if exe is None:
            raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy (a tool, not a "
                               "project dependency)")
        self.out = out
        self.proc = subprocess.Popen([exe, "record", "--format", "raw", "--rate", str(rate),
                                      "--nonblocking", "-o", str(out), "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, timeout_s: float = 30) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        # the file can appear a moment after py-spy exits: wait for it to stop growing
        deadline, size = time.monotonic() + timeout_s, -1
        while time.monotonic() < deadline:
            now = self.out.stat().st_size if self.out.exists() else -1
            if now > 0 and now == size:
                return
            size = now
            time.sleep(0.5)


def top_frames(collapsed: Path, top: int = 25, own: bool = True) -> list[tuple[str, float]]:
    """Share of samples per frame: own time (leaf frame) or inclusive (anywhere in the stack),
    from py-spy's raw output (``frame;frame;... count`` per line)."""
    totals: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text("utf-8", "replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        total += int(n)
        for f in ([frames[-1]] if own else set(frames)):
            totals[f] += int(n)
    return [(f, c / max(total, 1)) for f, c in totals.most_common(top)]


def print_profile(worker: Path, engine: Path) -> None:
    """The worker's top frames (py-spy, own and inclusive share of samples; whole runs,
    the in-process replays excluded as they run in this process) and the engine's."""
    for own in (True, False):
        print(f"# worker py-spy, {'own' if own else 'inclusive'} share of samples ({worker}):")
        for frame, share in top_frames(worker, 30, own):
            print(f"#   {100 * share:5.1f}%  {frame}")
    if engine.exists():
        print(f"# engine replay cProfile ({engine}):")
        for line in engine.read_text("utf-8").splitlines()[:45]:
            print(f"#   {line}")
