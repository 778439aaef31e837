"""Duty commands over HTTP, one-click acknowledge links, and the CAP 1.2 feed.

An aiohttp sub-application mounted at ``/v1`` on the gateway's HTTP server:

- ``GET  /v1/warnings[?state=open|all]``, ``GET /v1/warnings/{id}`` (with timeline)
- ``POST /v1/warnings/{id}/ack|note|clear`` — ``Authorization: Bearer <token>``
  (``console.tokens``: one token per person; the person is the actor on the timeline)
- ``GET  /v1/ack/{token}`` — the signed, expiring link in a message: acknowledges
  in one click, no login
- ``GET|POST /v1/silences``, ``POST /v1/silences/{id}/expire``
- ``GET  /v1/cap/{id}.xml``, ``GET /v1/cap/feed.xml`` (Atom)

The same read model (``state.py``) serves the web console at ``/console``
(``web.py``). A person acts only on warnings of their roster teams
(``rights.py``): others get 403. The console's login keeps the person's token
in a cookie, accepted like the Bearer header (``session.py``).

Commands are not applied here: they go to ``yujing.commands`` on the partition
of the warning's book (known from the incident snapshots the console reads
from ``yujing.incidents``), and the worker that owns that partition applies
them. A command answers 202 with its id; the snapshot shows the effect a
moment later.
"""

from __future__ import annotations

import html
import uuid

from aiohttp import web

from yujing import clock
from yujing.alerts.cap import render_cap, render_feed
from yujing.alerts.records import Command, Matcher, Silence, State, Warning
from yujing.alerts.signing import TokenError, verify
from yujing.alerts.silences import add as _check_silence
from yujing.alerts.silences import describe, is_active, parse_matcher, parse_weekly
from yujing.clock import local_time
from yujing.console.session import CONSOLE_KEY, console_of, need_user
from yujing.console.state import Console, warning_dict
from yujing.durations import parse_duration_ms


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
    need_user(request)  # timelines name officers and carry their notes
    state = request.query.get("state", "open")
    out = [w for w in c.incidents.values()
           if state == "all" or (state == "open" and w.state in (State.ACTIVE, State.ACKNOWLEDGED))
           or w.state.value == state]
    out.sort(key=lambda w: (-w.grade, w.incident))
    return web.json_response([_summary(w) for w in out])


async def get_warning(request: web.Request) -> web.Response:
    c = console_of(request)
    need_user(request)
    w = c.incidents.get(request.match_info["id"])
    if w is None:
        return _error(404, f"unknown incident {request.match_info['id']!r}: GET /v1/warnings "
                           "lists the open ones")
    return web.json_response(warning_dict(w))


async def command(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
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
    c = console_of(request)
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


def _silence_view(s: Silence, now_ms: int, zone: str) -> dict:
    state = "active" if is_active(s, now_ms) else ("expired" if s.ends_ms <= now_ms else
                                                   "waiting")
    names = {0: "mon", 1: "tue", 2: "wed", 3: "thu", 4: "fri", 5: "sat", 6: "sun"}
    return {"id": s.id, "state": state, "matchers": [str(m) for m in s.matchers],
            "starts": local_time(s.starts_ms, zone), "ends": local_time(s.ends_ms, zone),
            "starts_ms": s.starts_ms, "ends_ms": s.ends_ms,
            "weekly": [f"{','.join(names[d] for d in w.days)} {w.start}-{w.end}" for w in s.weekly],
            "created_by": s.created_by, "reason": s.reason, "describe": describe(s),
            "audit": [{"at": local_time(a.at, zone), "actor": a.actor, "action": a.action,
                       "reason": a.reason} for a in s.audit]}


async def list_silences(request: web.Request) -> web.Response:
    c = console_of(request)
    need_user(request)
    now = clock.now_ms()
    show_all = request.query.get("all") in ("1", "true")
    out = [_silence_view(s, now, c.cfg.timezone) for s in c.silences.values()
           if show_all or s.ends_ms > now]
    return web.json_response(sorted(out, key=lambda s: s["starts_ms"]))


async def add_silence(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_user(request)
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
    c = console_of(request)
    who = need_user(request)
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
    r.add_get("/ack/{token}", ack_link)
    r.add_get("/silences", list_silences)
    r.add_post("/silences", add_silence)
    r.add_post("/silences/{id}/expire", expire_silence)
    r.add_get("/cap/feed.xml", cap_feed)
    r.add_get(r"/cap/{id:[^/]+}.xml", cap_message)
    return sub
