"""A checkpoint table written by the worker before the redesign still restores.

``data/checkpoint-fd4cf5b.msgpack`` holds the records (key → bytes) that
``yujing.streams.state.Pipelines`` of commit fd4cf5b wrote for partition 0: the
envelopes below through one pipeline (``now_ms`` = T0), checkpointed after offsets 2
(seq 1) and 6 (seq 2), with ``encode_checkpoint`` cut to 500-byte chunks so the
manifest names several. A worker of today must find checkpoint 2 and continue from it
exactly as the old one would have.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from yujing.clock import FakeClock
from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.streams.checkpoint import MemoryTable, load_checkpoint
from yujing.streams.runner import PartitionRunner

from .storm import MIN, T0, pipeline, strip
from .worker import Worker

FIXTURE = Path(__file__).parent / "data" / "checkpoint-fd4cf5b.msgpack"


def fd4cf5b_envelopes() -> list[bytes]:
    """Six hours of minute rain at two gauges (blue, orange, red, clear), 30 minutes a record."""
    out = []
    for part in range(12):
        rs = [Reading(st, "rain_mm", T0 + m * MIN, (1.4 if st.endswith("1") else 0.7)
                      if 60 <= m < 200 else 0.0)
              for m in range(part * 30, part * 30 + 30) for st in ("DG-HM-R01", "DG-CA-R01")]
        out.append(encode_readings(rs))
    return out


def old_table() -> MemoryTable:
    return MemoryTable(msgspec.msgpack.decode(FIXTURE.read_bytes()))


def test_the_old_records_are_the_layout_we_read():
    t = old_table()
    assert sorted(t.data) == ["0:0:0", "0:0:1", "0:0:2", "0:0:3", "0:0:m",
                              "0:1:0", "0:1:1", "0:1:2", "0:1:m"]
    m, raw = load_checkpoint(t.get, 0)
    assert (m.seq, m.offset, m.chunks, m.raw_bytes, m.stored_bytes, m.created_ms) == (
        2, 6, 4, 13508, 1540, T0)
    assert len(raw) == m.raw_bytes


def test_a_checkpoint_of_the_old_worker_restores_and_continues_exactly():
    envelopes = fd4cf5b_envelopes()
    ref = pipeline()
    want = [ref.handle(decode(e), T0).events for e in envelopes]
    assert sum(map(len, want[7:])) > 0

    m, raw = load_checkpoint(old_table().get, 0)
    r = PartitionRunner(0, pipeline())
    r.restore_checkpoint(raw, m.seq, m.offset)
    got = []
    for offset, e in enumerate(envelopes):
        if r.holds(offset):
            continue
        got.append(r.handle(decode(e), T0).events)
        r.done(offset)
    assert [strip(evs) for evs in got] == [strip(evs) for evs in want[7:]]
    # the old worker started without a checkpoint (first clears forwarded, keys it looked
    # at recorded); windows, rule state, open warnings and no-data state are the same
    mine, theirs = (msgspec.msgpack.decode(p.snapshot()) for p in (r.pipeline, ref))
    for part in ("watermark", "engine", "nodata"):
        assert mine[part] == theirs[part]
    assert mine["lifecycle"]["active"] == theirs["lifecycle"]["active"]
    assert r.take_checkpoint(0.0).seq == 3          # the next checkpoint takes the other slot


async def test_a_worker_of_today_restores_the_old_table_and_replays_after_it():
    envelopes = fd4cf5b_envelopes()
    ref = pipeline()
    want = [ref.handle(decode(e), T0).events for e in envelopes]
    table = old_table()
    w = Worker(table, envelopes, FakeClock(T0))
    await w.start(compare=False)
    assert w.pipes.states[0].applied == 11
    assert strip(w.topics.warnings) == strip([e for evs in want[7:] for e in evs])
    m, _ = load_checkpoint(table.get, 0)
    assert (m.seq, m.offset) == (3, 11)             # written over the older slot (seq 1)
    assert table.data["0:1:m"] != old_table().data["0:1:m"]
    assert table.data["0:0:m"] == old_table().data["0:0:m"]
