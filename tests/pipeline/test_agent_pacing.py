"""The readings agent's wait (yujing/streams/app.py ``evaluate_waiting`` with a
streams/pacing.py ``Pacer``), on the in-memory worker: a busy agent waits once and takes
what arrived meanwhile into the same engine pass; a quiet one never waits; the time a
pass spends awaiting its sends is not counted as the engine's.

The stream below is what ``evaluate_waiting`` uses of a Faust stream (its channel's queue,
``events()``, ``ack``); the real one is exercised by every live test's worker.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from yujing.clock import FakeClock
from yujing.streams.app import evaluate_waiting
from yujing.streams.checkpoint import MemoryTable
from yujing.streams.pacing import Pacer

from .storm import T0, storm_envelopes
from .worker import Worker

END = object()


class Stream:
    """Records of partition 0 through a queue, as Faust's stream takes them from its channel."""

    def __init__(self) -> None:
        self.channel = SimpleNamespace(queue=asyncio.Queue())
        self.acked: list[int] = []

    def put(self, offset: int, payload: bytes) -> None:
        self.channel.queue.put_nowait(SimpleNamespace(
            message=SimpleNamespace(partition=0, offset=offset, tp=None), value=payload))

    async def events(self):
        while (event := await self.channel.queue.get()) is not END:
            yield event

    async def ack(self, event) -> None:
        self.acked.append(event.message.offset)


async def acked(stream: Stream, n: int) -> None:
    """Until the agent has acked ``n`` envelopes (a broken agent fails here, not hangs)."""
    async def loop() -> None:
        while len(stream.acked) < n:
            await asyncio.sleep(0)
    await asyncio.wait_for(loop(), 10)


async def started(topic: list[bytes]) -> tuple[Worker, list[int]]:
    """A worker on partition 0 whose engine passes are counted (readings per pass)."""
    w = Worker(MemoryTable(), topic, FakeClock(T0))
    await w.start()
    return w, w.count_passes()


async def test_a_busy_agent_waits_once_and_takes_what_arrived_into_the_same_pass():
    topic = storm_envelopes(minutes=3)[:3]
    w, passes = await started(topic)
    stream, waits = Stream(), []

    async def sleep(s: float) -> None:      # envelopes 1 and 2 reach the agent while it waits
        waits.append(s)
        if len(waits) == 1:
            stream.put(1, topic[1])
            stream.put(2, topic[2])

    stream.put(0, topic[0])
    busy = Pacer(0.005, busy_share=-1.0)    # any share is above it: the agent is "busy"
    agent = asyncio.ensure_future(evaluate_waiting(stream, w.evaluator, SimpleNamespace(
        consumer=None), busy, sleep=sleep))
    await acked(stream, 3)
    stream.channel.queue.put_nowait(END)
    await agent
    assert waits == [0.005]                 # one wait, not one per envelope taken after it
    assert len(passes) == 1 and stream.acked == [0, 1, 2]
    assert w.pipes.states[0].applied == 2


async def test_a_quiet_agent_never_waits():
    topic = storm_envelopes(minutes=3)[:3]
    w, passes = await started(topic)
    stream, waits = Stream(), []

    async def sleep(s: float) -> None:
        waits.append(s)

    agent = asyncio.ensure_future(evaluate_waiting(stream, w.evaluator, SimpleNamespace(
        consumer=None), Pacer(0.005), sleep=sleep))
    for offset in range(3):                 # one at a time: nothing waits behind any
        stream.put(offset, topic[offset])
        await acked(stream, offset + 1)
    stream.channel.queue.put_nowait(END)
    await agent
    assert waits == [] and len(passes) == 3 and stream.acked == [0, 1, 2]


async def test_the_engine_time_leaves_out_the_awaited_sends():
    """A slow broker (each warning's send takes 20 ms) must not make the worker look busy."""
    topic = storm_envelopes(minutes=60)
    w, _ = await started(topic)
    send = w.outbox.send_warning
    slept = []

    async def slow_send(key: bytes, value: bytes) -> None:
        t = asyncio.get_running_loop().time()
        await asyncio.sleep(0.02)
        slept.append(asyncio.get_running_loop().time() - t)
        await send(key=key, value=value)
    w.outbox.send_warning = slow_send
    loop = asyncio.get_running_loop()
    t0, engine0 = loop.time(), w.evaluator.engine_s
    await w.evaluator.records([(0, off, topic[off]) for off in range(len(topic))])
    wall, engine = loop.time() - t0, w.evaluator.engine_s - engine0
    assert slept, "the storm raises warnings, so the pass awaited sends"
    assert 0 < engine <= wall - sum(slept)
