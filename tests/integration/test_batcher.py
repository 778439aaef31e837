"""The gateway's Batcher against a real Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from yujing.connectors.kafka import Batcher, ensure_topics, producer
from yujing.domain import Reading
from yujing.envelope import decode, partition_for


async def test_envelopes_keep_their_order_within_a_partition(kafka):
    await ensure_topics(kafka, ["t.readings"], 2)
    prod = producer(kafka)
    await prod.start()
    try:
        b = Batcher(prod, "t.readings", 2, linger_ms=5, max_envelope=7)
        # a burst of many small adds: 3,000 readings of one station, in event-time order
        futs = [b.add([Reading("S1", "rain_mm", 1_700_000_000_000 + i * 1000 + j, 1.0)
                       for j in range(3)]) for i in range(0, 3000 * 1000, 3000)]
        await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert b.sent_readings == 3000 and b.failed_envelopes == 0
    finally:
        await prod.stop()
    p = partition_for("S1", 2)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    tp = TopicPartition("t.readings", p)
    consumer.assign([tp])
    ts: list[np.ndarray] = []
    try:
        while sum(a.size for a in ts) < 3000:
            recs = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=500), 10)
            ts.extend(decode(r.value).ts.copy() for r in recs.get(tp, []))
    finally:
        await consumer.stop()
    all_ts = np.concatenate(ts)
    assert all_ts.size == 3000
    assert (np.diff(all_ts) > 0).all(), "envelopes reached Kafka out of order"


async def test_add_fails_loudly_when_kafka_is_gone(kafka):
    await ensure_topics(kafka, ["t.readings"], 1)
    prod = producer(kafka)
    await prod.start()
    b = Batcher(prod, "t.readings", 1, linger_ms=5)
    await prod.stop()  # the producer is closed: the readings cannot be stored
    with pytest.raises(Exception):  # noqa: B017 - whichever error aiokafka raises for a closed producer
        await asyncio.wait_for(b.add([Reading("S1", "rain_mm", 1_700_000_000_000, 1.0)]), 10)
    assert b.failed_envelopes == 1


async def test_adaptive_sends_a_lone_reading_at_once_and_batches_what_follows(kafka):
    await ensure_topics(kafka, ["t.lone"], 1)
    prod = producer(kafka)
    await prod.start()
    try:
        # a linger far longer than the wait below: only the idle fast path can meet it
        b = Batcher(prod, "t.lone", 1, linger_ms=5000, max_envelope=500, mode="adaptive")
        await asyncio.wait_for(b.add([Reading("S1", "rain_mm", 1_700_000_000_000, 1.0)]), 4)
        assert b.sent_envelopes == 1
        # 300 adds of one reading in quick succession, within the linger after that envelope
        futs = []
        for i in range(300):
            futs.append(b.add([Reading("S1", "rain_mm", 1_700_000_001_000 + i, 1.0)]))
            if i % 10 == 0:
                await asyncio.sleep(0)  # let sends start between adds
        await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert b.sent_readings == 301
        assert b.sent_envelopes == 2, "readings after an envelope share the next one"
    finally:
        await prod.stop()


async def test_fixed_batching_holds_a_lone_reading_for_the_linger(kafka):
    await ensure_topics(kafka, ["t.fixed"], 1)
    prod = producer(kafka)
    await prod.start()
    try:
        b = Batcher(prod, "t.fixed", 1, linger_ms=5000, max_envelope=500, mode="fixed")
        fut = b.add([Reading("S1", "rain_mm", 1_700_000_000_000, 1.0)])
        done, _ = await asyncio.wait([fut], timeout=1)
        assert not done and b.sent_envelopes == 0  # still lingering
        await b.flush_all()
        await asyncio.wait_for(fut, 10)
        assert b.sent_envelopes == 1
    finally:
        await prod.stop()
