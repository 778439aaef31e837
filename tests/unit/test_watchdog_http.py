"""The watchdog's /healthz and /heartbeat, the gateway's reading of them and its /healthz
status, on real aiohttp servers in the test's loop (no Kafka, no worker: the watchdog's
state is set as a round would leave it)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from yujing import clock
from yujing.alerts.selfcheck import Fault
from yujing.clock import FakeClock
from yujing.config import Config
from yujing.connectors.http import GATEWAY_KEY, healthz
from yujing.connectors.watchdog_status import WatchdogStatus
from yujing.watchdog.service import Watchdog
from yujing.watchdog.web import make_app

STALL = Fault("worker-stalled", "worker", 1_000, {"partitions": [1], "behind": 9})


async def watchdog_client() -> tuple[Watchdog, TestClient]:
    dog = Watchdog(Config(), None)
    client = TestClient(TestServer(make_app(dog)))
    await client.start_server()
    return dog, client


async def test_a_watchdog_that_never_finished_a_round_is_stale_not_ok():
    dog, client = await watchdog_client()
    try:
        r = await client.get("/healthz")
        assert r.status == 503 and (await r.json())["status"] == "stale"
        r = await client.get("/heartbeat")
        assert r.status == 503 and "stale" in await r.text()
    finally:
        await client.close()


async def test_healthz_and_heartbeat_follow_the_faults():
    dog, client = await watchdog_client()
    try:
        dog.status.round_ms = clock.now_ms()
        r = await client.get("/healthz")
        assert r.status == 200 and (await r.json())["faults"] == []
        assert (await (await client.get("/heartbeat")).text()) == "ok\n"

        dog.status.faults = [STALL]
        r = await client.get("/healthz")
        doc = await r.json()
        assert r.status == 503 and doc["status"] == "fault"
        [f] = doc["faults"]
        assert f["key"] == "worker-stalled" and f["since_ms"] == 1_000
        assert f["what"] == {"zh": "预警引擎停止消费", "en": "the worker stopped consuming"}
        assert "预警引擎停止消费" in await r.text()          # Chinese as Chinese, not \\u escapes
        r = await client.get("/heartbeat")
        assert r.status == 503 and "预警引擎停止消费" in await r.text()

        dog.status.faults = []
        dog.status.round_ms = clock.now_ms() - 60_000        # the loop hung a minute ago
        assert (await client.get("/heartbeat")).status == 503
    finally:
        await client.close()


async def test_the_gateway_reads_the_watchdog_and_notices_when_it_is_gone():
    dog, client = await watchdog_client()
    fake = FakeClock(clock.now_ms())
    status = WatchdogStatus(str(client.make_url("/")), now_ms=fake.now_ms)
    try:
        dog.status.round_ms, dog.status.faults = clock.now_ms(), [STALL]
        async with aiohttp.ClientSession() as session:
            await status.read(session)
            snap = status.snapshot()
            assert snap["reachable"] and snap["status"] == "fault"
            assert [f["key"] for f in snap["faults"]] == ["worker-stalled"]
            await client.close()                               # the watchdog is gone
            await status.read(session)
            assert status.snapshot()["reachable"]              # the last word is still fresh
            fake.advance(7_000)
            snap = status.snapshot()
            assert not snap["reachable"] and snap["faults"] == []
            assert snap["error"].startswith("watchdog unreachable: ")
    finally:
        await client.close()


async def test_no_watchdog_configured_is_no_watchdog_section():
    assert WatchdogStatus(None).snapshot() is None


class Figures:
    """Stands in for a Gateway: /healthz only asks it for its health figures."""

    def __init__(self, watchdog: dict | None) -> None:
        self.watchdog = watchdog

    def health(self) -> dict:
        return {"status": "ok", "accepted": 3, "watchdog": self.watchdog}


async def gateway_healthz(watchdog: dict | None) -> tuple[int, dict]:
    app = web.Application()
    app[GATEWAY_KEY] = Figures(watchdog)
    app.router.add_get("/healthz", healthz)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/healthz")
        return r.status, await r.json()


async def test_the_gateway_healthz_is_503_while_the_watchdog_reports_a_fault():
    status, doc = await gateway_healthz({"reachable": True, "status": "fault",
                                         "faults": [{"key": "kafka-unreachable"}]})
    assert status == 503 and doc["status"] == "fault" and doc["accepted"] == 3


async def test_the_gateway_healthz_stays_200_without_faults_or_watchdog_and_says_so():
    assert (await gateway_healthz(None))[0] == 200
    assert (await gateway_healthz({"reachable": True, "status": "ok", "faults": []}))[0] == 200
    status, doc = await gateway_healthz({"reachable": False, "faults": [],
                                         "error": "watchdog unreachable: refused"})
    assert status == 200 and doc["watchdog"]["error"] == "watchdog unreachable: refused"
