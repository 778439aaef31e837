"""One worker on partition 0 as app.py wires it, minus Faust and Kafka: Pipelines and the
Evaluator over an in-memory topic and checkpoint table, with a fake clock."""

from __future__ import annotations

import orjson

from yujing.clock import FakeClock
from yujing.domain import WarningEvent
from yujing.streams.alerting import decode_event
from yujing.streams.checkpoint import MemoryTable
from yujing.streams.evaluator import Evaluator, Outbox
from yujing.streams.state import Pipelines

from .storm import setup


class Topics:
    """yujing.warnings and yujing.deadletter as lists; the topic's ``send`` signatures."""

    def __init__(self) -> None:
        self.warnings: list[WarningEvent] = []
        self.dead: list[dict] = []

    async def send_warning(self, key: bytes, value: bytes) -> None:
        self.warnings.append(decode_event(value))    # as the book's agent decodes it

    async def send_dead(self, value: bytes) -> None:
        self.dead.append(orjson.loads(value))


def reader(topic: list[bytes], reported_end: int | None = None):
    """Records of the in-memory partition; ``reported_end`` plays a broker that reports
    an end offset short of the truth."""
    async def read(partition: int, start: int, until: int | None, timeout_s: float):
        end = len(topic) if reported_end is None else min(len(topic), reported_end)
        stop = end if until is None else min(until, len(topic))
        for offset in range(start, stop):
            yield offset, topic[offset]
    return read


class Worker:
    """One worker process on partition 0, as app.py wires it, minus Faust."""

    def __init__(self, table: MemoryTable, topic: list[bytes], clk: FakeClock,
                 reported_end: int | None = None) -> None:
        rules, registry = setup()
        self.clk, self.topics = clk, Topics()

        async def flush() -> None:
            return None
        self.outbox = Outbox(self.topics.send_warning, self.topics.send_dead, "1h",
                             now_ms=clk.now_ms)
        self.pipes = Pipelines(rules, registry, 3_600_000, None, 1, table, "nowhere:9092",
                               "yujing.readings", self.outbox.emit, flush, interval_s=5.0,
                               now_ms=clk.now_ms, reader=reader(topic, reported_end),
                               monotonic=lambda: clk.now_ms() / 1000)
        self.evaluator = Evaluator(self.pipes, self.outbox, "wall", now_ms=clk.now_ms)

    def count_passes(self, partition: int = 0) -> list[int]:
        """Readings per engine pass of ``partition``'s pipeline, from now on."""
        ps, passes = self.pipes.states[partition], []
        handle = ps.handle

        def counted(cols, now_ms):
            passes.append(len(cols))
            return handle(cols, now_ms)
        ps.handle = counted
        return passes

    async def start(self, compare: bool = True) -> None:
        """Assignment of partition 0: restore, re-process, wait for it like the agent."""
        self.pipes.assign({0})
        ps = await self.pipes.get(0)
        if compare:   # a start without a checkpoint forwards first clears; the reference not
            ps.pipeline.lifecycle.forward_first_clear = False
        await self.settle()

    async def record(self, topic: list[bytes], offset: int) -> None:
        """The agent receives the record at ``offset``; the clock moves 2 s per record."""
        self.clk.advance(2_000)
        await self.evaluator.envelope(0, offset, topic[offset])
        await self.settle()

    async def settle(self) -> None:
        """Let a checkpoint being written finish (a real worker writes it meanwhile)."""
        ps = self.pipes.states.get(0)
        if ps is not None and ps.writing is not None:
            await ps.writing
