"""``yujing deadletter tail``: the newest rejected inputs, and new ones as they come.

Reads ``yujing.deadletter`` without a consumer group (a tail must not move
anybody's offsets). To find "the last N" it starts each partition N records
before the end offset the broker reports. Tansu under-reports end offsets (the
base offset of the last record batch plus one, see DESIGN), so on Tansu this
start is earlier than needed, never later; the command reads to the true end
and keeps the newest N by receive time, which is right on both brokers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from yujing import clock
from yujing.connectors.kafka import PLAINTEXT
from yujing.connectors.kafka import consumer as kafka_consumer
from yujing.kafka_settings import KafkaSecurity


def format_letter(d: dict[str, Any], raw_chars: int = 120) -> str:
    """One readable line: time, source, reason code, item index, reason, raw excerpt."""
    ms = d.get("received_ms")
    when = (datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            .replace("000Z", "Z") if isinstance(ms, int) else "?")
    index = d.get("index")
    where = f" #{index}" if index is not None else ""
    raw = d.get("raw")
    if not isinstance(raw, str):
        raw = orjson.dumps(raw).decode() if raw is not None else ""
    raw = raw.replace("\n", "\\n")
    excerpt = raw[:raw_chars] + ("…" if len(raw) > raw_chars else "")
    return (f"{when}  {d.get('source', '?')}{where}  [{d.get('code', '?')}] {d.get('reason', '')}"
            + (f"  raw={excerpt}" if excerpt else ""))


def _decode(value: bytes) -> dict[str, Any]:
    try:
        d = orjson.loads(value)
        return d if isinstance(d, dict) else {"reason": "not a dead-letter record", "raw": d}
    except orjson.JSONDecodeError:
        return {"reason": "not a dead-letter record", "raw": value[:200].decode("utf-8", "replace")}


async def tail(bootstrap: str, topic: str, n: int, follow: bool,
               emit: Callable[[dict[str, Any]], None], stop: asyncio.Event | None = None,
               idle_s: float = 1.0, timeout_s: float = 30.0,
               following: Callable[[], None] | None = None,
               security: KafkaSecurity = PLAINTEXT) -> int:
    """Emit the newest ``n`` dead letters (oldest first), then new ones while ``follow``.

    Returns how many were emitted. Without ``follow`` it returns once the
    topic has been read to its end (no record for ``idle_s``) or after
    ``timeout_s``; with ``follow`` it runs until ``stop`` is set, and every record
    received after the start is emitted, even one that arrived while the newest ``n``
    were being collected (told apart by the gateway's ``received_ms``, not by offsets:
    Tansu under-reports end offsets). ``following`` is called once the backlog is shown.
    """
    start_ms = clock.now_ms()
    stop = stop or asyncio.Event()
    consumer = kafka_consumer(bootstrap, security=security, group_id=None,
                              enable_auto_commit=False, request_timeout_ms=10_000)
    await consumer.start()
    emitted = 0
    try:
        if topic not in await consumer.topics():
            if not follow:
                return 0
            while topic not in await consumer.topics() and not stop.is_set():
                await _sleep_or(stop, 1.0)
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - n))
        backlog, fresh = await _collect(consumer, start_ms if follow else None, idle_s, timeout_s)
        for d in (backlog[-n:] if n > 0 else []) + fresh:
            emit(d)
            emitted += 1
        if follow and following is not None:
            following()
        while follow and not stop.is_set():
            got = await consumer.getmany(timeout_ms=500)
            for records in got.values():
                for r in records:
                    emit(_decode(r.value))
                    emitted += 1
    finally:
        await consumer.stop()
    return emitted


async def _collect(consumer: AIOKafkaConsumer, fresh_from_ms: int | None, idle_s: float,
                   timeout_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read to the end of the topic (no record for ``idle_s``): the letters received before
    ``fresh_from_ms`` (oldest first) and, when it is given, those received after it."""
    backlog: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    deadline = clock.monotonic() + timeout_s
    quiet_since = clock.monotonic()
    while clock.monotonic() < deadline and clock.monotonic() - quiet_since < idle_s:
        got = await consumer.getmany(timeout_ms=200)
        for records in got.values():
            for r in records:
                d = _decode(r.value)
                new = fresh_from_ms is not None and (d.get("received_ms") or 0) >= fresh_from_ms
                (fresh if new else backlog).append(d)
        if got:
            quiet_since = clock.monotonic()
    backlog.sort(key=lambda d: d.get("received_ms") or 0)
    return backlog, fresh


async def _sleep_or(ev: asyncio.Event, s: float) -> None:
    try:
        await asyncio.wait_for(ev.wait(), s)
    except TimeoutError:
        pass
