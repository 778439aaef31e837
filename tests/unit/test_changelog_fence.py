"""The book's changelog fence and table digest (yujing/streams/changelog.py), without Faust.

The fence's point is an order: every record a step wrote is acknowledged (flush) before
the tombstone that starts a later batch; the broker side is tested on Tansu and Kafka in
tests/integration/test_book_recovery.py.
"""

from __future__ import annotations

import msgspec

from yujing.streams.changelog import FENCE_KEY, Fence, canonical, digest, partition_of


class Table:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log, self.written = name, log, False

    def fence(self, p: int) -> None:
        self.log.append(("fence", self.name, p))


async def test_a_step_that_wrote_is_flushed_then_fenced_on_each_table_it_wrote():
    log: list = []
    a, b, c = Table("a", log), Table("b", log), Table("c", log)

    async def flush() -> None:
        log.append(("flush",))

    fence = Fence([a, b, c], flush)
    await fence.after_step(1)                 # nothing written: no round trip at all
    assert log == [] and fence.fences == 0
    a.written = c.written = True
    await fence.after_step(1)
    assert log == [("flush",), ("fence", "a", 1), ("fence", "c", 1)]
    assert not (a.written or b.written or c.written) and fence.fences == 1
    b.written = True
    await fence.after_step(0)
    assert log[3:] == [("flush",), ("fence", "b", 0)]


async def test_a_failed_flush_leaves_the_tables_marked_for_the_next_step():
    log: list = []
    a = Table("a", log)
    a.written = True

    async def broken() -> None:
        raise ConnectionError("broker gone")

    fence = Fence([a], broken)
    try:
        await fence.after_step(0)
    except ConnectionError:
        pass
    assert a.written and log == []


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
