"""The ingest gateway: MQTT and HTTP in, validated batch envelopes out to Kafka.

Every source goes through the same steps: parse (pure, per item) → scope
(the token may write this station?) → sanity (validate.py) → duplicate filter
→ batch envelope. Whatever is refused goes to ``yujing.deadletter`` with its
source, reason code and truncated raw payload; nothing is dropped silently.

The station registry and the tokens file are reloaded on change or SIGHUP.
``yujing gateway`` runs a Gateway with the duty console mounted on its HTTP
server (yujing/cli/serve.py); tests run it alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from yujing import clock
from yujing import metrics as m
from yujing.config import Config
from yujing.connectors.admission import RateLimit, summary
from yujing.connectors.auth import OPEN, Identity, Tokens, load_tokens
from yujing.connectors.capfeed import CapIngest
from yujing.connectors.fastparse import parse_readings
from yujing.connectors.forecasts import MQTT_KIND, parse_forecasts_indexed
from yujing.connectors.http import make_app
from yujing.connectors.kafka import Batcher, DeadLetters, producer
from yujing.connectors.mqtt import Message, MqttSubscriber, parse_topic, topic_parts
from yujing.connectors.parse import Rejected
from yujing.connectors.topics import declare
from yujing.connectors.validate import DEFAULT_RANGES, Deduper, Limits, all_pass, check
from yujing.connectors.watchdog_status import WatchdogStatus
from yujing.domain import Reading
from yujing.stations import FileWatcher, Registry, load_registry, reload_on_sighup

log = logging.getLogger(__name__)


@dataclass
class Screened:
    """What survives scope, sanity and duplicate checks, and what does not."""

    keep: list[Reading] = field(default_factory=list)
    kept_index: list[int | None] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    corrections: int = 0


def limits_from(cfg: Config) -> Limits:
    g = cfg.gateway
    return Limits(g.max_future.ms, g.max_age.ms,
                  {**DEFAULT_RANGES, **{k: tuple(v) for k, v in g.ranges.items()}},
                  g.unknown_station == "reject")


def reading_doc(r: Reading) -> dict[str, Any]:
    return {"station": r.station, "metric": r.metric, "ts": r.ts, "value": r.value}


class Gateway:
    def __init__(self, cfg: Config, bootstrap: str, mqtt_url: str | None,
                 client_id: str | None = None) -> None:
        self.cfg, self.bootstrap, self.mqtt_url = cfg, bootstrap, mqtt_url
        self.client_id = client_id
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0
        self.started_ms = clock.now_ms()
        # Loaded here, before any port opens: a broken file is a clear start error.
        self.registry: Registry = load_registry(cfg.worker.registry)
        self.tokens: Tokens | None = (load_tokens(cfg.http.tokens_file)
                                      if cfg.http.tokens_file else None)
        self.limits = limits_from(cfg)
        self.rate = RateLimit(cfg.http.rate_limit)
        self.dedup = Deduper(cfg.gateway.dedup_keys)
        self.mqtt: MqttSubscriber | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.watchdog = WatchdogStatus.of(cfg.watchdog)
        self.cap = CapIngest(self)   # official signals in: POST /v1/cap, cap.feeds

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, mount: Callable[[web.Application], None] | None = None) -> None:
        """Connect to Kafka and MQTT, then serve HTTP ingest on ``http.host:port``.

        ``mount`` adds more to the same server before it opens (``yujing gateway``
        mounts the duty console there); without it only ingest is served.
        """
        k = self.cfg.kafka
        await declare(self.bootstrap, k, [k.topics.readings, k.topics.warnings,
                                          k.topics.deadletter, k.topics.events])
        self.prod = producer(self.bootstrap, k.compression, k.security)
        await self.prod.start()
        g = self.cfg.gateway
        self.batcher = Batcher(self.prod, k.topics.readings, k.partitions, g.linger_ms,
                               g.max_envelope, g.batching)
        self.batcher.keys = self.registry.partition_keys()
        self.deadletters = DeadLetters(self.prod, k.topics.deadletter, g.deadletter_raw_bytes)
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=100_000)
        self._watch_files()
        self.tasks.append(asyncio.create_task(self.watchdog.run()))
        if self.tokens is None:
            log.warning("INGEST IS OPEN: no http.tokens_file is configured, so anyone who "
                        "reaches port %d (or publishes to the MQTT broker) may write any station. "
                        "Fine for a drill; set http.tokens_file for real devices.",
                        self.cfg.http.port)
        else:
            log.info("HTTP ingest requires a bearer token (%d gateways in %s)", len(self.tokens),
                     self.cfg.http.tokens_file)
        if self.mqtt_url:
            self.mqtt = MqttSubscriber(self.mqtt_url, self.cfg.mqtt, self.queue, self.client_id)
            self.mqtt.start()
            self.tasks.append(asyncio.create_task(self._mqtt_loop()))
        h = self.cfg.http
        app = make_app(self, h.max_body_bytes)
        self.tasks += self.cap.start()
        if mount is not None:
            mount(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.site = web.TCPSite(self.runner, h.host, h.port)
        await self.site.start()
        log.info("gateway listening on http://%s:%d, Kafka %s", h.host, h.port, self.bootstrap)

    def _watch_files(self) -> None:
        watchers: list[FileWatcher[Any]] = []
        if self.cfg.worker.registry is not None:
            watchers.append(FileWatcher(self.cfg.worker.registry, load_registry,
                                        self._set_registry, "station registry"))
        if self.cfg.http.tokens_file is not None:
            watchers.append(FileWatcher(self.cfg.http.tokens_file, load_tokens, self._set_tokens,
                                        "tokens file"))
        self.watchers = watchers
        if watchers:
            reload_on_sighup(*watchers)
            self.tasks += [asyncio.create_task(w.run()) for w in watchers]

    def _set_registry(self, reg: Registry) -> None:
        self.registry = reg
        self.batcher.keys = reg.partition_keys()
        self.cap.set_registry()
        log.info("gateway: station registry now has %d stations", len(reg))

    def _set_tokens(self, tokens: Tokens) -> None:
        self.tokens = tokens
        log.info("gateway: %d gateway tokens", len(tokens))

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop ingest, then give Kafka ``timeout_s`` for what is in flight (it may be down)."""
        if self.mqtt:
            self.mqtt.stop()
        for t in self.tasks:
            t.cancel()
        await self.runner.cleanup()
        try:
            await asyncio.wait_for(self.batcher.flush_all(), timeout_s)
            await self.deadletters.drain(timeout_s)
        except TimeoutError:
            log.error("gateway stopping: Kafka did not take the last envelopes in %.0fs", timeout_s)
        try:
            await asyncio.wait_for(self.prod.stop(), timeout_s)
        except TimeoutError:
            log.error("gateway stopping: Kafka producer did not close in %.0fs", timeout_s)

    # --- the common path --------------------------------------------------------------------

    def known(self) -> Callable[[str], bool] | None:
        return None if self.cfg.worker.registry is None else self.registry.__contains__

    def identify(self, authorization: str | None) -> Identity | None:
        """The caller's identity; OPEN when no tokens are configured, None when refused."""
        return OPEN if self.tokens is None else self.tokens.identify(authorization)

    def screen(self, items: list[tuple[int | None, Reading]], ident: Identity) -> Screened:
        now = clock.now_ms()
        known = self.known()
        clean = self.screen_clean(items, ident, now, known)
        if clean is not None:
            return clean
        out = Screened()
        for index, r in items:
            if not ident.may_write(r.station, self.registry):
                # raw=None: nothing of a refused item is kept, only the refusal
                out.rejected.append(Rejected(index, f"gateway {ident.gateway!r} may not write "
                                             f"station {r.station!r}: ask the bureau to add it "
                                             "to this token's scope", None, "forbidden"))
                continue
            problem = check(r, now, self.limits, known)
            if problem is not None:
                out.rejected.append(Rejected(index, problem.reason, reading_doc(r), problem.code))
                continue
            seen = self.dedup.offer(r)
            if seen == "repeat":
                out.duplicates += 1
                continue
            if seen == "correction":
                out.corrections += 1
            out.keep.append(r)
            out.kept_index.append(index)
        return out

    def screen_clean(self, items: list[tuple[int | None, Reading]], ident: Identity, now: int,
                     known: Callable[[str], bool] | None) -> Screened | None:
        """:meth:`screen` for a batch that passes every check, done per batch (each station's
        scope once, the checks over columns, the duplicate filter in one step); None when
        an item may fail, and then :meth:`screen` looks at each item for its reason."""
        readings = [r for _, r in items]
        if not ident.all_stations and not all(ident.may_write(s, self.registry)
                                              for s in {r.station for r in readings}):
            return None
        if not all_pass(readings, now, self.limits, known):
            return None
        if not self.dedup.offer_all_new(readings):
            return None
        return Screened(readings, [i for i, _ in items])

    def report(self, kind: str, source: str, rejected: list[Rejected], s: Screened | None = None
               ) -> None:
        """Dead-letter rejected items and count everything by source and reason.

        The first ``gateway.deadletters_per_request`` get a letter each, the rest one summary
        letter: a flood of junk must not become a flood of letters."""
        cap = self.cfg.gateway.deadletters_per_request
        for r in rejected[:cap]:
            self.deadletters.send(source, r.reason, r.raw, r.index, r.code)
        if len(rejected) > cap:
            self.deadletters.send(source, summary(rejected[cap:]), None, None, "summary")
        for code, n in Counter(r.code for r in rejected).items():
            m.READINGS_REJECTED.labels(kind, code).inc(n)
        self.rejected += len(rejected)
        if s is not None:
            self.duplicates += s.duplicates
            if s.duplicates:
                m.READINGS_DUPLICATE.labels(kind).inc(s.duplicates)
            if s.corrections:
                m.READINGS_CORRECTED.labels(kind).inc(s.corrections)

    async def store(self, kind: str, readings: list[Reading]) -> None:
        """Wait until Kafka holds ``readings``; raise (→ 503) after ``store_timeout_s``.

        On failure the keys leave the duplicate filter, so the client's retry
        is stored rather than called a duplicate.
        """
        if not readings:
            return
        fut = self.batcher.add(readings)
        fut.add_done_callback(_retrieve)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.cfg.http.store_timeout_s)
        except BaseException:
            self.dedup.forget(readings)
            raise
        self.count_accepted(kind, len(readings))

    def count_accepted(self, kind: str, n: int) -> None:
        self.accepted += n
        m.READINGS_ACCEPTED.labels(kind).inc(n)

    async def publish_events(self, details: list[dict[str, Any]]) -> None:
        """Event detail (bbox, image URL) for the console, keyed by station."""
        topic = self.cfg.kafka.topics.events
        futs = [await self.prod.send(topic, orjson.dumps(d), key=d["station"].encode())
                for d in details]
        await asyncio.wait_for(asyncio.gather(*futs), self.cfg.http.store_timeout_s)

    # --- MQTT -----------------------------------------------------------------------------

    async def _mqtt_loop(self) -> None:
        while True:
            msg = await self.queue.get()
            # a flood of junk waits here (unacknowledged, held by the broker) until Kafka has
            # taken the letters of the messages before it, instead of losing letters
            while not await self.deadletters.room(self.cfg.http.store_timeout_s):
                log.warning("MQTT ingest waits: %d dead letters not yet taken by Kafka",
                            len(self.deadletters.pending))
            try:
                self.handle_mqtt(msg)
            except Exception as exc:
                # Never leave a message unacknowledged for a fault of ours: the broker would
                # redeliver it forever and, once Receive Maximum of them wait, stop all QoS 1
                # delivery. It is kept as a dead letter (raw, truncated) instead.
                log.exception("MQTT message on %s could not be handled", msg.topic)
                self.deadletters.send(f"mqtt:{msg.topic}", f"the message could not be handled "
                                      f"({type(exc).__name__}); kept here", msg.payload, None,
                                      "internal")
                m.READINGS_REJECTED.labels("mqtt", "internal").inc()
                self._ack(msg)

    def handle_mqtt(self, msg: Message) -> None:
        cap = self.cfg.mqtt.max_payload_bytes
        if len(msg.payload) > cap:
            self.report("mqtt", f"mqtt:{msg.topic}", [Rejected(
                None, f"message too large: {len(msg.payload)} bytes, the limit is {cap} "
                      "(mqtt.max_payload_bytes); publish smaller batches", msg.payload,
                "too_large")])
            self._ack(msg)
            return
        t = parse_topic(msg.topic)
        if t is not None and t.kind == MQTT_KIND:   # yujing/<source>/<station>/forecast
            items, bad = parse_forecasts_indexed(msg.payload, topic_parts(msg.topic, MQTT_KIND),
                                                 self.cfg.mqtt.max_items)
        else:
            items, bad = parse_readings(msg.payload, topic_parts(msg.topic),
                                        self.cfg.mqtt.max_items)
        ident = self.mqtt_identity(msg.topic)
        if ident is None:
            bad += [Rejected(i, unknown_source(msg.topic), None, "forbidden") for i, _ in items]
            items = []
        elif (wait := self.rate.take(ident.gateway, len(items) + len(bad))) is not None:
            # MQTT has no 429: over its rate, a source's message waits unacknowledged and is
            # handled again after the wait. Nothing is lost (a gateway's backlog after an outage
            # drains at the allowed rate), and once Receive Maximum messages wait the broker
            # holds back the rest.
            m.MQTT_RATE_DEFERRED.labels(ident.gateway).inc()
            asyncio.get_running_loop().call_later(wait, self._requeue, msg)
            return
        s = self.screen(items, ident or OPEN)
        self.report("mqtt", f"mqtt:{msg.topic}", bad + s.rejected, s)
        if not s.keep:
            self._ack(msg)
            return
        fut = self.batcher.add(s.keep)
        fut.add_done_callback(lambda f: self._mqtt_stored(msg, s.keep, f, 0))

    def mqtt_identity(self, topic: str) -> Identity | None:
        """What a message on ``topic`` may write: the scope of the tokens-file entry its source
        segment names (the broker's ACL lets only that entry's user publish there); OPEN
        without a tokens file; None for a source with no entry."""
        if self.tokens is None:
            return OPEN
        t = parse_topic(topic)
        return None if t is None else self.tokens.for_source(t.source)

    def _mqtt_stored(self, msg: Message, readings: list[Reading], fut: asyncio.Future[Any],
                     attempt: int) -> None:
        if fut.cancelled() or fut.exception() is not None:
            # keep the message unacknowledged and try again: the broker holds back new
            # messages once Receive Maximum are unacknowledged (back-pressure)
            m.MQTT_RETRIES.inc()
            delay = min(self.cfg.mqtt.reconnect_max_s, 0.5 * 2 ** attempt)
            log.warning("readings of MQTT message on %s not stored; retry in %.1fs", msg.topic,
                        delay)
            asyncio.get_running_loop().call_later(delay, self._mqtt_retry, msg, readings,
                                                  attempt + 1)
            return
        self.count_accepted("mqtt", len(readings))
        self._ack(msg)

    def _mqtt_retry(self, msg: Message, readings: list[Reading], attempt: int) -> None:
        fut = self.batcher.add(readings)
        fut.add_done_callback(lambda f: self._mqtt_stored(msg, readings, f, attempt))

    def _requeue(self, msg: Message) -> None:
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:   # still busy: try again in a second
            asyncio.get_running_loop().call_later(1.0, self._requeue, msg)

    def _ack(self, msg: Message) -> None:
        if self.mqtt is not None:
            self.mqtt.ack(msg)

    def health(self) -> dict:
        return {"status": "ok", "accepted": self.accepted, "rejected": self.rejected,
                "duplicates": self.duplicates,
                "envelopes": self.batcher.sent_envelopes,
                "failed_envelopes": self.batcher.failed_envelopes,
                "mqtt_enabled": self.mqtt is not None,
                "mqtt_connected": bool(self.mqtt and self.mqtt.connected.is_set()),
                "watchdog": self.watchdog.snapshot(),
                "stations": len(self.registry),
                "auth": "open" if self.tokens is None else "tokens",
                "uptime_s": (clock.now_ms() - self.started_ms) / 1000}


def unknown_source(topic: str) -> str:
    t = parse_topic(topic)
    if t is None:
        return (f"topic {topic[:100]!r} names no source: publish on yujing/<source>/<station>/<kind>,"
                " <source> being your gateway's name in the tokens file")
    return (f"MQTT source {t.source[:64]!r} has no entry in the tokens file: ask the bureau for one "
            "(yujing token new --gateway NAME, then yujing mqtt-acl) or publish under your own "
            "source")


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a store future's exception as seen (the waiter may have timed out already)."""
    if not fut.cancelled():
        fut.exception()
