"""Hostile input at the gateway (issue 12, findings 2 and 3), on a real broker and server:
a deeply nested item neither stalls MQTT delivery nor makes HTTP answer 500, and one large
request of junk costs one refusal and one dead letter, a bounded reply, and a token that
sends too much gets 429 with Retry-After."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from tests.support.services import (
    TopicReader,
    gateway_config,
    letters_of,
    metric_value,
    readings_of,
    running_gateway,
)
from tests.support.services import mqtt_publish as publish

MIN = 60_000
NESTED = b"[" * 300 + b"]" * 300          # orjson reads 1024 levels but writes only 254


def now_ms() -> int:
    return int(time.time() * 1000)


async def post(url: str, data: bytes) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=data) as resp:
            text = await resp.text()
            return resp.status, (orjson.loads(text) if text else {}), dict(resp.headers)


def reading(t: int, value: float = 1.0) -> dict:
    return {"station": "DG-HM-R01", "metric": "rain_mm", "ts": t, "value": value}


async def test_nested_items_get_400_and_a_dead_letter_not_500(kafka, tmp_path):
    cfg = gateway_config(tmp_path)
    t = now_ms() - MIN
    nested_detail = {"type": "smoke", "camera": "DG-FF-C01", "ts": t, "confidence": 0.9,
                     "detail": orjson.loads(b'{"a":' * 300 + b"1" + b"}" * 300)}
    async with running_gateway(cfg, kafka):
        base = f"http://127.0.0.1:{cfg.http.port}"
        for path in ("/v1/readings", "/v1/events"):
            status, body, _ = await post(base + path, NESTED)
            assert status == 400, (path, status, body)
            assert body["accepted"] == 0 and len(body["rejected"]) == 1
        status, body, _ = await post(base + "/v1/events", b"[" + _dumps_deep(nested_detail) + b"]")
        assert status == 400 and "nested at most" in body["rejected"][0]["reason"], body
        status, body, _ = await post(base + "/v1/readings", orjson.dumps(reading(t)))
        assert status == 200 and body["accepted"] == 1
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as rd:
            letters = letters_of(await rd.until(lambda r: len(r) >= 3))
    assert all(len(x["raw"]) <= cfg.gateway.deadletter_raw_bytes for x in letters)
    assert any(x["raw"].startswith("[[[") for x in letters)


def _dumps_deep(obj: dict) -> bytes:
    """orjson cannot write 300 levels (that is the point); build the JSON text by hand."""
    head = orjson.dumps({k: v for k, v in obj.items() if k != "detail"})[:-1]
    return head + b',"detail":' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}"


async def test_nested_mqtt_messages_do_not_stall_delivery(mosq, kafka, tmp_path):
    """Receive Maximum 5: with the old code five unacknowledged nested messages stopped all
    QoS 1 delivery, so the valid reading after them was never stored."""
    cfg = gateway_config(tmp_path, mqtt={"client_id": "gw-nested", "protocol": "5",
                                         "receive_maximum": 5})
    t = now_ms() - MIN
    async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{mosq.port}") as gw:
        await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
        topic = "yujing/sim/DG-HM-R01/rain_mm"
        # the subscription may still be on its way: publish until the first valid one arrives
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            deadline = time.monotonic() + 20
            while not readings_of(rd.records) and time.monotonic() < deadline:
                await asyncio.to_thread(publish, mosq.port, [
                    (topic, orjson.dumps({"ts": t, "value": 0.5}))], True)
                await rd.settle(0.5)
            assert readings_of(rd.records), "the gateway never subscribed"
            await asyncio.to_thread(publish, mosq.port, [(topic, NESTED)] * 12
                                    + [(topic, orjson.dumps({"ts": t + MIN, "value": 2.5}))], True)
            got = await rd.until(lambda r: ("DG-HM-R01", "rain_mm", t + MIN, 2.5)
                                 in readings_of(r), 20)
        assert ("DG-HM-R01", "rain_mm", t + MIN, 2.5) in readings_of(got)
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as rd:
            letters = letters_of(await rd.until(lambda r: len(r) >= 12))
        assert all(x["source"] == f"mqtt:{topic}" for x in letters)


async def test_a_huge_junk_body_costs_one_refusal_and_one_dead_letter(kafka, tmp_path):
    cfg = gateway_config(tmp_path)
    junk = b"[" + b"0," * 2_000_000 + b"0]"          # 4 MB, two million items
    async with running_gateway(cfg, kafka):
        base = f"http://127.0.0.1:{cfg.http.port}"
        status, body, _ = await post(base + "/v1/readings", junk)
        assert status == 413 and "too many items" in body["error"], body
        lines = b"\n".join(b"x" for _ in range(200_000))
        status, body, _ = await post(base + "/api/v2/write?precision=ms", lines)
        assert status == 413 and "too many lines" in body["message"], body
        # below the item cap: the reply lists 100 and counts the rest; 100 letters + a summary
        status, body, _ = await post(base + "/v1/readings", b"[" + b"0," * 4999 + b"0]")
        assert status == 400 and len(body["rejected"]) == 100, len(body["rejected"])
        assert body["rejected_more"] == 4900
        assert [r["index"] for r in body["rejected"]] == list(range(100))
        async with TopicReader(kafka, cfg.kafka.topics.deadletter) as rd:
            letters = letters_of(await rd.until(lambda r: len(r) >= 103))
            letters = letters_of(await rd.settle(1.0))
    codes = [x["code"] for x in letters]
    assert codes.count("too_many") == 2 and codes.count("summary") == 1
    assert len(letters) == 103, codes
    [summary] = [x for x in letters if x["code"] == "summary"]
    assert summary["reason"].startswith("4900 more item(s)")


async def test_a_token_over_its_rate_gets_429_with_retry_after(kafka, tmp_path):
    cfg = gateway_config(tmp_path, http={"rate_limit": "100/minute"})
    t = now_ms() - 300 * MIN
    async with running_gateway(cfg, kafka):
        url = f"http://127.0.0.1:{cfg.http.port}/v1/readings"
        status, body, _ = await post(url, orjson.dumps([reading(t + i * MIN) for i in range(80)]))
        assert status == 200 and body["accepted"] == 80
        status, body, headers = await post(url, orjson.dumps(
            [reading(t + (80 + i) * MIN) for i in range(50)]))
        assert status == 429 and int(headers["Retry-After"]) >= 1, (status, body)
        assert "rate" in body["error"]
        # what was refused is not stored: only the first 80 readings reach Kafka
        status, _, _ = await post(url, orjson.dumps([reading(t + 200 * MIN)] * 30))
        assert status == 429
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            got = readings_of(await rd.until(lambda r: len(readings_of(r)) >= 80))
            got = readings_of(await rd.settle(1.0))
    assert len(got) == 80


async def test_an_mqtt_source_over_its_rate_is_held_back_not_dropped(mosq, kafka, tmp_path):
    """MQTT has no 429: a source over ``http.rate_limit`` has its message held unacknowledged
    and handled once its allowance is back, so a backlog drains at the rate and nothing is
    lost."""
    cfg = gateway_config(tmp_path, http={"rate_limit": "50/second"},
                         mqtt={"client_id": "gw-rate", "protocol": "5"})
    t = now_ms() - 120 * MIN
    topic = "yujing/sim/_/rain_mm"
    batches = [[reading(t + (k * 40 + i) * MIN, 0.5) for i in range(40)] for k in range(3)]
    async with running_gateway(cfg, kafka, f"mqtt://127.0.0.1:{mosq.port}") as gw:
        await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
        async with TopicReader(kafka, cfg.kafka.topics.readings) as rd:
            deadline = time.monotonic() + 20   # until the subscription is in place
            while not readings_of(rd.records) and time.monotonic() < deadline:
                await asyncio.to_thread(publish, mosq.port, [(topic, orjson.dumps(
                    [reading(t - MIN, 0.1)]))], True)
                await rd.settle(0.5)
            await asyncio.to_thread(publish, mosq.port,
                                    [(topic, orjson.dumps(b)) for b in batches], True)
            got = await rd.until(lambda r: len(readings_of(r)) >= 121, 30)
        deferred = metric_value(gw_metrics(), "yujing_gateway_mqtt_rate_deferred_total",
                                source="anonymous")
    assert {x[2] for x in readings_of(got)} >= {r["ts"] for b in batches for r in b}
    assert deferred >= 1, "no message was held back: the rate limit did not apply to MQTT"


def gw_metrics() -> str:
    from yujing import metrics as m
    body, _ = m.exposition()
    return body.decode()
