"""The gateway's Kafka as the duty console uses it (yujing/console/bus.py says what that is).

This module implements that protocol by its shape and does not import it: connectors and
console do not import each other; yujing/cli/serve.py hands one to the other.

Commands go out through the gateway's own producer. Topics are read without a
consumer group, so nobody's committed offsets move: the incident snapshots
from the beginning (the console's read model is all of them), readings and dead
letters from a little before the end (the charts and the health page only want
recent ones).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer, TopicPartition

from yujing.config import KafkaConfig
from yujing.connectors.kafka import PLAINTEXT
from yujing.connectors.kafka import consumer as kafka_consumer
from yujing.connectors.topics import declare
from yujing.kafka_settings import KafkaSecurity

log = logging.getLogger("yujing.console")   # what these report is the console's state
Handler = Callable[[bytes | None, bytes | None], object]   # (key, value) of each record


class KafkaBus:
    """Implements yujing.console.bus.Bus over the gateway's producer."""

    def __init__(self, bootstrap: str, producer: AIOKafkaProducer, kafka: KafkaConfig) -> None:
        self.bootstrap, self.producer, self.kafka = bootstrap, producer, kafka

    async def ensure_topics(self, names: list[str]) -> None:
        """Create the missing ones as the project declares them (yujing/connectors/topics.py)."""
        await declare(self.bootstrap, self.kafka, names)

    async def send(self, topic: str, value: bytes, partition: int) -> None:
        await self.producer.send_and_wait(topic, value, partition=partition)

    async def follow(self, topic: str, handle: Handler, caught_up: asyncio.Event) -> None:
        await follow_all(self.bootstrap, topic, handle, caught_up, self.kafka.security)

    async def tail(self, topic: str, back: int, handle: Handler) -> None:
        await follow_tail(self.bootstrap, topic, back, handle, security=self.kafka.security)


async def follow_all(bootstrap: str, topic: str, handle: Handler,
                     caught_up: asyncio.Event, security: KafkaSecurity = PLAINTEXT) -> None:
    """Read ``topic`` from the beginning, then follow it; ``caught_up`` is set whenever a
    poll comes back empty. Waits for Kafka at the start; runs until cancelled."""
    consumer = kafka_consumer(bootstrap, topic, security=security, group_id=None,
                              auto_offset_reset="earliest", enable_auto_commit=False,
                              fetch_max_wait_ms=100)   # the board's latency budget is 1 s
    while True:
        try:
            await consumer.start()
            break
        except Exception as exc:
            log.warning("console: cannot follow %s yet (%s); retrying", topic, exc)
            await asyncio.sleep(1)
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    handle(r.key, r.value)
            if not batch:
                caught_up.set()
    finally:
        await consumer.stop()


async def follow_tail(bootstrap: str, topic: str, back: int, handle: Handler,
                      ready: asyncio.Event | None = None,
                      security: KafkaSecurity = PLAINTEXT) -> None:
    """Read ``topic`` from ``back`` records before each partition's end, then follow it.

    No consumer group: nobody's offsets move. Tansu under-reports end offsets
    (DESIGN), so on Tansu the start is earlier than asked, never later.
    Reconnects until cancelled.
    """
    while True:
        consumer = kafka_consumer(bootstrap, security=security, group_id=None,
                                  enable_auto_commit=False, auto_offset_reset="earliest",
                                  fetch_max_wait_ms=100)
        try:
            await consumer.start()
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer.stop()
                await asyncio.sleep(1)
                continue
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(begin[tp], end[tp] - back))
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        handle(r.key, r.value)
                if not batch and ready is not None:
                    ready.set()
        except asyncio.CancelledError:
            await consumer.stop()
            raise
        except Exception as exc:
            log.warning("console: following %s failed (%s); retrying", topic, exc)
            await consumer.stop()
            await asyncio.sleep(1)
