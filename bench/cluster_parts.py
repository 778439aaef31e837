"""The parts of bench/cluster_fault.py: the deterministic rain, the paced HTTP clients, the
fault schedule, and reading the cluster's topics back to count what arrived."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker_restart import STAMP, Procs
from restart import stamp

from yujing.config import KafkaConfig
from yujing.connectors.kafka_broker import BrokerSpec, wait_answering
from yujing.connectors.topics import check, connect, specs
from yujing.envelope import decode

MIN = 60_000
DAY = 24 * 60 * MIN
MAX_STEPS = 20            # simulated minutes in one request at most (a backlog is chunked)
STORM, RAINSTORM, SHORT = "storm", "rainstorm-guangdong", "rain-short-intense"
GROUP = "yujing-worker"   # the worker's faust.App id is its consumer group
RESTORED = r"partition \d+: (?:restored checkpoint|no checkpoint)"


@dataclass(frozen=True)
class Plan:
    """The stream: ``stations`` rain gauges, one reading each per simulated minute, paced so
    that ``rate`` readings a second arrive for ``seconds``. Event times start a day before
    the bench did (inside the gateway's accepted age) and are the same in every run."""

    stations: int
    rate: int
    seconds: float
    t0: int = field(default_factory=lambda: int(time.time() * 1000) // MIN * MIN - DAY)

    @property
    def steps_per_s(self) -> float:
        return self.rate / self.stations

    @property
    def steps(self) -> int:
        return int(self.seconds * self.steps_per_s)

    def check(self) -> None:
        if self.steps < 300:
            raise SystemExit(f"{self.steps} simulated minutes are too few for the storms to rise "
                             "and clear: raise --seconds or --rate, or lower --stations (300+)")

    @staticmethod
    def station(i: int) -> str:
        return f"CF-R{i:04d}"

    @staticmethod
    def profile(i: int) -> str:
        return {0: "red", 1: "orange", 2: "short"}.get(i % 10, "drizzle")

    def storm_start(self, i: int) -> int:
        """Minute the storm begins: spread so warnings rise and clear all through the run,
        each at least 4.5 h before the end (a 3 h sum falls under 10 mm after it stops)."""
        return 5 + (i * 37) % max(1, self.steps - 275)

    def mm(self, i: int, k: int) -> float:
        """Rain in minute ``k`` at gauge ``i``: red 2 mm/min for an hour (120 mm in 3 h),
        orange 1 mm/min (60 mm), short 0.4 mm/min (24 mm in 1 h); drizzle now and then."""
        per = {"red": 2.0, "orange": 1.0, "short": 0.4}.get(self.profile(i))
        if per is not None:
            s = self.storm_start(i)
            return per if s <= k < s + 60 else 0.0
        return 0.1 if (i * 7 + k * 13) % 17 == 0 else 0.0

    def readings(self, gauges: list[int], k0: int, k1: int) -> list[dict]:
        return [{"station": self.station(i), "metric": "rain_mm", "ts": self.t0 + k * MIN,
                 "value": self.mm(i, k)} for k in range(k0, k1) for i in gauges]

    def registry(self) -> str:
        return "stations:\n" + "".join(
            f"  - {{id: {self.station(i)}, name: 雨量站{i}, kind: rain_gauge, town: T{i % 20:02d}}}\n"
            for i in range(self.stations))


def expected_known(transitions: set[tuple], plan: Plan) -> set[tuple]:
    """What the data were made to raise and clear, as (rule, station, kind) not in
    ``transitions``; plus any warning raised at a drizzling gauge (there should be none).
    A clear alone is not one: a partition that starts without a checkpoint forwards the
    first clear of every key (streams/state.py), so every gauge sends some."""
    have = {(t[0], t[1], t[2]) for t in transitions}
    want = set()
    for i in range(plan.stations):
        st, p = plan.station(i), plan.profile(i)
        if p in ("red", "orange"):
            want |= {(RAINSTORM, st, "raised"), (RAINSTORM, st, "cleared")}
        if p == "red":
            want.add((RAINSTORM, st, "upgraded"))
        if p != "drizzle":
            want |= {(SHORT, st, "raised"), (SHORT, st, "cleared")}
    stray = {t for t in have if t[2] != "cleared"
             and plan.profile(int(t[1].rsplit("R", 1)[1])) == "drizzle"}
    return (want - have) | stray


@dataclass
class Run:
    """What one run sent and what arrived."""

    started: float = 0.0
    ended: float = 0.0
    done: list[float] = field(default_factory=list)            # answered requests
    acked: dict[tuple[int, int], float] = field(default_factory=dict)   # (client, minute) -> t
    acked_count: int = 0
    retries: int = 0
    clients: int = 1
    faults: dict[str, float] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    transitions: set[tuple] = field(default_factory=set)
    first_emitted: dict[tuple, float] = field(default_factory=dict)
    repeats: int = 0
    lost: int = 0
    duplicates: int = 0
    lacks_spec: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    below_rf3: list[str] = field(default_factory=list)      # any topic, declared or not

    @property
    def achieved_rate(self) -> float:
        return self.acked_count / max(1e-9, self.ended - self.started)


async def client(c: int, http: aiohttp.ClientSession, url: str, plan: Plan, run: Run) -> None:
    """Gauges ``i % clients == c``, in order: each request carries every minute that fell due
    since the last answer (at most MAX_STEPS), and a refused one is sent again."""
    mine = [i for i in range(plan.stations) if i % run.clients == c]
    k = 0
    while k < plan.steps:
        due = min(plan.steps, int((time.time() - run.started) * plan.steps_per_s) + 1)
        if due <= k:   # the pace: wait for minute k's turn
            await asyncio.sleep(max(0.0, run.started + k / plan.steps_per_s - time.time()))
            continue
        upto = min(due, k + MAX_STEPS)
        body = orjson.dumps(plan.readings(mine, k, upto))
        while True:
            try:
                async with http.post(url, data=body,
                                     headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status == 200:
                        break
            except (aiohttp.ClientError, TimeoutError):
                pass
            run.retries += 1
            await asyncio.sleep(0.2)
        now = time.time()
        run.done.append(now)
        run.acked.update({(c, s): now for s in range(k, upto)})
        run.acked_count += len(mine) * (upto - k)
        k = upto


async def stream(base: str, plan: Plan, clients: int, faults: Faults | None) -> Run:
    run = Run(clients=clients)
    run.started = time.time()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = [client(c, http, f"{base}/v1/readings", plan, run) for c in range(clients)]
        if faults is not None:
            tasks.append(faults.run(run))
        await asyncio.gather(*tasks)
    run.ended = max(run.done)
    return run


async def sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.time()))


async def wait_log(path: Path, pattern: str, count: int, timeout: float) -> list[str]:
    """The log's time stamps of ``count`` lines matching ``pattern``, once there are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = re.findall(STAMP + pattern, path.read_text(errors="replace")) if path.exists() else []
        if len(hits) >= count:
            return hits
        await asyncio.sleep(0.2)
    raise SystemExit(f"{path}: no {pattern!r} x{count} in {timeout}s")


class Kafka:
    """The three nodes: kill one, start it again, ask who leads and who is in sync."""

    def __init__(self, bootstrap: str, nodes: list[BrokerSpec], argvs: dict[int, list[str]],
                 procs: Procs) -> None:
        self.bootstrap, self.nodes, self.argvs, self.procs = bootstrap, nodes, argvs, procs

    def wait_registered(self, timeout: float) -> None:
        alive = [self.procs.procs[f"kafka{s.node_id}"] for s in self.nodes]
        if not wait_answering(self.bootstrap, timeout, lambda: all(p.poll() is None for p in alive),
                              brokers=len(self.nodes)):
            raise SystemExit(f"the cluster did not form; logs in {self.procs.tmp}")

    def kill(self, node: int) -> None:
        self.procs.stop(f"kafka{node}", signal.SIGKILL)

    def restart(self, node: int) -> None:
        self.procs.start(f"kafka{node}", self.argvs[node])

    async def admin(self) -> AIOKafkaAdminClient:
        return await connect(self.bootstrap, 60)

    async def leader_of(self, topic: str, partition: int) -> int:
        admin = await self.admin()
        try:
            (t,) = await admin.describe_topics([topic])
            return next(p["leader"] for p in t["partitions"] if p["partition"] == partition)
        finally:
            await admin.close()

    async def wait_in_sync(self, timeout: float) -> float:
        """Until every partition of every topic has all its replicas in sync again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            admin = await self.admin()
            try:
                names = await admin.list_topics()
                lagging = [p for t in await admin.describe_topics(names) for p in t["partitions"]
                           if len(p["isr"]) < len(p["replicas"])]
            except Exception:   # the returning node is not yet answering: ask again
                lagging = [None]
            finally:
                await admin.close()
            if not lagging:
                return time.time()
            await asyncio.sleep(0.5)
        raise SystemExit(f"replicas not in sync after {timeout}s")


class Faults:
    """The fault schedule of a run, beside the stream: a broker, then the worker."""

    def __init__(self, kafka: Kafka, worker: list[str], a: argparse.Namespace,
                 partitions: int, readings: str = "yujing.readings") -> None:
        self.kafka, self.worker, self.a, self.partitions = kafka, worker, a, partitions
        self.readings = readings

    async def run(self, run: Run) -> None:
        await asyncio.gather(self.broker(run), self.worker_kill(run))

    async def broker(self, run: Run) -> None:
        await sleep_until(run.started + self.a.kill_broker_at)
        node = await self.kafka.leader_of(self.readings, 0)
        self.kafka.kill(node)
        run.faults["broker_killed"] = killed = time.time()
        run.figures["killed_node"] = node
        await sleep_until(killed + self.a.broker_down)
        self.kafka.restart(node)
        run.faults["broker_back"] = back = time.time()
        run.figures["isr_full_s"] = await self.kafka.wait_in_sync(300) - back

    async def worker_kill(self, run: Run) -> None:
        await sleep_until(run.started + self.a.kill_worker_at)
        procs = self.kafka.procs
        procs.stop("worker1", signal.SIGKILL)
        run.faults["worker_killed"] = killed = time.time()
        procs.start("worker2", self.worker)
        hits = await wait_log(procs.tmp / "worker2.log", RESTORED, self.partitions, 300)
        run.figures["worker_restart_s"] = max(stamp(h) for h in hits) - killed


async def read_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 120) -> list:
    """Every record of ``topic`` up to its end offsets, as (value, record time)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list = []
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await c.position(tp) < end[tp]]:
            if time.monotonic() > deadline:
                raise SystemExit(f"{topic}: not read to its end in {timeout}s")
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                out += [m.value for m in msgs]
        return out
    finally:
        await c.stop()


async def wait_caught_up(bootstrap: str, partitions: int, timeout: float,
                         readings: str = "yujing.readings", warnings: str = "yujing.warnings"
                         ) -> tuple[float | None, str]:
    """Until the worker's group has committed the end of every readings partition (the
    time it had) and the warnings topic has stopped growing for 3 s. Not in ``timeout``:
    None and the committed and end offsets, and the run is counted all the same."""
    deadline = time.monotonic() + timeout
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await c.start()
    await admin.start()
    try:
        tps = [TopicPartition(readings, p) for p in range(partitions)]
        wps = [TopicPartition(warnings, p) for p in range(partitions)]
        while True:
            end = await c.end_offsets(tps)
            done = await admin.list_consumer_group_offsets(GROUP, partitions=tps)
            if all(tp in done and done[tp].offset >= end[tp] for tp in tps):
                caught_up = time.time()
                break
            if time.monotonic() > deadline:
                return None, (f"the worker's group did not commit the end of {readings} in "
                              f"{timeout:.0f}s: committed " + ", ".join(
                                  f"{tp.partition}: {done[tp].offset if tp in done else None}/"
                                  f"{end[tp]}" for tp in tps))
            await asyncio.sleep(0.5)
        last, since = None, time.monotonic()
        while time.monotonic() - since < 3.0 and time.monotonic() < deadline + 30:
            now = await c.end_offsets(wps)
            if now != last:
                last, since = now, time.monotonic()
            await asyncio.sleep(0.3)
        return caught_up, ""
    finally:
        await c.stop()
        await admin.close()


async def count(run: Run, plan: Plan, bootstrap: str, partitions: int) -> None:
    """Lost and duplicated readings, the warning transitions, and topics not as declared."""
    seen: set[tuple[str, int]] = set()
    records = 0
    for value in await read_topic(bootstrap, "yujing.readings", partitions):
        cols = decode(value)
        records += len(cols)
        seen.update(zip([cols.stations[i] for i in cols.si.tolist()], cols.ts.tolist()))
    acked = {(plan.station(i), plan.t0 + k * MIN) for (c, k) in run.acked
             for i in range(c, plan.stations, run.clients)}
    run.lost, run.duplicates = len(acked - seen), records - len(seen)
    events = [orjson.loads(v) for v in await read_topic(bootstrap, "yujing.warnings", partitions)]
    for e in events:
        t = (e["rule"], e["station"], e["kind"], e["grade"], e["ts"])
        if t in run.transitions:
            run.repeats += 1
        run.transitions.add(t)
        run.first_emitted[t] = min(run.first_emitted.get(t, 1e18), e["emitted_ms"] / 1000)
    admin = await connect(bootstrap, 60)
    try:
        report = await check(admin, await specs(admin, KafkaConfig(partitions=partitions)),
                             bootstrap)
        run.lacks_spec = [f.text for f in report.mismatches]
        names = await admin.list_topics()
        run.below_rf3 = sorted(t["topic"] for t in await admin.describe_topics(names)
                               if min(len(p["replicas"]) for p in t["partitions"]) < 3)
    finally:
        await admin.close()
    stalls(run, plan)


def stalls(run: Run, plan: Plan) -> None:
    """Longest gaps, overall and in the window after each fault."""
    done = sorted([run.started, *run.done])
    gaps = list(zip(done, done[1:]))
    delays = []
    for t, emitted in run.first_emitted.items():
        i, k = int(t[1].rsplit("R", 1)[1]), (t[4] - plan.t0) // MIN
        acked = run.acked.get((i % run.clients, k))
        if acked is not None:
            delays.append((acked, emitted - acked))
    firsts = sorted(run.first_emitted.values())
    run.figures["gateway_stall_s"] = max(b - a for a, b in gaps)
    run.figures["worker_delay_s"] = max(d for _, d in delays) if delays else float("nan")
    run.figures["warning_gap_s"] = max((b - a for a, b in zip(firsts, firsts[1:])), default=0.0)
    marks = sorted((t, name) for name, t in run.faults.items() if name.endswith("killed"))
    for n, (t, name) in enumerate(marks):
        until = marks[n + 1][0] - 1 if n + 1 < len(marks) else float("inf")
        what = name.removesuffix("_killed")
        run.figures[f"gateway_stall_after_{what}_kill_s"] = max(
            (b - a for a, b in gaps if t - 1 <= a < until), default=0.0)
        run.figures[f"worker_delay_after_{what}_kill_s"] = max(
            (d for at, d in delays if t - 1 <= at < until), default=0.0)
