"""The watchdog's loop: sample every part, check, tell the duty room, keep the status.

Messages go straight to the duty room's apprise URLs (``watchdog.notify``, else
``notify.default``) through the project's apprise adapter (retries, timeouts), one
delivery per URL so one dead channel does not hide the message from the others. The
watchdog's own deliveries count like a worker's: a duty-room channel that keeps
failing is itself a fault (shown on /healthz, since it cannot be sent over itself).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from yujing import clock
from yujing.alerts.channels import channel_kind
from yujing.alerts.notify import Deliverer
from yujing.alerts.records import Contact, Delivery, DeliveryResult, Rendered
from yujing.alerts.selfcheck import Checks, Fault, Probe, Sample
from yujing.alerts.selfcheck_notice import Notice, Notices, describe, message
from yujing.config import Config
from yujing.watchdog.probes import (
    KafkaProbe,
    backlog_of,
    channel_totals,
    gateway_figures,
    get_text,
    parse_metrics,
)

log = logging.getLogger("yujing.watchdog")


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass
class Targets:
    """Where each part is read; None: not configured, not watched."""

    kafka: str | None
    gateway: str | None
    worker: str | None
    sink: str | None

    @classmethod
    def of(cls, cfg: Config, bootstrap: str | None) -> Targets:
        w, i = cfg.worker, cfg.influx
        return cls(
            kafka=bootstrap,
            gateway=f"http://{_local(cfg.http.host)}:{cfg.http.port}/healthz",
            worker=(f"http://{_local(w.metrics_host)}:{w.metrics_port}/metrics"
                    if w.metrics_port else None),
            sink=(f"http://{_local(i.metrics_host)}:{i.metrics_port}/metrics"
                  if i is not None and i.metrics_port else None))

    def where(self, part: str) -> str:
        return getattr(self, part, None) or ""


@dataclass
class Status:
    """What /healthz and /heartbeat answer from."""

    faults: list[Fault] = field(default_factory=list)
    round_ms: int | None = None      # end of the last round
    rounds: int = 0


class Watchdog:
    def __init__(self, cfg: Config, bootstrap: str | None) -> None:
        self.cfg, self.s = cfg, cfg.watchdog
        self.targets = Targets.of(cfg, bootstrap)
        self.checks = Checks(self.s)
        self.notices = Notices(self.s.repeat.ms, self.s.retry.ms)
        self.status = Status()
        self.urls = self.s.notify if self.s.notify is not None else cfg.notify.default
        self.deliverer = Deliverer(cfg.alerts.delivery, clock.now_ms)
        self.own: dict[str, list[float]] = {}        # channel -> [sent, failed] of our messages
        self.tasks: set[asyncio.Task[None]] = set()
        timeout = self.s.probe_timeout.s
        self.kafka = (KafkaProbe(bootstrap, cfg.kafka.topics.readings, cfg.kafka.partitions,
                                 timeout, security=cfg.kafka.security) if bootstrap else None)

    async def sample(self, session: aiohttp.ClientSession) -> Sample:
        t, timeout = self.targets, self.s.probe_timeout.s
        reads: dict[str, Any] = {}

        async def http(part: str, url: str | None) -> None:
            if url is not None:
                reads[part] = await get_text(session, url, timeout)

        async def kafka() -> None:
            if self.kafka is not None:
                reads["kafka"] = await self.kafka.read()

        await asyncio.gather(kafka(), http("gateway", t.gateway), http("worker", t.worker),
                             http("sink", t.sink))
        sample = Sample(clock.now_ms())
        for part, (probe, body) in reads.items():
            sample.probes[part] = probe
            if body is None:
                continue
            if part == "kafka":
                sample.offsets = body
            elif part == "gateway":
                sample.gateway, sample.probes[part] = _gateway(body)
            elif part == "worker":
                sample.channels.update(channel_totals(parse_metrics(body)))
            elif part == "sink":
                sample.backlog = backlog_of(parse_metrics(body))
        sample.channels.update({f"{k} (watchdog)": (v[0], v[1]) for k, v in self.own.items()})
        return sample

    async def round(self, session: aiohttp.ClientSession) -> None:
        sample = await self.sample(session)
        self.checks.observe(sample)
        now = clock.now_ms()
        faults = self.checks.faults(now)
        if [f.key for f in faults] != [f.key for f in self.status.faults]:
            log.warning("faults: %s", ", ".join(f.key for f in faults) or "none")
        self.status.faults = faults
        for n in self.notices.due(faults, now):
            self._spawn(self._send(n))
        self.status.round_ms, self.status.rounds = clock.now_ms(), self.status.rounds + 1

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, n: Notice) -> None:
        now = clock.now_ms()
        title, body = message(n.fault, n.kind, now, self.cfg.timezone,
                              self.targets.where(n.fault.part))
        short = (title.split("】")[0] + "】" + body.split("\n")[0])[:70]    # one SMS segment
        msg = Rendered(title=title, sms=short, markdown=body.replace("\n", "\n\n"), text=body)
        results = await asyncio.gather(*(self.deliverer.deliver(Delivery(
            id=f"watchdog:{n.fault.key}:{n.kind}:{now}", group="", partition=0,
            person="duty-room", person_name="值班室", roles=[], contacts=[Contact(url,
                                                                              channel_kind(url))],
            incidents=[], kinds=[n.kind], message=msg, run="watchdog", created_ms=now))
            for url in self.urls))
        for res in results:
            self._count(res)
        ok = bool(results) and any(r.ok for r in results)
        log.warning("%s %s: %s (%s)", n.kind, n.fault.key, title,
                    "delivered" if ok else "NOT delivered")
        self.notices.sent(n, ok, clock.now_ms())

    def _count(self, res: DeliveryResult) -> None:
        for a in res.attempts:
            self.own.setdefault(_scheme(a.channel), [0.0, 0.0])[1] += 1
        if res.ok:
            self.own.setdefault(_scheme(res.channel), [0.0, 0.0])[0] += 1

    def fresh(self, now_ms: int) -> bool:
        """The loop ran recently: within three intervals plus a probe's deadline."""
        r = self.status.round_ms
        return r is not None and now_ms - r <= 3 * self.s.interval.ms + self.s.probe_timeout.ms

    def report(self, now_ms: int) -> dict[str, Any]:
        faults = [fault_doc(f, self.targets.where(f.part)) for f in self.status.faults]
        fresh = self.fresh(now_ms)
        return {"status": "ok" if fresh and not faults else ("fault" if faults else "stale"),
                "faults": faults, "checked_ms": self.status.round_ms, "rounds": self.status.rounds,
                "now_ms": now_ms, "watching": {k: v for k, v in vars(self.targets).items() if v}}

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    await self.round(session)
                except Exception:     # a bug in one round must not end the watch
                    log.exception("watchdog round failed")
                try:
                    await asyncio.wait_for(stop.wait(), self.s.interval.s)
                except TimeoutError:
                    pass
            if self.kafka is not None:
                await self.kafka.close()
            if self.tasks:
                await asyncio.wait(list(self.tasks), timeout=5)

    async def ping(self, stop: asyncio.Event) -> None:
        """Dead man's switch: fetch ``ping_url`` while healthy; silence says something failed."""
        url = self.s.ping_url
        if not url:
            return
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                if self.fresh(clock.now_ms()) and not self.status.faults:
                    probe, _ = await get_text(session, url, self.s.probe_timeout.s)
                    if not probe.ok:
                        log.warning("heartbeat ping to %s failed: %s", url, probe.error)
                try:
                    await asyncio.wait_for(stop.wait(), self.s.ping_interval.s)
                except TimeoutError:
                    pass


def _gateway(body: str) -> tuple[Any, Probe]:
    try:
        doc = json.loads(body)
        return gateway_figures(doc.get("gateway", doc)), Probe(True)
    except (ValueError, AttributeError) as exc:
        return None, Probe(False, f"/healthz is not the gateway's JSON: {exc}"[:200])


def _scheme(channel: str) -> str:
    return channel.split("://", 1)[0].lower() if "://" in channel else "none"


def fault_doc(f: Fault, where: str = "") -> dict[str, Any]:
    zh, en = describe(f, "zh", where), describe(f, "en", where)
    return {"key": f.key, "part": f.part, "since_ms": f.since_ms,
            "what": {"zh": zh.what, "en": en.what}, "why": {"zh": zh.why, "en": en.why},
            "todo": {"zh": zh.todo, "en": en.todo},
            "facts": json.loads(json.dumps(f.facts, default=str))}
