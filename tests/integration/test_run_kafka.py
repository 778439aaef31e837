"""`yujing run` with kafka.embedded: kafka: Apache Kafka as a child on disk under the data
dir. An open warning and its timeline survive a stop and start (SIGTERM), the book goes on
with the same incident, and a SIGKILLed supervisor leaves no Java process behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import aiohttp

from tests.support.console import TOKENS
from tests.support.kafka import brokers_under
from tests.support.readings import HOUR, MIN, rain
from tests.support.run import Running, alive, start_run, stop_run, write_config

STATION = "DG-HM-R01"            # partition 0 of 2
RULE = "rainstorm-guangdong"
AUTH = {"Authorization": f"Bearer {TOKENS['l1']}"}


def kafka_config(tmp: Path, receiver_port: int) -> tuple[Path, int, int]:
    return write_config(tmp, receiver_port, kafka={"embedded": "kafka", "partitions": 2},
                        worker={"checkpoint_interval": "2s"}, console={"tokens": TOKENS})


async def post(http: aiohttp.ClientSession, r: Running, readings: list[dict]) -> None:
    async with http.post(f"{r.http}/v1/readings", json=readings) as resp:
        assert resp.status == 200, await resp.text()


async def incident(http: aiohttp.ClientSession, r: Running, pred, timeout: float = 60) -> dict:
    """The first storm incident at STATION (with its timeline) that satisfies ``pred``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        async with http.get(f"{r.http}/v1/warnings?state=all", headers=AUTH) as resp:
            found = [w for w in await resp.json() if w["rule"] == RULE and w["station"] == STATION]
        for w in found:
            async with http.get(f"{r.http}/v1/warnings/{w['incident']}", headers=AUTH) as resp:
                last = full = await resp.json()
            if pred(full):
                return full
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {RULE} incident at {STATION} as wanted in {timeout}s: {last}")


def wait_log(r: Running, pattern: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, r.text()):
        assert time.monotonic() < deadline, f"no {pattern!r} in:\n{r.text()[-3000:]}"
        time.sleep(0.2)


def about(receiver, iid: str, grade_word: str) -> list[dict]:
    return [m for m in receiver.messages if iid in m["message"] and grade_word in m["title"]]


async def test_an_open_warning_and_its_timeline_survive_a_restart(kafka_home, receiver, tmp_path):
    config, http_port, mqtt_port = kafka_config(tmp_path, receiver.port)
    t0 = int(time.time() * 1000) - 4 * HOUR
    first = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        async with aiohttp.ClientSession() as http:
            await post(http, first, rain(STATION, t0, 12, 1.5))
            wait_log(first, r"partition 0: checkpoint 1 at")
            await post(http, first, rain(STATION, t0 + 60 * MIN, 24, 1.5))   # 54 mm in 3 h
            before = await incident(http, first, lambda w: w["grade"] == 3 and any(
                e["kind"] == "notified" for e in w["timeline"]))
    finally:
        code = stop_run(first, signal.SIGTERM, timeout=90)
    log1 = first.text()
    assert code == 0, log1[-3000:]
    assert "yujing: stopped kafka" in log1 and not brokers_under(tmp_path)
    await receiver.wait_for(lambda m: before["incident"] in m["message"], 15)

    second = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        assert second.kafka == first.kafka            # the port of the last start
        async with aiohttp.ClientSession() as http:
            after = await incident(http, second, lambda w: w["incident"] == before["incident"])
            assert after["state"] == before["state"] == "active"
            assert after["timeline"][:len(before["timeline"])] == before["timeline"]
            # the worker's book kept it too: 72 mm more in the next hour upgrades the same
            # incident to red (the 3 h sum holds 36 mm from before the restart)
            await post(http, second, rain(STATION, t0 + 180 * MIN, 12, 6.0))
            red = await incident(http, second, lambda w: w["grade"] == 4)
        assert red["incident"] == before["incident"]
        assert red["timeline"][:len(before["timeline"])] == before["timeline"]
        await receiver.wait_for(lambda m: red["incident"] in m["message"] and "红色" in m["title"],
                                30)
        await asyncio.sleep(1.0)                      # room for a repeated orange page
        assert len(about(receiver, before["incident"], "橙色")) == 1
    finally:
        assert stop_run(second, signal.SIGTERM, timeout=90) == 0


def test_kill_9_of_the_supervisor_leaves_no_java_process(kafka_home, tmp_path):
    config, http_port, mqtt_port = kafka_config(tmp_path, 9)
    r = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        assert brokers_under(tmp_path) == [r.pids["kafka"]]
    finally:
        os.kill(r.proc.pid, signal.SIGKILL)
        r.proc.wait()
    deadline = time.monotonic() + 60
    while brokers_under(tmp_path) or any(alive(p) for p in r.pids.values()):
        assert time.monotonic() < deadline, (
            f"left after kill -9: {brokers_under(tmp_path)}, "
            f"{[n for n, p in r.pids.items() if alive(p)]}")
        time.sleep(0.2)
