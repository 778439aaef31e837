"""Duty commands over HTTP, one-click acknowledge links, and the CAP 1.2 feed.

An aiohttp sub-application mounted at ``/v1`` on the gateway's HTTP server:

- ``GET  /v1/warnings[?state=open|all]``, ``GET /v1/warnings/{id}`` (with timeline)
- ``POST /v1/warnings/{id}/ack|note|clear|reports`` — ``Authorization: Bearer <token>``
  (``console.tokens``: one token per person; the person is the actor on the timeline)
- ``GET  /v1/ack/{token}`` — the signed, expiring link in a message: a confirmation
  page, no login; its button's ``POST /v1/ack/{token}`` acknowledges (``acklink.py``);
  ``GET|POST /v1/report/{token}``: the report-back form it leads to (``reportlink.py``)
- ``GET|POST /v1/silences``, ``POST /v1/silences/{id}/expire``: the server makes
  silence ids; a body naming an ``id`` replaces that silence, which (like expiring
  it) only its creator or a console admin / duty-room member may do

Every body is decoded by ``bodies.py``: a malformed one is a 400 with the reason,
and the limits (sizes, texts, a silence's length) are ``alerts.commands``.
- ``GET  /v1/cap/{id}.xml``, ``GET /v1/cap/feed.xml`` (Atom)

The same read model (``state.py``) serves the web console at ``/console``
(``web.py``). A person acts only on warnings of their roster teams
(``rights.py``): others get 403. A person of an enterprise or a town (``alerts.enterprises``)
reads only its warnings: the list is filtered, another's warning is a 403 with the reason.
The console's login keeps the person's token in a cookie, accepted like the Bearer header (``session.py``).

Commands are not applied here: they go to ``yujing.commands`` on the partition
of the warning's book (known from the incident snapshots the console reads
from ``yujing.incidents``), and the worker that owns that partition applies
them. A command answers 202 with its id; the snapshot shows the effect a
moment later.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid

from aiohttp import web

from yujing import clock
from yujing.alerts.cap import render_cap, render_feed
from yujing.alerts.records import Command, Matcher, Silence, State, Warning
from yujing.alerts.settings import CommandLimits
from yujing.alerts.silences import add as _check_silence
from yujing.alerts.silences import describe, is_active
from yujing.clock import local_time
from yujing.console import acklink, notices_api, reportlink, reports_api
from yujing.console.bodies import BodyError, command_text, expire_reason, silence_request
from yujing.console.rights import Verdict
from yujing.console.session import CONSOLE_KEY, console_of, need_user
from yujing.console.state import Console, warning_dict

log = logging.getLogger("yujing.console")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _summary(w: Warning) -> dict:
    d = warning_dict(w)
    d.pop("timeline", None)
    d.pop("seen_at_last", None)
    d.pop("commands", None)
    return d


async def list_warnings(request: web.Request) -> web.Response:
    c = console_of(request)
    # timelines name officers and carry their notes; an enterprise's or town's people see
    # theirs only (the list is filtered, one warning not theirs is a 403)
    who = need_user(request)
    state = request.query.get("state", "open")
    out = [w for w in c.visible(who)
           if state == "all" or (state == "open" and w.state in (State.ACTIVE, State.ACKNOWLEDGED))
           or w.state.value == state]
    out.sort(key=lambda w: (-w.grade, w.incident))
    return web.json_response([_summary(w) for w in out])


async def get_warning(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    w = c.incidents.get(request.match_info["id"])
    if w is None:
        return _error(404, f"unknown incident {request.match_info['id']!r}: GET /v1/warnings "
                           "lists the open ones")
    verdict = c.may_read(who, w)
    if not verdict.ok:
        return _error(403, verdict.why)
    return web.json_response(warning_dict(w))


async def command(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    iid, action = request.match_info["id"], request.match_info["action"]
    w = c.incidents.get(iid)
    if w is None:
        return _error(404, f"未找到预警 {iid} / unknown incident {iid!r}: GET /v1/warnings lists "
                           "the open ones")
    verdict = c.may_act(who, w)
    if not verdict.ok:
        return _error(403, verdict.why)
    limits = c.cfg.alerts.commands
    try:
        text = command_text(await _read(request, limits), action, limits)
    except BodyError as exc:
        return _error(400, str(exc))
    if action == "clear" and (refused := reports_api.clear_refused(c, w)) is not None:
        return refused
    cmd = Command(action, id=uuid.uuid4().hex, actor=who, incident=iid, text=text,
                  at=clock.now_ms())
    await c.send(cmd, w.partition)
    return web.json_response({"command": cmd.id, "incident": iid, "action": action, "by": who},
                             status=202)


async def _read(request: web.Request, limits: CommandLimits) -> bytes:
    """The whole body, at most ``alerts.commands.body_max`` bytes (413 beyond)."""
    raw = await request.read() if request.can_read_body else b""
    if len(raw) > limits.body_max:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limits.body_max, actual_size=len(raw), content_type="application/json",
            text=json.dumps({"error": f"请求体过大 / the body is {len(raw)} bytes: at most "
                                      f"{limits.body_max} (alerts.commands.body_max)"}))
    return raw


def _when(ms: int, zone: str) -> str:
    try:
        return local_time(ms, zone)
    except (OverflowError, ValueError, OSError):
        return str(ms)      # beyond the calendar: the number as stored


def _silence_view(s: Silence, now_ms: int, zone: str) -> dict:
    state = "active" if is_active(s, now_ms) else ("expired" if s.ends_ms <= now_ms else
                                                   "waiting")
    names = {0: "mon", 1: "tue", 2: "wed", 3: "thu", 4: "fri", 5: "sat", 6: "sun"}
    return {"id": s.id, "state": state, "matchers": [str(m) for m in s.matchers],
            "starts": _when(s.starts_ms, zone), "ends": _when(s.ends_ms, zone),
            "starts_ms": s.starts_ms, "ends_ms": s.ends_ms,
            "weekly": [f"{','.join(names.get(d, str(d)) for d in w.days)} {w.start}-{w.end}"
                       for w in s.weekly],
            "created_by": s.created_by, "reason": s.reason, "describe": describe(s),
            "audit": [{"at": _when(a.at, zone), "actor": a.actor, "action": a.action,
                       "reason": a.reason} for a in s.audit]}


def _any_silence_view(s: Silence, now_ms: int, zone: str) -> dict:
    """The view of a stored silence, whatever it holds: a silence written by an older
    version or by hand must not turn the list into a 500 for everyone."""
    try:
        return _silence_view(s, now_ms, zone)
    except (ValueError, OverflowError, OSError, KeyError) as exc:
        log.warning("console: silence %r shown as stored (%s)", s.id, exc)
        return {"id": s.id, "state": "invalid", "matchers": [str(m) for m in s.matchers],
                "starts": str(s.starts_ms), "ends": str(s.ends_ms), "starts_ms": s.starts_ms,
                "ends_ms": s.ends_ms, "weekly": [], "created_by": s.created_by,
                "reason": s.reason, "describe": f"silence {s.id}: {exc}", "audit": []}


async def list_silences(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    now = clock.now_ms()
    show_all = request.query.get("all") in ("1", "true")
    # a silence names stations and rules: an enterprise's or town's people see their own only
    own = c.rights.scope_of(who).level != "bureau"
    out = [_any_silence_view(s, now, c.cfg.timezone) for s in c.silences.values()
           if (show_all or s.ends_ms > now) and not (own and s.created_by != who)]
    return web.json_response(sorted(out, key=lambda s: s["starts_ms"]))


def _may_change(c: Console, who: str, s: Silence) -> Verdict:
    """Only a silence's creator, a console admin or the duty room replaces or expires it."""
    if s.created_by == who:
        return Verdict(True, f"{who} made silence {s.id}")
    v = c.rights.acts_on_all(who)
    if v.ok:
        return v
    return Verdict(False, f"静默 {s.id} 由 {s.created_by} 设置：只有本人、值班台管理员或值班室可以"
                          f"修改或撤销 / silence {s.id} was made by {s.created_by}: only they, a "
                          f"console admin or the duty room may change or expire it ({v.why})")


async def add_silence(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    limits, now = c.cfg.alerts.commands, clock.now_ms()
    try:
        req = silence_request(await _read(request, limits), limits, now)
    except BodyError as exc:
        return _error(400, str(exc))
    existing = c.silences.get(req.id) if req.id else None
    if req.id and existing is None:
        return _error(400, f"unknown silence id {req.id!r}: ids are made by the server; leave "
                           "\"id\" out to add a silence, or name one from GET /v1/silences to "
                           "replace it")
    if existing is not None and not (v := _may_change(c, who, existing)).ok:
        return _error(403, v.why)
    matchers = req.matchers
    if req.incident:
        # a silence of one warning: its rule at its station, for whoever may act on it
        w = c.incidents.get(req.incident)
        if w is None:
            return _error(404, f"unknown incident {req.incident!r}: GET /v1/warnings lists them")
        verdict = c.may_act(who, w)
        matchers = [Matcher("rule", "=", w.rule), Matcher("station", "=", w.station)]
    else:
        verdict = c.rights.acts_on_all(who)
    if not verdict.ok:
        return _error(403, f"{verdict.why}; a silence of one warning (\"incident\": id) "
                           "needs rights on that warning only")
    s = Silence(id=req.id or secrets.token_hex(8), matchers=matchers, starts_ms=req.starts_ms,
                ends_ms=req.ends_ms, created_by=who, reason=req.reason, weekly=req.weekly)
    try:
        _check_silence(existing, s, who, now)   # the book checks again; fail fast here
    except ValueError as exc:
        return _error(400, str(exc))
    cmd = Command("silence_add", id=uuid.uuid4().hex, actor=who, silence=s, at=now)
    for p in range(c.cfg.kafka.partitions):   # every partition's book keeps its copy
        await c.send(cmd, p)
    return web.json_response({"id": s.id, "describe": describe(s)}, status=202)


async def expire_silence(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
    sid = request.match_info["id"]
    if sid not in c.silences:
        return _error(404, f"unknown silence {sid!r}: GET /v1/silences lists them")
    verdict = _may_change(c, who, c.silences[sid])
    if not verdict.ok:
        return _error(403, verdict.why)
    limits = c.cfg.alerts.commands
    try:
        reason = expire_reason(await _read(request, limits), limits)
    except BodyError as exc:
        return _error(400, str(exc))
    cmd = Command("silence_expire", id=uuid.uuid4().hex, actor=who, silence_id=sid,
                  text=reason, at=clock.now_ms())
    for p in range(c.cfg.kafka.partitions):
        await c.send(cmd, p)
    return web.json_response({"id": sid, "expiring": True}, status=202)


async def cap_message(request: web.Request) -> web.Response:
    c = console_of(request)
    iid = request.match_info["id"]
    w = c.incidents.get(iid)
    if w is None or not w.cap:
        return _error(404, f"no CAP message for {iid!r}: unknown, or still pending")
    a = c.cfg.alerts
    xml = render_cap(w, c.station(w.station), a.sender, a.sender_name, a.region_code,
                     f"{c.base}/v1/warnings/{w.incident}")
    return web.Response(body=xml, content_type="application/cap+xml", charset="utf-8")


async def cap_feed(request: web.Request) -> web.Response:
    c = console_of(request)
    xml = render_feed(list(c.incidents.values()), c.base, clock.now_ms())
    return web.Response(body=xml, content_type="application/atom+xml", charset="utf-8")


def make_console(console: Console) -> web.Application:
    """The ``/v1`` sub-application; it starts and stops the console's Kafka readers."""
    sub = web.Application()
    sub[CONSOLE_KEY] = console

    async def lifecycle(app: web.Application):
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
    r.add_get("/ack/{token}", acklink.show)       # a confirmation page: link scanners open it
    r.add_post("/ack/{token}", acklink.confirm)
    r.add_post("/warnings/{id}/reports", reports_api.post_report)
    r.add_get("/report/{token}", reportlink.show)
    r.add_post("/report/{token}", reportlink.submit)
    r.add_get("/silences", list_silences)
    r.add_post("/silences", add_silence)
    r.add_post("/silences/{id}/expire", expire_silence)
    notices_api.add_routes(r)   # safety notices: /notices..., /notice-link/{token}
    r.add_get("/cap/feed.xml", cap_feed)
    r.add_get(r"/cap/{id:[^/]+}.xml", cap_message)
    return sub
