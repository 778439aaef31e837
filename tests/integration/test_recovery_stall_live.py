"""The recovery watch acting in a real worker (yujing/streams/recovery_watch.py).

A restarted worker recovers its tables from their changelogs before it processes anything.
Here the first two records Faust takes from the pipeline checkpoint's changelog (the
checkpoint's one chunk and its manifest) are lost inside the worker (tests/support/drop_head,
a sitecustomize the run's children load): the recovery waits for them for good while the
consumer has read past them, and the worker processes nothing at all. The watch must run
during this first recovery (Faust starts timers only after it), see the consumer past
records the recovery never applied, say so, and read the partition again after two looks
(10 s, not the 20 s of a plain stall); the worker then restores its checkpoint and raises
warnings again. Without the watch running then, the worker waited for good.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import aiohttp

from tests.support.readings import MIN, rain
from tests.support.run import start_run, stop_run, write_config

STATION = "DG-HM-R01"            # partition 0 of 2
CHANGELOG = "yujing-worker-yujing-pipeline-changelog"
FAULT = Path(__file__).resolve().parents[1] / "support" / "drop_head"


async def until(pred, what: str, run, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := pred():
            return got
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s; log:\n{run.text()[-4000:]}")


async def restart_losing(receiver, tmp_path: Path, monkeypatch, count: int):
    """A first run that checkpoints partition 0 (6 mm of rain at STATION), stopped; a
    second run whose worker loses the first ``count`` records of the checkpoint's
    changelog partition 0; its start time."""
    config, http_port, mqtt_port = write_config(
        tmp_path, receiver.port, kafka={"embedded": "kafka", "partitions": 2},
        worker={"checkpoint_interval": "2s"})
    t0 = int(time.time() * 1000) - 5 * 3_600_000
    first = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{first.http}/v1/readings", json=rain(STATION, t0, 12, 0.5)) as r:
                assert r.status == 200, await r.text()
        await until(lambda: "partition 0: checkpoint 1 at" in first.text(),
                    "a first checkpoint of partition 0", first)
    finally:
        assert stop_run(first, signal.SIGTERM, timeout=90) == 0, first.text()[-3000:]

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(FAULT), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("YUJING_TEST_DROP_HEAD", f"{CHANGELOG}:0")
    monkeypatch.setenv("YUJING_TEST_DROP_COUNT", str(count))
    (tmp_path / "run.log").rename(tmp_path / "first.log")
    second = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    await until(lambda: f"test fault: dropped {count} record(s) of {CHANGELOG}[0]"
                in second.text(), "the fault dropping changelog records", second)
    return second, t0


async def orange_needs_the_restored_rain(run, receiver, t0: int) -> None:
    """6 mm before the restart and 45 mm after it: orange (≥ 50 mm in 3 h) only with the
    restored window."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{run.http}/v1/readings",
                             json=rain(STATION, t0 + 60 * MIN, 9, 5.0)) as r:
            assert r.status == 200, await r.text()
    page = await receiver.wait_for(lambda m: "虎门" in m["title"], 90)
    assert "橙色" in page["title"] + page.get("message", ""), page


async def test_a_recovery_that_waits_for_a_lost_changelog_record_reads_it_again(
        kafka_home, receiver, tmp_path, monkeypatch):
    second, t0 = await restart_losing(receiver, tmp_path, monkeypatch, 2)
    try:
        stalled = await until(lambda: re.search(
            rf"recovery of {CHANGELOG}\[0\] stalled for (\d+)s: read to (-?\d+) of (\d+), "
            r"consumer at (\d+)", second.text()), "the recovery watch's warning", second)
        assert stalled.group(1) == "4", stalled.group(0)       # the consumer had read past it
        assert int(stalled.group(4)) > int(stalled.group(2)) + 1, stalled.group(0)
        await until(lambda: "partition 0: restored checkpoint" in second.text(),
                    "partition 0 restored after the read again", second)
        await orange_needs_the_restored_rain(second, receiver, t0)
    finally:
        assert stop_run(second, signal.SIGTERM, timeout=90) == 0, second.text()[-3000:]


async def test_a_checkpoint_the_recovery_left_a_hole_in_is_read_from_the_changelog(
        kafka_home, receiver, tmp_path, monkeypatch):
    """Only the checkpoint's chunk is lost: its manifest comes after it, so Faust's
    recovery completes, with a hole. The worker must read the checkpoint from the
    changelog itself, not start the partition empty (which re-reads the whole readings
    partition, and loses what retention deleted)."""
    second, t0 = await restart_losing(receiver, tmp_path, monkeypatch, 1)
    try:
        await until(lambda: "partition 0: restored checkpoint 1" in second.text(),
                    "partition 0 restored from the changelog", second)
        log = second.text()
        assert re.search(rf"partition 0: no whole checkpoint came with the table's recovery; "
                         rf"reading the checkpoint from {CHANGELOG}\[0\] itself", log), log[-3000:]
        assert "partition 0: no checkpoint, starting empty" not in log
        await orange_needs_the_restored_rain(second, receiver, t0)
    finally:
        assert stop_run(second, signal.SIGTERM, timeout=90) == 0, second.text()[-3000:]
