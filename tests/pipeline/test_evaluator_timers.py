"""The worker's timers in memory: no-data checks, model reloads and the heartbeat line."""

from __future__ import annotations

import logging

from yujing.clock import FakeClock
from yujing.domain import Reading
from yujing.envelope import encode_readings
from yujing.streams.checkpoint import MemoryTable

from .storm import MIN, T0
from .worker import Worker


async def test_the_nodata_timer_raises_silent_stations_of_its_own_partition_once():
    clk = FakeClock(T0)
    topic = [encode_readings([Reading("DG-HM-R01", "rain_mm", T0 + m * MIN, 0.0)
                              for m in minutes]) for minutes in (range(10), range(10, 40))]
    w = Worker(MemoryTable(), topic, clk)
    w.evaluator.nodata_clock = "event"        # silence measured on the stream's event time
    await w.start()
    await w.record(topic, 0)
    await w.evaluator.check_nodata()          # starts the watch of never-reported stations
    await w.record(topic, 1)                  # 30 minutes on, in event time
    await w.evaluator.check_nodata()
    silent = {ev.station for ev in w.topics.warnings if ev.rule == "nodata"}
    assert "DG-CA-R01" in silent and "DG-HM-R01" not in silent     # 5m x 3 without a word
    n = len(w.topics.warnings)
    await w.evaluator.check_nodata()
    assert len(w.topics.warnings) == n                              # said once


async def test_models_reload_reaches_every_pipeline_only_when_something_changed():
    class Models:
        def __init__(self) -> None:
            self.changes = [["rain-iforest"], []]

        def reload(self) -> list[str]:
            return self.changes.pop(0)

        def get(self, name: str) -> None:
            return None

    w = Worker(MemoryTable(), [], FakeClock(T0))
    await w.start()
    models = w.evaluator.models = Models()
    await w.evaluator.reload_models()
    assert w.pipes.models is models and w.pipes.states[0].pipeline.engine.models is models
    w.pipes.models = None
    await w.evaluator.reload_models()                               # nothing new
    assert w.pipes.models is None


async def test_the_heartbeat_line_counts_readings_of_the_ready_partitions(caplog):
    clk = FakeClock(T0)
    topic = [encode_readings([Reading("DG-HM-R01", "rain_mm", T0 + m * MIN, 0.0)
                              for m in range(7)])]
    w = Worker(MemoryTable(), topic, clk)
    await w.start()
    await w.record(topic, 0)
    with caplog.at_level(logging.INFO, logger="yujing.streams.evaluator"):
        await w.evaluator.heartbeat()
    # bench/throughput.py reads this line
    assert "worker: 7 readings, 0 late, 0 active warnings (partitions 0)" in caplog.messages
    assert not any("neighbour groups" in m for m in caplog.messages)  # no group model: quiet


async def test_the_heartbeat_says_when_group_rows_closed_without_a_station(caplog):
    w = Worker(MemoryTable(), [], FakeClock(T0))
    await w.start()
    w.pipes.states[0].pipeline.engine.interpreter.scorer.groups.late = 3
    with caplog.at_level(logging.INFO, logger="yujing.streams.evaluator"):
        await w.evaluator.heartbeat()
    assert any(m.startswith("worker: 3 station rows of neighbour groups closed before")
               for m in caplog.messages)
