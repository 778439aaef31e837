"""Kafka producer side of the gateway: topics, batch envelopes, dead letters; and the
constructors every Kafka client of the project is built with (:func:`producer`,
:func:`consumer`, :func:`admin`), so each one gets ``kafka.security``
(yujing/connectors/kafka_security.py)."""

from __future__ import annotations

import asyncio
import logging
import reprlib
from collections.abc import Mapping
from functools import lru_cache
from itertools import repeat, tee
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from yujing import clock
from yujing import metrics as m
from yujing.connectors.batching import Batching, Mode
from yujing.connectors.kafka_security import aiokafka_auth
from yujing.domain import Reading
from yujing.envelope import EnvelopeBuilder, partition_for
from yujing.kafka_settings import KafkaSecurity

log = logging.getLogger(__name__)
_station = attrgetter("station")
# a station's partition is a crc32 of its name: worked out once per station, not per reading
_partition = lru_cache(maxsize=1 << 16)(partition_for)


PLAINTEXT = KafkaSecurity()


def _mono_ms() -> int:
    return int(clock.monotonic() * 1000)


def consumer(bootstrap: str, *topics: str, security: KafkaSecurity,
             **kwargs: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer of ``topics`` (none: assign partitions later) with the
    configured TLS/SASL; ``kwargs`` are aiokafka's own."""
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **aiokafka_auth(security),
                            **kwargs)


def admin(bootstrap: str, *, security: KafkaSecurity, **kwargs: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client with the configured TLS/SASL."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **aiokafka_auth(security), **kwargs)


async def ensure_topics(bootstrap: str, names: list[str], partitions: int,
                        timeout_s: float = 30.0, security: KafkaSecurity = PLAINTEXT) -> None:
    """Create the topics with one partition count; existing ones are left alone.

    Tansu auto-creates unknown topics with 4 partitions, and Faust crashes when
    a table's changelog and its source differ, so we declare every topic.
    """
    deadline = clock.monotonic() + timeout_s
    while True:
        client = admin(bootstrap, security=security, request_timeout_ms=5000)
        try:
            await client.start()
            existing = set(await client.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                try:
                    await client.create_topics([NewTopic(n, partitions, 1) for n in missing])
                except TopicAlreadyExistsError:
                    pass
                log.info("created topics %s with %d partitions", missing, partitions)
            return
        except KafkaError as exc:
            if clock.monotonic() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} is not reachable: {exc}") from exc
            await asyncio.sleep(0.5)
        finally:
            await client.close()


def producer(bootstrap: str, compression: str = "none",
             security: KafkaSecurity = PLAINTEXT) -> AIOKafkaProducer:
    """The gateway's producer: acks from every in-sync replica, envelopes of up to 8 MB."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, **aiokafka_auth(security),
        compression_type=None if compression == "none" else compression,
        # an envelope of 500 readings is ~15 KB; the 16 KB default batch would
        # make nearly every send wait for a fresh batch
        max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024, enable_idempotence=False)


def by_partition(readings: list[Reading], partitions: int,
                 keys: Mapping[str, str] | None = None) -> dict[int, list[Reading]]:
    """``readings`` split by partition (partitions in the order of their first reading), each
    part in the order given. ``keys`` maps a station to the key it is partitioned by (the
    stations of a neighbour group: ``Registry.partition_keys``); the others by their id."""
    names = map(_station, readings)
    if keys:
        names = map(keys.get, *tee(names))
    parts = list(map(_partition, names, repeat(partitions)))
    distinct = set(parts)
    if len(distinct) <= 1:
        return {p: readings for p in distinct}
    col = np.array(parts)
    out = {}
    for p in sorted(distinct, key=parts.index):
        rows = np.flatnonzero(col == p).tolist()
        out[p] = [readings[rows[0]]] if len(rows) == 1 else list(itemgetter(*rows)(readings))
    return out


class Batcher:
    """Groups readings into one envelope per partition and produces them.

    When a partition's envelope goes out is :class:`yujing.connectors.batching.Batching`'s
    call: adaptive (default) sends at once when the partition sent nothing in the last
    ``linger_ms`` and fills envelopes when it did; fixed waits ``linger_ms`` (or until
    ``max_envelope`` readings are waiting). ``add`` returns a future that resolves when every envelope
    holding those readings is acknowledged by Kafka, so HTTP can answer 503
    instead of dropping readings silently.
    """

    def __init__(self, prod: AIOKafkaProducer, topic: str, partitions: int,
                 linger_ms: int = 50, max_envelope: int = 500, mode: Mode = "adaptive") -> None:
        self.prod, self.topic, self.partitions = prod, topic, partitions
        self.max_envelope = max_envelope
        self.policy = Batching(partitions, mode, linger_ms, max_envelope)
        self.builders = [EnvelopeBuilder(p) for p in range(partitions)]
        self.batch_futs: list[asyncio.Future[None] | None] = [None] * partitions
        # the pending flush of each partition and the monotonic ms it is armed for
        self.timers: list[tuple[asyncio.Handle, int] | None] = [None] * partitions
        self.tasks: set[asyncio.Task[None]] = set()
        # FIFO per partition: envelopes must reach Kafka in the order they were
        # built, or a burst makes earlier readings look late (seen in bench).
        self.order_locks = [asyncio.Lock() for _ in range(partitions)]
        self.sent_readings = 0
        self.sent_envelopes = 0
        self.failed_envelopes = 0
        self.keys: Mapping[str, str] = {}  # station → partition key (Registry.partition_keys)

    def _batch_future(self, p: int) -> asyncio.Future[None]:
        fut = self.batch_futs[p]
        if fut is None:
            fut = self.batch_futs[p] = asyncio.get_running_loop().create_future()
            fut.add_done_callback(lambda f: f.exception())  # a failure is reported by add()
        return fut

    def add(self, readings: list[Reading], recv_ms: int | None = None) -> asyncio.Future[Any]:
        recv_ms = clock.now_ms() if recv_ms is None else recv_ms
        now = _mono_ms()
        futs: set[asyncio.Future[None]] = set()
        touched = by_partition(readings, self.partitions, self.keys)
        for p, part in touched.items():
            b, done = self.builders[p], 0
            while done < len(part):   # as reading by reading: full envelopes go at once
                futs.add(self._batch_future(p))
                chunk = part[done:done + max(1, self.max_envelope - len(b))]
                b.add_many(chunk, recv_ms)
                self.policy.added(p, len(chunk), now)
                done += len(chunk)
                if len(b) >= self.max_envelope:
                    self._flush(p)
        for p in touched:
            self._schedule(p, now)
        return asyncio.gather(*futs)

    def _schedule(self, p: int, now: int) -> None:
        """Arm (or bring forward) partition ``p``'s flush for the time the policy names; a flush
        due now runs at the end of this event-loop turn, so one turn's readings share it."""
        at = self.policy.due(p, now)
        armed = self.timers[p]
        if at is None or (armed is not None and armed[1] <= at):
            return
        if armed is not None:
            armed[0].cancel()
        loop = asyncio.get_running_loop()
        handle = (loop.call_soon(self._flush, p) if at <= now
                  else loop.call_later((at - now) / 1000, self._flush, p))
        self.timers[p] = (handle, at)

    def _flush(self, p: int) -> None:
        armed = self.timers[p]
        if armed is not None:
            armed[0].cancel()
            self.timers[p] = None
        b = self.builders[p]
        fut, self.batch_futs[p] = self.batch_futs[p], None
        if len(b) == 0 or fut is None:
            return
        payload, n = b.build(), len(b)
        b.clear()
        self.policy.sent(p, _mono_ms())
        m.ENVELOPE_READINGS.observe(n)
        m.ENVELOPE_BYTES.observe(len(payload))
        task = asyncio.ensure_future(self._send(p, payload, n, fut))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, p: int, payload: bytes, n: int, fut: asyncio.Future[None]) -> None:
        try:
            async with self.order_locks[p]:  # asyncio.Lock wakes waiters in FIFO order
                delivery = await self.prod.send(self.topic, payload, partition=p)
            await delivery
            self.sent_readings += n
            self.sent_envelopes += 1
            if not fut.done():
                fut.set_result(None)
        except Exception as exc:
            self.failed_envelopes += 1
            m.STORE_FAILURES.inc()
            log.error("envelope of %d readings to partition %d failed: %s", n, p, exc)
            if not fut.done():
                fut.set_exception(exc)

    async def flush_all(self) -> None:
        for p in range(self.partitions):
            self._flush(p)
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


# What a rejected item looks like in its dead letter when it cannot be written as JSON (nested
# deeper than orjson writes, 254 levels, though orjson reads 1024): reprlib bounds depth and
# width, so even a hostile item costs a bounded, small text.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring = 6, 8, 8, 200


def render_raw(raw: Any, limit: int) -> str:
    """A rejected item's text for its dead letter, at most ``limit`` characters; never raises."""
    try:
        text = orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except (orjson.JSONEncodeError, RecursionError):
        text = _SHORT.repr(raw)
    return text[:limit]


class DeadLetters:
    """Rejected input with its source, reason (and code) and truncated raw payload.

    ``raw=None`` keeps no payload at all: a write refused by a token's scope
    must leave nothing of the item behind, only the fact that it was refused.
    """

    def __init__(self, prod: AIOKafkaProducer, topic: str, raw_bytes: int = 1024) -> None:
        self.prod, self.topic, self.raw_bytes = prod, topic, raw_bytes
        self.count = 0
        self.lost = 0
        self.max_pending = 10_000
        self.pending: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._room.set()

    @property
    def low_water(self) -> int:
        return self.max_pending // 2

    async def room(self, timeout_s: float | None) -> bool:
        """Wait until fewer than half of ``max_pending`` letters wait for Kafka; False after
        ``timeout_s`` (None: no limit). Ingest waits here before it takes more input and then
        dead-letters without awaiting anything in between, so a flood of junk is slowed to what
        Kafka takes instead of losing letters past ``max_pending``."""
        try:
            async with asyncio.timeout(timeout_s):
                # woken together, waiters check again: the first may have filled it up again
                while len(self.pending) >= self.low_water:
                    await self._room.wait()
        except TimeoutError:
            return False
        return True

    def _done(self, task: asyncio.Task[None]) -> None:
        self.pending.discard(task)
        if len(self.pending) < self.low_water:
            self._room.set()

    def record(self, source: str, reason: str, raw: Any, index: int | None = None,
               code: str = "invalid") -> bytes:
        if raw is None:
            text = ""
        elif isinstance(raw, (bytes, bytearray)):
            text = bytes(raw[: self.raw_bytes]).decode("utf-8", "replace")
        elif isinstance(raw, str):
            text = raw[: self.raw_bytes]
        else:
            text = render_raw(raw, self.raw_bytes)
        return orjson.dumps({"source": source, "reason": reason, "code": code, "index": index,
                             "raw": text, "received_ms": clock.now_ms()})

    def send(self, source: str, reason: str, raw: Any, index: int | None = None,
             code: str = "invalid") -> None:
        """Queue one dead letter without waiting: a Kafka outage must not hold a reply.

        At most ``max_pending`` letters wait for Kafka; past that they are
        logged and counted as lost rather than piling up in memory.
        """
        self.count += 1
        if len(self.pending) >= self.max_pending:
            self.lost += 1
            log.error("dead letter from %s lost (Kafka backlog): %s", source, reason)
            return
        task = asyncio.ensure_future(self._send(source, self.record(source, reason, raw, index,
                                                                    code), reason))
        self.pending.add(task)
        task.add_done_callback(self._done)
        if len(self.pending) >= self.low_water:
            self._room.clear()

    async def _send(self, source: str, record: bytes, reason: str) -> None:
        try:
            await self.prod.send_and_wait(self.topic, record)
        except Exception as exc:
            self.lost += 1
            log.error("dead letter from %s lost (%s): %s", source, exc, reason)

    async def drain(self, timeout_s: float = 5.0) -> None:
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout_s)
