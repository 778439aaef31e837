"""The console on a bus in memory: what it asks of Kafka is exactly the ``Bus`` passed in.

No broker: the console's /v1 API and web JSON run on an in-process aiohttp
server, incident snapshots are handed to it the way ``Bus.follow`` would, and
the commands it sends are collected where ``Bus.send`` would produce them.
"""

from __future__ import annotations

import asyncio
import inspect

import msgspec
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from yujing.alerts.records import Command, State, Warning
from yujing.alerts.settings import person_hash
from yujing.config import Config
from yujing.connectors.bus import KafkaBus
from yujing.console.bus import Bus
from yujing.console.state import Console
from yujing.console.web import mount_console

TOKEN = "t-zhang-wei-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class MemoryBus:
    """Bus in memory: remembers what was asked of it; follow/tail wait until cancelled."""

    def __init__(self) -> None:
        self.ensured: list[str] = []
        self.sent: list[tuple[str, bytes, int]] = []
        self.followed: dict[str, object] = {}
        self.tailed: dict[str, int] = {}

    async def ensure_topics(self, names: list[str]) -> None:
        self.ensured += names

    async def send(self, topic: str, value: bytes, partition: int) -> None:
        self.sent.append((topic, value, partition))

    async def follow(self, topic: str, handle, caught_up: asyncio.Event) -> None:
        self.followed[topic] = handle
        caught_up.set()
        await asyncio.Event().wait()

    async def tail(self, topic: str, back: int, handle) -> None:
        self.tailed[topic] = back
        await asyncio.Event().wait()


def config() -> Config:
    return Config.model_validate({"console": {"tokens": {"zhang.wei": person_hash(TOKEN)}},
                                  "worker": {"rules_dir": "/nonexistent/rules"}})


def warning(partition: int = 3) -> Warning:
    return Warning(incident="441900-20250601080000-0001", key="rain@DG-HM-R01", rule="rain",
                   rule_name="暴雨", hazard="rainstorm", station="DG-HM-R01", town="虎门镇",
                   partition=partition, state=State.ACTIVE, grade=3, updated_ms=1)


async def serve(bus: MemoryBus, health: dict | None = None) -> TestClient:
    app = web.Application()
    mount_console(app, Console(config(), bus, lambda: None, lambda: health or {}))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def test_kafka_bus_has_the_shape_the_console_asks_for():
    """connectors.bus.KafkaBus implements console.bus.Bus without importing it."""
    for name in ("ensure_topics", "send", "follow", "tail"):
        want = inspect.signature(getattr(Bus, name))
        got = inspect.signature(getattr(KafkaBus, name))
        assert list(got.parameters) == list(want.parameters), name
        assert inspect.iscoroutinefunction(getattr(KafkaBus, name)), name


async def test_the_console_declares_its_topics_and_follows_them_through_the_bus():
    bus = MemoryBus()
    client = await serve(bus)
    try:
        await asyncio.sleep(0)
        assert bus.ensured == ["yujing.warnings", "yujing.commands", "yujing.incidents"]
        assert list(bus.followed) == ["yujing.incidents"]
        assert bus.tailed == {"yujing.readings": 2000, "yujing.deadletter": 200,
                              "yujing.events": 2000}
    finally:
        await client.close()


async def test_a_snapshot_from_the_bus_is_served_and_an_ack_goes_back_on_its_partition():
    bus = MemoryBus()
    client = await serve(bus)
    try:
        w = warning(partition=3)
        bus.followed["yujing.incidents"](w.incident.encode(), msgspec.json.encode(w))
        r = await client.get("/v1/warnings", headers=AUTH)
        assert r.status == 200 and [x["incident"] for x in await r.json()] == [w.incident]
        r = await client.post(f"/v1/warnings/{w.incident}/ack", json={"note": "on my way"},
                              headers=AUTH)
        assert r.status == 202
        [(topic, value, partition)] = bus.sent
        cmd = msgspec.json.decode(value, type=Command)
        assert (topic, partition) == ("yujing.commands", 3)
        assert (cmd.cmd, cmd.actor, cmd.incident, cmd.text) == ("ack", "zhang.wei", w.incident,
                                                                "on my way")
        # a record without a value removes the incident (past the book's retention)
        bus.followed["yujing.incidents"](w.incident.encode(), None)
        assert await (await client.get("/v1/warnings", headers=AUTH)).json() == []
    finally:
        await client.close()


async def test_a_silence_is_sent_to_every_partition():
    bus = MemoryBus()
    client = await serve(bus)
    try:
        r = await client.post("/v1/silences", headers=AUTH, json={
            "matchers": ["station=DG-HM-R01"], "duration": "2h", "reason": "maintenance"})
        assert r.status == 202
        assert sorted(p for _, _, p in bus.sent) == [0, 1, 2, 3]   # kafka.partitions: 4
        assert {t for t, _, _ in bus.sent} == {"yujing.commands"}
    finally:
        await client.close()


async def test_health_json_has_the_gateways_figures_and_the_window_as_written():
    bus = MemoryBus()
    client = await serve(bus, {"status": "ok", "accepted": 7})
    try:
        r = await client.get("/console/api/health", headers=AUTH)
        assert r.status == 200
        d = await r.json()
        assert d["gateway"] == {"status": "ok", "accepted": 7}
        assert d["window"]["keep"] == "24h"   # console.readings_window, as the config says it
        r = await client.get("/", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/console/"
    finally:
        await client.close()


async def test_every_page_and_json_view_answers():
    bus = MemoryBus()
    client = await serve(bus)
    try:
        w = warning()
        bus.followed["yujing.incidents"](w.incident.encode(), msgspec.json.encode(w))
        for path in ("/console/", "/console/login", "/console/map", "/console/roster",
                     "/console/health", f"/console/warnings/{w.incident}",
                     "/console/stations/DG-HM-R01", "/console/api/board",
                     f"/console/api/warnings/{w.incident}", "/console/api/health",
                     f"/v1/warnings/{w.incident}", "/v1/silences", "/v1/cap/feed.xml",
                     "/console/static/console.js"):
            r = await client.get(path, headers=AUTH, allow_redirects=False)
            assert r.status == 200, path
        detail = await (await client.get(f"/console/api/warnings/{w.incident}",
                                         headers=AUTH)).json()
        assert detail["incident"] == w.incident and detail["timeline"] == []
        r = await client.get("/console/api/stations/NOWHERE", headers=AUTH)
        assert r.status == 404
    finally:
        await client.close()
