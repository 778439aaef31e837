"""Who watches the watchman: `yujing run`'s watchdog child against real faults.

A worker frozen with SIGSTOP while readings stream in, and a broker frozen the same way
(a hung broker: killing the broker would make `yujing run` stop everything, by design).
Each must reach the duty room's webhook as 系统自身故障 straight from the watchdog (the
worker is frozen, Kafka may be too), turn the gateway's /healthz to 503, stop the
heartbeat pings, and after SIGCONT give 已恢复, 200 and pings again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest_asyncio
from aiohttp import web

from tests.support.readings import rain
from tests.support.run import Running, local_app, start_run, stop_run, write_config
from yujing.alerts.settings import person_hash
from yujing.connectors.embedded import free_port

STALL_S = 8
UNREACHABLE_S = 6
TOKEN = "watchdog-test-duty-officer-token"
CONSOLE = {"tokens": {"duty": person_hash(TOKEN)}}     # console.tokens keeps hashes only
WATCHDOG = {"interval": "1s", "probe_timeout": "2s", "stall_after": f"{STALL_S}s",
            "unreachable_after": f"{UNREACHABLE_S}s", "repeat": "10m", "retry": "5s",
            "ping_interval": "1s"}


@dataclass
class Pings:
    """A real HTTP endpoint the watchdog's dead man's switch fetches."""

    port: int
    at: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping"


@pytest_asyncio.fixture
async def pings() -> AsyncIterator[Pings]:
    p = Pings(free_port())

    async def ping(request: web.Request) -> web.Response:
        p.at.append(time.monotonic())
        return web.Response(text="ok")

    async with local_app(p.port, web.get("/ping", ping)):
        yield p


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
        return r.status, await r.json(content_type=None)


async def until(what: str, check, timeout: float, every: float = 0.3):
    """Poll ``check()`` (async, truthy when done) until ``timeout``; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            got = await check()
            if got:
                return got
        await asyncio.sleep(every)
    raise AssertionError(f"{what}: not within {timeout}s")


async def stream(http: aiohttp.ClientSession, url: str, stop: asyncio.Event) -> None:
    """Current dry readings at two gauges every 0.3 s: data keeps arriving, no warning."""
    while not stop.is_set():
        now = int(time.time() * 1000)
        items = [{"station": s, "metric": "rain_mm", "ts": now, "value": 0.0}
                 for s in ("DG-HM-R01", "DG-CA-R01")]
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            async with http.post(url, json=items, timeout=aiohttp.ClientTimeout(total=3)):
                pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.3)


async def healthy(http: aiohttp.ClientSession, r: Running) -> dict | None:
    """The gateway's /healthz once it reads a watchdog that reports nothing wrong."""
    status, doc = await get(http, f"{r.http}/healthz")
    wd = doc.get("watchdog") or {}
    return doc if status == 200 and wd.get("reachable") and wd.get("status") == "ok" else None


async def faulty(http: aiohttp.ClientSession, r: Running, key: str) -> dict | None:
    status, doc = await get(http, f"{r.http}/healthz")
    keys = [f["key"] for f in (doc.get("watchdog") or {}).get("faults", [])]
    return doc if status == 503 and key in keys else None


def titled(*words: str):
    return lambda m: all(w in m["title"] for w in words)


async def evaluated(http: aiohttp.ClientSession, metrics_url: str) -> float:
    """Readings the worker has evaluated (its /metrics)."""
    async with http.get(metrics_url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        text = await resp.text()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("yujing_worker_readings_total"))


async def fault_and_recovery(r: Running, receiver, pings: Pings, pid: int, key: str,
                             words: tuple[str, str], limit_s: float, worker_metrics: str,
                             also: str | None = None) -> float:
    """Once the worker evaluates the stream, freeze ``pid``; the fault ``key`` (and ``also``)
    must be messaged, 503 and ping-free; thaw it; then 已恢复, 200 and pings again.
    Returns seconds from the freeze to the message."""
    async with aiohttp.ClientSession() as http:
        stop = asyncio.Event()
        feeder = asyncio.create_task(stream(http, f"{r.http}/v1/readings", stop))
        try:
            await until("the worker evaluates the stream",
                        lambda: _true_async(evaluated(http, worker_metrics)), 120)
            doc = await until("watchdog healthy before the fault", lambda: healthy(http, r), 90)
            wd_url = doc["watchdog"]["url"].removesuffix("/healthz")
            assert (await get(http, f"{wd_url}/healthz"))[0] == 200
            async with http.get(f"{wd_url}/heartbeat") as hb:
                assert hb.status == 200 and (await hb.text()).strip() == "ok"
            await until("heartbeat pings while healthy", lambda: _true(len(pings.at) >= 2), 30)

            os.kill(pid, signal.SIGSTOP)
            frozen = time.monotonic()
            try:
                msg = await receiver.wait_for(titled("【系统自身故障】", words[0]), limit_s)
                took = time.monotonic() - frozen
                assert words[1] in msg["title"], msg
                if also is not None:
                    await receiver.wait_for(titled("【系统自身故障】", also), limit_s)
                assert "处置" in msg["message"] and "What to do" in msg["message"]
                doc = await until("gateway /healthz 503 with the fault",
                                  lambda: faulty(http, r, key), 20)
                seen_fault = time.monotonic()
                assert doc["status"] == "fault"
                # the duty console's health page shows it (its JSON; the page renders it)
                async with http.get(f"{r.http}/console/api/health",
                                    headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                    shown = (await resp.json())["gateway"]["watchdog"]["faults"]
                assert key in [f["key"] for f in shown]
                assert words[0] in next(f["what"]["zh"] for f in shown if f["key"] == key)
                status, wd = await get(http, f"{wd_url}/healthz")
                assert status == 503 and key in [f["key"] for f in wd["faults"]]
                async with http.get(f"{wd_url}/heartbeat") as hb:
                    assert hb.status == 503 and words[0] in await hb.text()
                still_faulty = time.monotonic()
            finally:
                os.kill(pid, signal.SIGCONT)
            # the watchdog did not ping while it reported the fault (one ping may be in flight)
            assert [t for t in pings.at if seen_fault + 1.5 < t < still_faulty] == []

            back = await receiver.wait_for(titled("【已恢复】", words[0]), 120)
            assert "Recovered" in back["title"]
            await until("gateway /healthz 200 again", lambda: healthy(http, r), 60)
            thawed = time.monotonic()
            await until("pings again", lambda: _true(any(t > thawed for t in pings.at)), 30)
            return took
        finally:
            stop.set()
            await feeder


async def _true(value: bool) -> bool:
    return value


async def _true_async(value) -> bool:
    return bool(await value)


def metrics_of(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


async def test_a_frozen_worker_is_reported_directly_and_recovers(receiver, run_factory, pings):
    port = free_port()
    r = run_factory(receiver.port, worker={"metrics_port": port}, console=CONSOLE,
                    watchdog={**WATCHDOG, "ping_url": pings.url})
    # the frozen worker's metrics server froze with it: that is a fault of its own
    took = await fault_and_recovery(r, receiver, pings, r.pids["worker"], "worker-stalled",
                                    ("停止消费", "worker stopped consuming"), STALL_S + 60,
                                    metrics_of(port), also="预警引擎（worker）无应答")
    print(f"worker SIGSTOP -> 系统自身故障 at the webhook: {took:.1f} s (stall_after {STALL_S} s "
          "counted from the committed offset's last move, interval 1 s)")
    stalls = [m for m in receiver.messages if "停止消费" in m["title"]]
    assert sum("【系统自身故障】" in m["title"] for m in stalls) == 1     # repeat is 10m


async def test_a_frozen_broker_is_reported_directly_and_recovers(receiver, run_factory, pings):
    port = free_port()
    r = run_factory(receiver.port, worker={"metrics_port": port}, console=CONSOLE,
                    watchdog={**WATCHDOG, "ping_url": pings.url})
    took = await fault_and_recovery(r, receiver, pings, r.pids["tansu"], "kafka-unreachable",
                                    ("Kafka无应答", "Kafka is not answering"),
                                    UNREACHABLE_S + 60, metrics_of(port))
    print(f"broker SIGSTOP -> 系统自身故障 at the webhook: {took:.1f} s "
          f"(unreachable_after {UNREACHABLE_S} s)")


async def test_a_frozen_worker_on_apache_kafka(kafka_home, receiver, pings, tmp_path):
    """The same on Apache Kafka (`kafka.embedded: kafka`), whose end offsets are exact."""
    port = free_port()
    config, http_port, mqtt_port = write_config(
        tmp_path, receiver.port, kafka={"embedded": "kafka"}, console=CONSOLE,
        worker={"metrics_port": port}, watchdog={**WATCHDOG, "ping_url": pings.url})
    r = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)   # a JVM starts first
    try:
        took = await fault_and_recovery(r, receiver, pings, r.pids["worker"], "worker-stalled",
                                        ("停止消费", "worker stopped consuming"), STALL_S + 60,
                                        metrics_of(port))
    finally:
        stop_run(r)
    print(f"worker SIGSTOP on Kafka -> 系统自身故障 at the webhook: {took:.1f} s")


async def test_a_failing_notification_channel_reaches_the_duty_room_another_way(hooks,
                                                                                run_factory):
    """The worker's only channel answers 500: its failed attempts, read from the worker's
    /metrics, make a channel fault that the watchdog sends over its own channel."""
    hooks.failing.add("hook")
    r = run_factory(hooks.port, worker={"metrics_port": free_port()},
                    watchdog={**WATCHDOG, "channel_failures": 2, "notify": [hooks.url("duty")]})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{r.http}/v1/readings", json=rain("DG-HM-R01")) as resp:
            assert resp.status == 200, await resp.text()     # 54 mm in 3 h: orange, notified
    [msg] = await hooks.wait("duty", titled("【系统自身故障】", "通知渠道 json"), 120)
    assert "failed in a row" in msg["message"] and "请电话通知" in msg["message"]
    assert "hook" in hooks.failed                             # the worker did try, and failed
    async with aiohttp.ClientSession() as http:     # the gateway reads the watchdog each second
        doc = await until("gateway /healthz 503", lambda: faulty(http, r, "channel:json"), 20)
    assert [f["key"] for f in doc["watchdog"]["faults"]] == ["channel:json"]
