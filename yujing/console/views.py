"""The JSON the console's pages read, and their live event stream (``/console/api``, ``/console/events``).

- ``/console/api/board``            open (and recently cleared) warnings, filters
- ``/console/api/warnings/{id}``    one warning: timeline, chart with threshold lines,
                                     who is on duty, the response plan
- ``/console/api/stations/{id}``    a station: latest readings, chart, its warnings
- ``/console/api/storm``            the storm view: rain gauges ranked by 1 h / 3 h / 24 h sums,
                                     open rain and waterlogging warnings, waterlogging depths
- ``/console/api/health``           ingest rates, lag, backlog, dead letters
- ``/console/events``               SSE: ``incident``, ``removed``, ``silence`` events as the
                                     incident snapshots arrive from ``yujing.incidents``
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from yujing import clock
from yujing import metrics as m
from yujing.alerts import reportback
from yujing.alerts.records import State, Warning
from yujing.alerts.roster import DOMAINS, Roster, Scope
from yujing.console import storm
from yujing.console import thresholds as th
from yujing.console.health import counter_by
from yujing.console.i18n import held_why
from yujing.console.plans import plan_for
from yujing.console.session import console_of, lang_of, name_of, need_web_user, who_is
from yujing.console.state import Console, warning_dict
from yujing.durations import format_duration, parse_duration_ms

RECENT_MS = 86_400_000          # cleared warnings stay on the board's "show cleared" this long
MAX_POINTS = 1500               # per series in a chart
EVENTS_BEFORE_MS = 3_600_000    # a warning page shows the events from this long before it held
_GRADE_NAMES = {1: "blue", 2: "yellow", 3: "orange", 4: "red"}


def summary(c: Console, w: Warning, who: str, lang: str = "zh") -> dict[str, Any]:
    """One warning for the board. ``reason`` is in words in the reader's language; ``detail``
    keeps the rule expression for analysts (a record of before words has only that)."""
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
            "first_ts": w.first_ts, "acked_by": w.acked_by, "acked_name": name_of(c, w.acked_by),
            "cleared_by": w.cleared_by, "value": w.value, "window": w.window,
            "reason": _words(w.reason_zh, w.reason_en, w.reason, lang), "detail": w.reason,
            "reason_zh": w.reason_zh, "reason_en": w.reason_en, "last_ts": w.last_ts,
            "hold": _hold(c, w) if w.state == State.PENDING else "",
            "muted": held_why(w, lang), "team": team or "", "team_name": team_name,
            "can_act": v.ok, "why": v.why, "entries": len(w.timeline),
            "report_due": reportback.report_due(w, c.cfg.alerts.reports)}


def _words(zh: str, en: str, expression: str, lang: str) -> str:
    return (en if lang == "en" else zh) or expression


def _hold(c: Console, w: Warning) -> str:
    """How long a pending warning's condition must hold (the rule's ``for:``), e.g. 5m."""
    rule = c.rules.get(w.rule)
    if rule is None:
        return ""
    spec = dict(rule.grades.items()).get(_GRADE_NAMES.get(w.grade, ""))
    hold = getattr(spec, "for_", None) or rule.for_
    return format_duration(hold.ms) if hold is not None else ""


def _on_board(w: Warning, now: int) -> bool:
    """Open warnings, pending ones (their own section) and those cleared in the last day."""
    return (w.open or (w.state == State.PENDING and w.updated_ms >= now - RECENT_MS)
            or (w.state == State.CLEARED and w.cleared_ms >= now - RECENT_MS))


async def api_board(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_web_user(request)
    now = clock.now_ms()
    ws = [summary(c, w, who, lang_of(request)) for w in c.visible(who) if _on_board(w, now)]
    reg = c.registry()
    towns = sorted({s.town for s in (reg.stations.values() if reg else [])
                    if s.town and c.sees_station(who, s)}
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
    levels = bool(c.roster and c.roster.org_team("enterprise", w.enterprise))
    steps = c.cfg.alerts.policy(w.grade, w.hazard, levels).steps
    roles = steps[w.esc.step] if w.esc.step < len(steps) else ["reminder"]
    return {"running": True, "next_ms": w.esc.next_ms, "roles": roles, "step": w.esc.step,
            "reminders": w.esc.reminders}


async def api_warning(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_web_user(request)
    w = c.incidents.get(request.match_info["id"])
    if w is None:
        iid = request.match_info["id"]
        return web.json_response({"error": f"未找到预警 {iid} / unknown incident {iid!r}"},
                                 status=404)
    if not (seen := c.may_read(who, w)).ok:
        return web.json_response({"error": seen.why}, status=403)
    now = clock.now_ms()
    lang = lang_of(request)
    d = summary(c, w, who, lang)
    full = warning_dict(w)
    d["timeline"] = [{**e, "actor_name": name_of(c, e.get("actor")), "detail": e.get("reason", ""),
                      "reason": _words(e.get("reason_zh", ""), e.get("reason_en", ""),
                                       e.get("reason", ""), lang)} for e in full["timeline"]]
    d["peak"] = w.peak
    d["escalation"] = _escalation(c, w)
    st = c.station(w.station)
    d["station_info"] = None if st is None else {
        "id": st.id, "name": st.name, "kind": st.kind, "town": st.town, "lat": st.lat,
        "lon": st.lon, "contacts": [ct.model_dump() for ct in st.contacts]}
    d["plan"] = st.plan if st is not None else ""
    d["plan_view"] = plan_for(c.registry(), w.station)
    d["events"] = _events(c, w)
    d["duty"] = _duty(c, c.roster, d["team"] or None, now)
    rule = c.rules.get(w.rule)
    lines = th.lines_for(rule, st) if rule is not None else []
    d["conditions"] = th.conditions(rule) if rule is not None else []
    metrics = th.metrics_of(rule) if rule is not None else []
    start = (w.first_ts or w.last_ts or now) - 3_600_000
    d["chart"] = _chart(c, w.station, metrics, lines, start, None)
    d["cap"] = f"/v1/cap/{w.incident}.xml" if w.cap else ""
    return web.json_response(d)


def _events(c: Console, w: Warning) -> list[dict]:
    """Camera detections and industrial events at the warning's station that its rule reads
    (``smoke``, ``fire``, ``spark`` …), from an hour before the condition first held to its
    clear; newest first."""
    rule = c.rules.get(w.rule)
    types = th.metrics_of(rule) if rule is not None else None
    start = (w.first_ts or w.last_ts) - EVENTS_BEFORE_MS
    end = w.last_ts if w.state == State.CLEARED and w.last_ts else None
    return c.events.find(w.station, types, start, end)


async def api_storm(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_web_user(request)
    now = clock.now_ms()
    reg = c.registry()
    stations = [s for s in (reg.stations.values() if reg is not None else [])
                if c.sees_station(who, s)]
    rules = list(c.rules.values())
    rain = c.readings.metric_series(storm.RAIN)
    if c.rights.scope_of(who).level != "bureau":   # an enterprise's or town's own gauges only
        rain = {sid: v for sid, v in rain.items() if c.sees_station(who, c.station(sid))}
    as_of = storm.as_of_time(rain, now)
    gauges = {s.id: s for s in stations if s.kind == "rain_gauge"} | {
        sid: reg.get(sid) for sid in rain if reg is not None and reg.get(sid) is not None}
    hazards = storm.storm_hazards(rules)
    ws = [summary(c, w, who, lang_of(request)) for w in c.visible(who)
          if w.hazard in hazards and (w.open or w.state == State.PENDING)]
    return web.json_response({
        "now": now, "as_of": as_of, "hazards": hazards,
        "bands": [b.__dict__ for b in storm.rain_bands(rules)],
        "rainstorm_day_mm": storm.RAINSTORM_DAY_MM,
        "rain": storm.rain_table(rain, gauges, rules, as_of),
        "warnings": ws,
        "points": storm.depth_table([s for s in stations if s.kind == "waterlogging"],
                                    c.readings.metric_series(storm.DEPTH), rules)})


async def api_station(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_web_user(request)
    sid = request.match_info["id"]
    st = c.station(sid)
    latest = c.readings.latest(sid)
    if st is None and not latest:
        return web.json_response({"error": f"unknown station {sid!r}"}, status=404)
    if not c.sees_station(who, st):
        scope = c.rights.scope_of(who)
        return web.json_response({"error": f"无权查看：站点 {sid} 不属于{scope.words()} / station "
                                           f"{sid} is not within {scope.level} {scope.key}"},
                                 status=403)
    newest = max((ts for ts, _ in latest.values()), default=clock.now_ms())
    lines: list[dict] = []
    ws = sorted((w for w in c.visible(who) if w.station == sid),
                key=lambda w: (not w.open, -w.grade, -w.updated_ms))
    for rid in dict.fromkeys(w.rule for w in ws):
        if rid in c.rules:
            lines += th.lines_for(c.rules[rid], st)
    return web.json_response({
        "id": sid, "name": st.name if st else sid, "kind": st.kind if st else "",
        "town": st.town if st else "", "lat": st.lat if st else None,
        "lon": st.lon if st else None, "tags": list(st.tags) if st else [],
        "thresholds": dict(st.thresholds) if st else {}, "plan": st.plan if st else "",
        "plan_view": plan_for(c.registry(), sid),
        "contacts": [ct.model_dump() for ct in st.contacts] if st else [],
        "expected_interval": st.expected_interval if st else None,
        "latest": [{"metric": m, "ts": ts, "value": v} for m, (ts, v) in sorted(latest.items())],
        "chart": _chart(c, sid, [], lines, newest - 6 * 3_600_000, None),
        "warnings": [summary(c, w, who, lang_of(request)) for w in ws]})


async def api_health(request: web.Request) -> web.Response:
    c = console_of(request)
    who = need_web_user(request)
    scope = c.rights.scope_of(who)
    if scope.level != "bureau":   # dead letters and rates name every station of the city
        return web.json_response({"error": f"无权查看：系统运行状态仅供市局查看，{who} 属于"
                                           f"{scope.words()} / the health page is the bureau's"},
                                 status=403)
    async with aiohttp.ClientSession() as session:
        scraped = await c.health.scrape(session)
    return web.json_response({
        "now": clock.now_ms(), "gateway": c.gateway_health(),
        "rates": c.health.rates(10), "rates_60": c.health.rates(60),
        "series": c.health.series(),
        "rejected": counter_by(m.READINGS_REJECTED, "reason"),
        "deadletters": {"by_reason": c.deadletters.by_reason(), "latest":
                        c.deadletters.latest(20), "seen": c.deadletters.seen},
        "scraped": scraped,
        "window": {"readings": c.readings.count, "envelopes": len(c.readings.envelopes),
                   "max": c.readings.max_readings, "keep": str(c.cfg.console.readings_window)},
        "incidents": {"caught_up": c.caught_up.is_set(), "count": len(c.incidents),
                      "last_ms": c.last_snapshot_ms}})


async def events(request: web.Request) -> web.StreamResponse:
    c = console_of(request)
    who = need_web_user(request)
    q: asyncio.Queue = asyncio.Queue(maxsize=2000)
    c.subscribers.add(q)
    scope = c.rights.scope_of(who)
    sent: set[str] = set()   # incidents this stream told of: the only ones it tells removed
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
        while True:
            try:
                item = await asyncio.wait_for(q.get(), 15)
            except TimeoutError:
                if who_is(request) is None:
                    break   # logged out or expired: an open stream ends too
                await resp.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            kind, obj = item
            if not _streamed(kind, obj, who, scope, sent):
                continue
            if kind == "incident":
                data = summary(c, obj, who, lang_of(request))
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


def _streamed(kind: str, obj: Any, who: str, scope: Scope, sent: set[str]) -> bool:
    """Whether the live stream of ``who`` (of ``scope``) carries this event."""
    if kind == "incident":
        if not scope.sees(obj.town, obj.enterprise):
            return False
        sent.add(obj.incident)
        return True
    if kind == "removed":
        return scope.level == "bureau" or obj in sent
    return scope.level == "bureau" or getattr(obj, "created_by", "") == who
