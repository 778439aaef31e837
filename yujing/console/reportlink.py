"""The report-back link (回报链接): a small form for one warning, opened from a message.

The acknowledge link's pages (``acklink.py``, which signs these) lead here: for each of their warnings
a link ``/v1/report/{token}`` signed for that one warning and that person, expiring
with the acknowledge link it came from. ``GET`` shows the form (Chinese first) and
changes nothing; its ``POST`` sends the report as the person the link names, like
the ``/v1`` API does (``reports_api.py``), after the same checks
(``alerts/reportback.py``). No login: the signed token is the authority, and a POST
from another site's page is refused. The command id is derived from the link and
the form's content, so a double click reports once.
"""

from __future__ import annotations

import hashlib
import html

import msgspec
from aiohttp import web

from yujing.alerts.reportback import STATUS, ReportError, parse_report
from yujing.alerts.signing import Claim
from yujing.console.acklink import claim_of, own_origin, page
from yujing.console.reports_api import send_report
from yujing.console.session import console_of, name_of
from yujing.console.state import Console
from yujing.domain import Grade

_FIELDS = ("status", "measures", "evacuated", "withdrawn", "stopped", "photos", "text")


def _claim(request: web.Request) -> Claim | web.Response:
    return claim_of(request, "report", 1, "this link is not a report link")


def _form(c: Console, claim: Claim, token: str, given: dict[str, str], error: str = "") -> str:
    e = html.escape
    w = c.incidents.get(claim.i[0])
    what = claim.i[0]
    if w is not None:
        g = Grade(w.grade) if 0 <= w.grade <= 4 else Grade(0)
        what = " · ".join(x for x in (f"{g.zh}预警", w.rule_name or w.rule, w.town,
                                      w.station_name or w.station, w.incident) if x)
    status = "".join(f'<option value="{k}"{" selected" if given.get("status") == k else ""}>'
                     f"{e(t.zh)} / {e(t.en)}</option>" for k, t in STATUS.items())
    stopped = "".join(f'<option value="{v}"{" selected" if given.get("stopped") == v else ""}>'
                      f"{e(label)}</option>" for v, label in
                      (("", "未说明 / not said"), ("yes", "已停产 / stopped"),
                       ("no", "未停产 / goes on")))
    err = f'<p class=err role=alert style="color:#b00">{e(error)}</p>' if error else ""
    return (f"<p>{e(name_of(c, claim.p))}：请回报 <b>{e(what)}</b> 的处置情况。<br><small>Report "
            f"what was done about this warning, as {e(claim.p)}.</small></p>{err}"
            f'<form method="post" action="{e(token, quote=True)}">'
            f"<p><label>处置状态 / status<br><select name=status>{status}</select></label></p>"
            f"<p><label>采取的措施 / measures<br><textarea name=measures rows=3 cols=40>"
            f"{e(given.get('measures', ''))}</textarea></label></p>"
            f"<p><label>转移人数 / transferred <input name=evacuated type=number min=0 "
            f"value=\"{e(given.get('evacuated', '0'))}\"></label> "
            f"<label>撤离人数 / withdrawn <input name=withdrawn type=number min=0 "
            f"value=\"{e(given.get('withdrawn', '0'))}\"></label></p>"
            f"<p><label>停产 / production<br><select name=stopped>{stopped}</select></label></p>"
            f"<p><label>照片链接（每行一个）/ photo links, one a line<br><textarea name=photos "
            f"rows=2 cols=40>{e(given.get('photos', ''))}</textarea></label></p>"
            f"<p><label>说明 / note<br><textarea name=text rows=2 cols=40>"
            f"{e(given.get('text', ''))}</textarea></label></p>"
            f"<button type=submit>提交回报 / Send report</button></form>")


async def show(request: web.Request) -> web.Response:
    """GET: the form. Changes nothing."""
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    c = console_of(request)
    return page("处置回报 / Report back", _form(c, claim, request.match_info["token"], {}))


def _body(given: dict[str, str]) -> bytes:
    """The form's fields as the API's JSON body; numbers that are not numbers raise."""
    out: dict[str, object] = {"status": given.get("status", ""),
                              "measures": given.get("measures", ""),
                              "text": given.get("text", "")}
    for key, zh in (("evacuated", "转移人数"), ("withdrawn", "撤离人数")):
        text = given.get(key, "").strip() or "0"
        if not text.isdigit():
            raise ReportError(f"{zh}须为整数 / {key} {text!r}: a whole number of people")
        out[key] = int(text)
    out["stopped"] = {"yes": True, "no": False}.get(given.get("stopped", ""))
    out["photos"] = [u for u in given.get("photos", "").splitlines() if u.strip()]
    return msgspec.json.encode(out)


async def submit(request: web.Request) -> web.Response:
    """POST: send the report as the person the link names."""
    claim = _claim(request)
    if isinstance(claim, web.Response):
        return claim
    c = console_of(request)
    token = request.match_info["token"]
    if not own_origin(request, c):
        return page("来源不符 / refused", "<p>来源不是本站：请直接打开消息中的链接。<br><small>This "
                    "request came from another site: open the link from the message.</small></p>",
                    403)
    form = await request.post()
    given = {k: str(form.get(k, ""))[:20_000] for k in _FIELDS}
    w = c.incidents.get(claim.i[0])
    if w is None:
        return page("未找到 / unknown", f"<p>{html.escape(claim.i[0])}：未找到 / unknown</p>", 404)
    limits = c.cfg.alerts.commands
    try:
        report = parse_report(_body(given), c.cfg.alerts.reports, limits.note_max)
    except ReportError as exc:
        return page("处置回报 / Report back", _form(c, claim, token, given, str(exc)), 400)
    digest = hashlib.sha256(token.encode() + b"\0" + _body(given)).hexdigest()[:32]
    report = msgspec.structs.replace(report, id=f"link:{digest}", by=claim.p)
    await send_report(c, w, report)
    return page("已提交 / sent", f"<p>{html.escape(name_of(c, claim.p))}：回报已提交，将显示在预警时间线上。"
                f"<br><small>Report sent; it shows on the warning's timeline.</small></p>")
