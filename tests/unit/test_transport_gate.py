"""Faust's read-offset gate after a seek on a strict partition (streams/transport.py).

Faust's own fetch loop (``Consumer._drain_messages``, run here unchanged) drops a record
whose offset is below the last one it handed out. A seek sets that mark to its target,
but records of a batch fetched before the seek and still being handed out move it past
the target again, and then every record read again was dropped: the commit watch's
re-read of a lost record never delivered it. Only the fetch itself (aiokafka's records)
is scripted here: the batch in flight, then the records from the seek's target.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP

from yujing.streams.transport import App

STRICT = TP("yujing.readings", 0)
LOOSE = TP("scratch.loose", 0)


def record(tp: TP, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, tp=tp, offset=offset,
                           key=None, value=None)


async def delivered(monkeypatch: pytest.MonkeyPatch, tp: TP) -> list[int]:
    """The offsets Faust's fetch loop hands to the agents when, while the batch 10, 11, 12
    is being handed out, the partition is sought back to 3 and then read from 3 to 12."""
    app = App("gate-test", broker="kafka://127.0.0.1:1", store="memory://")
    app.strict_topics = frozenset({STRICT.topic})
    consumer = app.consumer
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    fetches = [[record(tp, o) for o in (10, 11, 12)], [record(tp, o) for o in range(3, 13)]]

    async def fetch(self, timeout: float):
        if not fetches:
            fetcher._stopped.set()
            return
        for message in fetches.pop(0):
            yield tp, message

    async def no_seek(partition: TP, offset: int) -> None:
        return None

    got: list[int] = []

    async def agent(message) -> None:
        got.append(message.offset)
        if message.offset == 10 and len(got) == 1:  # the commit watch's seek, mid-batch
            await consumer.seek(tp, 3)

    monkeypatch.setattr(faust_kafka.Consumer, "getmany", fetch, raising=False)
    monkeypatch.setattr(consumer, "_seek", no_seek)
    monkeypatch.setattr(consumer, "callback", agent)
    await asyncio.wait_for(consumer._drain_messages(fetcher), 10)
    return got


async def test_the_records_read_again_after_a_seek_mid_batch_reach_the_agent(monkeypatch):
    got = await delivered(monkeypatch, STRICT)
    assert got == [10, 11, 12, *range(3, 13)]


async def test_a_partition_that_is_not_strict_keeps_fausts_gate(monkeypatch):
    """Faust's behaviour on the others is left alone: past the batch, the mark drops the
    records read again up to the last one handed out (12)."""
    got = await delivered(monkeypatch, LOOSE)
    assert got == [10, 11, 12, 12]
