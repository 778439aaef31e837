"""Read a compacted topic of snapshots once, whole: ``yujing report`` reads the book's
incidents (``yujing.incidents``) this way, without a consumer group (nobody's offsets move).

It reads each partition from its beginning to the end offset Kafka reports, then on
until a poll comes back empty: Tansu reports too low an end offset (DESIGN), so the
end offset alone would miss the last records there.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from yujing import clock
from yujing.connectors.kafka import PLAINTEXT
from yujing.connectors.kafka import consumer as kafka_consumer
from yujing.kafka_settings import KafkaSecurity


async def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0,
                   security: KafkaSecurity = PLAINTEXT) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` as (key, value), in order per partition; TimeoutError
    when the topic cannot be read whole within ``timeout_s``."""
    deadline = clock.monotonic() + timeout_s
    consumer = kafka_consumer(bootstrap, security=security, group_id=None,
                              enable_auto_commit=False, auto_offset_reset="earliest",
                              fetch_max_wait_ms=100, request_timeout_ms=int(timeout_s * 1000))
    await consumer.start()
    try:
        await consumer.topics()   # fetches the cluster's metadata
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes | None]] = []
        while clock.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
            reached = True
            for tp in tps:
                reached = reached and await consumer.position(tp) >= end[tp]
            if reached and not batch:
                return out
        raise TimeoutError(f"{topic} not read whole within {timeout_s:g}s")
    finally:
        await consumer.stop()
