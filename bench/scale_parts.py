"""The parts of bench/scale_out.py: a one-node Apache Kafka with a gateway and several
workers as child processes, what each worker's log says (its partitions, the readings it
evaluated), and the probe that times every partition's evaluations for the rebalance gaps.

The probe: one gauge per partition (``PROBE-R<n>``, by the gateway's own station hash) gets
one reading a minute before the stream's first, then every ``--probe-every`` seconds a reading 3 h
older than that (each with its own event time, so the gateway's repeat filter passes it).
Each is more than the worker's lateness (1 h) behind its series, so the worker that owns the
partition dead-letters it (``worker:late``) with its own clock in ``received_ms``: one time
stamp per evaluation per partition, with no rule and no warning state touched, and no
event time ahead of the stream (the watermark stays the stream's)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker_restart import STAMP  # bench/broker_restart.py: a worker log line's time stamp
from cluster_fault import Owned  # children with their own logs that end with the bench
from cluster_parts import MIN, Kafka, read_topic
from restart import stamp

from yujing.connectors.embedded import free_port, wait_port
from yujing.connectors.kafka_broker import bootstrap_of, cluster, cluster_id, kafka_home, prepare
from yujing.envelope import partition_for

HEARTBEAT = re.compile(STAMP + r"worker: (\d+) readings, \d+ late, \d+ active warnings "
                       r"\(partitions ([\d,]*)\)")
JOINED = re.compile(STAMP + r"Revoking previously assigned partitions set\(\)()")
RESTORED = re.compile(STAMP + r"partition (\d+): (?:restored checkpoint|no checkpoint)")


@dataclass
class Beat:
    """A worker's 5 s heartbeat: wall time, readings evaluated by its current pipelines,
    the partitions it holds."""

    t: float
    readings: int
    partitions: frozenset[int]


def beats(path: Path) -> list[Beat]:
    text = path.read_text("utf-8", "replace") if path.exists() else ""
    return [Beat(stamp(s), int(n), frozenset(int(p) for p in ps.split(",") if p))
            for s, n, ps in HEARTBEAT.findall(text)]


def restores(path: Path) -> list[tuple[float, int]]:
    """(wall time, partition) of every partition this worker restored or started empty."""
    text = path.read_text("utf-8", "replace") if path.exists() else ""
    return [(stamp(s), int(p)) for s, p in RESTORED.findall(text)]


def joins(path: Path) -> list[tuple[float, str]]:
    """Wall time of a worker's first group join (it revokes the empty set it started with)."""
    text = path.read_text("utf-8", "replace") if path.exists() else ""
    return [(stamp(s), x) for s, x in JOINED.findall(text)]


@dataclass
class Stack:
    """One Kafka node, a gateway and named workers (``w1``, ``w2`` ...), each worker with its
    own config (own data dir) and log, all in one consumer group."""

    tmp: Path
    partitions: int
    session_timeout: float
    checkpoint_s: float = 10.0
    registry: str | None = None
    heap_mb: int = 512
    procs: Owned = field(init=False)
    signalled: set[str] = field(default_factory=set)
    http: str = ""
    bootstrap: str = ""

    def start(self, workers: int) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.procs = Owned(self.tmp)
        (spec,) = cluster(self.tmp / "kafka", 1, heap_mb=self.heap_mb)
        argv = prepare(spec, kafka_home(), cluster_id(self.tmp / "kafka"))
        self.procs.start("kafka1", argv)
        self.bootstrap = bootstrap_of([spec])
        Kafka(self.bootstrap, [spec], {spec.node_id: argv}, self.procs).wait_registered(120)
        port = free_port()
        self.http = f"http://127.0.0.1:{port}"
        self.procs.start("gateway", self._argv("gateway", self._config("gateway", port)))
        if not wait_port("127.0.0.1", port, 120):
            raise SystemExit(f"the gateway did not listen; see {self.tmp / 'gateway.log'}")
        for _ in range(workers):
            self.add_worker()

    def _config(self, name: str, port: int = 0) -> Path:
        worker = {"rules_dir": str(ROOT / "rules"), "data_dir": str(self.tmp / name),
                  "nodata_check_s": 3600, "checkpoint_interval": f"{self.checkpoint_s}s"}
        if self.registry is not None:
            (self.tmp / "stations.yaml").write_text(self.registry, encoding="utf-8")
            worker["registry"] = str(self.tmp / "stations.yaml")
        cfg = {"kafka": {"bootstrap": self.bootstrap, "partitions": self.partitions,
                         "session_timeout_s": self.session_timeout,
                         "rebalance_timeout_s": self.session_timeout},
               "http": {"port": port or free_port(), "max_body_bytes": 16 << 20},
               "worker": worker, "notify": {"default": []}, "log_level": "info"}
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        return path

    @staticmethod
    def _argv(role: str, config: Path) -> list[str]:
        return [sys.executable, "-m", "yujing", role, "--config", str(config)]

    def workers(self) -> list[str]:
        return [n for n in self.procs.procs if n.startswith("w")]

    def live_workers(self) -> list[str]:
        return [n for n in self.workers() if self.procs.procs[n].poll() is None]

    def add_worker(self) -> str:
        name = f"w{len(self.workers()) + 1}"
        self.procs.start(name, self._argv("worker", self._config(name)))
        return name

    def send(self, name: str, sig: int) -> None:
        """The signal only (no wait: the event loop keeps feeding); the stack reaps later."""
        self.signalled.add(name)
        self.procs.procs[name].send_signal(sig)

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def pid(self, name: str) -> int:
        return self.procs.procs[name].pid

    def held(self, since: float) -> dict[str, frozenset[int]]:
        """Each live worker's partitions by its last heartbeat after ``since`` (absent: none)."""
        out = {}
        for n in self.live_workers():
            bs = [b for b in beats(self.log(n)) if b.t >= since]
            out[n] = bs[-1].partitions if bs else frozenset()
        return out

    async def wait_split(self, since: float, timeout: float) -> dict[str, frozenset[int]]:
        """Until the live workers' heartbeats after ``since`` split every partition between
        them, each holding some and none twice."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in set(self.workers()) - self.signalled - set(self.live_workers()):
                raise SystemExit(f"{n} exited by itself; see {self.log(n)}")
            held = self.held(since)
            parts = [p for ps in held.values() for p in ps]
            if held and all(held.values()) and sorted(parts) == list(range(self.partitions)):
                return held
            await asyncio.sleep(0.5)
        raise SystemExit(f"the workers did not split the {self.partitions} partitions in "
                         f"{timeout:.0f} s: {self.held(since)}; logs in {self.tmp}")

    def close(self) -> None:
        self.procs.stop_all()


# ---------------------------------------------------------------- the probe and the gaps

def probe_stations(partitions: int) -> list[str]:
    """One gauge per partition, named ``PROBE-R<n>`` (n from 90000) so that cluster_parts,
    which reads a gauge's number after its last R, takes it for one it never sent to."""
    found: dict[int, str] = {}
    for n in range(90_000, 190_000):
        found.setdefault(partition_for(f"PROBE-R{n}", partitions), f"PROBE-R{n}")
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise RuntimeError("no probe station found for every partition")


async def probe(url: str, stations: list[str], t0_ms: int, every: float,
                stop: asyncio.Event) -> int:
    """Post one late reading per probe gauge every ``every`` s until ``stop``; returns how
    many ticks were sent. A refused or failed request is skipped (the next one follows)."""
    first = [{"station": s, "metric": "rain_mm", "ts": t0_ms - MIN, "value": 0.0}
             for s in stations]
    timeout = aiohttp.ClientTimeout(total=10)
    ticks = 0
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(url, data=orjson.dumps(first)) as r:
            if r.status != 200:
                raise SystemExit(f"the probe's first readings were refused: {r.status}")
        next_at = time.monotonic()
        while not stop.is_set():
            ticks += 1
            body = [{"station": s, "metric": "rain_mm", "ts": t0_ms - 180 * MIN + ticks,
                     "value": 0.0} for s in stations]
            try:
                async with http.post(url, data=orjson.dumps(body)) as r:
                    await r.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            next_at += every
            try:   # the pace of the probe, ended early by stop
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
            except TimeoutError:
                pass
    return ticks


async def evaluations(bootstrap: str, partitions: int, probes: list[str]) -> dict[int, list[float]]:
    """Partition -> sorted wall times (s) at which the worker first evaluated each probe
    reading, from the dead letters it wrote (a replay after a restore dead-letters a probe
    reading again: the first time counts)."""
    owner = {s: p for p, s in enumerate(probes)}
    first: dict[tuple[str, int], float] = {}
    for value in await read_topic(bootstrap, "yujing.deadletter", partitions):
        d = orjson.loads(value)
        raw = d.get("raw")
        if d.get("source") != "worker:late" or not isinstance(raw, dict):
            continue
        if raw.get("station") in owner:
            key = (raw["station"], raw["ts"])
            first[key] = min(first.get(key, float("inf")), d["received_ms"] / 1000)
    out: dict[int, list[float]] = {p: [] for p in range(partitions)}
    for (st, _), t in first.items():
        out[owner[st]].append(t)
    return {p: sorted(ts) for p, ts in out.items()}


def longest_gap(times: list[float], t0: float, t1: float) -> tuple[float, float]:
    """(length, start) of the longest interval between two evaluations that ends in (t0, t1]:
    a rebalance's pause begins before its event is over and ends after it, so it counts for
    the window it ends in. No evaluation in the window: the open interval up to t1."""
    before = [t for t in times if t <= t0][-1:]
    inside = [t for t in times if t0 < t <= t1]
    if not inside:
        start = before[0] if before else t0
        return t1 - start, start
    pts = before + inside
    return max(((b - a, a) for a, b in zip(pts, pts[1:])), default=(0.0, pts[0]))


def moved(stack: Stack, t0: float, t1: float) -> set[int]:
    """Partitions some worker restored (took over) between t0 and t1."""
    return {p for n in stack.workers() for t, p in restores(stack.log(n)) if t0 <= t <= t1}
