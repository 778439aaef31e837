"""Faust's read-offset gate after a seek (streams/transport.py ``Consumer.getmany``).

Faust's own fetch loop (``Consumer._drain_messages``, run here unchanged) drops a record
whose offset is below the last one it handed out. A seek sets that mark to its target,
but records of a batch fetched before the seek and still being handed out move it past
the target again, and then every record read again was dropped: the commit watch's
re-read of a lost record never delivered it, and a changelog recovery sought back waited
for records it had dropped. Only the fetches themselves (aiokafka's records) are
scripted here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import pytest
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP

from yujing.streams.transport import App

READINGS = TP("yujing.readings", 0)
CHANGELOG = TP("yujing-worker-yujing-pipeline-changelog", 0)


def record(tp: TP, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, tp=tp, offset=offset,
                           key=None, value=None)


async def delivered(monkeypatch: pytest.MonkeyPatch, tp: TP, fetches: list[list[int]],
                    seek: Callable[[object], Awaitable[None]] | None) -> list[int]:
    """The offsets Faust's fetch loop hands on, fetch by fetch; ``seek(consumer)`` is
    awaited while the first record of the first fetch is being handled."""
    app = App("gate-test", broker="kafka://127.0.0.1:1", store="memory://")
    app.strict_topics = frozenset({READINGS.topic})
    consumer = app.consumer
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    left = [[record(tp, o) for o in offsets] for offsets in fetches]

    async def fetch(self, timeout: float):
        if not left:
            fetcher._stopped.set()
            return
        for message in left.pop(0):
            yield tp, message

    async def no_seek(*args) -> None:
        return None

    got: list[int] = []

    async def agent(message) -> None:
        got.append(message.offset)
        if len(got) == 1 and seek is not None:
            await seek(consumer)

    monkeypatch.setattr(faust_kafka.Consumer, "getmany", fetch, raising=False)
    monkeypatch.setattr(faust_kafka.ThreadDelegateConsumer, "seek_wait", no_seek)
    monkeypatch.setattr(consumer, "_seek", no_seek)
    monkeypatch.setattr(consumer, "callback", agent)
    await asyncio.wait_for(consumer._drain_messages(fetcher), 10)
    return got


async def test_the_records_read_again_after_a_seek_mid_batch_reach_the_agent(monkeypatch):
    """The commit watch's seek back to 3 while the batch 10, 11, 12 is handed out."""
    got = await delivered(monkeypatch, READINGS, [[10, 11, 12], list(range(3, 13))],
                          lambda c: c.seek(READINGS, 3))
    assert got == [10, 11, 12, *range(3, 13)]


async def test_a_recovery_sought_back_mid_batch_gets_its_changelog_records(monkeypatch):
    """Faust's recovery seeks (``seek_wait``) while a standby batch of the same changelog
    partition is handed out; the partition's records from 3 were compacted up to 5."""
    got = await delivered(monkeypatch, CHANGELOG, [[10, 11, 12], list(range(5, 13))],
                          lambda c: c.seek_wait({CHANGELOG: 3}))
    assert got == [10, 11, 12, *range(5, 13)]


async def test_without_a_seek_the_gate_still_drops_a_fetch_repeated(monkeypatch):
    """Faust's own use of the gate is kept: records fetched again without a seek (the
    fetch repeating 10 and 11) are not handed out twice."""
    got = await delivered(monkeypatch, READINGS, [[10, 11, 12], [10, 11, 13]], None)
    assert got == [10, 11, 12, 13]


async def test_a_seek_is_opened_once(monkeypatch):
    """After the first record read again, the gate is Faust's: a repeated fetch of the
    re-read records is dropped."""
    got = await delivered(monkeypatch, READINGS, [[10, 11, 12], [3, 4, 5], [3, 4, 6]],
                          lambda c: c.seek(READINGS, 3))
    assert got == [10, 11, 12, 3, 4, 5, 6]
