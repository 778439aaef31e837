"""What the worker's evaluating agent and its timers do, with Faust left to app.py.

Per batch of waiting envelopes: decode → the partition's pipeline (one engine pass
over consecutive envelopes) → warning events to ``yujing.warnings``, late and
undecodable readings to the dead-letter topic, then a checkpoint when one is due.
The timers check for silent stations, reload anomaly models and log a heartbeat.
Topics are reached through their ``send`` and the rebalance signals are app.py's, so
nothing here needs a running Faust app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import orjson

from yujing import clock, metrics
from yujing.domain import WarningEvent
from yujing.envelope import Columns, concat, decode
from yujing.pipeline import Outcome
from yujing.stations import Registry
from yujing.streams.alerting import routing_key
from yujing.streams.runner import Step
from yujing.streams.state import Pipelines

log = logging.getLogger(__name__)
_event_encoder = msgspec.json.Encoder()

Send = Callable[..., Awaitable[Any]]   # a Faust topic's send(key=..., value=...)
Record = tuple[int, int, bytes]        # (partition, offset, value) of yujing.readings


def dead_letter(source: str, reason: str, raw: object, now_ms: int) -> bytes:
    """A record of yujing.deadletter (the shape ``yujing deadletter tail`` reads)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    elif isinstance(raw, msgspec.Struct):
        raw = msgspec.to_builtins(raw)
    return orjson.dumps({"source": source, "reason": reason, "raw": raw,
                         "received_ms": now_ms})


class Outbox:
    """Where the worker's results go: warning events keyed by group (the book's partition),
    late readings and undecodable envelopes to the dead letters."""

    def __init__(self, send_warning: Send, send_dead: Send, lateness: object,
                 now_ms: Callable[[], int] = clock.now_ms) -> None:
        self.send_warning, self.send_dead, self.lateness = send_warning, send_dead, lateness
        self.now_ms = now_ms

    async def warning(self, ev: WarningEvent) -> None:
        metrics.observe_warning(ev)
        await self.send_warning(key=routing_key(ev), value=_event_encoder.encode(ev))

    async def emit(self, out: Outcome) -> None:
        for ev in out.events:
            await self.warning(ev)
        for r in out.late:
            await self.dead("worker:late", f"reading more than {self.lateness} behind its "
                            "series", r)

    async def dead(self, source: str, reason: str, raw: object) -> None:
        await self.send_dead(value=dead_letter(source, reason, raw, self.now_ms()))


class Evaluator:
    """The agent's and timers' work on the worker's pipelines."""

    def __init__(self, pipelines: Pipelines, outbox: Outbox, nodata_clock: str,
                 models: Any | None = None, now_ms: Callable[[], int] = clock.now_ms) -> None:
        self.pipelines, self.outbox = pipelines, outbox
        self.nodata_clock, self.models, self.now_ms = nodata_clock, models, now_ms
        self.engine_s = 0.0   # wall seconds inside the engine's passes (streams/pacing.py)

    async def envelope(self, partition: int, offset: int, payload: bytes,
                       observe_lag: Callable[[], None] = lambda: None) -> None:
        """One record of yujing.readings."""
        await self.records([(partition, offset, payload)], observe_lag)

    async def records(self, batch: Sequence[Record],
                      observe_lag: Callable[[], None] = lambda: None) -> None:
        """Records of yujing.readings that were waiting together, in arrival order.

        Each partition's envelopes go to its pipeline in offset order; consecutive
        observation envelopes are evaluated in one engine pass (envelope.concat), since the
        engine's cost per pass is largely fixed: small envelopes (a short gateway linger,
        low latency) then cost the worker what a big one does. An undecodable envelope is
        dead-lettered and a forecast envelope is evaluated on its own, each in its place."""
        by_partition: dict[int, list[tuple[int, bytes]]] = {}
        for partition, offset, payload in batch:
            by_partition.setdefault(partition, []).append((offset, payload))
        for partition, records in by_partition.items():
            await self._partition(partition, records, observe_lag)

    async def _partition(self, partition: int, records: list[tuple[int, bytes]],
                         observe_lag: Callable[[], None]) -> None:
        pipes = self.pipelines
        ps = await pipes.get(partition)
        run: list[tuple[int, Columns]] = []   # decoded, contiguous, not yet evaluated
        for offset, payload in records:
            if not pipes.owns(ps):
                return  # revoked meanwhile: the new owner evaluates these
            if run and offset == run[-1][0] + 1:
                step = Step.APPLY
            else:
                await self._evaluate(ps, run, observe_lag)
                step = ps.step(offset)
            if step is Step.SKIP:
                continue  # already in the restored state
            if step is Step.CATCH_UP:
                await pipes.catch_up(ps, offset)
            try:
                cols = decode(payload)
            except ValueError as exc:
                await self._evaluate(ps, run, observe_lag)
                await self.outbox.dead("worker:decode", str(exc), payload[:256])
                ps.done(offset)
                continue
            if cols.issued is not None:
                await self._evaluate(ps, run, observe_lag)
                await self._evaluate(ps, [(offset, cols)], observe_lag)
            else:
                run.append((offset, cols))
        if pipes.owns(ps):
            await self._evaluate(ps, run, observe_lag)

    async def _evaluate(self, ps: Any, run: list[tuple[int, Columns]],
                        observe_lag: Callable[[], None]) -> None:
        """One engine pass over ``run`` (emptied), its events sent, then a checkpoint when
        one is due."""
        if not run:
            return
        if not self.pipelines.owns(ps):
            run.clear()   # revoked meanwhile: the new owner evaluates these
            return
        cols = concat([c for _, c in run])
        last = run[-1][0]
        recv = [c.recv_ms for _, c in run]
        run.clear()
        t0, cpu0 = clock.monotonic(), clock.thread_cpu()
        out = ps.handle(cols, self.now_ms())
        took = clock.monotonic() - t0
        self.engine_s += took
        metrics.observe_evaluation(len(cols), recv, took, len(out.late),
                                   self.now_ms(), clock.thread_cpu() - cpu0)
        observe_lag()
        await self.outbox.emit(out)
        ps.done(last)
        if self.pipelines.due(ps):
            await self.pipelines.checkpoint(ps)

    async def check_nodata(self) -> None:
        """Each pipeline watches the stations of its own partition."""
        for ps in self.pipelines.ready():
            for ev in ps.pipeline.check_nodata(self.now_ms(), self.nodata_clock):
                await self.outbox.warning(ev)

    def use_registry(self, reg: Registry) -> None:
        """Hot reload (file change or SIGHUP): rules see new selectors and station fields,
        no-data checks the new intervals; warning and window state are kept."""
        self.pipelines.set_registry(reg)
        log.info("worker: station registry reloaded, %d stations", len(reg))

    async def reload_models(self) -> None:
        # off the event loop: a new forest version takes seconds to check and parse
        changed = await asyncio.to_thread(self.models.reload) if self.models is not None else []
        if changed:
            self.pipelines.set_models(self.models)
            log.info("worker: anomaly models reloaded: %s", ", ".join(changed))

    async def heartbeat(self) -> None:
        states = self.pipelines.ready()
        n = sum(ps.pipeline.engine.stats.readings for ps in states)
        late = sum(ps.pipeline.engine.stats.late for ps in states)
        active = sum(len(ps.pipeline.lifecycle.active) for ps in states)
        owned = ",".join(str(p) for p in sorted(ps.partition for ps in states))
        log.info("worker: %d readings, %d late, %d active warnings (partitions %s)", n, late,
                 active, owned)
        rows = sum(getattr(getattr(ps.pipeline.engine.interpreter.scorer, "groups", None),
                           "late", 0) for ps in states)
        if rows:  # models/group_stream.py: a neighbour group's row closed without a station
            log.warning("worker: %d station rows of neighbour groups closed before their "
                        "readings came (scored without them; check those gateways' delay)", rows)
