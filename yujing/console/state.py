"""The console's read model and command sender, shared by the /v1 API and the web pages.

Incidents and silences come from the snapshots the workers write to
``yujing.incidents``; recent readings, camera/industrial event detail and dead
letters from their topics (``feeds.py``); everything arrives through the ``Bus`` the serving process
passes in (``bus.py``). Commands are not applied here: they go to
``yujing.commands`` on the partition of the warning's book, and the worker that
owns that partition applies them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from yujing import clock
from yujing.alerts.notices import Notice
from yujing.alerts.orgs import load_duty
from yujing.alerts.records import Command, Silence, Warning
from yujing.alerts.roster import Roster
from yujing.config import Config
from yujing.console.bus import Bus
from yujing.console.feeds import DeadLetterRing, EventRing, ReadingsWindow
from yujing.console.health import Health, scrape_urls
from yujing.console.rights import Rights, Verdict
from yujing.console.sessions import FailureLimit, PersonTokens, Sessions
from yujing.rules.loader import load_rules
from yujing.stations import FileWatcher, Registry, Station

log = logging.getLogger("yujing.console")
_enc = msgspec.json.Encoder()
_warning = msgspec.json.Decoder(Warning)
_silence = msgspec.json.Decoder(Silence)
_notice = msgspec.json.Decoder(Notice)
NOTICE_WAIT_S = 5.0  # an API call for a notice this view has not read yet waits this long
NOTICE_WAITERS = 100  # calls waiting at once, at most


class Console:
    """The read model (incidents and silences from ``yujing.incidents``) and the command sender.

    ``registry`` gives the gateway's current station registry (it reloads on
    change); ``gateway_health`` the gateway's own /healthz figures.
    """

    def __init__(self, cfg: Config, bus: Bus,
                 registry: Callable[[], Registry | None] = lambda: None,
                 gateway_health: Callable[[], dict] = dict) -> None:
        self.cfg = cfg
        self.bus = bus
        self._registry = registry
        self.gateway_health = gateway_health
        self.incidents: dict[str, Warning] = {}
        self.silences: dict[str, Silence] = {}
        self.notices: dict[str, Notice] = {}     # safety notices (notices_api.py)
        self.notice_waiters: dict[str, list[asyncio.Future[Notice]]] = {}
        self.tokens = PersonTokens(self.cfg.console.tokens)
        secret = self.cfg.console.link_secret or os.environ.get("YUJING_LINK_SECRET")
        self.secret = secret.encode() if secret else None
        self.base = (self.cfg.console.public_url
                     or f"http://{self.cfg.http.host}:{self.cfg.http.port}").rstrip("/")
        self.task: asyncio.Task | None = None
        self.caught_up = asyncio.Event()
        s = self.cfg.console
        # A roster that does not load stops the gateway here, before any port opens: without
        # it the console could not tell who may act on what.
        self.roster = load_duty(self.cfg.alerts.roster, self.cfg.alerts.enterprises)
        self.rights = Rights(self.roster, s.admins)
        self.sessions = Sessions(s.session_ttl.ms, s.session_idle.ms)
        self.login_limit = FailureLimit(s.login_failures, s.login_window.ms)
        self.rules: dict[str, Any] = _rules(self.cfg.worker.rules_dir)
        self.readings = ReadingsWindow(s.readings_max, s.readings_window.ms)
        self.deadletters = DeadLetterRing(200)
        self.events = EventRing()
        self.health = Health(scrape_urls(self.cfg))
        self.subscribers: set[asyncio.Queue] = set()
        self.last_snapshot_ms = 0
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        k = self.cfg.kafka
        await self.bus.ensure_topics([k.topics.warnings, k.topics.commands, k.topics.incidents])
        self.task = asyncio.create_task(self.bus.follow(
            k.topics.incidents, lambda key, value: self._apply(key or b"", value),
            self.caught_up))
        now = clock.now_ms
        if self.cfg.console.readings_max:
            self.tasks.append(asyncio.create_task(self.bus.tail(
                k.topics.readings, 2000,
                lambda key, value: value is not None and self.readings.add_payload(value, now()))))
        self.tasks.append(asyncio.create_task(self.bus.tail(
            k.topics.deadletter, 200, lambda key, value: self.deadletters.add_payload(value))))
        # the gateway declares yujing.events; tail waits until it exists
        self.tasks.append(asyncio.create_task(self.bus.tail(
            k.topics.events, 2000, lambda key, value: self.events.add_payload(value))))
        self.tasks.append(asyncio.create_task(self._sample()))
        if self.cfg.alerts.roster:
            watcher = FileWatcher(self.cfg.alerts.roster, self._load_duty, self._set_roster,
                                  "roster")
            self.tasks.append(asyncio.create_task(watcher.run()))
        if self.cfg.alerts.roster and self.cfg.alerts.enterprises:
            orgs = FileWatcher(self.cfg.alerts.enterprises,
                               lambda p: load_duty(self.cfg.alerts.roster, p), self._set_roster,
                               "enterprises")
            self.tasks.append(asyncio.create_task(orgs.run()))

    def _load_duty(self, path: str) -> Roster | None:
        return load_duty(Path(path), self.cfg.alerts.enterprises)

    def _set_roster(self, roster: Roster) -> None:
        self.roster = roster
        self.rights = Rights(roster, self.cfg.console.admins)

    async def _sample(self) -> None:
        while True:
            self.health.sample()
            await asyncio.sleep(2)

    async def stop(self) -> None:
        self.close_streams()
        for t in [self.task, *self.tasks]:
            if t:
                t.cancel()
        await asyncio.gather(*(t for t in [self.task, *self.tasks] if t), return_exceptions=True)

    def close_streams(self) -> None:
        """End every live stream (at shutdown: aiohttp waits for open handlers)."""
        for q in list(self.subscribers):
            _offer(q, None)

    def publish(self, event: tuple[str, Any]) -> None:
        for q in list(self.subscribers):
            if not _offer(q, event):
                self.subscribers.discard(q)   # a stuck client: its stream ends, it reconnects
                _offer(q, None, force=True)

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:  # past retention in the book or on the notice desk
            iid = key.decode(errors="replace")
            if iid.startswith("notice:"):
                self.notices.pop(iid[len("notice:"):], None)
            elif self.incidents.pop(iid, None) is not None:
                self.publish(("removed", iid))
            return
        try:
            if key.startswith(b"notice:"):
                n = _notice.decode(value)
                self.notices[n.id] = n
                for fut in self.notice_waiters.pop(n.id, []):
                    if not fut.done():
                        fut.set_result(n)
            elif key.startswith(b"silence:"):
                s = _silence.decode(value)
                self.silences[s.id] = s
                self.publish(("silence", s))
            else:
                w = _warning.decode(value)
                old = self.incidents.get(w.incident)
                if old is None or w.updated_ms >= old.updated_ms or len(w.timeline) >= len(old.timeline):
                    self.incidents[w.incident] = w
                    self.last_snapshot_ms = clock.now_ms()
                    self.publish(("incident", w))
        except msgspec.DecodeError as exc:
            log.error("console: undecodable incident snapshot skipped: %s", exc)

    async def notice(self, nid: str, fresh: bool) -> Notice | None:
        """The notice ``nid``; when this view has not read it yet and its id is ``fresh``
        (issued a moment ago), wait up to ``NOTICE_WAIT_S`` for the record. Why: the desk
        delivers a notice as soon as it has stored it, so an enterprise's officer may answer
        before this view has read it (seen in CI under load: a prompt acknowledgement got
        404). At most ``NOTICE_WAITERS`` calls wait at once: made-up ids cannot pile up."""
        n = self.notices.get(nid)
        waiting = sum(map(len, self.notice_waiters.values()))
        if n is not None or not fresh or waiting >= NOTICE_WAITERS:
            return n
        fut: asyncio.Future[Notice] = asyncio.get_running_loop().create_future()
        self.notice_waiters.setdefault(nid, []).append(fut)
        try:
            return await asyncio.wait_for(fut, NOTICE_WAIT_S)
        except TimeoutError:
            return None
        finally:
            left = [f for f in self.notice_waiters.get(nid, []) if f is not fut]
            if left:
                self.notice_waiters[nid] = left
            else:
                self.notice_waiters.pop(nid, None)

    async def send(self, cmd: Command, partition: int) -> None:
        await self.bus.send(self.cfg.kafka.topics.commands, _enc.encode(cmd), partition)

    def registry(self) -> Registry | None:
        return self._registry()

    def station(self, sid: str) -> Station | None:
        reg = self.registry()
        return reg.get(sid) if reg is not None else None

    def may_act(self, who: str, w: Warning) -> Verdict:
        return self.rights.may_act(who, w.hazard, w.town, w.enterprise)

    def may_read(self, who: str, w: Warning) -> Verdict:
        return self.rights.may_read(who, w.town, w.enterprise)

    def visible(self, who: str) -> list[Warning]:
        """The incidents ``who`` may see (an enterprise's or town's people: theirs only)."""
        scope = self.rights.scope_of(who)
        return [w for w in self.incidents.values() if scope.sees(w.town, w.enterprise)]

    def sees_station(self, who: str, st: Station | None) -> bool:
        scope = self.rights.scope_of(who)
        return scope.level == "bureau" or (st is not None and scope.sees(st.town, st.enterprise))

    def person_of(self, given: str) -> str | None:
        """The person whose console token ``given`` is (compared in constant time)."""
        return self.tokens.person_of(given)


def warning_dict(w: Warning) -> dict:
    """Every field, defaults included (the structs omit them on the wire to stay small)."""
    return msgspec.to_builtins({f: getattr(w, f) for f in w.__struct_fields__})


def _offer(q: asyncio.Queue, item: Any, force: bool = False) -> bool:
    try:
        q.put_nowait(item)
        return True
    except asyncio.QueueFull:
        if force:
            q.get_nowait()
            q.put_nowait(item)
        return False


def _rules(folder: Any) -> dict[str, Any]:
    """Rules by id, for rule names and chart thresholds; the worker reports broken files."""
    try:
        return {r.id: r for r in load_rules(folder)} if folder else {}
    except Exception as exc:
        log.warning("console: rules in %s not loaded (%s); charts show no thresholds", folder,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return {}
