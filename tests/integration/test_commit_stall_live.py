"""The commit watch acting in a real worker (yujing/streams/commit_watch.py).

Two records of ``yujing.readings[0]`` are lost inside Faust right after the worker starts
(tests/support/drop_head, a sitecustomize the run's children load): Faust's offset commit for
that partition then waits behind them for good. The watch must see the gap stand for
``worker.commit_stall``, say so in the log, and read the partition again from its committed
offset, after which the group's commit reaches the end of the partition.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.readings import MIN, rain
from tests.support.run import Running, start_run, stop_run, write_config

STATION = "DG-HM-R01"            # partition 0 of 2
READINGS = TopicPartition("yujing.readings", 0)
FAULT = Path(__file__).resolve().parents[1] / "support" / "drop_head"


async def offsets(bootstrap: str) -> tuple[int, int]:
    """The worker group's committed offset of READINGS (0: none) and the partition's end."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="yujing-worker",
                         enable_auto_commit=False)
    await c.start()
    try:
        committed = await c.committed(READINGS) or 0
        end = (await c.end_offsets([READINGS]))[READINGS]
        return committed, end
    finally:
        await c.stop()


async def until(pred, what: str, r: Running, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await pred()
        if got:
            return got
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s; log:\n{r.text()[-4000:]}")


async def post_each(r: Running, readings: list[dict]) -> None:
    """One reading per request, each in Kafka before the next: one envelope each."""
    async with aiohttp.ClientSession() as http:
        for reading in readings:
            _, end = await offsets(r.kafka)
            async with http.post(f"{r.http}/v1/readings", json=[reading]) as resp:
                assert resp.status == 200, await resp.text()

            async def grew(end=end):
                return (await offsets(r.kafka))[1] > end
            await until(grew, "the envelope in Kafka", r, 20)


async def test_a_commit_stuck_behind_lost_records_is_read_again(kafka_home, receiver, tmp_path,
                                                                 monkeypatch):
    config, http_port, mqtt_port = write_config(
        tmp_path, receiver.port, kafka={"embedded": "kafka", "partitions": 2},
        worker={"checkpoint_interval": "2s", "commit_stall": "2s"})
    t0 = int(time.time() * 1000) - 2 * 3_600_000
    readings = rain(STATION, t0, 12, 0.2)

    first = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        await post_each(first, readings[:3])

        async def committed():
            c, end = await offsets(first.kafka)
            return c > 0 and c == end
        await until(committed, "a first commit of yujing.readings[0]", first)
    finally:
        assert stop_run(first, signal.SIGTERM, timeout=90) == 0, first.text()[-3000:]

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(FAULT), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("YUJING_TEST_DROP_HEAD", f"{READINGS.topic}:{READINGS.partition}")
    (tmp_path / "run.log").rename(tmp_path / "first.log")
    second = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        # Only once the worker holds partition 0 again (Faust has read its committed offset):
        # records fetched before that are committed over by Faust itself, lost or not
        # (bench/README.md, scale_out.py), and this test is about the stuck commit.
        async def restored():
            return "partition 0: restored checkpoint" in second.text()
        await until(restored, "partition 0 restored in the second run", second)
        before, _ = await offsets(second.kafka)
        await post_each(second, [dict(x, ts=x["ts"] + 30 * MIN) for x in readings[3:9]])
        text = await until(lambda: asyncio.sleep(0, re.search(
            r"commits of yujing\.readings\[0\] stuck for \d+s at (\d+)", second.text())),
            "the commit watch's warning", second)
        assert int(text.group(1)) == before          # stuck at the commit the first run left
        assert "test fault: dropped" in second.text()

        async def caught_up():
            c, end = await offsets(second.kafka)
            return c == end and c >= before + 6
        await until(caught_up, "the commit at the end of yujing.readings[0]", second)
    finally:
        assert stop_run(second, signal.SIGTERM, timeout=90) == 0, second.text()[-3000:]


async def test_a_warning_record_lost_inside_the_worker_still_reaches_the_duty_officer(
        broker_kind, receiver, tmp_path, monkeypatch):
    """The first ``raised`` event Faust takes from ``yujing.warnings`` is dropped before the
    book's agent sees it, behind first-look clears that went through (a hole in the middle
    of the partition, which Faust notes as a gap). Faust's own bookkeeping commits over
    such a record: the warning is never routed. The strict commit
    (yujing/streams/offsets.py) waits for it and the commit watch reads the partition
    again, so the officer is paged. On Apache Kafka and on Tansu (`make demo`'s broker)."""
    run = await rain_with_a_fault(broker_kind, receiver, tmp_path, monkeypatch,
                                  "yujing.warnings:*", YUJING_TEST_DROP_NOTED="1",
                                  YUJING_TEST_DROP_MATCH='"kind":"raised"')
    try:
        dropped = await until(lambda: asyncio.sleep(0, re.search(
            r"test fault: dropped 1 record\(s\) of yujing\.warnings\[(\d)\] at offset (\d+)",
            run.text())), "the fault dropping a raised event", run)
        partition, offset = int(dropped.group(1)), int(dropped.group(2))
        lost = await warning_at(run.kafka, partition, offset)
        assert lost.station == STATION and lost.kind.value == "raised", lost
        page = await receiver.wait_for(
            lambda m: lost.rule_name in m["title"] + m.get("message", ""), 90)
        assert "虎门" in page["title"], page
        assert re.search(rf"commits of yujing\.warnings\[{partition}\] stuck", run.text())
    finally:
        assert stop_run(run, signal.SIGTERM, timeout=90) == 0, run.text()[-3000:]


async def test_a_lost_last_record_with_nothing_after_it_is_read_again(broker_kind, receiver,
                                                                      tmp_path, monkeypatch):
    """The only envelope of ``yujing.readings[0]``, which raises an orange rain warning, is
    lost inside Faust and nothing follows it: no acknowledgement stands behind the hole, so
    there is no gap among the acknowledgements to see (the rebalance test's loss,
    yujing/streams/commit_stall.py). The watch must see a partition whose records nobody
    acknowledged, none of them on its way to an agent, and read it again: the duty
    officer is paged."""
    run = await rain_with_a_fault(broker_kind, receiver, tmp_path, monkeypatch,
                                  f"{READINGS.topic}:{READINGS.partition}")
    try:
        await until(lambda: asyncio.sleep(0, "test fault: dropped 1 record(s) of "
                                             "yujing.readings[0]" in run.text()),
                    "the fault dropping the envelope", run)
        page = await receiver.wait_for(lambda m: "虎门" in m["title"], 90)
        assert "橙色" in page["title"] + page.get("message", ""), page
        assert re.search(r"commits of yujing\.readings\[0\] stuck for \d+s at 0: the "
                         r"partition holds records up to offset 0, no agent acknowledged",
                         run.text()), run.text()[-3000:]
    finally:
        assert stop_run(run, signal.SIGTERM, timeout=90) == 0, run.text()[-3000:]


async def rain_with_a_fault(broker_kind, receiver, tmp_path: Path, monkeypatch, drop: str,
                            **env: str) -> Running:
    """`yujing run` (commit watch at 2 s) whose worker loses the first record of ``drop``
    (tests/support/drop_head; ``env``: its other settings), and STATION's orange rain
    posted to it."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(FAULT), os.environ.get("PYTHONPATH", "")) if p))
    for name, value in {"YUJING_TEST_DROP_HEAD": drop, "YUJING_TEST_DROP_COUNT": "1",
                        **env}.items():
        monkeypatch.setenv(name, value)
    config, http_port, mqtt_port = write_config(
        tmp_path, receiver.port, kafka={"embedded": broker_kind.name, "partitions": 2},
        worker={"commit_stall": "2s"})
    run = start_run(tmp_path, config, http_port, mqtt_port, timeout=180)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{run.http}/v1/readings", json=rain(STATION)) as resp:
                assert resp.status == 200, await resp.text()
    except BaseException:
        stop_run(run, signal.SIGTERM, timeout=90)
        raise
    return run


async def warning_at(bootstrap: str, partition: int, offset: int):
    """The warning event at ``offset`` of ``yujing.warnings[partition]``, as the book reads it."""
    from yujing.streams.alerting import decode_event
    tp = TopicPartition("yujing.warnings", partition)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        c.assign([tp])
        c.seek(tp, offset)
        record = await asyncio.wait_for(c.getone(), 20)
        return decode_event(record.value)
    finally:
        await c.stop()
