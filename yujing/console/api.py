"""Duty commands over HTTP, one-click acknowledge links, and the CAP 1.2 feed.

An aiohttp sub-application mounted at ``/v1`` on the gateway's HTTP server:

- ``GET  /v1/warnings[?state=open|all]``, ``GET /v1/warnings/{id}`` (with timeline)
- ``POST /v1/warnings/{id}/ack|note|clear`` — ``Authorization: Bearer <token>``
  (``console.tokens``: one token per person; the person is the actor on the timeline)
- ``GET  /v1/ack/{token}`` — the signed, expiring link in a message: acknowledges
  in one click, no login
- ``GET|POST /v1/silences``, ``POST /v1/silences/{id}/expire``
- ``GET  /v1/cap/{id}.xml``, ``GET /v1/cap/feed.xml`` (Atom)

The same read model serves the web console at ``/console`` (``web.py``). A
person acts only on warnings of their roster teams (``rights.py``): others get
403. The console's login keeps the person's token in an HttpOnly,
SameSite=Strict cookie, accepted like the Bearer header (a POST with the
cookie must be JSON, which a cross-site form cannot send).

Commands are not applied here: they go to ``yujing.commands`` on the partition
of the warning's book (known from the incident snapshots this process reads
from ``yujing.incidents``), and the worker that owns that partition applies
them. A command answers 202 with its id; the snapshot shows the effect a
moment later.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import os
import uuid
from typing import Any

import msgspec
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from yujing import clock
from yujing.alerts.cap import render_cap, render_feed
from yujing.alerts.records import Command, Matcher, Silence, State, Warning
from yujing.alerts.roster import load_roster
from yujing.alerts.signing import TokenError, verify
from yujing.alerts.silences import add as _check_silence, describe, is_active, parse_matcher, parse_weekly
from yujing.durations import parse_duration_ms
from yujing.console.feeds import DeadLetterRing, ReadingsWindow, follow_tail
from yujing.console.health import Health, scrape_urls
from yujing.console.rights import Rights

log = logging.getLogger("yujing.console")
CONSOLE_KEY = web.AppKey("console", object)
COOKIE = "yujing_token"
_enc = msgspec.json.Encoder()
_warning = msgspec.json.Decoder(Warning)
_silence = msgspec.json.Decoder(Silence)


class Console:
    """The read model (incidents and silences from ``yujing.incidents``) and the command sender."""

    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self.cfg = gw.cfg
        self.incidents: dict[str, Warning] = {}
        self.silences: dict[str, Silence] = {}
        self.tokens = {tok: who for who, tok in self.cfg.console.tokens.items() if tok}
        secret = self.cfg.console.link_secret or os.environ.get("YUJING_LINK_SECRET")
        self.secret = secret.encode() if secret else None
        self.base = (self.cfg.console.public_url
                     or f"http://{self.cfg.http.host}:{self.cfg.http.port}").rstrip("/")
        self.task: asyncio.Task | None = None
        self.caught_up = asyncio.Event()
        s = self.cfg.console
        # A roster that does not load stops the gateway here, before any port opens: without
        # it the console could not tell who may act on what.
        self.roster = load_roster(self.cfg.alerts.roster) if self.cfg.alerts.roster else None
        self.rights = Rights(self.roster, s.admins)
        self.rules: dict[str, Any] = _rules(self.cfg.worker.rules_dir)
        self.readings = ReadingsWindow(s.readings_max, s.readings_window.ms)
        self.deadletters = DeadLetterRing(200)
        self.health = Health(scrape_urls(self.cfg))
        self.subscribers: set[asyncio.Queue] = set()
        self.last_snapshot_ms = 0
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        from yujing.connectors.kafka import ensure_topics
        k = self.cfg.kafka
        await ensure_topics(self.gw.bootstrap, [k.topics.warnings, k.topics.commands,
                                                k.topics.incidents], k.partitions)
        self.task = asyncio.create_task(self._follow())
        now = clock.now_ms
        if self.cfg.console.readings_max:
            self.tasks.append(asyncio.create_task(follow_tail(
                self.gw.bootstrap, k.topics.readings, 2000,
                lambda key, value: value is not None and self.readings.add_payload(value, now()))))
        self.tasks.append(asyncio.create_task(follow_tail(
            self.gw.bootstrap, k.topics.deadletter, 200,
            lambda key, value: self.deadletters.add_payload(value))))
        self.tasks.append(asyncio.create_task(self._sample()))
        if self.cfg.alerts.roster:
            from yujing.alerts.roster import load_roster as _load
            from yujing.stations import FileWatcher
            watcher = FileWatcher(self.cfg.alerts.roster, _load, self._set_roster, "roster")
            self.tasks.append(asyncio.create_task(watcher.run()))

    def _set_roster(self, roster: Any) -> None:
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

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(self.cfg.kafka.topics.incidents,
                                    bootstrap_servers=self.gw.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    fetch_max_wait_ms=100)   # the board's latency budget is 1 s
        while True:
            try:
                await consumer.start()
                break
            except Exception as exc:  # noqa: BLE001 - Kafka not up yet: keep trying
                log.warning("console: cannot follow incidents yet (%s); retrying", exc)
                await asyncio.sleep(1)
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        self._apply(r.key or b"", r.value)
                if not batch:
                    self.caught_up.set()
        finally:
            await consumer.stop()

    def _apply(self, key: bytes, value: bytes | None) -> None:
        if value is None:  # past retention in the book
            iid = key.decode(errors="replace")
            if self.incidents.pop(iid, None) is not None:
                self.publish(("removed", iid))
            return
        try:
            if key.startswith(b"silence:"):
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

    async def send(self, cmd: Command, partition: int) -> None:
        await self.gw.prod.send_and_wait(self.cfg.kafka.topics.commands, _enc.encode(cmd),
                                         partition=partition)

    def station(self, sid: str) -> Any:
        reg = getattr(self.gw, "registry", None)
        return reg.get(sid) if reg is not None else None

    def may_act(self, who: str, w: Warning) -> Any:
        return self.rights.may_act(who, w.hazard, w.town)


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
    from yujing.rules.loader import load_rules
    try:
        return {r.id: r for r in load_rules(folder)} if folder else {}
    except Exception as exc:  # noqa: BLE001 - the console works without thresholds
        log.warning("console: rules in %s not loaded (%s); charts show no thresholds", folder,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return {}


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]  # type: ignore[return-value]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def person_of(c: Console, given: str) -> str | None:
    found = None
    for tok, who in c.tokens.items():
        if hmac.compare_digest(tok.encode(), given.encode()):
            found = who
    return found


def _who(request: web.Request) -> str | None:
    c = _console(request)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return person_of(c, auth[7:].strip())
    cookie = request.cookies.get(COOKIE)
    if cookie:
        if request.method not in ("GET", "HEAD") and request.content_type != "application/json":
            return None  # a cross-site form cannot send JSON: no CSRF through the cookie
        return person_of(c, cookie)
    return None


def _need_user(request: web.Request) -> str:
    who = _who(request)
    if who is None:
        raise web.HTTPUnauthorized(text='{"error": "send Authorization: Bearer <your token> '
                                        '(console.tokens in the config)"}',
                                   content_type="application/json")
    return who


def _full(w: Warning) -> dict:
    """Every field, defaults included (the structs omit them on the wire to stay small)."""
    return msgspec.to_builtins({f: getattr(w, f) for f in w.__struct_fields__})


def _summary(w: Warning) -> dict:
    d = _full(w)
    d.pop("timeline", None)
    d.pop("seen_at_last", None)
    d.pop("commands", None)
    return d


async def list_warnings(request: web.Request) -> web.Response:
    c = _console(request)
    _need_user(request)  # timelines name officers and carry their notes
    state = request.query.get("state", "open")
    out = [w for w in c.incidents.values()
           if state == "all" or (state == "open" and w.state in (State.ACTIVE, State.ACKNOWLEDGED))
           or w.state.value == state]
    out.sort(key=lambda w: (-w.grade, w.incident))
    return web.json_response([_summary(w) for w in out])


async def get_warning(request: web.Request) -> web.Response:
    c = _console(request)
    _need_user(request)
    w = c.incidents.get(request.match_info["id"])
    if w is None:
        return _error(404, f"unknown incident {request.match_info['id']!r}: GET /v1/warnings "
                           "lists the open ones")
    return web.json_response(_full(w))


async def command(request: web.Request) -> web.Response:
    c = _console(request)
    who = _need_user(request)
    iid, action = request.match_info["id"], request.match_info["action"]
    w = c.incidents.get(iid)
    if w is None:
        return _error(404, f"unknown incident {iid!r}: GET /v1/warnings lists the open ones")
    verdict = c.may_act(who, w)
    if not verdict.ok:
        return _error(403, verdict.why)
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return _error(400, "the body must be JSON, e.g. {\"note\": \"on my way\"}")
    text = str(body.get("note") or body.get("text") or body.get("reason") or "")
    if action == "clear" and not text:
        return _error(400, "a manual clear (销警) needs a reason: {\"reason\": \"...\"}")
    if action == "note" and not text:
        return _error(400, "a note needs text: {\"text\": \"...\"}")
    cmd = Command(action, id=uuid.uuid4().hex, actor=who, incident=iid, text=text,
                  at=clock.now_ms())
    await c.send(cmd, w.partition)
    return web.json_response({"command": cmd.id, "incident": iid, "action": action, "by": who},
                             status=202)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=f"<!doctype html><meta charset=utf-8><meta name=viewport "
                             f"content='width=device-width'><title>{html.escape(title)}</title>"
                             f"<h1>{html.escape(title)}</h1><p>{body}</p>",
                        content_type="text/html", status=status)


async def ack_link(request: web.Request) -> web.Response:
    c = _console(request)
    if c.secret is None:
        return _page("链接不可用 / link disabled", "no link secret is configured", 503)
    try:
        claim = verify(c.secret, request.match_info["token"], clock.now_ms())
    except TokenError as exc:
        return _page("链接无效 / link refused", html.escape(str(exc)), 403)
    if claim.a != "ack":
        return _page("链接无效 / link refused", "this link does not acknowledge", 403)
    done, missing = [], []
    for iid in claim.i:
        w = c.incidents.get(iid)
        if w is None:
            missing.append(iid)
            continue
        await c.send(Command("ack", id=f"link:{iid}:{claim.p}:{claim.e}", actor=claim.p,
                             incident=iid, text="acknowledged with the link in the message",
                             at=clock.now_ms()), w.partition)
        done.append(iid)
    body = f"{html.escape(claim.p)}: {len(done)} 条预警已确认，升级呼叫停止。" + "<br>".join(
        html.escape(i) for i in done)
    if missing:
        body += "<br>未找到 / unknown: " + ", ".join(html.escape(i) for i in missing)
    return _page("已确认 / acknowledged", body)


def _silence_view(s: Silence, now_ms: int) -> dict:
    from yujing.alerts.templates import local_time
    state = "active" if is_active(s, now_ms) else ("expired" if s.ends_ms <= now_ms else
                                                   "waiting")
    names = {0: "mon", 1: "tue", 2: "wed", 3: "thu", 4: "fri", 5: "sat", 6: "sun"}
    return {"id": s.id, "state": state, "matchers": [str(m) for m in s.matchers],
            "starts": local_time(s.starts_ms), "ends": local_time(s.ends_ms),
            "starts_ms": s.starts_ms, "ends_ms": s.ends_ms,
            "weekly": [f"{','.join(names[d] for d in w.days)} {w.start}-{w.end}" for w in s.weekly],
            "created_by": s.created_by, "reason": s.reason, "describe": describe(s),
            "audit": [{"at": local_time(a.at), "actor": a.actor, "action": a.action,
                       "reason": a.reason} for a in s.audit]}


async def list_silences(request: web.Request) -> web.Response:
    c = _console(request)
    _need_user(request)
    now = clock.now_ms()
    show_all = request.query.get("all") in ("1", "true")
    out = [_silence_view(s, now) for s in c.silences.values() if show_all or s.ends_ms > now]
    return web.json_response(sorted(out, key=lambda s: s["starts_ms"]))


async def add_silence(request: web.Request) -> web.Response:
    c = _console(request)
    who = _need_user(request)
    try:
        body = await request.json()
        matchers = [parse_matcher(m) for m in body.get("matchers", [])]
        iid = str(body.get("incident") or "")
        if iid:
            # a silence of one warning: its rule at its station, for whoever may act on it
            w = c.incidents.get(iid)
            if w is None:
                return _error(404, f"unknown incident {iid!r}: GET /v1/warnings lists them")
            verdict = c.may_act(who, w)
            matchers = [Matcher("rule", "=", w.rule), Matcher("station", "=", w.station)]
        else:
            verdict = c.rights.acts_on_all(who)
        if not verdict.ok:
            return _error(403, f"{verdict.why}; a silence of one warning (\"incident\": id) "
                               "needs rights on that warning only")
        weekly = [parse_weekly(w) for w in body.get("weekly", [])]
        now = clock.now_ms()
        starts = int(body.get("starts_ms") or now)
        if body.get("ends_ms"):
            ends = int(body["ends_ms"])
        elif body.get("duration"):
            ends = starts + parse_duration_ms(body["duration"])
        else:
            raise ValueError("say how long: \"duration\": \"2h\" or \"ends_ms\"")
        reason = str(body.get("reason") or "")
        if not reason:
            raise ValueError("a silence needs a reason: who reads the list later must know why")
        s = Silence(id=str(body.get("id") or uuid.uuid4().hex[:10]), matchers=matchers,
                    starts_ms=starts, ends_ms=ends, created_by=who, reason=reason, weekly=weekly)
        _check_silence(None, s, who, now)   # the book checks again; fail fast here
    except ValueError as exc:
        return _error(400, str(exc))
    cmd = Command("silence_add", id=uuid.uuid4().hex, actor=who, silence=s, at=now)
    for p in range(c.cfg.kafka.partitions):   # every partition's book keeps its copy
        await c.send(cmd, p)
    return web.json_response({"id": s.id, "describe": describe(s)}, status=202)


async def expire_silence(request: web.Request) -> web.Response:
    c = _console(request)
    who = _need_user(request)
    sid = request.match_info["id"]
    if sid not in c.silences:
        return _error(404, f"unknown silence {sid!r}: GET /v1/silences lists them")
    verdict = c.rights.acts_on_all(who)
    if not verdict.ok and c.silences[sid].created_by != who:
        return _error(403, f"{verdict.why}, nor the silence's creator")
    body = await request.json() if request.can_read_body else {}
    cmd = Command("silence_expire", id=uuid.uuid4().hex, actor=who, silence_id=sid,
                  text=str(body.get("reason") or "expired"), at=clock.now_ms())
    for p in range(c.cfg.kafka.partitions):
        await c.send(cmd, p)
    return web.json_response({"id": sid, "expiring": True}, status=202)


async def cap_message(request: web.Request) -> web.Response:
    c = _console(request)
    iid = request.match_info["id"]
    w = c.incidents.get(iid)
    if w is None or not w.cap:
        return _error(404, f"no CAP message for {iid!r}: unknown, or still pending")
    a = c.cfg.alerts
    xml = render_cap(w, c.station(w.station), a.sender, a.sender_name, a.region_code,
                     f"{c.base}/v1/warnings/{w.incident}")
    return web.Response(body=xml, content_type="application/cap+xml", charset="utf-8")


async def cap_feed(request: web.Request) -> web.Response:
    c = _console(request)
    xml = render_feed(list(c.incidents.values()), c.base, clock.now_ms())
    return web.Response(body=xml, content_type="application/atom+xml", charset="utf-8")


def make_console(gw: Any, console: Console | None = None) -> web.Application:
    sub = web.Application()
    console = console or Console(gw)
    sub[CONSOLE_KEY] = console

    async def lifecycle(app: web.Application):  # noqa: ANN202
        await console.start()
        yield
        await console.stop()

    async def shutdown(app: web.Application) -> None:
        console.close_streams()

    sub.cleanup_ctx.append(lifecycle)
    sub.on_shutdown.append(shutdown)
    r = sub.router
    r.add_get("/warnings", list_warnings)
    r.add_get("/warnings/{id}", get_warning)
    r.add_post(r"/warnings/{id}/{action:ack|note|clear}", command)
    r.add_get("/ack/{token}", ack_link)
    r.add_get("/silences", list_silences)
    r.add_post("/silences", add_silence)
    r.add_post("/silences/{id}/expire", expire_silence)
    r.add_get("/cap/feed.xml", cap_feed)
    r.add_get(r"/cap/{id:[^/]+}.xml", cap_message)
    return sub


def mount_console(app: web.Application, gw: Any) -> None:
    """Mount the duty console API (``/v1/...``) and the web console (``/console/...``) on
    the gateway's app, both on one read model."""
    from yujing.console.web import make_web
    console = Console(gw)
    app.add_subapp("/v1", make_console(gw, console))
    app.add_subapp("/console", make_web(console))
    app.router.add_get("/", _to_console)


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")
