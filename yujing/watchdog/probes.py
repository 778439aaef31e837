"""Reading the parts the watchdog watches: one round of probes makes one ``Sample``.

Every probe has a deadline (``watchdog.probe_timeout``): a SIGSTOPped process, or a
frozen broker, still accepts a TCP connection and never answers, so "no answer in
time" is the signal, not a refused connection.

Kafka: the worker group's committed offsets (OffsetFetch for named partitions, which
Tansu answers; its list-all form Tansu does not) against the end offsets of the
readings topic. A client that timed out is dropped and made anew next round.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from yujing.alerts.selfcheck import GatewayFigures, Probe
from yujing.connectors.kafka import PLAINTEXT, admin, consumer
from yujing.kafka_settings import KafkaSecurity

log = logging.getLogger(__name__)

# The worker's consumer group: the Faust app id of yujing/streams/app.py (Faust uses the
# app id as its group id). Named here so the watchdog does not load Faust to learn it.
WORKER_GROUP = "yujing-worker"


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"[:200]


class KafkaProbe:
    """Committed offsets of ``group`` and end offsets of ``topic``, per partition."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, timeout_s: float,
                 group: str = WORKER_GROUP, security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap, self.topic, self.group, self.security = bootstrap, topic, group, security
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.timeout_s = timeout_s
        self.admin: AIOKafkaAdminClient | None = None
        self.consumer: AIOKafkaConsumer | None = None

    async def _start(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        ms = max(int(self.timeout_s * 1000), 1000)
        if self.admin is None:
            self.admin = admin(self.bootstrap, security=self.security, request_timeout_ms=ms)
            await self.admin.start()
        if self.consumer is None:
            self.consumer = consumer(self.bootstrap, security=self.security, group_id=None,
                                     request_timeout_ms=ms + 1000, enable_auto_commit=False)
            await self.consumer.start()
        return self.admin, self.consumer

    async def _offsets(self) -> dict[int, tuple[int | None, int]]:
        admin, consumer = await self._start()
        committed = await admin.list_consumer_group_offsets(self.group, partitions=self.tps)
        ends = await consumer.end_offsets(self.tps)
        out = {}
        for tp in self.tps:
            c = committed.get(tp)
            out[tp.partition] = (None if c is None or c.offset < 0 else c.offset, ends[tp])
        return out

    async def read(self) -> tuple[Probe, dict[int, tuple[int | None, int]] | None]:
        try:
            offsets = await asyncio.wait_for(self._offsets(), self.timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            await self.close()
            return Probe(False, _why(exc)), None
        return Probe(True), offsets

    async def close(self) -> None:
        admin, consumer, self.admin, self.consumer = self.admin, self.consumer, None, None
        for client in (admin, consumer):
            if client is None:
                continue
            try:
                await asyncio.wait_for(client.close() if client is admin else client.stop(),
                                       self.timeout_s)
            except Exception as exc:  # a client of a frozen broker: drop it, log why
                log.debug("closing a Kafka client: %s", _why(exc))


async def get_text(session: aiohttp.ClientSession, url: str, timeout_s: float
                   ) -> tuple[Probe, str | None]:
    """The body of ``url``, whatever its status (a gateway answers 503 with its figures)."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            return Probe(True), await r.text()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Probe(False, _why(exc)), None


def gateway_figures(health: dict[str, Any]) -> GatewayFigures:
    """The figures of a gateway's /healthz body the checks use."""
    return GatewayFigures(mqtt_enabled=bool(health.get("mqtt_enabled", False)),
                          mqtt_connected=bool(health.get("mqtt_connected", False)),
                          envelopes=int(health.get("envelopes", 0)),
                          failed_envelopes=int(health.get("failed_envelopes", 0)))


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def channel_totals(metrics: dict[str, list[tuple[dict[str, str], float]]]
                   ) -> dict[str, tuple[float, float]]:
    """(sent, failed) delivery attempts per channel from a worker's metrics."""
    out: dict[str, list[float]] = {}
    for labels, value in metrics.get("yujing_worker_delivery_attempts_total", []):
        pair = out.setdefault(labels.get("channel", ""), [0.0, 0.0])
        pair[0 if labels.get("result") == "sent" else 1] += value
    return {name: (sent, failed) for name, (sent, failed) in out.items()}


def backlog_of(metrics: dict[str, list[tuple[dict[str, str], float]]]) -> float | None:
    values = metrics.get("yujing_sink_backlog_points")
    return None if not values else sum(v for _, v in values)
