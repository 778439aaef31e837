"""The forecast table survives a worker restart the way the rule windows do: checkpoint,
then replay of the envelopes after it (the in-memory worker of test_worker_in_memory.py)."""

from __future__ import annotations

from yujing.clock import FakeClock
from yujing.domain import Forecast, Reading
from yujing.envelope import decode, encode_readings
from yujing.streams.checkpoint import MemoryTable, load_checkpoint

from .storm import MIN, T0, pipeline, reference, strip
from .worker import Worker

RIVER = "DG-SL-H01"   # warning level 6.5 m; river-forecast-level reads water_level_m_fcst
HOUR = 60 * MIN


def envelopes() -> list[bytes]:
    """20 envelopes of 10 minutes of level at 5.0 m. Forecast issue 1 rides in envelope 3:
    hourly to T0 + 7 h, 6.8 m at +4 h and 6.6 m at +3 h and +5 h. Issue 2, in envelope 16,
    lowers +4 h alone to 6.0 m: with issue 1's other hours the level still reaches 6.5 m."""
    out = []
    for k in range(20):
        t0 = T0 + k * 10 * MIN
        items: list[Reading] = [Reading(RIVER, "water_level_m", t0 + m * MIN, 5.0) for m in range(10)]
        if k == 3:
            items += [Forecast(RIVER, "water_level_m_fcst", T0 + h * HOUR, 6.8 - 0.2 * abs(4 - h),
                               t0 + 5 * MIN) for h in range(1, 8)]
        if k == 16:
            items.append(Forecast(RIVER, "water_level_m_fcst", T0 + 4 * HOUR, 6.0, t0 + 5 * MIN))
        out.append(encode_readings(items))
    return out


async def test_a_restarted_worker_keeps_the_forecasts_of_its_checkpoint():
    topic = envelopes()
    want = reference(topic)
    kinds = [e.kind.value for evs in want for e in evs if e.rule == "river-forecast-level"]
    assert kinds == ["raised"]   # issue 2 does not bring it under the warning level
    table, clk = MemoryTable(), FakeClock(T0)

    first = Worker(table, topic, clk)
    await first.start()
    for off in range(15):
        await first.record(topic, off)
    assert load_checkpoint(table.get, 0)[0].offset == 12

    # killed after offset 14; the new owner restores offset 12 and replays 13 and 14 (issue 1
    # is in neither), then gets issue 2: without issue 1's other hours from the checkpoint
    # the warning would clear
    second = Worker(table, topic, clk)
    await second.start(compare=False)
    restored = second.pipes.states[0].pipeline
    assert restored.engine.forecasts.current(RIVER, "water_level_m_fcst", T0 + 3 * HOUR)
    for off in range(15, len(topic)):
        await second.record(topic, off)
    assert strip(second.topics.warnings) == strip([e for evs in want[13:] for e in evs])
    assert [e for e in second.topics.warnings if e.rule == "river-forecast-level"] == []
    assert restored.engine.forecasts.snapshot() == _reference_table(topic)


def _reference_table(topic: list[bytes]) -> list:
    p = pipeline()
    for e in topic:
        p.handle(decode(e), T0)
    return p.engine.forecasts.snapshot()
