"""The book's changelog fence and table digest (yujing/streams/changelog.py), without Faust.

The fence's point is an order: every record a step wrote is acknowledged (flush) before
the tombstone that starts a later batch; the broker side is tested on Tansu and Kafka in
tests/integration/test_book_recovery.py.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from yujing.streams.changelog import FENCE_KEY, Fence, canonical, digest, partition_of
from yujing.streams.fencing import run_rounds


class Table:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log, self.written = name, log, False

    def fence(self, p: int) -> None:
        self.log.append(("fence", self.name, p))


async def test_a_round_flushes_fences_each_table_written_flushes_again_then_acks():
    log: list = []
    a, b, c = Table("a", log), Table("b", log), Table("c", log)

    async def flush() -> None:
        log.append(("flush",))

    async def ack(m) -> None:
        log.append(("ack", m))

    fence = Fence([a, b, c], flush)
    fence.after_step(1, "m0")                 # nothing written: acked without a round trip
    assert await fence.round(ack) == 1
    assert log == [("ack", "m0")] and fence.fences == 0
    a.written = c.written = True
    fence.after_step(1, "m1")
    b.written = True
    fence.after_step(0, "m2")                 # two steps, one round
    assert not (a.written or b.written or c.written)
    assert await fence.round(ack) == 2
    assert log[1:] == [("flush",), ("fence", "a", 1), ("fence", "b", 0), ("fence", "c", 1),
                       ("flush",), ("ack", "m1"), ("ack", "m2")]
    assert fence.fences == 1 and fence.held == [] and fence.dirty == set()


async def test_a_failed_round_acks_nothing_and_keeps_everything_for_the_next():
    log: list = []
    a = Table("a", log)
    broken = [True]

    async def flush() -> None:
        if broken[0]:
            raise ConnectionError("broker gone")
        log.append(("flush",))

    async def ack(m) -> None:
        log.append(("ack", m))

    fence = Fence([a], flush)
    a.written = True
    fence.after_step(0, "m1")
    with pytest.raises(ConnectionError):
        await fence.round(ack)
    assert log == [] and fence.held == ["m1"] and fence.dirty == {(0, 0)}
    fence.after_step(0, "m2")                 # a step meanwhile joins the retry
    broken[0] = False
    assert await fence.round(ack) == 2
    assert log == [("flush",), ("fence", "a", 0), ("flush",), ("ack", "m1"), ("ack", "m2")]


async def test_the_fence_task_acks_each_step_after_its_writes_are_fenced():
    """run_rounds() beside an agent: every message acked once, never before its step's
    fence."""
    log: list = []
    a = Table("a", log)
    acked = asyncio.Queue()

    async def flush() -> None:
        log.append(("flush",))
        await asyncio.sleep(0)                # a round trip: the agent goes on meanwhile

    async def ack(m) -> None:
        log.append(("ack", m))
        acked.put_nowait(m)

    async def failed(exc: BaseException) -> None:
        raise AssertionError(exc)

    fence = Fence([a], flush)
    task = asyncio.ensure_future(run_rounds(fence, ack, failed))
    for i in range(20):
        a.written = i % 3 == 0
        log.append(("step", i))
        fence.after_step(i % 2, i)
        if i % 4 == 0:
            await asyncio.sleep(0)            # the agent awaits now and then (a send)
    got = [await asyncio.wait_for(acked.get(), 5) for _ in range(20)]
    task.cancel()
    assert got == list(range(20))
    for i in range(0, 20, 3):                 # a step that wrote: a fence before its ack
        step, at = log.index(("step", i)), log.index(("ack", i))
        fenced = log.index(("fence", "a", i % 2), step)
        assert fenced < at and ("flush",) in log[fenced:at]   # the tombstone flushed too


def test_digest_is_the_same_for_encoded_and_decoded_values_and_ignores_deleted_keys():
    rec = {"incident": "x1", "grade": 3, "timeline": [{"kind": "raised", "at": 5}]}
    raw = msgspec.json.encode(rec)
    assert canonical(raw) == canonical(rec) == canonical(dict(reversed(list(rec.items()))))
    live = digest([("0:x1", raw), ("1:y", "0:x1"), ("0:gone", None)])
    assert live == digest([("1:y", b'"0:x1"'), ("0:x1", rec)])
    assert live[0] == 2


def test_digest_changes_with_any_value_or_key():
    base = digest([("0:a", b'{"state":"active"}'), ("0:b", b"1")])
    assert digest([("0:a", b'{"state":"acknowledged"}'), ("0:b", b"1")]) != base
    assert digest([("0:a", b'{"state":"active"}'), ("1:b", b"1")]) != base
    assert digest([("0:a", b'{"state":"active"}')]) != base


def test_partition_of_a_book_key():
    assert partition_of("3:441900-x") == 3
    assert partition_of("12:#town/flood") == 12
    assert partition_of(FENCE_KEY) is None and partition_of("x:1") is None
