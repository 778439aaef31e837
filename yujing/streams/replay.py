"""Read back a stretch of one partition of ``yujing.readings``, outside the consumer group.

A restored checkpoint is followed by the envelopes after its offset, and the
agent's catch-up by the envelopes it has not seen; both are read here with a
plain aiokafka consumer (no group, no commits), so nobody's offsets move. So is a
checkpoint's changelog partition when Faust's recovery left a hole in it (streams/state.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from yujing import clock
from yujing.connectors.kafka import PLAINTEXT, consumer
from yujing.kafka_settings import KafkaSecurity

log = logging.getLogger("yujing.state")


async def read_partition(bootstrap: str, topic: str, partition: int, start: int,
                         until: int | None, timeout_s: float = 120.0,
                         security: KafkaSecurity = PLAINTEXT
                         ) -> AsyncIterator[tuple[int, bytes | None]]:
    """(offset, value) of the records [start, until) of ``topic[partition]`` (``until``
    None: to the end the broker reports), for at most ``timeout_s``.

    The caller handles each record before the next is read; close the iterator
    (``contextlib.aclosing``) if it stops early, so the consumer is stopped.
    """
    async with aclosing(read_records(bootstrap, topic, partition, start, until, timeout_s,
                                     security)) as records:
        async for rec in records:
            yield rec.offset, rec.value


async def read_records(bootstrap: str, topic: str, partition: int, start: int | None,
                       until: int | None, timeout_s: float = 120.0,
                       security: KafkaSecurity = PLAINTEXT) -> AsyncIterator[Any]:
    """The records (offset, key, value) of :func:`read_partition`'s stretch; ``start`` None:
    from the first record the partition still holds (a compacted changelog's)."""
    tp = TopicPartition(topic, partition)
    c = consumer(bootstrap, security=security, group_id=None,
                 enable_auto_commit=False, auto_offset_reset="none",
                 max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20,
                 fetch_max_wait_ms=50)  # an empty fetch (the end) answers fast
    await c.start()
    deadline = clock.monotonic() + timeout_s
    last = -1 if start is None else start - 1
    try:
        c.assign([tp])
        if start is None:
            await c.seek_to_beginning(tp)
        else:
            c.seek(tp, start)
        while clock.monotonic() < deadline:
            try:
                got = await c.getmany(tp, timeout_ms=100)
            except OffsetOutOfRangeError:
                log.warning("partition %d: offset %d is no longer in %s; nothing to "
                            "re-process", partition, start, topic)
                break
            for rec in got.get(tp, []):
                if until is not None and rec.offset >= until:
                    return
                yield rec
                last = rec.offset
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
                      partition, timeout_s, last)
    finally:
        await c.stop()
