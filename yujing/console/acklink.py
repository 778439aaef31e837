"""The acknowledge link in a message: GET shows what it would acknowledge, POST does it.

Mail and chat services open the links in a message before a person does (link
scanners, previews). If opening the link acknowledged, a scanner would stop the
escalation to B and the duty leader with nobody having read the warning. So
``GET /v1/ack/{token}`` (and HEAD) only shows a confirmation page, Chinese first,
with one button; the button's ``POST`` to the same URL acknowledges.

The POST needs no login and no cookie: its authority is the signed, expiring
token in the URL (``alerts/signing.py``), so a cross-site form gains nothing it
did not already hold. A POST whose ``Origin`` is another site's is refused all
the same. Each incident's command id is derived from the token, so a second
click or a retried POST is applied once by the book.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from aiohttp import web

from yujing import clock
from yujing.alerts.records import Command, State
from yujing.alerts.signing import Claim, TokenError, sign, verify
from yujing.console.session import console_of, name_of
from yujing.console.state import Console
from yujing.domain import Grade

_HEADERS = {
    "Cache-Control": "no-store",                 # a shared cache must not keep the token's page
    "Referrer-Policy": "no-referrer",            # nor may the token leak to another site
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
}
_STYLE = ("body{font:16px/1.5 system-ui,sans-serif;margin:1.5em;max-width:40em}"
          "li{margin:.4em 0}button{font-size:1.2em;padding:.6em 1.6em;margin-top:1em}")


def page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=f"<!doctype html><meta charset=utf-8><meta name=viewport "
                             f"content='width=device-width'><title>{html.escape(title)}</title>"
                             f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>{body}",
                        content_type="text/html", status=status, headers=_HEADERS)


def claim_of(request: web.Request, action: str, items: int | None = None,
             not_it: str = "this link does not acknowledge") -> Claim | web.Response:
    """The link's valid claim for ``action`` (with exactly ``items`` ids, when given), or the
    page that says why it is refused. Shared by the acknowledge, report and notice links."""
    c = console_of(request)
    if c.secret is None:
        return page("链接不可用 / link disabled", "<p>no link secret is configured</p>", 503)
    try:
        claim = verify(c.secret, request.match_info["token"], clock.now_ms())
    except TokenError as exc:
        return page("链接无效 / link refused", f"<p>{html.escape(str(exc))}</p>", 403)
    if claim.a != action or (items is not None and len(claim.i) != items):
        return page("链接无效 / link refused", f"<p>{html.escape(not_it)}</p>", 403)
    return claim


def _claim(request: web.Request) -> Claim | web.Response:
    return claim_of(request, "ack")


def _report_link(c: Console, claim: Claim, iid: str) -> str:
    """The link to the report-back form of one warning, signed for the same person and
    expiring with this link (a relative URL: ``/v1/report/{token}``)."""
    if c.secret is None:
        return ""
    token = sign(c.secret, "report", claim.p, [iid], claim.e)
    return (f' <a class=report href="../report/{html.escape(token, quote=True)}">'
            "填写处置回报 / report back</a>")


def _row(c: Console, iid: str, report: str = "") -> str:
    w = c.incidents.get(iid)
    if w is None:
        return f"<li>{html.escape(iid)}：未找到 / unknown</li>"
    grade = Grade(w.grade) if 0 <= w.grade <= 4 else Grade(0)
    state = {State.ACKNOWLEDGED: f"已由 {name_of(c, w.acked_by)} 确认 / acknowledged",
             State.CLEARED: "已解除 / cleared", State.ACTIVE: "待确认 / not acknowledged",
             State.PENDING: "待定 / pending"}.get(w.state, w.state.value)
    what = " · ".join(x for x in (f"{grade.zh}预警 {grade.label}", w.rule_name or w.rule,
                                  w.town, w.station_name or w.station) if x)
    return (f"<li><b>{html.escape(what)}</b><br><small>{html.escape(iid)} — "
            f"{html.escape(state)}</small>{report}</li>")


async def show(request: web.Request) -> web.Response:
    """GET: what the link acknowledges, and the button that does it. Changes nothing."""
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    c = console_of(request)
    name = name_of(c, claim.p)
    who = html.escape(f"{name} ({claim.p})" if name != claim.p else claim.p)
    rows = "".join(_row(c, iid, _report_link(c, claim, iid)) for iid in claim.i)
    action = html.escape(request.match_info["token"], quote=True)   # this same URL, relative
    return page("确认预警 / Acknowledge warnings",
                 f"<p>{who}：确认以下预警后，升级呼叫停止。<br>"
                 f"<small>Acknowledge these warnings as {who}? Escalation to the next person "
                 f"stops.</small></p><ul>{rows}</ul>"
                 f'<form method="post" action="{action}">'
                 f"<button type=submit>确认 / Acknowledge</button></form>")


def own_origin(request: web.Request, c: Console) -> bool:
    """True unless the request says it comes from a page of another site."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True   # not sent by a browser's cross-site form: the signed token is the key
    base = urlsplit(c.base)
    own = {f"{request.scheme}://{request.host}".lower(), f"{base.scheme}://{base.netloc}".lower()}
    return origin.strip().lower() in own


async def confirm(request: web.Request) -> web.Response:
    """POST: acknowledge every incident of the link, as the person it was sent to."""
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    c = console_of(request)
    if not own_origin(request, c):
        return page("来源不符 / refused", "<p>来源不是本站：请直接打开消息中的链接。<br>"
                     "<small>This request came from another site: open the link from the "
                     "message itself.</small></p>", 403)
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
    body = (f"<p>{html.escape(name_of(c, claim.p))}：{len(done)} 条预警已确认，升级呼叫停止。<br>"
            f"<small>{len(done)} acknowledged; escalation stops.</small></p><ul>"
            + "".join(_row(c, i, _report_link(c, claim, i)) for i in done) + "</ul>")
    if missing:
        body += "<p>未找到 / unknown: " + ", ".join(html.escape(i) for i in missing) + "</p>"
    return page("已确认 / acknowledged", body)
