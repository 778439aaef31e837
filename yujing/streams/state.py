"""Pipeline state that survives SIGKILL, restart and rebalance: the asyncio side.

The worker keeps one :class:`~yujing.pipeline.Pipeline` per assigned partition of
``yujing.readings`` (windows, rule state, open warnings and no-data state of the
stations hashed to it), in a :class:`~yujing.streams.runner.PartitionRunner` that
makes the per-envelope and per-checkpoint decisions. Each is checkpointed to a
changelog-backed Faust table (:mod:`yujing.streams.tables`):

* The agent checkpoints a partition at most every ``worker.checkpoint_interval``, right
  after an envelope: it first flushes the producer (every warning event of every envelope
  in the checkpoint is in Kafka before the checkpoint is written), then takes the
  snapshot with the offset of the last envelope in it. Compression and the table writes
  run off the agent.
* A snapshot is stored as chunks and a manifest in one of two alternating slots
  (:mod:`yujing.streams.checkpoint`), so a checkpoint cut short by a crash (or a changelog
  recovery that misses its tail) leaves the previous one whole. When the recovery brought
  a manifest but no whole checkpoint (a record lost inside the worker), the checkpoint is
  read from the changelog partition itself.
* On assignment the partition's newest whole checkpoint is restored and the readings
  after its offset are re-processed with a plain aiokafka consumer (no group,
  :mod:`yujing.streams.replay`) up to the end of the partition, before the agent takes any
  envelope of that partition; the agent then skips envelopes the restored state already
  holds. Windows are keyed by event time and the open warnings' episodes are part of the
  restored state, so the events re-emitted for re-processed readings repeat the ones sent
  before the crash, and the warning book ignores repeats.
* A partition no longer assigned is dropped; whoever owns it next restores it.

A partition without a checkpoint (first start, or a checkpoint that failed its CRC) starts
empty, and its lifecycle forwards the first clear of each key, so warnings the book holds
from before can still be closed by the rule.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from aiokafka.errors import OffsetOutOfRangeError

from yujing import clock
from yujing.alerts.lifecycle import RuleMeta
from yujing.connectors.kafka import PLAINTEXT
from yujing.envelope import Columns, decode, partition_for
from yujing.kafka_settings import KafkaSecurity
from yujing.pipeline import Outcome, Pipeline
from yujing.rules import nodata
from yujing.rules.localtime import DEFAULT_ZONE
from yujing.rules.schema import Rule
from yujing.stations import Registry
from yujing.streams.checkpoint import (
    Manifest,
    dict_table,
    encode_checkpoint,
    has_manifest,
    load_checkpoint,
    table_records,
)
from yujing.streams.replay import read_partition, read_records
from yujing.streams.runner import PartitionRunner, Snapshot

__all__ = ["PartitionState", "Pipelines", "dict_table", "load_checkpoint"]  # tests import these

log = logging.getLogger("yujing.state")

Emit = Callable[[Outcome], Awaitable[None]]
# (partition, start, until, timeout_s) -> (offset, value) of the records [start, until)
Reader = Callable[[int, int, "int | None", float], AsyncIterator[tuple[int, "bytes | None"]]]


class PartitionState(PartitionRunner):
    """A partition's runner, and the restore that must finish before the agent uses it."""

    def __init__(self, partition: int, pipeline: Pipeline, applied: int = -1) -> None:
        super().__init__(partition, pipeline, applied)
        self.ready = asyncio.Event()
        self.restoring: asyncio.Task | None = None


class Pipelines:
    """The worker's pipelines, one per assigned partition, with their checkpoints.

    ``table`` has ``get(key)`` and ``put(partition, key, value)``
    (:class:`~yujing.streams.tables.CheckpointTable` over the Faust table, or
    :func:`~yujing.streams.checkpoint.dict_table`); ``emit`` sends a pipeline outcome's
    events and late readings (the agent's own path); ``flush`` waits until everything
    produced so far is acknowledged. ``reader`` reads envelopes back from the topic
    (default: :func:`~yujing.streams.replay.read_partition` on ``bootstrap``);
    ``monotonic`` is the clock of the checkpoint interval.
    """

    def __init__(self, rules: list[Rule], registry: Registry, lateness_ms: int, models: Any,
                 partitions: int, table: Any, bootstrap: str, topic: str, emit: Emit,
                 flush: Callable[[], Awaitable[None]], interval_s: float,
                 now_ms: Callable[[], int], reader: Reader | None = None,
                 monotonic: Callable[[], float] = clock.monotonic, tz: str = DEFAULT_ZONE,
                 security: KafkaSecurity = PLAINTEXT) -> None:
        self.rules, self.registry, self.lateness_ms = rules, registry, lateness_ms
        self.keys = registry.partition_keys() if registry is not None else {}
        self.models, self.partitions = models, partitions
        self.table, self.bootstrap, self.topic = table, bootstrap, topic
        self.emit, self.flush, self.interval_s, self.now_ms = emit, flush, interval_s, now_ms
        self.read = reader or functools.partial(read_partition, bootstrap, topic,
                                                security=security)
        self.security = security
        self.monotonic = monotonic
        self.tz = tz  # hour() and month() in rules
        self.meta = {r.id: RuleMeta(r.name, r.hazard) for r in rules}
        self.meta[nodata.RULE_ID] = RuleMeta("数据中断", "nodata")
        self.states: dict[int, PartitionState] = {}

    # -- configuration shared by every pipeline ------------------------------------------

    def set_registry(self, registry: Registry) -> None:
        self.registry = registry
        self.keys = registry.partition_keys()  # a neighbour group's stations share a partition
        for ps in self.states.values():
            ps.pipeline.set_registry(registry)

    def set_models(self, models: Any) -> None:
        self.models = models
        for ps in self.states.values():
            ps.pipeline.engine.set_models(models)

    def _new_pipeline(self, p: int) -> Pipeline:
        return Pipeline(self.rules, self.registry, self.lateness_ms,
                        owns=lambda s, p=p: partition_for(self.keys.get(s, s), self.partitions) == p,
                        models=self.models, tz=self.tz)

    def ready(self) -> list[PartitionState]:
        return [ps for ps in self.states.values() if ps.ready.is_set()]

    # -- assignment ------------------------------------------------------------------------

    def revoke(self, partitions: set[int]) -> None:
        """A rebalance starts: no checkpoint of these partitions may be written any more
        (another worker may own them next); the state is kept in case they come back."""
        for p in partitions:
            if p in self.states:
                self.states[p].suspended = True

    def keep(self, partitions: set[int]) -> None:
        """The new assignment: forget the partitions this worker lost, resume the others."""
        for p in sorted(set(self.states) - partitions):
            ps = self.states.pop(p)
            if ps.restoring is not None and not ps.restoring.done():
                ps.restoring.cancel()
            log.info("partition %d: revoked, pipeline dropped (applied offset %d)", p, ps.applied)
        for p in partitions & set(self.states):
            self.states[p].suspended = False

    def assign(self, partitions: set[int]) -> None:
        """Tables are recovered: restore the newly assigned partitions (in the background;
        the agent waits for them)."""
        self.keep(partitions)
        for p in sorted(partitions - set(self.states)):
            self._start(p)

    def _start(self, p: int) -> PartitionState:
        ps = self.states[p] = PartitionState(p, self._new_pipeline(p))
        ps.restoring = asyncio.ensure_future(self._restore(ps))
        return ps

    async def get(self, p: int) -> PartitionState:
        """The partition's state, once restored (the agent calls this per envelope)."""
        ps = self.states.get(p)
        if ps is None:  # Faust resumes streams after the rebalance-complete signal: unexpected
            log.warning("partition %d: envelope before the assignment was seen; restoring now", p)
            ps = self._start(p)
        if not ps.ready.is_set():
            await ps.ready.wait()
        return ps

    def owns(self, ps: PartitionState) -> bool:
        """``ps`` is still this worker's state of its partition (not revoked meanwhile)."""
        return self.states.get(ps.partition) is ps

    async def _restore(self, ps: PartitionState) -> None:
        p = ps.partition
        t0 = self.monotonic()
        try:
            found = load_checkpoint(self.table.get, p)
            if found is None and has_manifest(self.table.get, p):
                found = await self._from_changelog(p)
            if found is not None:
                m, raw = found
                ps.restore_checkpoint(raw, m.seq, m.offset)  # the first new envelope is
                t1 = self.monotonic()                        # checkpointed at once
                n_env, n_read = await self._replay_retrying(ps)
                log.info("partition %d: restored checkpoint %d (offset %d, %d bytes stored, "
                         "%d raw) in %.3fs; re-processed %d envelopes (%d readings) after it "
                         "in %.3fs", p, m.seq, m.offset, m.stored_bytes, m.raw_bytes,
                         t1 - t0, n_env, n_read, self.monotonic() - t1)
                if n_env:
                    await self.checkpoint(ps, wait=False)
            else:
                ps.start_empty()
                log.info("partition %d: no checkpoint, starting empty", p)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("partition %d: restore failed; starting empty", p)
            ps.start_over(self._new_pipeline(p))
        finally:
            ps.ready.set()

    async def _from_changelog(self, p: int) -> tuple[Manifest, bytes] | None:
        """A manifest came with the table's recovery but no whole checkpoint: the recovery
        left a hole (a record lost inside the worker, as on the readings topic,
        streams/commit_stall.py). The partition's records are read from the changelog
        itself; None without a changelog (a test's table) or a whole checkpoint in it."""
        topic = getattr(self.table, "changelog", None)
        if topic is None:
            return None
        log.warning("partition %d: no whole checkpoint came with the table's recovery; "
                    "reading the checkpoint from %s[%d] itself", p, topic, p)
        records: dict[str, bytes | None] = {}
        async with aclosing(read_records(self.bootstrap, topic, p, None, None,
                                         security=self.security)) as got:
            async for rec in got:
                if (key := self.table.key_of(rec.key)) is not None:
                    records[key] = rec.value
        return load_checkpoint(records.get, p)

    # -- re-processing ---------------------------------------------------------------------

    async def _replay_retrying(self, ps: PartitionState, attempts: int = 3) -> tuple[int, int]:
        """Re-process to the end; a broker hiccup is retried from where it stopped (the
        replay skips what is already applied), not answered by dropping the state."""
        counts = [0, 0]
        for attempt in range(1, attempts + 1):
            try:
                await self.replay(ps, ps.applied + 1, None, counts=counts)
                break
            except (asyncio.CancelledError, OffsetOutOfRangeError):
                raise
            except Exception as exc:
                if attempt == attempts:
                    raise
                log.warning("partition %d: re-processing failed at offset %d (%s); retrying",
                            ps.partition, ps.applied, exc)
                await asyncio.sleep(attempt)
        return counts[0], counts[1]

    async def catch_up(self, ps: PartitionState, until: int) -> None:
        """The agent got offset ``until`` but the state ends before it (the consumer group's
        committed offset was ahead of the checkpoint's replay): process the gap first."""
        n_env, n_read = await self.replay(ps, ps.applied + 1, until)
        log.info("partition %d: caught up %d envelopes (%d readings) before offset %d",
                 ps.partition, n_env, n_read, until)

    async def replay(self, ps: PartitionState, start: int, until: int | None,
                     timeout_s: float = 120.0, counts: list[int] | None = None
                     ) -> tuple[int, int]:
        """Re-process envelopes [start, until) of the partition (``until`` None: to the end).
        ``counts`` ([envelopes, readings]) is updated as it goes, so a caller that retries
        keeps the totals."""
        counts = counts if counts is not None else [0, 0]
        async with aclosing(self.read(ps.partition, start, until, timeout_s)) as records:
            async for offset, value in records:
                if ps.holds(offset):
                    continue
                counts[1] += await self.apply(ps, offset, value)
                counts[0] += 1
        return counts[0], counts[1]

    async def apply(self, ps: PartitionState, offset: int, payload: bytes | None,
                    cols: Columns | None = None) -> int:
        """Process one envelope into the partition's pipeline and emit what it found."""
        if cols is None:
            try:
                cols = decode(payload or b"")
            except ValueError:
                ps.done(offset)  # the agent dead-lettered it the first time
                return 0
        out = ps.handle(cols, self.now_ms())
        await self.emit(out)
        ps.done(offset)
        return len(cols)

    # -- checkpoints -----------------------------------------------------------------------

    def due(self, ps: PartitionState) -> bool:
        return ps.checkpoint_due(self.monotonic(), self.interval_s)

    async def checkpoint(self, ps: PartitionState, wait: bool = False) -> None:
        """Snapshot the partition now; compress and write it in the background."""
        await self.flush()          # the events of every envelope in it are in Kafka first
        snap = ps.take_checkpoint(self.monotonic())
        ps.writing = asyncio.ensure_future(self._write(ps, snap))
        if wait:
            await ps.writing

    async def _write(self, ps: PartitionState, snap: Snapshot) -> None:
        p = ps.partition
        try:
            t0 = self.monotonic()
            manifest, parts = await asyncio.to_thread(encode_checkpoint, snap.raw, snap.seq,
                                                      snap.offset, self.now_ms())
            if not self.owns(ps) or ps.suspended:
                return  # revoked meanwhile: the partition may belong to someone else now
            chunks, head = table_records(p, snap.seq, manifest, parts)
            for key, value in chunks:
                self.table.put(p, key, value)
            # The manifest goes in a record batch of its own, after its chunks are stored:
            # Tansu reports a partition's end as the last batch's base offset + 1, and
            # Faust's recovery stops there, dropping the rest of that batch.
            await self.flush()
            if not self.owns(ps) or ps.suspended:
                return
            self.table.put(p, *head)
            log.info("partition %d: checkpoint %d at offset %d: %d bytes raw, %d stored in "
                     "%d chunks, %.3fs", p, snap.seq, snap.offset, len(snap.raw),
                     sum(map(len, parts)), len(parts), self.monotonic() - t0)
        except Exception:
            log.exception("partition %d: checkpoint %d failed", p, snap.seq)
        finally:
            ps.writing = None
