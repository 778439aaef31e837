"""Pipeline state that survives SIGKILL, restart and rebalance.

The worker keeps one :class:`~yujing.pipeline.Pipeline` per assigned partition of
``yujing.readings`` (windows, rule state, open warnings and no-data state of the
stations hashed to it). Each is checkpointed to a changelog-backed Faust table:

* The agent checkpoints a partition at most every ``worker.checkpoint_interval``, right
  after an envelope: it first flushes the producer (every warning event of every envelope
  in the checkpoint is in Kafka before the checkpoint is written), then takes the
  snapshot with the offset of the last envelope in it. Compression and the table writes
  run off the agent.
* A snapshot is zlib-compressed and cut into chunks below Kafka's default record limit;
  a manifest (sequence number, offset, sizes, CRC) is written once its chunks are
  acknowledged, in a record batch of its own. Two slots per partition alternate, so a
  checkpoint cut short by a crash (or a changelog recovery that misses its tail) leaves
  the previous one whole.
* On assignment the partition's newest whole checkpoint is restored and the readings
  after its offset are re-processed with a plain aiokafka consumer (no group) up to the
  end of the partition, before the agent takes any envelope of that partition; the agent
  then skips envelopes the restored state already holds. Windows are keyed by event time
  and incident ids are minted deterministically from the restored state, so the events
  re-emitted for re-processed readings repeat the ones sent before the crash, and the
  warning book ignores repeats.
* A partition no longer assigned is dropped; whoever owns it next restores it.

A partition without a checkpoint (first start, or a checkpoint that failed its CRC) starts
empty, and its lifecycle forwards the first clear of each key, so warnings the book holds
from before can still be closed by the rule.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from yujing.alerts.lifecycle import RuleMeta
from yujing.envelope import Columns, decode, partition_for
from yujing.pipeline import Outcome, Pipeline
from yujing.stations import Registry
from yujing.rules import nodata
from yujing.rules.schema import Rule

log = logging.getLogger("yujing.state")

CHUNK_BYTES = 512 * 1024     # below Kafka's default 1 MB message.max.bytes, with room
ZLIB_LEVEL = 1               # 3-5x faster than the default level for a few % more bytes


class Manifest(msgspec.Struct):
    seq: int
    offset: int              # last envelope of yujing.readings[p] in the snapshot
    chunks: int
    raw_bytes: int
    stored_bytes: int
    crc: int                 # of the compressed document
    created_ms: int


_manifest_dec = msgspec.msgpack.Decoder(Manifest)
_enc = msgspec.msgpack.Encoder()


def encode_checkpoint(raw: bytes, seq: int, offset: int, created_ms: int,
                      chunk: int = CHUNK_BYTES) -> tuple[bytes, list[bytes]]:
    """(manifest, chunks) of one snapshot. Pure; the worker runs it in a thread."""
    z = zlib.compress(raw, ZLIB_LEVEL)
    parts = [z[i:i + chunk] for i in range(0, len(z), chunk)] or [b""]
    m = Manifest(seq, offset, len(parts), len(raw), len(z), zlib.crc32(z), created_ms)
    return _enc.encode(m), parts


def _slot_keys(p: int, slot: int) -> tuple[str, Callable[[int], str]]:
    return f"{p}:{slot}:m", lambda i: f"{p}:{slot}:{i}"


def load_checkpoint(get: Callable[[str], Any], p: int) -> tuple[Manifest, bytes] | None:
    """The newest whole checkpoint of partition ``p`` from a table's ``get``, or None."""
    found = []
    for slot in (0, 1):
        mkey, ckey = _slot_keys(p, slot)
        raw = _bytes(get(mkey))
        if raw is None:
            continue
        try:
            found.append((_manifest_dec.decode(raw), ckey))
        except msgspec.DecodeError:
            log.warning("partition %d: checkpoint manifest in slot %d is unreadable", p, slot)
    for m, ckey in sorted(found, key=lambda x: -x[0].seq):
        parts = [_bytes(get(ckey(i))) for i in range(m.chunks)]
        z = b"".join(x for x in parts if x is not None)
        if None in parts or len(z) != m.stored_bytes or zlib.crc32(z) != m.crc:
            log.warning("partition %d: checkpoint %d (offset %d) is incomplete; trying an older "
                        "one", p, m.seq, m.offset)
            continue
        return m, zlib.decompress(z)
    return None


def _bytes(v: Any) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):  # a codec that decoded the record to text
        return v.encode("latin-1")
    raise TypeError(f"unexpected checkpoint value of type {type(v).__name__}")


@dataclass
class PartitionState:
    partition: int
    pipeline: Pipeline
    applied: int = -1                 # last envelope offset in the pipeline's state
    seq: int = 0                      # of the last checkpoint written or restored
    checkpointed: int = -1            # offset of that checkpoint
    last_checkpoint: float = float("-inf")    # monotonic time
    writing: asyncio.Task | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restore: asyncio.Task | None = None
    suspended: bool = False           # revoked, maybe not reassigned: write no checkpoint


Emit = Callable[[Outcome], Awaitable[None]]


class Pipelines:
    """The worker's pipelines, one per assigned partition, with their checkpoints.

    ``table`` is a Faust table (``get``, ``data``, ``send_changelog``); ``emit`` sends a
    pipeline outcome's events and late readings (the agent's own path); ``flush`` waits
    until everything produced so far is acknowledged.
    """

    def __init__(self, rules: list[Rule], registry: Registry, lateness_ms: int, models: Any,
                 partitions: int, table: Any, bootstrap: str, topic: str, emit: Emit,
                 flush: Callable[[], Awaitable[None]], interval_s: float,
                 now_ms: Callable[[], int]) -> None:
        self.rules, self.registry, self.lateness_ms = rules, registry, lateness_ms
        self.models, self.partitions = models, partitions
        self.table, self.bootstrap, self.topic = table, bootstrap, topic
        self.emit, self.flush, self.interval_s, self.now_ms = emit, flush, interval_s, now_ms
        self.meta = {r.id: RuleMeta(r.name, r.hazard) for r in rules}
        self.meta[nodata.RULE_ID] = RuleMeta("数据中断", "nodata")
        self.states: dict[int, PartitionState] = {}
        self._shard_of: Callable[[str], int] | None = None
        self._shards = 1

    # -- configuration shared by every pipeline ------------------------------------------

    def use_shards(self, shard_of: Callable[[str], int], shards: int) -> None:
        """Incident ids in the residue class of the book partition (see Lifecycle)."""
        self._shard_of, self._shards = shard_of, shards
        for ps in self.states.values():
            ps.pipeline.use_shards(shard_of, shards)

    def set_registry(self, registry: Registry) -> None:
        self.registry = registry
        for ps in self.states.values():
            ps.pipeline.set_registry(registry)

    def set_models(self, models: Any) -> None:
        self.models = models
        for ps in self.states.values():
            ps.pipeline.engine.set_models(models)

    def _new_pipeline(self, p: int) -> Pipeline:
        pl = Pipeline(self.rules, self.registry, self.lateness_ms,
                      owns=lambda s, p=p: partition_for(s, self.partitions) == p,
                      models=self.models)
        if self._shard_of is not None:
            pl.use_shards(self._shard_of, self._shards)
        return pl

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
            if ps.restore is not None and not ps.restore.done():
                ps.restore.cancel()
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
        ps.restore = asyncio.ensure_future(self._restore(ps))
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

    async def _restore(self, ps: PartitionState) -> None:
        p = ps.partition
        t0 = time.perf_counter()
        try:
            found = load_checkpoint(self.table.get, p)
            if found is not None:
                m, raw = found
                ps.pipeline.restore(raw)
                ps.applied = ps.checkpointed = m.offset
                ps.seq = m.seq  # the first new envelope is checkpointed at once
                t1 = time.perf_counter()
                n_env, n_read = await self._replay_retrying(ps)
                log.info("partition %d: restored checkpoint %d (offset %d, %d bytes stored, "
                         "%d raw) in %.3fs; re-processed %d envelopes (%d readings) after it "
                         "in %.3fs", p, m.seq, m.offset, m.stored_bytes, m.raw_bytes,
                         t1 - t0, n_env, n_read, time.perf_counter() - t1)
                if n_env:
                    await self.checkpoint(ps, wait=False)
            else:
                ps.pipeline.lifecycle.forward_first_clear = True
                log.info("partition %d: no checkpoint, starting empty", p)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken checkpoint must not stop the partition
            log.exception("partition %d: restore failed; starting empty", p)
            ps.pipeline = self._new_pipeline(p)
            ps.pipeline.lifecycle.forward_first_clear = True
            ps.applied = ps.checkpointed = -1
        finally:
            ps.ready.set()

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
            except Exception as exc:  # noqa: BLE001 - KafkaError and friends
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
        """Re-process envelopes [start, until) of the partition (``until`` None: to the end)
        with a consumer of its own (no group, no commits). ``counts`` ([envelopes,
        readings]) is updated as it goes, so a caller that retries keeps the totals."""
        counts = counts if counts is not None else [0, 0]
        tp = TopicPartition(self.topic, ps.partition)
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="none",
                             max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20,
                             fetch_max_wait_ms=50)  # an empty fetch (the end) answers fast
        await c.start()
        deadline = time.monotonic() + timeout_s
        try:
            c.assign([tp])
            c.seek(tp, start)
            while time.monotonic() < deadline:
                try:
                    got = await c.getmany(tp, timeout_ms=100)
                except OffsetOutOfRangeError:
                    log.warning("partition %d: offset %d is no longer in %s; nothing to "
                                "re-process", ps.partition, start, self.topic)
                    break
                for rec in got.get(tp, []):
                    if until is not None and rec.offset >= until:
                        return counts[0], counts[1]
                    if rec.offset <= ps.applied:
                        continue
                    counts[1] += await self.apply(ps, rec.offset, rec.value)
                    counts[0] += 1
                # Fetch responses carry the true high watermark, also on Tansu (whose
                # ListOffsets answer is the last batch's base offset + 1).
                hw = c.highwater(tp)
                pos = await c.position(tp)
                if until is not None and pos >= until:
                    break
                if until is None and hw is not None and pos >= hw:
                    break
            else:
                log.error("partition %d: re-processing stopped after %.0fs at offset %d",
                          ps.partition, timeout_s, ps.applied)
        finally:
            await c.stop()
        return counts[0], counts[1]

    async def apply(self, ps: PartitionState, offset: int, payload: bytes | None,
                    cols: Columns | None = None) -> int:
        """Process one envelope into the partition's pipeline and emit what it found."""
        if cols is None:
            try:
                cols = decode(payload or b"")
            except ValueError:
                ps.applied = offset  # the agent dead-lettered it the first time
                return 0
        out = ps.pipeline.handle(cols, self.now_ms())
        await self.emit(out)
        ps.applied = offset
        return len(cols)

    # -- checkpoints -----------------------------------------------------------------------

    def due(self, ps: PartitionState) -> bool:
        return (ps.applied > ps.checkpointed and ps.writing is None and not ps.suspended
                and time.monotonic() - ps.last_checkpoint >= self.interval_s)

    async def checkpoint(self, ps: PartitionState, wait: bool = False) -> None:
        """Snapshot the partition now; compress and write it in the background."""
        await self.flush()          # the events of every envelope in it are in Kafka first
        raw = ps.pipeline.snapshot()
        ps.seq += 1
        ps.checkpointed = ps.applied
        ps.last_checkpoint = time.monotonic()
        ps.writing = asyncio.ensure_future(self._write(ps, raw, ps.seq, ps.applied))
        if wait:
            await ps.writing

    async def _write(self, ps: PartitionState, raw: bytes, seq: int, offset: int) -> None:
        p = ps.partition
        try:
            t0 = time.perf_counter()
            manifest, parts = await asyncio.to_thread(encode_checkpoint, raw, seq, offset,
                                                      self.now_ms())
            if self.states.get(p) is not ps or ps.suspended:
                return  # revoked meanwhile: the partition may belong to someone else now
            mkey, ckey = _slot_keys(p, seq % 2)
            for i, part in enumerate(parts):
                self._put(p, ckey(i), part)
            # The manifest goes in a record batch of its own, after its chunks are stored:
            # Tansu reports a partition's end as the last batch's base offset + 1, and
            # Faust's recovery stops there, dropping the rest of that batch.
            await self.flush()
            if self.states.get(p) is not ps or ps.suspended:
                return
            self._put(p, mkey, manifest)
            log.info("partition %d: checkpoint %d at offset %d: %d bytes raw, %d stored in "
                      "%d chunks, %.3fs", p, seq, offset, len(raw), sum(map(len, parts)),
                      len(parts), time.perf_counter() - t0)
        except Exception:  # noqa: BLE001 - the next checkpoint tries again
            log.exception("partition %d: checkpoint %d failed", p, seq)
        finally:
            ps.writing = None

    def _put(self, p: int, key: str, value: bytes) -> None:
        # Written outside the agent's event context, so the partition is given explicitly:
        # the table's changelog partition p is recovered by whoever owns readings partition p.
        self.table.data[key] = value
        self.table.send_changelog(p, key, value)


def dict_table(d: MutableMapping[str, Any] | None = None) -> Any:
    """A stand-in for the Faust table (tests, benchmarks): ``get``, ``data``, ``send_changelog``."""
    class _T:
        def __init__(self) -> None:
            self.data = d if d is not None else {}
            self.sent: list[tuple[int, str, int]] = []

        def get(self, k: str) -> Any:
            return self.data.get(k)

        def send_changelog(self, p: int, k: str, v: bytes) -> None:
            self.sent.append((p, k, len(v)))
    return _T()
