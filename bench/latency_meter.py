"""The measuring side of bench/latency_rate.py and bench/warning_events.py: probes, their
wall-clock marks, the watcher of the readings and warnings topics, the webhook apprise posts
to, and the loop they run on apart from the load (``Meter``).

Its own module so that the benches that drive the stack stay readable; nothing here starts
the stack.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from dataclasses import dataclass, field

import aiohttp
import msgspec
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from yujing.domain import WarningEvent
from yujing.envelope import decode

PROBE = re.compile(r"LP[a-z]\d+-\d+")


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
