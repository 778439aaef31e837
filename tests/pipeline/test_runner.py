"""The PartitionRunner in memory: envelopes in, events out, checkpoints to a dict, a fake clock.

A worker runs a partition, checkpoints now and then, and dies; its successor restores
the newest whole checkpoint and reads the partition again from an earlier offset. The
envelopes the checkpoint holds are skipped, the ones after it re-processed, and the
warning book ends up notifying exactly what one uninterrupted pipeline would have made
it notify: every event once.
"""

from __future__ import annotations

import msgspec
import pytest

from tests.support.book import book_run
from yujing.clock import FakeClock
from yujing.envelope import decode
from yujing.streams.checkpoint import MemoryTable, encode_checkpoint, load_checkpoint, table_records
from yujing.streams.runner import PartitionRunner, Snapshot, Step

from .storm import T0, pipeline, reference, storm_envelopes, strip

INTERVAL_S = 5.0
ENVELOPE_S = 2.0          # the fake clock moves this much per envelope


class Worker:
    """The pure side of one worker on partition 0: a runner, the table, a fake clock."""

    def __init__(self, table: MemoryTable, clk: FakeClock) -> None:
        self.table, self.clk = table, clk
        self.runner = PartitionRunner(0, pipeline())
        self.sent: dict[int, list] = {}       # offset -> the events sent for it
        self.steps: dict[int, Step] = {}
        self.torn = False                     # die half-way through the next checkpoint

    def restore(self) -> Snapshot | None:
        found = load_checkpoint(self.table.get, 0)
        if found is None:
            self.runner.start_empty()
            return None
        m, raw = found
        self.runner.restore_checkpoint(raw, m.seq, m.offset)
        return Snapshot(raw, m.seq, m.offset)

    def envelope(self, topic: list[bytes], offset: int) -> None:
        """What the agent does with the record at ``offset``."""
        step = self.steps[offset] = self.runner.step(offset)
        if step is Step.SKIP:
            return
        if step is Step.CATCH_UP:
            for gap in range(self.runner.applied + 1, offset):
                self.apply(topic, gap)
        self.apply(topic, offset)
        now_s = self.clk.now_ms() / 1000
        if self.runner.checkpoint_due(now_s, INTERVAL_S):
            self.store(self.runner.take_checkpoint(now_s))

    def apply(self, topic: list[bytes], offset: int) -> None:
        self.clk.advance(int(ENVELOPE_S * 1000))
        out = self.runner.handle(decode(topic[offset]), self.clk.now_ms())
        self.sent[offset] = out.events
        self.runner.done(offset)

    def store(self, snap: Snapshot) -> None:
        manifest, parts = encode_checkpoint(snap.raw, snap.seq, snap.offset,
                                            self.clk.now_ms(), chunk=2000)
        chunks, head = table_records(0, snap.seq, manifest, parts)
        for key, value in chunks:
            self.table.put(0, key, value)
        if self.torn:
            raise SystemExit("killed between the chunks and the manifest")
        self.table.put(0, *head)

    def events(self) -> list:
        return [ev for off in sorted(self.sent) for ev in self.sent[off]]


@pytest.mark.parametrize("torn", [False, True], ids=["whole", "torn-last-checkpoint"])
@pytest.mark.parametrize("crash_after", [2, 8, 13, 19])
def test_a_crash_and_restore_sends_every_event_once(crash_after: int, torn: bool):
    topic = storm_envelopes()
    want = reference(topic)
    table, clk = MemoryTable(), FakeClock(T0)

    first = Worker(table, clk)
    assert first.restore() is None and first.runner.pipeline.lifecycle.forward_first_clear
    first.runner.pipeline.lifecycle.forward_first_clear = False   # compare with the reference
    for off in range(crash_after + 1):
        if torn and off == crash_after:
            first.torn = True
            clk.advance(int(INTERVAL_S * 1000))                    # a checkpoint is due
            with pytest.raises(SystemExit):
                first.envelope(topic, off)
        else:
            first.envelope(topic, off)
    assert [strip(first.sent[o]) for o in sorted(first.sent)] == [
        strip(want[o]) for o in range(crash_after + 1)]

    second = Worker(table, clk)                                    # SIGKILL: a new owner
    snap = second.restore()
    held = snap.offset if snap is not None else -1
    assert held < crash_after or not torn
    assert not second.runner.pipeline.lifecycle.forward_first_clear or snap is None
    for off in range(len(topic)):                                  # the group's offset: 0
        second.envelope(topic, off)

    assert all(second.steps[o] is Step.SKIP for o in range(held + 1))
    assert all(second.steps[o] is Step.APPLY for o in range(held + 1, len(topic)))
    for off in range(held + 1, crash_after + 1):                   # re-processed: repeats
        assert strip(second.sent[off]) == strip(first.sent[off])
    kept = [ev for off in range(held + 1) for ev in first.sent.get(off, [])]
    assert strip(kept + second.events()) == strip([ev for evs in want for ev in evs])

    everything = [ev for evs in want for ev in evs]
    sent_ref, states_ref = book_run(everything)
    sent, states = book_run(first.events() + second.events())   # repeats included
    assert sent_ref and sent == sent_ref
    assert states == states_ref

    ref = pipeline()
    for e in topic:
        ref.handle(decode(e), T0)
    assert msgspec.msgpack.decode(second.runner.pipeline.snapshot()) == \
        msgspec.msgpack.decode(ref.snapshot())


def test_checkpoints_follow_the_interval_on_the_callers_clock():
    topic = storm_envelopes()
    table, clk = MemoryTable(), FakeClock(T0)
    w = Worker(table, clk)
    w.restore()
    seqs = []
    for off in range(10):
        w.envelope(topic, off)
        seqs.append((w.runner.seq, w.runner.checkpointed))
    # 2 s per envelope, 5 s apart: at offsets 0, 3, 6, 9 (the first as soon as possible)
    assert seqs == [(1, 0), (1, 0), (1, 0), (2, 3), (2, 3), (2, 3), (3, 6), (3, 6), (3, 6),
                    (4, 9)]
    m, _ = load_checkpoint(table.get, 0)
    assert (m.seq, m.offset) == (4, 9)
    assert {k for _, k, _ in table.sent} >= {"0:0:m", "0:1:m"}     # both slots in use


@pytest.mark.parametrize("applied, offset, step", [
    (-1, 0, Step.APPLY),         # first start
    (-1, 7, Step.APPLY),         # first start at the group's committed offset
    (4, 3, Step.SKIP),           # in the restored state
    (4, 4, Step.SKIP),
    (4, 5, Step.APPLY),
    (4, 6, Step.CATCH_UP),       # the group's offset was ahead of the checkpoint's replay
    (4, 90, Step.CATCH_UP),
])
def test_each_offset_is_skipped_applied_or_caught_up(applied: int, offset: int, step: Step):
    r = PartitionRunner(0, pipeline(), applied=applied)
    assert r.step(offset) is step
    assert r.holds(offset) == (step is Step.SKIP)


def test_a_checkpoint_is_due_only_with_something_new_none_in_flight_and_the_partition_ours():
    r = PartitionRunner(0, pipeline())
    assert not r.checkpoint_due(100.0, 5.0)                 # nothing applied yet
    r.done(0)
    assert r.checkpoint_due(100.0, 5.0)
    snap = r.take_checkpoint(100.0)
    assert (snap.seq, snap.offset, r.checkpointed, r.last_checkpoint) == (1, 0, 0, 100.0)
    assert snap.raw == r.pipeline.snapshot()
    r.done(1)
    assert not r.checkpoint_due(104.9, 5.0)                 # too soon
    assert r.checkpoint_due(105.0, 5.0)
    r.writing = object()                                    # the previous one is being stored
    assert not r.checkpoint_due(200.0, 5.0)
    r.writing = None
    r.suspended = True                                      # revoked: maybe someone else's now
    assert not r.checkpoint_due(200.0, 5.0)


def test_a_failed_restore_starts_over_empty():
    r = PartitionRunner(0, pipeline())
    r.restore_checkpoint(pipeline().snapshot(), seq=7, offset=41)
    assert (r.applied, r.checkpointed, r.seq) == (41, 41, 7)
    assert not r.pipeline.lifecycle.forward_first_clear
    fresh = pipeline()
    r.start_over(fresh)
    assert r.pipeline is fresh and (r.applied, r.checkpointed, r.seq) == (-1, -1, 7)
    assert fresh.lifecycle.forward_first_clear
    with pytest.raises(ValueError):
        PartitionRunner(0, pipeline()).restore_checkpoint(b"\x93\x01\x02\x03", 1, 1)
