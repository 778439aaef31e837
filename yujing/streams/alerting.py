"""The Faust edge of the warning book: tables, the book agent, ticks and delivery tasks.

Thin on purpose: decode → :class:`yujing.alerts.book.Book` → effects. The book's
state lives in changelog-backed tables (store memory://, recovered from the
changelog at start), written only from the ``book`` agent, so every write has
the partition of the message being processed. Everything that changes a
partition's state arrives on that partition: evaluator events on
``yujing.warnings`` and, on ``yujing.commands``, officers' commands, ticks
(the clock, sent by a timer to each partition this worker owns) and delivery
results. Deliveries run as tasks outside the stream: a slow SMS gateway
delays no other warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import faust
import msgspec

from yujing import clock, metrics
from yujing.alerts.book import Book, Effects, Store
from yujing.alerts.notices import Notice
from yujing.alerts.notify import Counters, Deliverer
from yujing.alerts.orgs import load_duty, unregistered
from yujing.alerts.records import (
    Attempt,
    Command,
    Delivery,
    DeliveryResult,
    Group,
    Rendered,
    Silence,
    Warning,
)
from yujing.alerts.roster import Roster
from yujing.alerts.signing import sign
from yujing.config import Config, KafkaConfig
from yujing.connectors.topics import declare
from yujing.domain import Grade, WarningEvent, group_key
from yujing.stations import Registry
from yujing.streams.changelog import FENCE_KEY, Fence, digest, partition_of
from yujing.streams.fencing import run_rounds
from yujing.streams.notices import STORE_WAIT_S, NoticeEdge

log = logging.getLogger("yujing.alerting")
_enc = msgspec.json.Encoder()
decode_event = msgspec.json.Decoder(WarningEvent).decode   # a yujing.warnings record
_cmd_dec = msgspec.json.Decoder(Command)


def routing_key(ev: WarningEvent) -> bytes:
    """Warnings and commands are keyed by group (region + hazard): one partition holds a
    whole group, so a storm over 30 gauges is grouped even with many workers."""
    return group_key(ev.town, ev.hazard, ev.station).encode()


class RawRecords(faust.Schema):
    """The book's source as Kafka holds it: keys and values stay bytes.

    What Faust's ``raw`` codec returns too, but without its serializer registry (codec
    lookup, a try block and payload preparation, twice per record): a storm's warning
    events and every worker's first clears arrive here by the thousand."""

    def loads_key(self, app: Any, message: Any, **kwargs: Any) -> Any:
        return message.key

    def loads_value(self, app: Any, message: Any, **kwargs: Any) -> Any:
        return message.value


class Coded(MutableMapping):
    """A Faust table seen as a mapping of decoded values (msgspec JSON bytes inside).
    ``written``: set by every write, cleared by the :class:`Fence` that closes the step.

    Reads go to the table's store dict itself (the book's tables are ``memory://``).
    Faust's own ``get`` calls its sensors and, for a missing key, raises and catches a
    KeyError in ``__missing__``; the book reads far more than it writes (each warning
    event looks up its alias, its key's open incident and up to two ids) and most of
    those keys are missing. Writes still go through the table: they are its changelog.
    """

    def __init__(self, table: Any, typ: type | None) -> None:
        self.t = table
        self.typ = typ
        self.dec = msgspec.json.Decoder(typ) if typ is not None else None
        self.written = False

    def _raw(self) -> Mapping:
        """The values as stored: the memory store's dict, else the table (another store)."""
        d = getattr(getattr(self.t, "data", None), "data", None)
        return d if isinstance(d, dict) else self.t

    def _d(self, v: Any) -> Any:
        if self.dec is None:
            return v
        if isinstance(v, (bytes, bytearray, memoryview, str)):
            return self.dec.decode(v)
        # Recovery from the changelog hands back the JSON already parsed (Faust applies its
        # default codec there), so the same value can arrive as a dict.
        return msgspec.convert(v, self.typ)

    def __getitem__(self, k: str) -> Any:
        v = self._raw().get(k)
        if v is None:
            raise KeyError(k)
        return self._d(v)

    def get(self, k: str, default: Any = None) -> Any:
        v = self._raw().get(k)
        return default if v is None else self._d(v)

    def __setitem__(self, k: str, v: Any) -> None:
        self.t[k] = _enc.encode(v) if self.dec is not None else v
        self.written = True

    def __delitem__(self, k: str) -> None:
        del self.t[k]
        self.written = True

    def fence(self, p: int) -> None:
        self.t.send_changelog(p, FENCE_KEY, None, value_serializer="raw")

    def __contains__(self, k: object) -> bool:
        return self._raw().get(k) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, v in list(self._raw().items()) if v is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items(self):
        return [(k, self._d(v)) for k, v in list(self._raw().items()) if v is not None]


def link_maker(cfg: Config, action: str = "ack") -> Callable[[str, list[str], int], str | None]:
    """Signed one-click links: ``ack`` (``/v1/ack/...``) or ``report`` (``/v1/report/...``,
    one incident each: the report-back form)."""
    secret = cfg.console.link_secret or os.environ.get("YUJING_LINK_SECRET")
    base = (cfg.console.public_url or f"http://{cfg.http.host}:{cfg.http.port}").rstrip("/")
    ttl = cfg.console.link_ttl.ms
    if not secret:
        if action == "ack":
            log.warning("no console.link_secret or $YUJING_LINK_SECRET: messages carry no "
                        "acknowledge link")
        return lambda person, incidents, now: None

    def link(person: str, incidents: list[str], now_ms: int) -> str:
        return f"{base}/v1/{action}/{sign(secret.encode(), action, person, incidents, now_ms + ttl)}"
    return link


class Alerting:
    def __init__(self, app: faust.App, cfg: Config, warnings: Any, registry: Registry,
                 pipeline: Any = None) -> None:
        k = cfg.kafka
        self.cfg, self.app, self.partitions = cfg, app, k.partitions
        self.counters = Counters()
        self.run_id = uuid.uuid4().hex[:12]
        _declare(app, k)
        self.commands = app.topic(k.topics.commands, value_serializer="raw",
                                  key_serializer="raw", partitions=k.partitions)
        self.incidents = app.topic(k.topics.incidents, value_serializer="raw",
                                   key_serializer="raw", partitions=k.partitions)

        def table(name: str, serializer: str = "raw") -> Any:
            schema = faust.Schema(key_type=str, key_serializer="json",
                                  value_serializer=serializer)
            return app.Table(f"yujing-{name}", default=None, partitions=k.partitions,
                             schema=schema)

        self.store = Store(
            incidents=Coded(table("incidents"), Warning), open=Coded(table("open", "json"), None),
            alias=Coded(table("alias", "json"), None), groups=Coded(table("groups"), Group),
            deliveries=Coded(table("deliveries"), Delivery),
            silences=Coded(table("silences"), Silence), due=Coded(table("due", "json"), None))
        self.tables = {"incidents": self.store.incidents, "open": self.store.open,
                       "alias": self.store.alias, "groups": self.store.groups,
                       "deliveries": self.store.deliveries, "silences": self.store.silences,
                       "due": self.store.due}
        self.notices = NoticeEdge(self, Coded(table("notices"), Notice),
                                  Coded(table("notice_deliveries"), Delivery))
        self.tables.update(self.notices.tables)
        self.fence = Fence(self.tables.values(), lambda: app.producer.flush())
        app.on_rebalance_complete.connect(self._recovered)
        self.roster: Roster | None = load_duty(cfg.alerts.roster, cfg.alerts.enterprises)
        for problem in unregistered(self.roster, registry):
            log.warning("alerting: %s; its warnings take the bureau's chain", problem)
        self.registry = registry
        self.pipeline = pipeline
        self.book = Book(cfg.alerts, self.store, self.roster,
                         fallback_urls=self._fallback, plan_of=self._plan,
                         link_for=link_maker(cfg), partitions=k.partitions, run_id=self.run_id,
                         lang=cfg.notify.language, zone=cfg.timezone,
                         report_link_for=link_maker(cfg, "report"))
        self.deliverer = Deliverer(cfg.alerts.delivery, clock.now_ms, self.counters)
        self.tasks: set[asyncio.Task] = set()
        source = app.topic(k.topics.warnings, k.topics.commands, partitions=k.partitions,
                           schema=RawRecords(key_serializer="raw", value_serializer="raw"))
        app.agent(source, name="yujing.book")(self._agent)
        app.timer(cfg.alerts.tick_s, name="yujing.tick")(self._tick)
        self.consumed: dict[str, int] = {}     # "topic[p]" -> last offset the book took
        app.timer(5.0, name="yujing.book_heartbeat")(self._heartbeat)
        log.info("alerting: run %s, roster %s, %d partitions", self.run_id,
                 cfg.alerts.roster or "none (notify: URLs)", k.partitions)

    def _fallback(self, grade: int) -> list[str]:
        if grade < 0:
            return self.cfg.notify.urls_for("blue", cleared=True)
        return self.cfg.notify.urls_for(Grade(max(1, grade)).label)

    def _plan(self, station: str) -> str:
        reg = self.pipeline.registry if self.pipeline is not None else self.registry
        st = reg.get(station) if reg is not None else None
        return getattr(st, "plan", "") or ""

    async def _agent(self, stream: Any) -> None:
        """Each message's step, then handed to the fence beside the agent, which acks it
        once what the step wrote is recoverable from the changelog (streams/changelog.py)."""
        stream = stream.noack()
        fencing = asyncio.ensure_future(run_rounds(self.fence, stream.ack, self._fence_failed))
        try:
            async for event in stream.events():
                msg = event.message
                try:
                    await self._handle(msg, event.value)
                finally:
                    self.fence.after_step(msg.partition, event)
        finally:
            fencing.cancel()

    async def _handle(self, msg: Any, value: bytes) -> None:
        self.consumed[f"{msg.topic}[{msg.partition}]"] = msg.offset
        nfx, book_too = (self.notices.step(msg.partition, value)
                         if msg.topic == self.cfg.kafka.topics.commands else (None, True))
        if nfx is not None:
            await self.notices.effects(nfx)
        fx = self._step(msg, value) if book_too else None
        if fx is not None:
            await self._effects(msg.partition, fx)

    @staticmethod
    async def _fence_failed(exc: BaseException) -> None:
        """A fence round failed (the broker is away): its steps stay held, unacked, and the
        round is tried again after a second."""
        log.error("changelog fence failed, retrying: %r", exc)
        await asyncio.sleep(1.0)

    def _step(self, msg: Any, value: bytes) -> Effects | None:
        now = clock.now_ms()
        try:
            if msg.topic == self.cfg.kafka.topics.warnings:
                return self.book.on_event(msg.partition, decode_event(value), now)
            return self.book.on_command(msg.partition, _cmd_dec.decode(value), now)
        except msgspec.DecodeError as exc:
            log.error("undecodable message on %s[%d]@%d skipped: %s", msg.topic,
                      msg.partition, msg.offset, exc)
        except Exception:
            log.exception("book failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
        return None

    async def _heartbeat(self) -> None:
        """What the book has taken from each partition: a consumer that silently stopped
        shows as an offset that no longer moves (ticks arrive every alerts.tick)."""
        log.info("book: last offsets %s, %d fences", ", ".join(
            f"{k}@{v}" for k, v in sorted(self.consumed.items())) or "none", self.fence.fences)

    async def _recovered(self, sender: Any = None, **kwargs: Any) -> None:
        """Log what the book's tables hold for this worker's partitions once Faust has
        recovered them (before any message is processed): a count and a digest per table,
        comparable with the changelogs read back from the broker."""
        topic = self.cfg.kafka.topics.warnings
        mine = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        for name, table in self.tables.items():
            n, fp = digest((k, v) for k, v in list(table.t.items())
                           if partition_of(k) in mine)
            log.info("book table %s recovered for partitions %s: %d records, digest %s",
                     name, ",".join(map(str, sorted(mine))) or "-", n, fp)

    async def _effects(self, p: int, fx: Effects) -> None:
        stored: dict[str, Awaitable] = {}   # incident -> its snapshot's send, until acknowledged
        for w in fx.changed.values():
            stored[w.incident] = await self.incidents.send(
                key=w.incident.encode(), value=_enc.encode(w), partition=p)
        if p == 0:  # every partition keeps a copy of each silence; partition 0 publishes it
            for s in fx.silences:
                await self.incidents.send(key=f"silence:{s.id}".encode(),
                                          value=_enc.encode(s), partition=0)
        for iid in fx.removed:   # a tombstone: the console forgets it too
            await self.incidents.send(key=iid.encode(), value=None, partition=p)
        for d in fx.dispatch:
            self._spawn(self._deliver(d, [stored[i] for i in d.incidents if i in stored]))
        for person, text in fx.reminders:
            self._spawn(self._remind(person, text))
        for err in fx.errors:
            log.warning("command refused: %s", err)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, d: Delivery, snapshots: Sequence[Awaitable] = ()) -> None:
        await self._stored(d, snapshots)
        try:
            res = await self.deliverer.deliver(d)
        except Exception as exc:
            log.exception("delivery %s raised", d.id)
            res = DeliveryResult(d.id, False, "", [Attempt("", False, str(exc), clock.now_ms())],
                                 clock.now_ms())
        metrics.observe_notification("sent" if res.ok else "failed")
        metrics.observe_delivery(res)
        await self.commands.send(key=d.group.encode(), partition=d.partition,
                                 value=_enc.encode(Command("result", result=res,
                                                           delivery=d.id)))

    @staticmethod
    async def _stored(d: Delivery, snapshots: Sequence[Awaitable]) -> None:
        """Wait until the snapshots of the incidents ``d`` names are in Kafka (at most
        :data:`STORE_WAIT_S`), as the notice desk does: the console learns incidents from
        ``yujing.incidents``, and an officer who follows the message's acknowledge link the
        moment it arrives must find the incident there, not a 404. The wait is in the
        delivery's own task, so the book agent goes on with the next message. A broker that
        does not answer in time does not hold the message back: it goes out anyway."""
        if not snapshots:
            return
        done, pending = await asyncio.wait([asyncio.ensure_future(f) for f in snapshots],
                                           timeout=STORE_WAIT_S)
        failed = sum(1 for f in done if f.cancelled() or f.exception() is not None)
        if pending or failed:
            log.warning("delivery %s: %d of %d incident snapshots not stored (%d unanswered "
                        "after %.0f s, %d failed): sending anyway", d.id, len(pending) + failed,
                        len(snapshots), len(pending), STORE_WAIT_S, failed)

    async def _remind(self, person: str, text: str) -> None:
        p = self.roster.person(person) if self.roster else None
        if p is None:
            log.warning("silence reminder for %s (not in the roster): %s", person, text)
            return
        msg = Rendered(title="静默即将到期 / silence ends soon", sms=text[:70], markdown=text,
                       text=text)
        d = Delivery(id=f"reminder:{person}", group="", partition=0, person=person,
                     person_name=p.name, roles=[], contacts=p.channels(), incidents=[], kinds=[],
                     message=msg, run=self.run_id, created_ms=clock.now_ms())
        await self.deliverer.deliver(d)

    async def _tick(self) -> None:
        topic = self.cfg.kafka.topics.commands
        # each tick carries when it was sent: re-consumed by a later worker, it acts as of
        # then (records.tick_time), not on commands that came after it
        tick = _enc.encode(Command("tick", actor=self.run_id, at=clock.now_ms()))
        for tp in self.app.assignor.assigned_actives():
            if tp.topic == topic:
                await self.commands.send(value=tick, partition=tp.partition)


def _declare(app: faust.App, k: KafkaConfig) -> None:
    """Create every topic as declared (connectors/topicspec.py) before Faust subscribes:
    partitions, replication, retention, compaction of the changelogs.

    Faust does not declare source topics, and Tansu auto-creates unknown ones with 4
    partitions, after which every table write fails with PartitionsMismatch; Faust would
    also create changelogs with replication 1 on a cluster. Existing topics that differ
    are only logged with their fix (`yujing topics apply` changes them).
    """
    bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in app.conf.broker)
    err: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(declare(bootstrap, k))
        except BaseException as exc:
            err.append(exc)

    t = threading.Thread(target=run, name="declare-topics")
    t.start()
    t.join()
    if err:
        raise err[0]


def install_alerting(app: faust.App, cfg: Config, warnings: Any, registry: Registry,
                     pipeline: Any = None) -> Alerting:
    return Alerting(app, cfg, warnings, registry, pipeline)
