"""The duty console (值班台): web pages, their JSON, and a live event stream, at ``/console``.

Server-rendered page shells (with the words of the chosen language and the
roster and map drawn here) plus one small vanilla JS file that fills the
live parts from JSON and keeps them current over Server-Sent Events. Every
asset ships in the package (``static/``): no CDN, no map tiles, no fonts.

- ``/console/``                the live board      ``/console/map``     station map
- ``/console/warnings/{id}``   warning detail      ``/console/stations/{id}``
- ``/console/roster``          who is on duty      ``/console/health``  health
- ``/console/events``          SSE: ``incident``, ``removed``, ``silence`` events as the
                               incident snapshots arrive from ``yujing.incidents``
- ``/console/api/...``         the JSON the pages read

Actions (acknowledge, note, clear, silence) go to the ``/v1`` API, which checks
the person's rights (``rights.py``) and records them as that person.
"""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import numpy as np
from aiohttp import web

from yujing import clock
from yujing.alerts.records import State, Warning
from yujing.alerts.roster import DOMAINS, Roster
from yujing.durations import parse_duration_ms
from yujing.console import mapsvg, thresholds as th
from yujing.console.api import CONSOLE_KEY, COOKIE, Console, _full, person_of
from yujing.console.i18n import LANGS, t, table

STATIC = Path(__file__).parent / "static"
LANG_COOKIE = "yujing_lang"
PREFIX = "/console"
RECENT_MS = 86_400_000          # cleared warnings stay on the board's "show cleared" this long
MAX_POINTS = 1500               # per series in a chart


def _c(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]  # type: ignore[return-value]


def _lang(request: web.Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in LANGS else "zh"


def _user(request: web.Request) -> str | None:
    c = _c(request)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return person_of(c, auth[7:].strip())
    tok = request.cookies.get(COOKIE)
    return person_of(c, tok) if tok else None


def _need_page_user(request: web.Request) -> str:
    who = _user(request)
    if who is None:
        raise web.HTTPFound(f"{PREFIX}/login?next={quote(request.path_qs)}")
    return who


def _need_api_user(request: web.Request) -> str:
    who = _user(request)
    if who is None:
        raise web.HTTPUnauthorized(text='{"error": "log in at /console/login or send '
                                        'Authorization: Bearer <your token>"}',
                                   content_type="application/json")
    return who


def _name(c: Console, pid: str | None) -> str:
    if not pid:
        return ""
    p = c.roster.person(pid) if c.roster is not None else None
    return p.name if p is not None else pid


# --- JSON views ---------------------------------------------------------------------------

def summary(c: Console, w: Warning, who: str) -> dict[str, Any]:
    st = c.station(w.station)
    v = c.may_act(who, w)
    team = v.team
    team_name = c.roster.teams[team].name if team and c.roster and team in c.roster.teams else ""
    return {"incident": w.incident, "grade": w.grade, "state": w.state.value, "rule": w.rule,
            "rule_name": w.rule_name, "hazard": w.hazard,
            "domain": c.rights.domain_of(w.hazard),
            "station": w.station,
            "station_name": w.station_name or (st.name if st is not None else w.station),
            "town": w.town or (st.town if st is not None else ""),
            "raised_ms": w.raised_ms, "updated_ms": w.updated_ms, "cleared_ms": w.cleared_ms,
            "first_ts": w.first_ts, "acked_by": w.acked_by, "acked_name": _name(c, w.acked_by),
            "cleared_by": w.cleared_by, "value": w.value, "window": w.window,
            "reason": w.reason, "muted": w.muted, "team": team or "", "team_name": team_name,
            "can_act": v.ok, "why": v.why, "entries": len(w.timeline)}


def _on_board(w: Warning, now: int) -> bool:
    return w.open or (w.state == State.CLEARED and w.cleared_ms >= now - RECENT_MS)


async def api_board(request: web.Request) -> web.Response:
    c = _c(request)
    who = _need_api_user(request)
    now = clock.now_ms()
    ws = [summary(c, w, who) for w in c.incidents.values() if _on_board(w, now)]
    reg = getattr(c.gw, "registry", None)
    towns = sorted({s.town for s in (reg.stations.values() if reg else []) if s.town}
                   | {w["town"] for w in ws if w["town"]})
    hazards = sorted({r.hazard for r in c.rules.values()} | {w["hazard"] for w in ws})
    return web.json_response({"warnings": ws, "towns": towns, "hazards": hazards,
                              "domains": list(DOMAINS), "now": now, "user": who,
                              "caught_up": c.caught_up.is_set()})


def _downsample(ts: np.ndarray, *cols: np.ndarray) -> list[np.ndarray]:
    if ts.size <= MAX_POINTS:
        return [ts, *cols]
    idx = np.unique(np.concatenate([np.linspace(0, ts.size - 1, MAX_POINTS).astype(int)]))
    return [ts[idx], *(col[idx] for col in cols)]


def _chart(c: Console, station_id: str, metrics: list[str], lines: list[dict], t0: int,
           t1: int | None) -> list[dict]:
    """Series of ``metrics`` at a station from ``t0``, with the rolling aggregates the
    threshold lines compare against (computed over readings from before ``t0`` too)."""
    wmax = max([parse_duration_ms(x["window"]) for x in lines if x["window"]] or [0])
    series = c.readings.series(station_id, t0 - wmax, t1)
    out = []
    for metric in metrics or sorted(series):
        if metric not in series:
            continue
        ts, val = series[metric]
        aggs = []
        for key in dict.fromkeys((x["agg"], x["window"]) for x in lines
                                 if x["metric"] == metric and x["window"]):
            aggs.append({"agg": key[0], "window": key[1],
                         "val": th.rolling(ts, val, key[0], key[1])})
        keep = ts >= t0
        cols = _downsample(ts[keep], val[keep], *(a["val"][keep] for a in aggs))
        for a, col in zip(aggs, cols[2:]):
            a["val"] = [round(float(x), 3) for x in col]
        out.append({"metric": metric, "ts": [int(x) for x in cols[0]],
                    "val": [round(float(x), 3) for x in cols[1]], "aggs": aggs,
                    "lines": [x for x in lines if x["metric"] == metric]})
    return out


def _duty(c: Console, roster: Roster | None, team: str | None, now: int) -> dict | None:
    if roster is None or team is None or team not in roster.teams:
        return None

    def view(d: Any) -> dict:
        def person(pid: str | None) -> dict | None:
            if not pid:
                return None
            p = roster.person(pid)
            return {"id": pid, "name": p.name if p else pid, "phone": p.phone if p else ""}
        return {"A": person(d.A), "B": person(d.B), "leader": person(d.leader),
                "start_ms": d.start_ms, "end_ms": d.end_ms, "why": "; ".join(d.why)}

    d = roster.duty(team, now)
    nxt = roster.duty(team, d.end_ms) if d.end_ms > now else None
    tm = roster.teams[team]
    return {"team": team, "team_name": tm.name, "domain": tm.domain, "now": view(d),
            "next": view(nxt) if nxt is not None else None}


def _escalation(c: Console, w: Warning) -> dict:
    if w.esc is None or not w.esc.next_ms:
        return {"running": False}
    steps = c.cfg.alerts.policy(w.grade).steps
    roles = steps[w.esc.step] if w.esc.step < len(steps) else ["reminder"]
    return {"running": True, "next_ms": w.esc.next_ms, "roles": roles, "step": w.esc.step,
            "reminders": w.esc.reminders}


async def api_warning(request: web.Request) -> web.Response:
    c = _c(request)
    who = _need_api_user(request)
    w = c.incidents.get(request.match_info["id"])
    if w is None:
        return web.json_response({"error": f"unknown incident {request.match_info['id']!r}"},
                                 status=404)
    now = clock.now_ms()
    d = summary(c, w, who)
    full = _full(w)
    d["timeline"] = [{**e, "actor_name": _name(c, e.get("actor"))} for e in full["timeline"]]
    d["peak"] = w.peak
    d["escalation"] = _escalation(c, w)
    st = c.station(w.station)
    d["station_info"] = None if st is None else {
        "id": st.id, "name": st.name, "kind": st.kind, "town": st.town, "lat": st.lat,
        "lon": st.lon, "contacts": [ct.model_dump() for ct in st.contacts]}
    d["plan"] = st.plan if st is not None else ""
    d["duty"] = _duty(c, c.roster, d["team"] or None, now)
    rule = c.rules.get(w.rule)
    lines = th.lines_for(rule, st) if rule is not None else []
    d["conditions"] = th.conditions(rule) if rule is not None else []
    metrics = th.metrics_of(rule) if rule is not None else []
    start = (w.first_ts or w.last_ts or now) - 3_600_000
    d["chart"] = _chart(c, w.station, metrics, lines, start, None)
    d["cap"] = f"/v1/cap/{w.incident}.xml" if w.cap else ""
    return web.json_response(d)


async def api_station(request: web.Request) -> web.Response:
    c = _c(request)
    who = _need_api_user(request)
    sid = request.match_info["id"]
    st = c.station(sid)
    latest = c.readings.latest(sid)
    if st is None and not latest:
        return web.json_response({"error": f"unknown station {sid!r}"}, status=404)
    newest = max((ts for ts, _ in latest.values()), default=clock.now_ms())
    lines: list[dict] = []
    ws = sorted((w for w in c.incidents.values() if w.station == sid),
                key=lambda w: (not w.open, -w.grade, -w.updated_ms))
    for rid in dict.fromkeys(w.rule for w in ws):
        if rid in c.rules:
            lines += th.lines_for(c.rules[rid], st)
    return web.json_response({
        "id": sid, "name": st.name if st else sid, "kind": st.kind if st else "",
        "town": st.town if st else "", "lat": st.lat if st else None,
        "lon": st.lon if st else None, "tags": list(st.tags) if st else [],
        "thresholds": dict(st.thresholds) if st else {}, "plan": st.plan if st else "",
        "contacts": [ct.model_dump() for ct in st.contacts] if st else [],
        "expected_interval": st.expected_interval if st else None,
        "latest": [{"metric": m, "ts": ts, "value": v} for m, (ts, v) in sorted(latest.items())],
        "chart": _chart(c, sid, [], lines, newest - 6 * 3_600_000, None),
        "warnings": [summary(c, w, who) for w in ws]})


async def api_health(request: web.Request) -> web.Response:
    c = _c(request)
    _need_api_user(request)
    gw = c.gw
    async with aiohttp.ClientSession() as session:
        scraped = await c.health.scrape(session)
    from yujing import metrics as m
    from yujing.console.health import counter_by
    return web.json_response({
        "now": clock.now_ms(), "gateway": gw.health() if hasattr(gw, "batcher") else {},
        "rates": c.health.rates(10), "rates_60": c.health.rates(60),
        "series": c.health.series(),
        "rejected": counter_by(m.READINGS_REJECTED, "reason"),
        "deadletters": {"by_reason": c.deadletters.by_reason(), "latest":
                        c.deadletters.latest(20), "seen": c.deadletters.seen},
        "scraped": scraped,
        "window": {"readings": c.readings.count, "envelopes": len(c.readings.envelopes),
                   "max": c.readings.max_readings, "keep": c.cfg.console.readings_window},
        "incidents": {"caught_up": c.caught_up.is_set(), "count": len(c.incidents),
                      "last_ms": c.last_snapshot_ms}})


# --- live stream --------------------------------------------------------------------------

async def events(request: web.Request) -> web.StreamResponse:
    c = _c(request)
    who = _need_api_user(request)
    q: asyncio.Queue = asyncio.Queue(maxsize=2000)
    c.subscribers.add(q)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
        while True:
            try:
                item = await asyncio.wait_for(q.get(), 15)
            except asyncio.TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            kind, obj = item
            if kind == "incident":
                data = summary(c, obj, who)
            elif kind == "removed":
                data = {"incident": obj}
            else:
                data = {"id": obj.id}
            await resp.write(f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                             .encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        c.subscribers.discard(q)
    return resp


# --- pages --------------------------------------------------------------------------------

NAV = (("board", "/"), ("map", "/map"), ("roster", "/roster"), ("health", "/health"))


def _layout(request: web.Request, page: str, title: str, body: str, who: str | None,
            data: dict | None = None) -> web.Response:
    c = _c(request)
    lang = _lang(request)
    other = "en" if lang == "zh" else "zh"
    e = html.escape
    nav = "".join(f'<a href="{PREFIX}{path}" class="{"on" if page == key else ""}">'
                  f'{e(t(key, lang))}</a>' for key, path in NAV) if who else ""
    user = (f'<span class="user">{e(t("signed_in", lang))}: <b id="me">{e(_name(c, who))}</b> '
            f'({e(who)})</span><a href="{PREFIX}/logout">{e(t("logout", lang))}</a>'
            if who else "")
    cfg = {"page": page, "prefix": PREFIX, "lang": lang, "user": who or "",
           "user_name": _name(c, who), **(data or {})}
    js_cfg = json.dumps(cfg, ensure_ascii=False).replace("</", "<\\/")
    js_t = json.dumps(table(lang), ensure_ascii=False).replace("</", "<\\/")
    text = f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · {e(t("app", lang))}</title>
<link rel="stylesheet" href="{PREFIX}/static/console.css">
<link rel="icon" href="{PREFIX}/static/icon.svg" type="image/svg+xml">
</head><body data-page="{page}">
<header><a class="brand" href="{PREFIX}/">预警 <span>{e(t("app", lang))}</span></a>
<nav>{nav}</nav><span class="spacer"></span>
<span id="live" class="live" hidden></span>{user}
<a id="lang" href="{PREFIX}/lang?to={other}&amp;next={e(quote(request.path_qs))}">{e(t("lang_other", lang))}</a>
</header>
<main>{body}</main>
<script>window.YJ = {js_cfg};
window.T = {js_t};</script>
<script src="{PREFIX}/static/console.js" defer></script>
</body></html>"""
    return web.Response(text=text, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def login_page(request: web.Request) -> web.Response:
    lang = _lang(request)
    nxt = request.query.get("next", f"{PREFIX}/")
    bad = request.query.get("bad")
    e = html.escape
    body = f"""<section class="login"><h1>{e(t("login_title", lang))}</h1>
<form method="post" action="{PREFIX}/login">
<input type="hidden" name="next" value="{e(nxt)}">
<label>{e(t("token", lang))} <input id="token" name="token" type="password" autocomplete="current-password" required autofocus></label>
<button id="login" type="submit">{e(t("login", lang))}</button>
{f'<p class="error" role="alert">{e(t("bad_token", lang))}</p>' if bad else ''}
<p class="help">{e(t("token_help", lang))}</p></form></section>"""
    return _layout(request, "login", t("login", lang), body, None)


def _safe_next(nxt: str) -> str:
    return nxt if nxt.startswith(PREFIX + "/") and "//" not in nxt[1:] else f"{PREFIX}/"


async def login(request: web.Request) -> web.Response:
    c = _c(request)
    form = await request.post()
    nxt = _safe_next(str(form.get("next") or ""))
    token = str(form.get("token") or "").strip()
    if not token or person_of(c, token) is None:
        raise web.HTTPFound(f"{PREFIX}/login?bad=1&next={quote(nxt)}")
    resp = web.HTTPFound(nxt)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                    max_age=7 * 86_400, secure=request.secure)
    raise resp


async def logout(request: web.Request) -> web.Response:
    resp = web.HTTPFound(f"{PREFIX}/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


async def set_lang(request: web.Request) -> web.Response:
    to = request.query.get("to", "zh")
    resp = web.HTTPFound(_safe_next(request.query.get("next", f"{PREFIX}/")))
    resp.set_cookie(LANG_COOKIE, to if to in LANGS else "zh", path="/", max_age=365 * 86_400,
                    samesite="Lax")
    raise resp


def _grade_select(lang: str) -> str:
    opts = "".join(f'<option value="{g}">{html.escape(t(f"grade_{g}", lang))}</option>'
                   for g in (4, 3, 2, 1))
    return f'<option value="">{html.escape(t("all", lang))}</option>{opts}'


async def board_page(request: web.Request) -> web.Response:
    who = _need_page_user(request)
    lang = _lang(request)
    e = html.escape
    counters = "".join(
        f'<div class="counter g{g}" data-grade="{g}"><span class="badge g{g}">'
        f'<i class="ico"></i>{e(t(f"grade_{g}", lang))}</span><b class="n">0</b></div>'
        for g in (4, 3, 2, 1))
    body = f"""<section class="counters" id="counters">{counters}</section>
<section class="filters">
<label>{e(t("town", lang))} <select id="f-town"><option value="">{e(t("all", lang))}</option></select></label>
<label>{e(t("domain", lang))} <select id="f-domain"><option value="">{e(t("all", lang))}</option>
{"".join(f'<option value="{d}">{e(t("d_" + d, lang))}</option>' for d in DOMAINS)}</select></label>
<label>{e(t("hazard", lang))} <select id="f-hazard"><option value="">{e(t("all", lang))}</option></select></label>
<label>{e(t("grade", lang))} <select id="f-grade">{_grade_select(lang)}</select></label>
<label class="check"><input type="checkbox" id="f-cleared"> {e(t("show_cleared", lang))}</label>
</section>
<table class="board" id="board"><thead><tr>
<th>{e(t("grade", lang))}</th><th>{e(t("hazard", lang))}</th><th>{e(t("station", lang))}</th>
<th>{e(t("town", lang))}</th><th>{e(t("state", lang))}</th><th>{e(t("raised", lang))}</th>
<th>{e(t("reason", lang))}</th><th>{e(t("team", lang))}</th></tr></thead><tbody></tbody></table>
<p id="empty" class="empty" hidden>{e(t("no_warnings", lang))}</p>"""
    return _layout(request, "board", t("board", lang), body, who)


async def map_page(request: web.Request) -> web.Response:
    who = _need_page_user(request)
    lang = _lang(request)
    c = _c(request)
    reg = getattr(c.gw, "registry", None)
    svg = mapsvg.render(reg.stations.values() if reg else [], t("outline", lang))
    e = html.escape
    legend = "".join(f'<span class="badge g{g}"><i class="ico"></i>{e(t(f"grade_{g}", lang))}'
                     f'</span>' for g in (4, 3, 2, 1))
    body = f"""<section class="maprow"><div class="mapbox">{svg}</div>
<aside><h2>{e(t("legend", lang))}</h2><p class="legend">{legend}
<span class="badge g0"><i class="ico"></i>{e(t("no_active", lang))}</span></p>
<p class="help">{e(t("outline", lang))}</p>
<ul id="map-list" class="maplist"></ul></aside></section>"""
    return _layout(request, "map", t("map", lang), body, who)


async def warning_page(request: web.Request) -> web.Response:
    who = _need_page_user(request)
    lang = _lang(request)
    iid = request.match_info["id"]
    e = html.escape
    silence_opts = "".join(f'<option value="{d}">{d}</option>' for d in ("1h", "2h", "6h", "24h"))
    body = f"""<section id="detail" data-incident="{e(iid)}">
<div class="head" id="w-head"></div>
<div class="actions" id="actions">
<form id="f-ack"><input name="note" placeholder="{e(t("note_ph", lang))}"><button id="btn-ack" type="submit">{e(t("ack", lang))}</button></form>
<form id="f-note"><input name="text" required placeholder="{e(t("note_req", lang))}"><button id="btn-note" type="submit">{e(t("note", lang))}</button></form>
<form id="f-clear"><input name="reason" required placeholder="{e(t("reason_req", lang))}"><button id="btn-clear" type="submit">{e(t("clear", lang))}</button></form>
<form id="f-silence"><label>{e(t("silence_for", lang))} <select name="duration">{silence_opts}</select></label><input name="reason" required placeholder="{e(t("silence_reason", lang))}"><button id="btn-silence" type="submit">{e(t("silence", lang))}</button></form>
<p id="act-msg" class="msg" role="status"></p></div>
<div class="cols"><div class="col">
<h2>{e(t("timeline", lang))}</h2><ol id="timeline" class="timeline"></ol></div>
<div class="col"><h2>{e(t("chart", lang))}</h2><div id="chart"></div>
<h2>{e(t("duty_now", lang))}</h2><div id="duty"></div>
<h2>{e(t("plan", lang))}</h2><div id="plan" class="plan"></div></div></div></section>"""
    return _layout(request, "warning", iid, body, who, {"incident": iid})


async def station_page(request: web.Request) -> web.Response:
    who = _need_page_user(request)
    lang = _lang(request)
    sid = request.match_info["id"]
    e = html.escape
    body = f"""<section id="station" data-station="{e(sid)}"><div class="head" id="s-head"></div>
<div class="cols"><div class="col"><h2>{e(t("warnings_here", lang))}</h2>
<table class="board" id="s-warnings"><tbody></tbody></table>
<h2>{e(t("latest", lang))}</h2><table class="kv" id="s-latest"><tbody></tbody></table>
<h2>{e(t("thresholds", lang))}</h2><table class="kv" id="s-thresholds"><tbody></tbody></table>
<h2>{e(t("plan", lang))}</h2><div id="plan" class="plan"></div>
<h2>{e(t("contacts", lang))}</h2><ul id="s-contacts"></ul></div>
<div class="col"><h2>{e(t("chart", lang))}</h2><div id="chart"></div></div></div></section>"""
    return _layout(request, "station", sid, body, who, {"station": sid})


def _person(c: Console, pid: str | None) -> str:
    if not pid:
        return '<span class="gap">—</span>'
    p = c.roster.person(pid) if c.roster is not None else None
    name = p.name if p else pid
    phone = f' <span class="phone">{html.escape(p.phone)}</span>' if p and p.phone else ""
    return f'<span class="person" data-person="{html.escape(pid)}">{html.escape(name)}</span>{phone}'


def _local(c: Console, ms: int) -> str:
    r = c.roster
    return r.local(ms).strftime("%m-%d %H:%M") if r is not None else str(ms)


async def roster_page(request: web.Request) -> web.Response:
    who = _need_page_user(request)
    lang = _lang(request)
    c = _c(request)
    e = html.escape
    r = c.roster
    if r is None:
        return _layout(request, "roster", t("roster", lang),
                       f'<p class="empty">{e(t("no_roster", lang))}</p>', who)
    now = clock.now_ms()
    rows = []
    for tid, team in r.teams.items():
        d = r.duty(tid, now)
        n = r.duty(tid, d.end_ms) if d.end_ms > now else None
        regions = "、".join(team.regions) if team.regions != ["*"] else t("all", lang)
        mine = " mine" if who in c.rights._members.get(tid, set()) else ""
        rows.append(
            f'<tr class="team{mine}" data-team="{e(tid)}"><td><b>{e(team.name)}</b><br>'
            f'<small>{e(tid)}</small></td><td>{e(t("d_" + team.domain, lang))}</td>'
            f'<td>{e(regions)}</td><td class="now">{_person(c, d.A)}</td>'
            f'<td class="now">{_person(c, d.B)}</td><td>{_person(c, d.leader)}</td>'
            f'<td><small>{e(_local(c, d.start_ms))} – {e(_local(c, d.end_ms))}<br>'
            f'{e("; ".join(d.why))}</small></td>'
            + (f'<td>{_person(c, n.A)} / {_person(c, n.B)} / {_person(c, n.leader)}<br><small>'
               f'{e(t("since", lang))} {e(_local(c, n.start_ms))}</small></td>' if n else "<td></td>")
            + "</tr>")
    head = (f'<tr><th>{e(t("team", lang))}</th><th>{e(t("domain", lang))}</th>'
            f'<th>{e(t("town", lang))}</th><th>{e(t("role_A", lang))}</th>'
            f'<th>{e(t("role_B", lang))}</th><th>{e(t("role_leader", lang))}</th>'
            f'<th>{e(t("since", lang))}/{e(t("until", lang))} · {e(t("why", lang))}</th>'
            f'<th>{e(t("duty_next", lang))} (A / B / {e(t("role_leader", lang))})</th></tr>')
    # By town: which team and who answers for each domain there, now
    reg = getattr(c.gw, "registry", None)
    towns = sorted({s.town for s in (reg.stations.values() if reg else []) if s.town})
    doms = [d for d in DOMAINS if d != "duty_room"]
    trows = []
    for town in towns:
        cells = []
        for dom in doms:
            hazard = next((h for h, d in r.domains.items() if d == dom), dom)
            tid, _ = r.team_for(hazard, town)
            if tid is None:
                cells.append('<td class="gap">—</td>')
                continue
            d = r.duty(tid, now)
            cells.append(f'<td><small>{e(r.teams[tid].name)}</small><br>A {_person(c, d.A)}'
                         f' · B {_person(c, d.B)}</td>')
        trows.append(f'<tr data-town="{e(town)}"><th>{e(town)}</th>{"".join(cells)}</tr>')
    thead = (f'<tr><th>{e(t("town", lang))}</th>'
             + "".join(f'<th>{e(t("d_" + d, lang))}</th>' for d in doms) + "</tr>")
    body = (f'<h2>{e(t("per_team", lang))}</h2><table class="roster" id="roster-teams">'
            f'<thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            f'<h2>{e(t("per_town", lang))}</h2><table class="roster" id="roster-towns">'
            f'<thead>{thead}</thead><tbody>{"".join(trows)}</tbody></table>'
            f'<p class="help">{e(r.source)} · {e(str(r.tz))}</p>')
    return _layout(request, "roster", t("roster", lang), body, who)


async def health_page(request: web.Request) -> web.Response:
    who = _need_page_user(request)
    lang = _lang(request)
    e = html.escape
    body = f"""<section class="health" id="health">
<div class="card"><h2>{e(t("ingest", lang))}</h2><div id="h-ingest"></div><div id="h-spark"></div></div>
<div class="card"><h2>{e(t("lag", lang))} · {e(t("worker_rate", lang))}</h2><div id="h-lag"></div></div>
<div class="card"><h2>{e(t("backlog", lang))}</h2><div id="h-backlog"></div></div>
<div class="card"><h2>{e(t("kafka_incidents", lang))} · {e(t("window", lang))}</h2><div id="h-console"></div></div>
<div class="card wide"><h2>{e(t("deadletters", lang))}</h2><div id="h-dead"></div></div>
</section>"""
    return _layout(request, "health", t("health", lang), body, who)


def make_web(console: Console) -> web.Application:
    app = web.Application()
    app[CONSOLE_KEY] = console
    r = app.router
    r.add_get("/", board_page)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_get("/logout", logout)
    r.add_get("/lang", set_lang)
    r.add_get("/map", map_page)
    r.add_get("/roster", roster_page)
    r.add_get("/health", health_page)
    r.add_get("/warnings/{id}", warning_page)
    r.add_get("/stations/{id}", station_page)
    r.add_get("/events", events)
    r.add_get("/api/board", api_board)
    r.add_get("/api/warnings/{id}", api_warning)
    r.add_get("/api/stations/{id}", api_station)
    r.add_get("/api/health", api_health)
    r.add_static("/static", STATIC, append_version=False)
    return app
