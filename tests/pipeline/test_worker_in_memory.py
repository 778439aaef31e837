"""The worker's agent path without a broker: Pipelines and the Evaluator over an in-memory
topic and checkpoint table, with a fake clock.

What the Faust agent does per record (skip what the restored state holds, catch up a
gap, dead-letter what cannot be decoded, checkpoint when due) is exercised here the way
test_state_replay.py exercises it against Tansu.
"""

from __future__ import annotations

import pytest

from tests.support.book import book_run
from yujing.clock import FakeClock
from yujing.domain import Forecast, Reading
from yujing.envelope import decode, encode_readings
from yujing.streams.checkpoint import MemoryTable, load_checkpoint

from .storm import MIN, T0, reference, storm_envelopes, strip
from .worker import Worker


@pytest.mark.parametrize("committed, reported_end", [(10, None), (15, 14)],
                         ids=["group-behind-skips", "group-ahead-catches-up"])
async def test_the_agent_skips_what_the_checkpoint_holds_and_catches_up_a_gap(
        committed: int, reported_end: int | None):
    envelopes = storm_envelopes()
    want = reference(envelopes)
    table, clk = MemoryTable(), FakeClock(T0)
    topic = envelopes[:15]

    first = Worker(table, topic, clk)
    await first.start()
    for off in range(15):
        await first.record(topic, off)
    m, _ = load_checkpoint(table.get, 0)
    assert m.offset == 12              # checkpoints every 5 s at 2 s a record: ..., 9, 12
    assert [strip([e]) for e in first.topics.warnings] == [
        strip([e]) for evs in want[:15] for e in evs]

    # SIGKILL after offset 14; a new owner of partition 0 restores offset 12 and
    # re-processes up to the end the broker reports
    second = Worker(table, topic, clk, reported_end=reported_end)
    await second.start(compare=False)
    restored = second.pipes.states[0]
    assert not restored.pipeline.lifecycle.forward_first_clear
    replayed_to = 14 if reported_end is None else reported_end - 1
    assert restored.applied == replayed_to
    assert load_checkpoint(table.get, 0)[0].offset == replayed_to   # written after the replay
    topic += envelopes[15:]                                          # the gateway goes on
    for off in range(committed, len(topic)):                         # the agent resumes
        await second.record(topic, off)

    assert restored.applied == len(topic) - 1
    assert strip(second.topics.warnings) == strip([e for evs in want[13:] for e in evs])
    assert first.topics.dead == second.topics.dead == []
    sent_ref, states_ref = book_run([e for evs in want for e in evs])
    sent, states = book_run(first.topics.warnings + second.topics.warnings)
    assert sent_ref and sent == sent_ref and states == states_ref


async def test_an_undecodable_record_is_dead_lettered_once_and_passed_over_on_replay():
    envelopes = storm_envelopes()[:8]
    want = reference(envelopes)
    topic = envelopes[:3] + [b"\x00not an envelope"] + envelopes[3:]
    table, clk = MemoryTable(), FakeClock(T0)
    first = Worker(table, topic, clk)
    await first.start()
    for off in range(len(topic)):
        await first.record(topic, off)
        if off == 0:
            at_0 = MemoryTable(dict(table.data))   # the table as the first checkpoint left it
    assert [(d["source"], d["raw"][:4]) for d in first.topics.dead] == [
        ("worker:decode", "\x00not")]
    assert first.pipes.states[0].applied == len(topic) - 1
    assert strip(first.topics.warnings) == strip([e for evs in want for e in evs])

    # a successor finds only the checkpoint at offset 0: it re-processes 1..8, the bad
    # record among them, without dead-lettering it again
    assert load_checkpoint(at_0.get, 0)[0].offset == 0
    second = Worker(at_0, topic, clk)
    await second.start(compare=False)
    assert second.pipes.states[0].applied == len(topic) - 1
    assert second.topics.dead == []
    assert strip(second.topics.warnings) == strip([e for evs in want[1:] for e in evs])


async def test_late_readings_go_to_the_dead_letters_with_the_configured_lateness():
    clk = FakeClock(T0)
    topic = [encode_readings([Reading("DG-HM-R01", "rain_mm", T0 + 3 * 60 * MIN, 0.0)]),
             encode_readings([Reading("DG-HM-R01", "rain_mm", T0, 0.5)])]   # 3 h behind
    w = Worker(MemoryTable(), topic, clk)
    await w.start()
    for off in range(2):
        await w.record(topic, off)
    (letter,) = w.topics.dead
    assert letter["source"] == "worker:late"
    assert letter["reason"] == "reading more than 1h behind its series"
    assert letter["raw"] == {"station": "DG-HM-R01", "metric": "rain_mm", "ts": T0, "value": 0.5}
    assert letter["received_ms"] == clk.now_ms()


async def test_a_partition_revoked_during_a_checkpoint_write_writes_nothing():
    topic = storm_envelopes()[:3]
    table, clk = MemoryTable(), FakeClock(T0)
    w = Worker(table, topic, clk)
    await w.start()
    ps = w.pipes.states[0]
    await w.evaluator.envelope(0, 0, topic[0])       # a checkpoint is due at once ...
    assert ps.writing is not None
    w.pipes.revoke({0})                               # ... and a rebalance starts meanwhile
    await ps.writing
    assert table.data == {}
    assert not w.pipes.due(ps)
    w.pipes.keep({0})                                 # it stays ours: checkpoints resume
    clk.advance(5_000)
    await w.record(topic, 1)
    assert load_checkpoint(table.get, 0)[0].offset == 1
    w.pipes.keep(set())                               # or it goes: the pipeline is dropped
    assert w.pipes.states == {}
    await w.evaluator.envelope(0, 2, topic[2])        # a straggler restores it again
    assert w.pipes.states[0] is not ps and w.pipes.states[0].applied == 2


async def test_records_waiting_together_are_one_engine_pass_with_the_same_events():
    """The agent hands the evaluator what was waiting: consecutive observation envelopes
    become one pass; an undecodable record and a forecast envelope keep their place."""
    envelopes = storm_envelopes(minutes=3)
    forecast = encode_readings([Forecast("DG-HM-R01", "rain_mm_fcst", T0 + 400 * MIN, 9.0,
                                         T0 + 30 * MIN)])
    topic = envelopes[:10] + [b"\x00not an envelope"] + envelopes[10:20] + [forecast] \
        + envelopes[20:]
    want = reference([e for e in topic if e != b"\x00not an envelope"])
    w = Worker(MemoryTable(), topic, FakeClock(T0))
    await w.start()
    ps, passes = w.pipes.states[0], w.count_passes()
    for start in range(0, len(topic), 8):                 # eight records wait each time
        await w.evaluator.records([(0, off, topic[off])
                                   for off in range(start, min(start + 8, len(topic)))])
    assert strip(w.topics.warnings) == strip([e for evs in want for e in evs])
    assert [(d["source"], d["raw"][:4]) for d in w.topics.dead] == [("worker:decode", "\x00not")]
    assert ps.applied == len(topic) - 1
    assert sum(passes) == sum(len(decode(e)) for e in envelopes) + 1
    assert len(passes) < len(topic) / 4                   # ~ one pass per batch, not per record
    assert 1 in passes                                     # the forecast went alone


async def test_a_batch_skips_what_the_state_holds_and_catches_up_a_gap():
    envelopes = storm_envelopes(minutes=3)
    topic = envelopes[:30]
    want = reference(topic)
    w = Worker(MemoryTable(), topic, FakeClock(T0))
    await w.start()
    await w.evaluator.records([(0, off, topic[off]) for off in range(0, 6)])
    await w.evaluator.records([(0, off, topic[off]) for off in range(3, 9)])   # 3..5 again
    await w.evaluator.records([(0, off, topic[off]) for off in range(12, 30)])  # 9..11 missed
    assert w.pipes.states[0].applied == 29
    assert strip(w.topics.warnings) == strip([e for evs in want for e in evs])


async def test_each_pass_counts_its_envelopes_and_its_engine_cpu():
    """``yujing_worker_eval_cpu_seconds_total`` is the engine's share of the worker's CPU
    (bench/throughput.py reads it beside the process's CPU)."""
    from prometheus_client import REGISTRY

    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0
    topic = storm_envelopes(minutes=2)[:12]
    w = Worker(MemoryTable(), topic, FakeClock(T0))
    await w.start()
    before = {n: value(n) for n in ("yujing_worker_passes_total", "yujing_worker_envelopes_total",
                                    "yujing_worker_eval_cpu_seconds_total")}
    await w.evaluator.records([(0, off, topic[off]) for off in range(6)])   # one pass
    for off in range(6, 12):                                                # six passes
        await w.evaluator.envelope(0, off, topic[off])
    assert value("yujing_worker_passes_total") - before["yujing_worker_passes_total"] == 7
    assert value("yujing_worker_envelopes_total") - before["yujing_worker_envelopes_total"] == 12
    assert value("yujing_worker_eval_cpu_seconds_total") > before["yujing_worker_eval_cpu_seconds_total"]
