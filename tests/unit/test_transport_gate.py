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


async def test_a_seek_opens_the_gate_at_its_target_record(monkeypatch):
    """A fetch after the seek to 3 still brings a record from before it (13, taken by
    aiokafka for the old position), which opens the gate; the records from 3 come one
    fetch later and open it again at the target (bench/scale_out.py's worker logs: the
    assignment's seek to the committed offset, records already processed dropped)."""
    got = await delivered(monkeypatch, READINGS, [[10, 11, 12], [13], list(range(3, 14))],
                          lambda c: c.seek(READINGS, 3))
    assert got == [10, 11, 12, 13, *range(3, 14)]


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


async def test_a_revoked_partition_is_forgotten(monkeypatch):
    """A partition sought and revoked before its next fetch leaves no open gate nor read
    start behind (the next assignment seeks it and notes its start again)."""
    app = App("gate-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    seen: list[set] = []

    async def revoked(self, partitions) -> None:
        seen.append(set(partitions))

    async def no_seek(*args) -> None:
        return None

    monkeypatch.setattr(faust_kafka.Consumer, "on_partitions_revoked", revoked)
    monkeypatch.setattr(consumer, "_seek", no_seek)
    await consumer.seek(READINGS, 3)
    await consumer.seek(CHANGELOG, 0)
    consumer.read_from[READINGS] = 3
    await consumer.on_partitions_revoked({READINGS})
    assert consumer.rewound == {CHANGELOG} and READINGS not in consumer.read_from
    assert seen == [{READINGS}]  # Faust's own revocation still runs


async def read_log(monkeypatch: pytest.MonkeyPatch, log: list[int], start: int, fetches: int,
                   agent: Callable[[object, int], Awaitable[None]],
                   assigned: set[TP] | None = None,
                   before: Callable[[object], None] | None = None) -> tuple[list[int], list[tuple]]:
    """Faust's own ``getmany`` and fetch loop over a changelog partition holding ``log``,
    fetched as aiokafka does (every record from the position on, the position moved past
    them; a seek moves it); ``agent(consumer, offset)`` handles each record handed on.
    READINGS stays active with no records (Faust fetches only while a partition is).
    ``before(consumer)`` is called as each fetch returns."""
    app = App("gate-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    position = {CHANGELOG: start}
    seeks: list[tuple] = []
    left = [fetches]

    async def fetch(active_partitions, timeout):
        if left[0] == 0:
            fetcher._stopped.set()
            return {}
        left[0] -= 1
        active_partitions.add(CHANGELOG)  # resumed at each fetch
        records = [record(CHANGELOG, o) for o in log if o >= position[CHANGELOG]]
        position[CHANGELOG] = log[-1] + 1
        if before is not None:
            before(consumer)
        return {CHANGELOG: records} if records else {}

    async def seek(tp, offset) -> None:
        seeks.append((tp, offset))
        position[tp] = offset

    async def no_seek(*args) -> None:
        return None

    got: list[int] = []

    async def callback(message) -> None:
        got.append(message.offset)
        await agent(consumer, message.offset)

    async def at(tp):
        return position.get(tp)

    consumer._active_partitions = {READINGS, CHANGELOG}
    monkeypatch.setattr(consumer, "position", at)
    monkeypatch.setattr(consumer, "_getmany", fetch)
    monkeypatch.setattr(consumer, "_seek", seek)
    monkeypatch.setattr(faust_kafka.ThreadDelegateConsumer, "seek_wait",
                        lambda self, parts: seek(*next(iter(parts.items()))))
    monkeypatch.setattr(consumer, "_to_message", lambda tp, r: r)
    monkeypatch.setattr(consumer, "highwater", lambda tp: log[-1] + 1)
    monkeypatch.setattr(consumer, "assignment",
                        lambda: {READINGS, CHANGELOG} if assigned is None else assigned)
    monkeypatch.setattr(consumer, "callback", callback)
    await asyncio.wait_for(consumer._drain_messages(fetcher), 10)
    return got, seeks


async def pause_at(first: int):
    """An agent that takes the changelog partition out of Faust's active set while the
    record ``first`` is handled (a recovery pausing it or switching the set)."""
    async def agent(consumer, offset) -> None:
        if offset == first:
            consumer._active_partitions.discard(CHANGELOG)
    return agent


async def test_records_faust_fetched_and_skipped_are_read_again(monkeypatch):
    """The joining worker's recovery stall: the batch 0..3 is fetched, the partition
    leaves the active set at 0, Faust skips 1..3 with aiokafka past them."""
    got, seeks = await read_log(monkeypatch, [0, 1, 2, 3], 0, 3, await pause_at(0))
    assert got == [0, 1, 2, 3] and seeks == [(CHANGELOG, 1)]


async def test_a_seek_made_while_the_batch_is_handed_out_is_kept(monkeypatch):
    """The recovery seeks the partition back to 0 during the batch 2, 3 and switches the
    set: its seek stands (reading again from 3 would skip 0 and 1)."""
    async def agent(consumer, offset) -> None:
        if offset == 2 and not consumer.last_seek:
            await consumer.seek_wait({CHANGELOG: 0})
            consumer._active_partitions.discard(CHANGELOG)

    got, seeks = await read_log(monkeypatch, [0, 1, 2, 3], 2, 3, agent)
    assert got == [2, 0, 1, 2, 3] and seeks == [(CHANGELOG, 0)]


async def test_a_partition_no_longer_assigned_is_not_sought(monkeypatch):
    got, seeks = await read_log(monkeypatch, [0, 1, 2, 3], 0, 2, await pause_at(0),
                                assigned={READINGS})
    assert got == [0] and seeks == []


async def test_nothing_is_sought_when_a_rebalance_began_during_the_batch(monkeypatch):
    """A generation change mid-batch: the assignment's seeks place the partitions."""
    async def agent(consumer, offset) -> None:
        if offset == 0:
            consumer.app.consumer_generation_id += 1
            consumer._active_partitions.discard(CHANGELOG)

    got, seeks = await read_log(monkeypatch, [0, 1, 2, 3], 0, 2, agent)
    assert got == [0] and seeks == []


@pytest.mark.parametrize("seek_ends_after_the_fetch", [False, True])
async def test_a_batch_dropped_at_a_flow_change_is_read_again_on_a_changelog(
        monkeypatch, seek_ends_after_the_fetch):
    """The recovery's stall, as Faust's developer log showed it: the recovery sought the
    changelog partition to 0 and resumed the flow just after a fetch of 0..3 returned
    with the flow stopped. Faust drops the batch and seeks back to the committed offsets,
    which leaves a changelog partition (no committed offset) past the records. The
    recovery's seek may end (its position wait) after the fetch returned: the records
    are still those after it (aiokafka's position is just past them)."""
    stopped = [False]

    async def agent(consumer, offset) -> None:
        return None

    async def committed(self) -> dict:
        # the recovery resumes the flow once the fetch loop yields to the event loop
        asyncio.get_running_loop().call_soon(self.consumer.resume_flow)
        if seek_ends_after_the_fetch:  # the recovery's seek_wait returns only now
            self.consumer.sought((CHANGELOG,))
        return {CHANGELOG: None, READINGS: 7}

    def stop_once(consumer) -> None:
        if not stopped[0]:
            stopped[0] = True
            consumer.flow_active = False

    monkeypatch.setattr(faust_kafka.AIOKafkaConsumerThread, "seek_to_committed", committed)
    monkeypatch.setattr(type(App("x", broker="kafka://127.0.0.1:1").tables), "changelog_topics",
                        property(lambda self: {CHANGELOG.topic}))
    got, seeks = await read_log(monkeypatch, [0, 1, 2, 3], 0, 3, agent, before=stop_once)
    assert got == [0, 1, 2, 3] and seeks == [(CHANGELOG, 0)]
