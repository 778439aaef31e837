"""`yujing run` end to end on embedded brokers: MQTT and HTTP in, apprise out."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from tests.support.readings import rain
from tests.support.run import alive, stop_run
from tests.support.services import mqtt_publish

HOUR = 3_600_000


async def dead_letters(bootstrap: str, want: int, timeout: float = 30) -> list[dict]:
    consumer = AIOKafkaConsumer("yujing.deadletter", bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(orjson.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_mqtt_and_http_to_orange_warning_with_dead_letters(receiver, run_factory):
    r = run_factory(receiver.port)
    start = int(time.time() * 1000) - 4 * HOUR
    # MQTT: a malformed payload first, then 36 × 5 min of 1.5 mm at Humen (54 mm in 3 h → orange).
    mqtt_publish(r.mqtt_port, [
        ("yujing/test/DG-HM-R01/rain_mm", b"{this is not json"),
        ("yujing/test/DG-HM-R01/rain_mm", orjson.dumps(rain("DG-HM-R01", start, 36, 1.5))),
    ])
    # HTTP: one bad item inside a batch; the valid rest gives Chang'an an orange warning too.
    items = rain("DG-CA-R01", start, 36, 1.5)
    items.insert(3, {"station": "DG-CA-R01", "metric": "rain_mm", "ts": start, "value": "lots"})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{r.http}/v1/readings", json=items) as resp:
            body = await resp.json()
            assert resp.status == 200, body
    assert body["accepted"] == 36
    assert body["rejected"] == [{"index": 3, "reason": "value must be a number"}]

    humen = await receiver.wait_for(lambda m: "虎门" in m["title"] and "橙色" in m["title"], 90)
    changan = await receiver.wait_for(lambda m: "长安" in m["title"] and "橙色" in m["title"], 30)
    assert "sum(rain_mm, 3h)" in humen["message"] and "441900-" in humen["message"]
    assert "DG-CA-R01" in changan["message"]
    # 54 mm never reaches red (100 mm in 3 h)
    assert not any("红色" in m["title"] for m in receiver.messages)

    letters = await dead_letters(r.kafka, 2)
    sources = {d["source"].split(":")[0]: d for d in letters}
    assert "not valid JSON" in sources["mqtt"]["reason"]
    assert sources["mqtt"]["raw"].startswith("{this is not json")
    assert sources["http"]["reason"] == "value must be a number"
    assert sources["http"]["index"] == 3

    # after SIGINT every child is gone and every port is released
    assert stop_run(r, signal.SIGINT) == 0
    assert set(r.pids) == {"tansu", "amqtt", "worker", "gateway", "watchdog"}
    assert [name for name, pid in r.pids.items() if alive(pid)] == []
    kafka_port = int(r.kafka.rsplit(":", 1)[1])
    http_port = int(r.http.rsplit(":", 1)[1])
    for port in (kafka_port, r.mqtt_port, http_port):
        assert port_free(port), f"port {port} still bound after shutdown"


async def test_killed_supervisor_leaves_no_orphans(receiver, run_factory):
    r = run_factory(receiver.port)
    assert all(alive(pid) for pid in r.pids.values())
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(p) for p in r.pids.values()):
        await asyncio.sleep(0.2)
    assert [name for name, pid in r.pids.items() if alive(pid)] == []
