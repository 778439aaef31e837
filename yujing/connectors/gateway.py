"""The gateway process: MQTT and HTTP in, validated batch envelopes out to Kafka."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .. import clock
from ..config import Config
from ..domain import Reading
from .http import make_app
from .kafka import Batcher, DeadLetters, ensure_topics, producer
from .mqtt import MqttSubscriber, topic_parts
from .parse import parse_payload

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, cfg: Config, bootstrap: str, mqtt_url: str | None) -> None:
        self.cfg, self.bootstrap, self.mqtt_url = cfg, bootstrap, mqtt_url
        self.accepted = 0
        self.rejected = 0
        self.started_ms = clock.now_ms()

    async def start(self) -> None:
        k = self.cfg.kafka
        await ensure_topics(self.bootstrap, [k.topics.readings, k.topics.warnings,
                                             k.topics.deadletter], k.partitions)
        self.prod = producer(self.bootstrap, k.compression)
        await self.prod.start()
        g = self.cfg.gateway
        self.batcher = Batcher(self.prod, k.topics.readings, k.partitions, g.linger_ms,
                               g.max_envelope)
        self.deadletters = DeadLetters(self.prod, k.topics.deadletter, g.deadletter_raw_bytes)
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=100_000)
        self.mqtt: MqttSubscriber | None = None
        if self.mqtt_url:
            m = self.cfg.mqtt
            self.mqtt = MqttSubscriber(self.mqtt_url, m.topic, m.qos, m.client_id, self.queue)
            self.mqtt.start()
            self.mqtt_task = asyncio.create_task(self._mqtt_loop())
        h = self.cfg.http
        self.runner = web.AppRunner(make_app(self, h.max_body_bytes), access_log=None)
        await self.runner.setup()
        self.site = web.TCPSite(self.runner, h.host, h.port)
        await self.site.start()
        log.info("gateway listening on http://%s:%d, Kafka %s", h.host, h.port, self.bootstrap)

    def accept(self, readings: list[Reading]) -> asyncio.Future:
        self.accepted += len(readings)
        return self.batcher.add(readings)

    def count_rejected(self, n: int) -> None:
        self.rejected += n

    async def _mqtt_loop(self) -> None:
        while True:
            topic, payload = await self.queue.get()
            try:
                readings, rejected = parse_payload(payload, topic_parts(topic))
                for r in rejected:
                    await self.deadletters.send(f"mqtt:{topic}", r.reason, r.raw, r.index)
                self.rejected += len(rejected)
                if readings:
                    self.accept(readings)
            except Exception:  # noqa: BLE001 - one bad message must not stop ingest
                log.exception("MQTT message on %s could not be handled", topic)

    def health(self) -> dict:
        return {"status": "ok", "accepted": self.accepted, "rejected": self.rejected,
                "envelopes": self.batcher.sent_envelopes,
                "failed_envelopes": self.batcher.failed_envelopes,
                "mqtt_connected": bool(self.mqtt and self.mqtt.connected.is_set()),
                "uptime_s": (clock.now_ms() - self.started_ms) / 1000}

    async def stop(self) -> None:
        if self.mqtt:
            self.mqtt.stop()
            self.mqtt_task.cancel()
        await self.runner.cleanup()
        await self.batcher.flush_all()
        await self.prod.stop()


async def serve(cfg: Config, bootstrap: str, mqtt_url: str | None) -> None:
    gw = Gateway(cfg, bootstrap, mqtt_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await gw.start()
    print(f"gateway ready http={cfg.http.host}:{cfg.http.port}", flush=True)
    await stop.wait()
    log.info("gateway stopping")
    await gw.stop()
