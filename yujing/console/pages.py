"""The console's HTML pages (值班台): server-rendered shells that ``static/console.js`` fills.

Each page carries the words of the chosen language and what is cheap to draw
on the server (the roster tables, the station map); the live parts come from
the JSON in ``views.py``. Login, logout and the language switch live here too.

``layout`` is every page's frame (header, nav, language switch, the config console.js
reads); the pages with more to them have modules of their own that use it: the warning
page with its report-back form (``warning_page.py``), the duty roster
(``roster_page.py``), the period report (``report_page.py``) and the notices
(``notices_page.py``).
"""

from __future__ import annotations

import html
import json
from urllib.parse import quote

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from yujing import clock
from yujing.alerts.roster import DOMAINS, ORG_DOMAINS
from yujing.console import mapsvg
from yujing.console.i18n import LANGS, t, table
from yujing.console.session import (
    LANG_COOKIE,
    PREFIX,
    client_of,
    console_of,
    end_session,
    is_https,
    lang_of,
    name_of,
    need_page_user,
    same_origin,
    start_session,
    who_is,
)

NAV = (("board", "/"), ("storm", "/storm"), ("map", "/map"), ("roster", "/roster"),
       ("report", "/report"), ("notices", "/notices"), ("health", "/health"))


def scope_badge(c, who: str, lang: str) -> str:
    """What the signed-in person sees and acts on, always in view: an enterprise's officer
    must not wonder why the bureau's warnings are missing from the board."""
    scope = c.rights.scope_of(who)
    if scope.level == "enterprise":
        team = c.roster.teams.get(c.roster.org_team("enterprise", scope.key) or "") \
            if c.roster is not None else None
        label = f'{t("scope_enterprise", lang)}：{team.name if team else scope.key}'
    elif scope.level == "town":
        label = f'{t("scope_town", lang)}：{scope.key}'
    else:
        label = t("scope_bureau", lang)
    return (f'<span id="scope" class="scope scope-{scope.level}" data-level="{scope.level}" '
            f'title="{html.escape(t("scope_title", lang))}">{html.escape(label)}</span>')


def layout(request: web.Request, page: str, title: str, body: str, who: str | None,
            data: dict | None = None) -> web.Response:
    c = console_of(request)
    lang = lang_of(request)
    other = "en" if lang == "zh" else "zh"
    e = html.escape
    nav = "".join(f'<a href="{PREFIX}{path}" class="{"on" if page == key else ""}">'
                  f'{e(t(key, lang))}</a>' for key, path in NAV) if who else ""
    user = (f'<span class="user">{e(t("signed_in", lang))}: <b id="me">{e(name_of(c, who))}</b> '
            f'({e(who)}) {scope_badge(c, who, lang)}</span><form class="inline" method="post" action="{PREFIX}/logout">'
            f'<button id="logout" type="submit">{e(t("logout", lang))}</button></form>'
            if who else "")
    cfg = {"page": page, "prefix": PREFIX, "lang": lang, "user": who or "",
           "user_name": name_of(c, who), **(data or {})}
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
<span id="live" class="live" hidden></span>
<button id="menu" class="menu" type="button" aria-expanded="false" aria-controls="hmenu">☰ {e(t("menu", lang))}</button>
<div id="hmenu" class="hmenu"><nav>{nav}</nav><span class="spacer"></span>{user}
<form class="inline" method="post" action="{PREFIX}/lang"><input type="hidden" name="to" value="{other}"><input type="hidden" name="next" value="{e(request.path_qs)}"><button id="lang" type="submit">{e(t("lang_other", lang))}</button></form>
</div></header>
<main>{body}</main>
<script>window.YJ = {js_cfg};
window.T = {js_t};</script>
<script src="{PREFIX}/static/console.js" defer></script>
</body></html>"""
    return web.Response(text=text, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def login_page(request: web.Request, wait_s: int = 0) -> web.Response:
    lang = lang_of(request)
    nxt = request.query.get("next", f"{PREFIX}/")
    bad = request.query.get("bad")
    e = html.escape
    error = (t("too_many", lang).format(n=wait_s) if wait_s else t("bad_token", lang) if bad
             else "")
    body = f"""<section class="login"><h1>{e(t("login_title", lang))}</h1>
<form method="post" action="{PREFIX}/login">
<input type="hidden" name="next" value="{e(nxt)}">
<label>{e(t("token", lang))} <input id="token" name="token" type="password" autocomplete="current-password" required autofocus></label>
<button id="login" type="submit">{e(t("login", lang))}</button>
{f'<p class="error" role="alert">{e(error)}</p>' if error else ''}
<p class="help">{e(t("token_help", lang))}</p></form></section>"""
    resp = layout(request, "login", t("login", lang), body, None)
    if wait_s:
        resp.set_status(429)
        resp.headers["Retry-After"] = str(wait_s)
    return resp


def _safe_next(nxt: str) -> str:
    return nxt if nxt.startswith(PREFIX + "/") and "//" not in nxt[1:] else f"{PREFIX}/"


def _from_our_pages(request: web.Request) -> None:
    """403 for a form post that another site made the browser send."""
    if not same_origin(request):
        raise web.HTTPForbidden(text=f'{t("cross_site", "zh")} / {t("cross_site", "en")}',
                                content_type="text/plain")


async def _form(request: web.Request):
    """The posted form, or 400 with the reason: a malformed one (a multipart body without its
    boundary, a broken part, an unknown charset) makes aiohttp's reader raise."""
    try:
        return await request.post()
    except (ValueError, LookupError, HttpProcessingError) as exc:
        raise web.HTTPBadRequest(text=f"表单无效 / bad form: {str(exc)[:200]}; post "
                                      "application/x-www-form-urlencoded",
                                 content_type="text/plain") from None


async def login(request: web.Request) -> web.Response:
    """A token for a session: wrong ones count against the client, and past the limit
    even a right one waits (no oracle for guessing)."""
    c = console_of(request)
    _from_our_pages(request)
    client = client_of(request)
    wait = c.login_limit.wait_s(client, clock.now_ms())
    if wait:
        return await login_page(request, wait)
    form = await _form(request)
    nxt = _safe_next(str(form.get("next") or ""))
    token = str(form.get("token") or "").strip()
    who = c.person_of(token) if token else None
    if who is None:
        c.login_limit.fail(client, clock.now_ms())
        raise web.HTTPFound(f"{PREFIX}/login?bad=1&next={quote(nxt)}")
    resp = web.HTTPFound(nxt)
    start_session(request, resp, who, token)
    raise resp


async def logout_page(request: web.Request) -> web.Response:
    """A GET changes nothing (a link checker or a prefetch must not log anyone out)."""
    lang = lang_of(request)
    who = who_is(request)
    e = html.escape
    body = (f'<section class="login"><h1>{e(t("logout_ask", lang))}</h1>'
            f'<form method="post" action="{PREFIX}/logout"><button id="logout-confirm" '
            f'type="submit">{e(t("logout", lang))}</button></form></section>')
    return layout(request, "logout", t("logout", lang), body, who)


async def logout(request: web.Request) -> web.Response:
    _from_our_pages(request)
    resp = web.HTTPFound(f"{PREFIX}/login")
    end_session(request, resp)
    raise resp


async def lang_page(request: web.Request) -> web.Response:
    """The old GET link: back to the page, the language unchanged (the switch is a POST)."""
    raise web.HTTPFound(_safe_next(request.query.get("next", f"{PREFIX}/")))


async def set_lang(request: web.Request) -> web.Response:
    _from_our_pages(request)
    form = await _form(request)
    to = str(form.get("to") or "zh")
    resp = web.HTTPFound(_safe_next(str(form.get("next") or f"{PREFIX}/")))
    resp.set_cookie(LANG_COOKIE, to if to in LANGS else "zh", path="/", max_age=365 * 86_400,
                    samesite="Lax", secure=is_https(request))
    raise resp


def _grade_select(lang: str) -> str:
    opts = "".join(f'<option value="{g}">{html.escape(t(f"grade_{g}", lang))}</option>'
                   for g in (4, 3, 2, 1))
    return f'<option value="">{html.escape(t("all", lang))}</option>{opts}'


async def board_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    lang = lang_of(request)
    e = html.escape
    counters = "".join(
        f'<div class="counter g{g}" data-grade="{g}"><span class="badge g{g}">'
        f'<i class="ico"></i>{e(t(f"grade_{g}", lang))}</span><b class="n">0</b></div>'
        for g in (4, 3, 2, 1))
    body = f"""<section class="counters" id="counters">{counters}</section>
<section class="filters">
<label>{e(t("town", lang))} <select id="f-town"><option value="">{e(t("all", lang))}</option></select></label>
<label>{e(t("domain", lang))} <select id="f-domain"><option value="">{e(t("all", lang))}</option>
{"".join(f'<option value="{d}">{e(t("d_" + d, lang))}</option>' for d in DOMAINS if d not in ORG_DOMAINS)}</select></label>
<label>{e(t("hazard", lang))} <select id="f-hazard"><option value="">{e(t("all", lang))}</option></select></label>
<label>{e(t("grade", lang))} <select id="f-grade">{_grade_select(lang)}</select></label>
<label class="check"><input type="checkbox" id="f-cleared"> {e(t("show_cleared", lang))}</label>
</section>
<table class="board" id="board"><thead><tr>
<th>{e(t("grade", lang))}</th><th>{e(t("hazard", lang))}</th><th>{e(t("station", lang))}</th>
<th>{e(t("town", lang))}</th><th>{e(t("state", lang))}</th><th>{e(t("raised", lang))}</th>
<th>{e(t("reason", lang))}</th><th>{e(t("team", lang))}</th></tr></thead><tbody></tbody></table>
<p id="empty" class="empty" hidden>{e(t("no_warnings", lang))}</p>
<section id="pending-box" class="pending"><h2>{e(t("pending_title", lang))} <b id="pending-n">0</b></h2>
<p class="help">{e(t("pending_help", lang))}</p>
<table class="board" id="pending"><thead><tr><th>{e(t("grade", lang))}</th><th>{e(t("hazard", lang))}</th>
<th>{e(t("station", lang))}</th><th>{e(t("town", lang))}</th><th>{e(t("held", lang))}</th>
<th>{e(t("reason", lang))}</th></tr></thead><tbody></tbody></table>
<p id="pending-empty" class="empty" hidden>{e(t("no_pending", lang))}</p></section>
<section id="due-box" class="pending"><h2>{e(t("report_due", lang))} <b id="due-n">0</b></h2>
<p class="help">{e(t("due_help", lang))}</p><ul id="due-list" class="cards"></ul></section>"""
    return layout(request, "board", t("board", lang), body, who)


async def map_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    lang = lang_of(request)
    c = console_of(request)
    reg = c.registry()
    svg = mapsvg.render([s for s in (reg.stations.values() if reg else [])
                         if c.sees_station(who, s)], t("outline", lang))
    e = html.escape
    legend = "".join(f'<span class="badge g{g}"><i class="ico"></i>{e(t(f"grade_{g}", lang))}'
                     f'</span>' for g in (4, 3, 2, 1))
    body = f"""<section class="maprow"><div class="mapbox">{svg}</div>
<aside><h2>{e(t("legend", lang))}</h2><p class="legend">{legend}
<span class="badge g0"><i class="ico"></i>{e(t("no_active", lang))}</span></p>
<p class="help">{e(t("outline", lang))}</p>
<p class="help" id="no-bounds">{e(t("no_town_bounds", lang))}</p>
<ul id="map-list" class="maplist"></ul></aside></section>"""
    return layout(request, "map", t("map", lang), body, who)


async def storm_page(request: web.Request) -> web.Response:
    """暴雨专题: the rain ranking, the open rain and waterlogging warnings, the points' depths."""
    who = need_page_user(request)
    lang = lang_of(request)
    e = html.escape
    head = "".join(f"<th>{e(t(k, lang))}</th>" for k in
                   ("rank", "station", "town", "rain_1h", "rain_3h", "rain_24h", "last_report"))
    body = f"""<section id="storm"><h1>{e(t("storm", lang))} <small id="as-of"></small></h1>
<div class="cols"><div class="col wide"><h2>{e(t("rain_rank", lang))}</h2>
<p class="help" id="bands"></p>
<div class="scrollx"><table class="board rank" id="rain"><thead><tr>{head}</tr></thead><tbody></tbody></table></div></div>
<div class="col"><h2>{e(t("storm_warnings", lang))} <b id="sw-n">0</b></h2><ul id="storm-warnings" class="cards"></ul>
<p id="sw-empty" class="empty" hidden>{e(t("no_warnings", lang))}</p>
<h2>{e(t("points", lang))}</h2><ul id="points" class="cards"></ul></div></div></section>"""
    return layout(request, "storm", t("storm", lang), body, who)


async def station_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    lang = lang_of(request)
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
    return layout(request, "station", sid, body, who, {"station": sid})


async def health_page(request: web.Request) -> web.Response:
    who = need_page_user(request)
    lang = lang_of(request)
    e = html.escape
    body = f"""<section class="health" id="health">
<div class="card wide"><h2>{e(t("self_faults", lang))}</h2><div id="h-faults"></div></div>
<div class="card"><h2>{e(t("ingest", lang))}</h2><div id="h-ingest"></div><div id="h-spark"></div></div>
<div class="card"><h2>{e(t("lag", lang))} · {e(t("worker_rate", lang))}</h2><div id="h-lag"></div></div>
<div class="card"><h2>{e(t("backlog", lang))}</h2><div id="h-backlog"></div></div>
<div class="card"><h2>{e(t("kafka_incidents", lang))} · {e(t("window", lang))}</h2><div id="h-console"></div></div>
<div class="card wide"><h2>{e(t("deadletters", lang))}</h2><div id="h-dead"></div></div>
</section>"""
    return layout(request, "health", t("health", lang), body, who)
