"""A flood of junk waits for Kafka instead of losing dead letters (found by bench/malformed.py:
at 100,000 malformed items the gateway logged "dead letter … lost (Kafka backlog)" for
~23,000 of them, since more than ``max_pending`` letters were waiting for Tansu).

The backlog is made small here (200 letters) so a few concurrent requests or messages of
100 rejected items each are fifteen times over it, on a real Tansu and Mosquitto."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from tests.support.services import TopicReader, gateway_config, running_gateway
from tests.support.services import mqtt_publish as publish

ITEMS = 100   # rejected items per request/message: each gets its own letter (the cap is 100)
FLOOD = 30


def junk(k: int) -> bytes:
    t = int(time.time() * 1000) - 60_000
    return orjson.dumps([{"station": f"MFX-{k}", "metric": "rain_mm", "ts": t - i, "value": "x"}
                         for i in range(ITEMS)])


async def test_http_flood_of_rejections_loses_no_dead_letter(kafka, tmp_path):
    cfg = gateway_config(tmp_path, http={"rate_limit": None})
    async with running_gateway(cfg, kafka) as gw:
        gw.deadletters.max_pending = 200
        url = f"http://127.0.0.1:{cfg.http.port}/v1/readings"
        async with aiohttp.ClientSession() as http:
            async def post(k: int) -> int:
                async with http.post(url, data=junk(k)) as resp:
                    await resp.read()
                    return resp.status
            statuses = await asyncio.gather(*(post(k) for k in range(FLOOD)))
        assert statuses == [400] * FLOOD
        assert gw.deadletters.lost == 0
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as rd:
            await rd.until(lambda r: len(r) >= FLOOD * ITEMS, timeout=30)
            assert len(await rd.settle()) == FLOOD * ITEMS


async def test_mqtt_flood_of_rejections_loses_no_dead_letter(mosq, kafka, tmp_path):
    cfg = gateway_config(tmp_path, mqtt={"client_id": "gw-backpressure"})
    async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{mosq.port}") as gw:
        await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
        gw.deadletters.max_pending = 200
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as rd:
            # the subscription may still be on its way: one message until its letters arrive
            deadline = time.monotonic() + 20
            while not rd.records and time.monotonic() < deadline:
                await asyncio.to_thread(publish, mosq.port, [("yujing/sim/_/rain_mm", junk(-1))])
                try:
                    await rd.until(lambda r: len(r) >= ITEMS, timeout=2)
                except AssertionError:
                    pass
            first = len(await rd.settle())
            assert first % ITEMS == 0 and first > 0
            await asyncio.to_thread(publish, mosq.port, [("yujing/sim/_/rain_mm", junk(k))
                                                         for k in range(FLOOD)])
            await rd.until(lambda r: len(r) >= first + FLOOD * ITEMS, timeout=30)
            assert len(await rd.settle()) == first + FLOOD * ITEMS
        assert gw.deadletters.lost == 0
